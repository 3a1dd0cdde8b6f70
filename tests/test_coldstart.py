"""Cold start: no function's handler module imports asyncio, and the logs are what they were.

structlog imports asyncio at its top for async logging methods the functions never call; remediator.logs keeps
it out (docs/figures/performance.md, bench/bench_coldstart.py). Each check runs in a fresh interpreter, so that
nothing this test session imported hides a regression: the runtime's CPython (3.12, where logging itself asks
asyncio for a task name) on the Lambda asset as shipped when one is found, else this environment's on the
sources.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
from pathlib import Path

import pytest

from infra.asset import build_lambda_asset, runtime_python
from remediator.functions import HOOK_NAMES, NAMES, ORGANIZATION_NAMES

ROOT = Path(__file__).resolve().parents[1]
HANDLERS = (*NAMES, *ORGANIZATION_NAMES, *HOOK_NAMES)

# Imports each handler in turn, noting the first after which asyncio is loaded; then logs one line as in Lambda.
PROBE = """
import json, sys
loaded = {}
for name in sys.argv[1].split(","):
    __import__("remediator.functions." + name)
    loaded[name] = sorted(m for m in sys.modules if m == "asyncio" or m.startswith("asyncio."))
from remediator.logs import bind, get_logger
bind(execution="exec-1")
get_logger("probe").info("probed", api_id="a1b2c3d4e5", count=2)
print(json.dumps(loaded))
"""

# After remediator.logs, asyncio still works for whoever needs it, structlog's async methods among them.
ASYNC_PROBE = """
import sys
import remediator.logs
assert "asyncio" not in sys.modules
import asyncio
async def main():
    logger = remediator.logs.get_logger("probe")
    await logger.ainfo("awaited", api_id="a1b2c3d4e5")
    return asyncio.current_task().get_name()
print(asyncio.run(main(), debug=False))
"""


def interpreter() -> tuple[list[str], dict[str, str]]:
    """The runtime's CPython on the asset (and boto3 as the runtime has it), else this environment on the sources."""
    python = runtime_python()
    env = {"PATH": "/usr/bin:/bin", "PYTHONDONTWRITEBYTECODE": "1", "AWS_LAMBDA_FUNCTION_NAME": "remediator-probe",
           "AWS_DEFAULT_REGION": "us-east-1"}
    if python is not None and python != sys.executable:
        from bench.bench_coldstart import runtime_libs

        machine = {"x86_64": "x86_64", "aarch64": "arm64", "arm64": "arm64"}[platform.machine()]
        asset = build_lambda_asset(architecture=machine)
        env["PYTHONPATH"] = os.pathsep.join((str(asset), runtime_libs(python)))
        return [python, "-B", "-S"], env
    env["PYTHONPATH"] = str(ROOT)
    return [sys.executable, "-B"], env


def run(code: str, *args: str) -> subprocess.CompletedProcess[str]:
    command, env = interpreter()
    done = subprocess.run([*command, "-c", code, *args], capture_output=True, text=True, timeout=300, env=env,
                          cwd=ROOT, check=False)
    assert done.returncode == 0, done.stderr
    return done


def test_every_function_module_is_probed() -> None:
    """A new function module (one with a handler) cannot escape the probe below."""
    modules = {path.stem for path in (ROOT / "remediator" / "functions").glob("[!_]*.py")
               if "\ndef handler(" in path.read_text(encoding="utf-8")}
    assert modules == set(HANDLERS)


def test_no_handler_imports_asyncio_and_logs_keep_their_json_lines() -> None:
    done = run(PROBE, ",".join(HANDLERS))
    loaded = json.loads(done.stdout)
    assert list(loaded) == list(HANDLERS)
    assert {name: modules for name, modules in loaded.items() if modules} == {}
    lines = [json.loads(line) for line in done.stderr.splitlines() if line.startswith("{")]
    assert len(lines) == 1, done.stderr
    line = lines[0]
    assert set(line) == {"event", "level", "timestamp", "execution", "api_id", "count"}
    assert (line["event"], line["level"], line["execution"], line["api_id"], line["count"]) == \
        ("probed", "info", "exec-1", "a1b2c3d4e5", 2)
    assert line["timestamp"].endswith("Z") and "T" in line["timestamp"]


def test_asyncio_still_works_after_the_logs_module() -> None:
    done = run(ASYNC_PROBE)
    assert done.stdout.strip().startswith("Task-")
    lines = [json.loads(line) for line in done.stderr.splitlines() if line.startswith("{")]
    assert [(line["event"], line["api_id"]) for line in lines] == [("awaited", "a1b2c3d4e5")]


@pytest.mark.parametrize("preloaded", ["asyncio", "structlog"])
def test_nothing_changes_where_asyncio_or_structlog_came_first(preloaded: str) -> None:
    """The stand-in is only for a first import of structlog before asyncio: otherwise the real modules are kept."""
    code = f"import {preloaded}\nimport remediator.logs, structlog._native as native\nprint(type(native.asyncio).__name__)"
    done = run(code)
    assert done.stdout.strip() == "module"


# Each handler in a fresh interpreter: is the collector running once its module has loaded, and what did loading freeze?
GC_PROBE = """
import gc, json, sys
before, frozen = gc.isenabled(), gc.get_freeze_count()  # what the interpreter itself froze at its start
__import__("remediator.functions." + sys.argv[1])
print(json.dumps({"before": before, "enabled": gc.isenabled(), "frozen": gc.get_freeze_count() - frozen}))
"""


def gc_after_import(name: str, in_lambda: bool) -> dict[str, object]:
    command, env = interpreter()
    if in_lambda:
        env = {**env, "AWS_EXECUTION_ENV": "AWS_Lambda_python3.12"}
    done = subprocess.run([*command, "-c", GC_PROBE, name], capture_output=True, text=True, timeout=300, env=env,
                          cwd=ROOT, check=False)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)  # type: ignore[no-any-return]


@pytest.mark.parametrize("name", HANDLERS)
def test_in_lambda_the_collector_runs_again_once_the_handler_has_loaded(name: str) -> None:
    """remediator/functions/coldstart.py: paused while the modules load, then what they made frozen and the collector
    on again. A handler module that forgot its last `coldstart.loaded()` would leave it off for the environment's life."""
    after = gc_after_import(name, in_lambda=True)
    assert (after["before"], after["enabled"]) == (True, True)
    assert isinstance(after["frozen"], int) and after["frozen"] > 10_000, after  # boto3's objects among them


def test_outside_lambda_the_collector_is_left_alone() -> None:
    """The command line, the tests and the local account load the same modules: nothing paused, nothing frozen."""
    assert gc_after_import("sweep", in_lambda=False) == {"before": True, "enabled": True, "frozen": 0}
    command, env = interpreter()
    done = subprocess.run([*command, "-c", "import gc, remediator.functions; print(gc.isenabled())"], capture_output=True,
                          text=True, timeout=300, env=env, cwd=ROOT, check=False)
    assert done.stdout.strip() == "True", done.stderr
