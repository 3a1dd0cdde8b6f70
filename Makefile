# One command each: `make demo` and `make test` create the environment, install what they need, and run.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PIP := $(BIN)/python -m pip --disable-pip-version-check
DEMO_STAMP := $(VENV)/.installed-demo
DEV_STAMP := $(VENV)/.installed-dev
export JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION := 1
export JSII_SILENCE_WARNING_UNTESTED_NODE_VERSION := 1
export JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION := 20

.PHONY: install install-demo test test-fast demo bench synth templates clean

$(BIN)/python:
	@echo "creating $(VENV) with $(PYTHON)"
	$(PYTHON) -m venv $(VENV)

# The demo's set: the package's dependencies, moto and policy_sentry (about 1 minute the first time).
$(DEMO_STAMP): $(BIN)/python requirements.txt requirements-cli.txt requirements-demo.txt pyproject.toml
	@echo "installing what the demo needs into $(VENV) (first run only; about a minute)"
	$(PIP) install --progress-bar on -r requirements-demo.txt
	$(PIP) install --progress-bar on --no-deps -e .
	touch $(DEMO_STAMP)

# Everything: the demo's set, the test tools and the CDK toolchain (several minutes the first time).
$(DEV_STAMP): $(DEMO_STAMP) requirements-dev.txt
	@echo "installing the test tools and the CDK toolchain into $(VENV) (first run only; several minutes)"
	$(PIP) install --progress-bar on -r requirements-dev.txt
	touch $(DEV_STAMP)

install-demo: $(DEMO_STAMP)

install: $(DEV_STAMP)

test: $(DEV_STAMP)
	$(BIN)/python -m pytest

# The unit tests only (everything not marked slow: no emulated account, no synthesized stack), in under a minute.
test-fast: $(DEV_STAMP)
	$(BIN)/python -m pytest -m "not slow"

demo: $(DEMO_STAMP)
	$(BIN)/python -m remediator.demo

bench: $(DEV_STAMP)
	$(PIP) install --quiet --no-deps -r bench/requirements.txt
	$(BIN)/python -m bench.bench_evaluate
	$(BIN)/python -m bench.bench_sweep
	$(BIN)/python -m bench.bench_burst
	$(BIN)/python -m bench.bench_org_sweep
	$(BIN)/python -m bench.bench_coldstart

synth: $(DEV_STAMP)
	$(BIN)/python app.py

# Rewrite the stack's templates the demo runs without the CDK (tests fail when they are out of date).
templates: $(DEV_STAMP)
	$(BIN)/python -m remediator.local.template --write

# The documentation site (mkdocs.yml), built with --strict into build/site: a broken link or a stale generated
# reference fails. Needs the demo's set (the CLI reference imports the command line) and the mkdocs pins of
# requirements-dev.txt, not the whole toolchain.
DOCS_STAMP := $(VENV)/.installed-docs
$(DOCS_STAMP): $(DEMO_STAMP) requirements-dev.txt
	$(PIP) install --progress-bar on $$(grep -E '^mkdocs' requirements-dev.txt)
	touch $(DOCS_STAMP)

.PHONY: docs
docs: $(DOCS_STAMP)
	NO_MKDOCS_2_WARNING=1 $(BIN)/python -m mkdocs build --strict --site-dir build/site

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis cdk.out build
