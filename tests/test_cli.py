"""The `evaluate` command's contract: output keys, exit codes, one-line errors."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path

import pytest

from remediator.cli import main
from tests.conftest import OWNER, REPO, STRANGER

COMPLIANT = {"Statement": [{"Effect": "Allow", "Principal": {"AWS": OWNER}, "Action": "execute-api:Invoke", "Resource": "*"}]}
UNTRUSTED = {"Statement": [{"Sid": "Partner", "Effect": "Allow", "Principal": {"AWS": [OWNER, STRANGER]}, "Action": "execute-api:Invoke", "Resource": "*"}]}


def run(*argv: str, stdin: str = "") -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    old_stdin = sys.stdin
    sys.stdin = io.StringIO(stdin)
    try:
        status = main(list(argv), out, err)
    finally:
        sys.stdin = old_stdin
    return status, out.getvalue(), err.getvalue()


@pytest.fixture
def files(tmp_path: Path) -> dict[str, str]:
    paths = {}
    for name, content in {"ok": json.dumps(COMPLIANT), "bad": json.dumps(UNTRUSTED), "broken": "{nope"}.items():
        path = tmp_path / f"{name}.json"
        path.write_text(content)
        paths[name] = str(path)
    return paths


def test_json_output_keys_and_exit_one(files: dict[str, str]) -> None:
    status, out, err = run("evaluate", files["ok"], files["bad"], "--owner-account", OWNER, "--format", "json")
    assert status == 1 and err == ""
    first, second = (json.loads(line) for line in out.splitlines())
    assert list(first) == ["source", "compliant", "findings", "remediated_policy", "patch_operations"]
    assert first == {"source": files["ok"], "compliant": True, "findings": [], "remediated_policy": None, "patch_operations": []}
    assert second["compliant"] is False
    assert second["findings"] == [
        {"kind": "untrusted-account", "statement_index": 0, "sid": "Partner", "principal": STRANGER, "account": STRANGER,
         "remediation": "remove", "detail": f"account {STRANGER} is not trusted"}
    ]
    assert second["remediated_policy"]["Statement"][0]["Principal"] == {"AWS": [OWNER]}
    assert second["patch_operations"][0]["path"] == "/policy"


def test_all_compliant_exits_zero(files: dict[str, str]) -> None:
    assert run("evaluate", files["ok"], "--owner-account", OWNER)[0] == 0


def test_trusted_accounts_flag(files: dict[str, str]) -> None:
    assert run("evaluate", files["bad"], "--owner-account", OWNER, "--trusted-accounts", f"{STRANGER},123456789012")[0] == 0


def test_stdin(files: dict[str, str]) -> None:
    status, out, _ = run("evaluate", "-", "--owner-account", OWNER, "--format", "json", stdin=json.dumps(UNTRUSTED))
    assert status == 1 and json.loads(out)["source"] == "-"


def test_text_format_lists_findings_then_patch(files: dict[str, str]) -> None:
    status, out, _ = run("evaluate", files["bad"], "--owner-account", OWNER)
    assert status == 1
    lines = out.splitlines()
    assert "1 finding(s)" in lines[0]
    assert lines[1].strip().startswith("[remove] untrusted-account 999999999999 in statement 0 (Partner)")
    assert lines[2].strip().startswith("patch: ")


def test_invalid_input_exits_two_with_one_line_naming_the_file(files: dict[str, str]) -> None:
    status, out, err = run("evaluate", files["bad"], files["broken"], "--owner-account", OWNER, "--format", "json")
    assert status == 2
    assert len(out.splitlines()) == 1, "valid inputs are still reported"
    assert err.count("\n") == 1 and err.startswith(f"error: {files['broken']}: policy is not JSON")


def test_missing_file(tmp_path: Path) -> None:
    status, _, err = run("evaluate", str(tmp_path / "nope.json"), "--owner-account", OWNER)
    assert status == 2 and err.count("\n") == 1 and "No such file" in err


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["evaluate", "x.json"], "--owner-account"),
        (["evaluate", "x.json", "--owner-account", "12"], "'12' is not a 12-digit account ID"),
        (["evaluate", "x.json", "--owner-account", OWNER, "--trusted-accounts", "abc"], "'abc' is not a 12-digit account ID"),
        (["evaluate", "x.json", "--owner-account", OWNER, "--trusted-org-ids", "org"], "'org' is not an organization ID"),
        (["evaluate", "x.json", "--owner-account", OWNER, "--format", "xml"], "invalid choice"),
        (["frobnicate"], "invalid choice"),
    ],
)
def test_argument_errors_exit_two_with_one_line(argv: list[str], message: str) -> None:
    status, out, err = run(*argv)
    assert status == 2 and out == ""
    assert err.count("\n") == 1 and message in err


def test_module_entry_point_has_no_traceback(files: dict[str, str]) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "remediator", "evaluate", files["broken"], "--owner-account", OWNER],
        capture_output=True, text=True, cwd=REPO, check=False,
    )
    assert result.returncode == 2
    assert "Traceback" not in result.stderr and result.stderr.count("\n") == 1


def test_core_imports_no_aws_sdk() -> None:
    code = "import sys, remediator.core, remediator.cli; bad = [m for m in sys.modules if m.split('.')[0] in ('boto3', 'botocore')]; print(bad)"
    result = subprocess.run([sys.executable, "-c", "import remediator.core, sys; print([m for m in sys.modules if m.startswith(('boto3', 'botocore'))])"],
                            capture_output=True, text=True, cwd=REPO, check=True)
    assert result.stdout.strip() == "[]"
    del code
