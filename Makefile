# One command each: `make test` and `make demo` create the environment, install, and run.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
export JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION := 1
export JSII_SILENCE_WARNING_UNTESTED_NODE_VERSION := 1
export JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION := 20

.PHONY: install test demo bench synth clean

$(STAMP): requirements.txt requirements-dev.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	touch $(STAMP)

install: $(STAMP)

test: $(STAMP)
	$(BIN)/python -m pytest

demo: $(STAMP)
	$(BIN)/python -m remediator.demo

bench: $(STAMP)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --no-deps -r bench/requirements.txt
	$(BIN)/python bench/bench_evaluate.py
	$(BIN)/python bench/bench_sweep.py
	$(BIN)/python bench/bench_burst.py
	$(BIN)/python bench/bench_coldstart.py

synth: $(STAMP)
	$(BIN)/python app.py

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis cdk.out
