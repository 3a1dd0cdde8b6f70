"""Shared fixtures: the real-world corpus (vendored in tests/data/corpus), and a trust configuration."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from remediator.core import TrustConfig

REPO = Path(__file__).resolve().parents[1]
CORPUS = Path(os.environ.get("REMEDIATOR_CORPUS") or REPO / "tests" / "data" / "corpus")

OWNER = "111122223333"
PARTNER = "444455556666"
STRANGER = "999999999999"
TRUSTED_ORG = "o-a1b2c3d4e5"


@pytest.fixture
def config() -> TrustConfig:
    return TrustConfig(owner_account=OWNER, trusted_accounts=frozenset({PARTNER}), trusted_org_ids=frozenset({TRUSTED_ORG}))


def corpus_dir(name: str) -> Path:
    path = CORPUS / name
    if not path.is_dir():
        pytest.fail(f"corpus folder {path} not found (REMEDIATOR_CORPUS points at a copy without it)")
    return path


# --- emulated AWS -------------------------------------------------------------------------------

_STRICT_LAYERS: list = []


@pytest.fixture(scope="session")
def emulator():
    """One strict local account on loopback for the session (moto's threaded server behind the strict
    layer); reset before each test."""
    from remediator.local.emulator import emulated_account

    with emulated_account(account_id=OWNER) as account:
        _STRICT_LAYERS.append(account.strict)
        yield account


def pytest_sessionfinish(session, exitstatus) -> None:
    """build/iam-report.json: every call the functions made in this run, as the strict account checked it."""
    import collections
    import json

    layers = [layer for layer in _STRICT_LAYERS if layer is not None]
    if not layers:
        return
    checked = [c for layer in layers for c in layer.checked]
    per_function: dict = collections.defaultdict(collections.Counter)
    for call in checked:
        per_function[f"{call.scope}/{call.principal}"][call.action] += 1
    report = {
        "calls_checked": len(checked),
        "denied": collections.Counter(f"{c.scope}/{c.principal} {c.action}" for c in checked if not c.allowed),
        "calls_per_function": {k: dict(sorted(v.items())) for k, v in sorted(per_function.items())},
    }
    worker = os.environ.get("PYTEST_XDIST_WORKER")  # one file per xdist worker: no two processes write one file
    path = REPO / "build" / (f"iam-report-{worker}.json" if worker else "iam-report.json")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=1, sort_keys=True))


@pytest.fixture
def account(emulator):
    emulator.reset()
    return emulator


@pytest.fixture
def in_process(monkeypatch):
    """moto in-process: the same adapters with no endpoint URL."""
    from moto import mock_aws

    from remediator.adapters.clients import ClientFactory
    from remediator.local.deployments import install_in_process
    from remediator.local.emulator import LOCAL_CREDENTIALS, enable_listing_pages

    for key, value in {**LOCAL_CREDENTIALS, "MOTO_ACCOUNT_ID": OWNER, "AWS_DEFAULT_REGION": "us-east-1"}.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("MOTO_PORT", raising=False)
    enable_listing_pages()
    install_in_process()  # what each deployment publishes (GetDeployment embed=apisummary), as the strict layer answers it
    with mock_aws():
        yield ClientFactory()


@pytest.fixture
def make_flow(account):
    """Build the workflow on the emulated account; restores the environment and routes afterwards."""
    import os

    from remediator.functions import common
    from remediator.local import runner

    saved_env, saved_routes, saved_clients, made = dict(os.environ), dict(runner._routes), common.clients, []

    def make(region: str = "eu-west-1", **config):
        config.setdefault("trusted_accounts", [PARTNER])
        flow = runner.LocalWorkflow(account, runner.WorkflowConfig(**config), region=region)
        made.append(flow)
        return flow

    yield make
    for flow in made:
        flow.close()
    runner._routes.clear()
    runner._routes.update(saved_routes)
    common.clients = saved_clients
    os.environ.clear()
    os.environ.update(saved_env)
    common.clients.cache_clear()


# --- fast and slow ------------------------------------------------------------------------------
# End-to-end tests (the emulated account, the workflow, a synthesized stack, a built asset, pre-commit) are
# marked `slow` from what they use, so that `make test-fast` runs the rest in well under a minute; `make test`
# runs everything.
SLOW_FIXTURES = frozenset({"emulator", "account", "make_flow", "make_org", "flow", "org_flow", "organization", "lone_account",
                           "in_process", "python312", "synth", "clone"})
SLOW_MODULES = frozenset({"test_stack", "test_org_stack", "test_asset", "test_demo", "test_least_privilege", "test_iam_coverage",
                          "test_strict_account", "test_iam_enforcer", "test_workflow_faults", "test_cli_faults", "test_docs",
                          "test_fresh_account", "test_lambda_errors", "test_ttl", "test_organization", "test_cli_org",
                          "test_newcomer", "test_hook", "test_fuzz", "test_workflow_errors", "test_security_hub",
                          "test_cost_model", "test_soak", "test_undeployed_changes", "test_trigger_decides"})
SLOW_NAMES = ("pre_commit", "try_repo")  # tests that build a tool's own environment


# The longest files first (their seconds on the 2-core machine, clean clone): pytest-xdist hands whole files to its
# workers in collection order, so a long file begun last would keep one worker busy after the other ran out of work.
LONGEST_FIRST = ("test_newcomer", "test_workflow_faults", "test_soak", "test_cli_faults", "test_organization", "test_demo",
                 "test_hook", "test_stack", "test_check", "test_hostile_input", "test_approvals", "test_iam_coverage",
                 "test_org_stack", "test_strict_account")


def pytest_collection_modifyitems(config, items) -> None:
    def rank(item: pytest.Item) -> int:
        module = item.module.__name__.rsplit(".", 1)[-1] if item.module is not None else ""
        return LONGEST_FIRST.index(module) if module in LONGEST_FIRST else len(LONGEST_FIRST)

    items.sort(key=rank)  # stable: within a file, and among the rest, the order stays as collected
    for item in items:
        module = item.module.__name__.rsplit(".", 1)[-1] if item.module is not None else ""
        if (module in SLOW_MODULES or SLOW_FIXTURES & set(getattr(item, "fixturenames", ()))
                or any(name in item.name for name in SLOW_NAMES)):
            item.add_marker(pytest.mark.slow)


# --- figures a test reports (the soak's): one line each at the end of the run, from every xdist worker ----------
_FIGURES: list[str] = []


def pytest_runtest_logreport(report) -> None:
    if report.when == "call":
        _FIGURES.extend(str(value) for name, value in getattr(report, "user_properties", []) if name == "figures")


def pytest_terminal_summary(terminalreporter) -> None:
    for line in _FIGURES:
        terminalreporter.write_line(line)


@pytest.fixture(autouse=True)
def _logging_as_it_was():
    """Each test leaves structlog's configuration and the root level as it found them: a test that quiets the logs
    (the soak) or sends them elsewhere (the cost model) must not hide the lines a later test in the worker reads."""
    import logging

    import structlog

    saved, level = structlog.get_config(), logging.root.level
    yield
    structlog.configure(**saved)
    logging.root.setLevel(level)
