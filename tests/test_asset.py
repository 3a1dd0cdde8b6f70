"""The Lambda asset as shipped: bytecode for the runtime's Python, used as is (Lambda cannot write
__pycache__), and slack_sdk imported only where Slack is talked to."""

from __future__ import annotations

import json
import subprocess
import sysconfig
from pathlib import Path

import pytest

from infra.asset import build_lambda_asset, runtime_python
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
    asset = build_lambda_asset()
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
