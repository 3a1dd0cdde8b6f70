"""The Lambda asset as shipped: bytecode for the runtime's Python, used as is (Lambda cannot write
__pycache__), msgspec's compiled extension for the runtime's Python and architecture, and slack_sdk
imported only where Slack is talked to."""

from __future__ import annotations

import json
import platform
import subprocess
import sysconfig
from pathlib import Path

import pytest

from infra.asset import ARCHITECTURE, build_lambda_asset, runtime_python
from remediator.functions import NAMES

PROBE = r"""
import importlib, importlib._bootstrap_external as ext, json, sys
asset, site = sys.argv[1], sys.argv[2]
compiled = []
original = ext.SourceLoader.source_to_code
def spy(self, data, path, *args, **kwargs):
    if str(path).startswith(asset):
        compiled.append(str(path))
    return original(self, data, path, *args, **kwargs)
ext.SourceLoader.source_to_code = spy
sys.path[:0] = [asset]
sys.path.append(site)  # boto3 and botocore, which the Lambda runtime provides (pure Python)
loaded = {}
for name in sys.argv[3:]:
    module = importlib.import_module(f"remediator.functions.{name}")
    loaded[name] = [module.__file__, "slack_sdk" in sys.modules]
print(json.dumps({"compiled": compiled, "loaded": loaded, "version": list(sys.version_info[:2])}))
"""


@pytest.fixture(scope="module")
def python312() -> str:
    python = runtime_python()
    if python is None:
        pytest.fail("no CPython 3.12 on this machine: the asset cannot ship the runtime's bytecode")
    return python


def test_the_asset_imports_under_the_runtimes_python_without_compiling_anything(python312: str) -> None:
    """Built for this machine's architecture: the functions import msgspec (every stored item is decoded with it),
    and the functions' own arm64 extension cannot load here."""
    architecture = {"x86_64": "x86_64", "aarch64": "arm64", "arm64": "arm64"}[platform.machine()]
    asset = build_lambda_asset(architecture=architecture)
    site = sysconfig.get_paths()["purelib"]
    done = subprocess.run([python312, "-B", "-c", PROBE, str(asset), site, *NAMES], capture_output=True, text=True, timeout=120,
                          env={"PYTHONDONTWRITEBYTECODE": "1", "PATH": "/usr/bin:/bin"})
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["version"] == [3, 12]
    assert result["compiled"] == [], "every module of the asset comes with the runtime's bytecode"
    assert all(path.startswith(str(asset)) for path, _ in result["loaded"].values())
    pycs = list(Path(asset).rglob("*.cpython-312.pyc"))
    assert len(pycs) > 50 and not list(Path(asset).rglob("*.cpython-311.pyc"))


@pytest.mark.parametrize("name", NAMES)
def test_only_the_functions_that_talk_to_slack_import_slack_sdk(name: str) -> None:
    """Importing a handler module never imports slack_sdk: the functions that talk to Slack import it on use."""
    import sys

    done = subprocess.run([sys.executable, "-c", f"import sys, remediator.functions.{name}; print('slack_sdk' in sys.modules)"],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and done.stdout.strip() == "False", done.stderr


def test_msgspec_ships_compiled_for_the_runtimes_python_and_architecture() -> None:
    asset = build_lambda_asset()
    assert ARCHITECTURE == "arm64"
    assert [p.name for p in (asset / "msgspec").glob("_core*.so")] == ["_core.cpython-312-aarch64-linux-gnu.so"]


ENGINE_PROBE = r"""
import json, sys
sys.path[:0] = [sys.argv[1]]
from remediator.core import TrustConfig, evaluate_policy, policy
text = json.dumps({"Statement": [{"Effect": "Allow", "Principal": {"AWS": ["210987654321", "111122223333"]}}]}, separators=(",", ":"))
evaluation = evaluate_policy(text, TrustConfig(owner_account="111122223333"))
print(json.dumps({"msgspec": policy.msgspec and policy.msgspec.__file__, "exact": evaluation._exact,
                  "patch": evaluation.patch_operations[0]["value"]}))
"""


def test_the_engine_runs_on_the_shipped_msgspec_under_the_runtimes_python(python312: str) -> None:
    """The same asset built for this machine's architecture (the functions' one cannot load here): under
    Python 3.12, msgspec's wheel for it imports, and the engine takes its fast path."""
    architecture = {"x86_64": "x86_64", "aarch64": "arm64", "arm64": "arm64"}[platform.machine()]
    asset = build_lambda_asset(architecture=architecture)
    done = subprocess.run([python312, "-B", "-c", ENGINE_PROBE, str(asset)], capture_output=True, text=True, timeout=120,
                          env={"PYTHONDONTWRITEBYTECODE": "1", "PATH": "/usr/bin:/bin"})
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["msgspec"].startswith(str(asset)) and result["exact"] is True
    assert result["patch"] == '{"Statement":[{"Effect":"Allow","Principal":{"AWS":["111122223333"]}}]}'


def test_nothing_the_command_line_alone_needs_goes_into_the_bundle() -> None:
    """rich (the CLI's and the demo's output), PyYAML (the CLI's YAML policies) and boto3 (the runtime's) stay out."""
    asset = build_lambda_asset()
    present = {p.name.lower() for p in asset.iterdir()}
    assert not present & {"rich", "yaml", "_yaml", "boto3", "botocore", "moto"}, sorted(present)
    assert {"remediator", "structlog", "slack_sdk", "msgspec"} <= present
    assert not {"local", "iac", "cli"} & {p.name for p in (asset / "remediator").iterdir()}
    command_line = {"__main__.py", "demo.py", "demo_organization.py", "policy_forms.py", "project_settings.py", "demo_check.py",
                    "shared_journal.py"}
    assert not command_line & {p.name for p in (asset / "remediator").iterdir()}
    # the command line's package is there to be left out: one module per command
    commands = {p.name for p in (Path(__file__).resolve().parents[1] / "remediator" / "cli").glob("*.py")}
    assert {"__init__.py", "args.py", "evaluate.py", "check.py", "scan.py", "fix.py", "rollback.py"} <= commands
    assert (asset / "remediator" / "functions" / "evaluate.py").exists()
    # the change's steps (one module each) that the functions' Remediator composes
    source = Path(__file__).resolve().parents[1] / "remediator" / "transaction"
    steps = {p.name for p in source.glob("*.py")}
    assert {"planning.py", "writing.py", "deploying.py", "recovery.py", "rollback.py", "remediator.py"} <= steps
    assert steps <= {p.name for p in (asset / "remediator" / "transaction").iterdir()}
