"""The command line behaves as AWS tools do: usage when called bare, --version, help and examples for
everything, --profile and the default region from the environment, and a dead --endpoint-url that fails
at once with one line."""

from __future__ import annotations

import argparse
import io
import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from remediator import __version__
from remediator.cli import build_parser, main
from remediator.local.emulator import seed_rest_api
from tests.conftest import STRANGER


def subcommands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    (action,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    return dict(action.choices)


def test_a_bare_command_prints_usage_and_exits_2() -> None:
    out, err = io.StringIO(), io.StringIO()
    assert main([], out, err) == 2
    assert out.getvalue() == ""
    text = err.getvalue()
    assert text.startswith("usage: apigw-remediator") and all(name in text for name in ("evaluate", "scan", "fix", "rollback"))
    assert "examples:" in text


def test_version() -> None:
    done = subprocess.run([sys.executable, "-m", "remediator", "--version"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and done.stdout.strip() == f"apigw-remediator {__version__}"


def test_every_option_has_help_and_every_command_examples() -> None:
    parser = build_parser()
    commands = subcommands(parser)
    assert set(commands) == {"evaluate", "check", "scan", "fix", "rollback"}
    for name, command in commands.items():
        assert "examples:" in (command.epilog or ""), f"{name} --help shows no examples"
        assert f"apigw-remediator {name}" in command.epilog
        for action in command._actions:
            assert action.help and action.help != argparse.SUPPRESS, f"{name} {'/'.join(action.option_strings) or action.dest} has no help"


def test_a_dead_endpoint_fails_within_3_seconds_with_one_line() -> None:
    for command in (["scan", "--regions", "eu-west-1"], ["fix", "--regions", "eu-west-1"]):
        out, err = io.StringIO(), io.StringIO()
        started = time.monotonic()
        assert main([*command, "--endpoint-url", "http://127.0.0.1:9"], out, err) == 2
        assert time.monotonic() - started < 3
        assert err.getvalue().count("\n") == 1 and "nothing answers at http://127.0.0.1:9" in err.getvalue()


@pytest.fixture
def aws_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """Call it to leave the command line an AWS configuration with one named profile, and no credentials,
    region or profile in the environment."""
    def isolate() -> None:
        (tmp_path / "config").write_text("[profile audit]\nregion = ap-southeast-2\n")
        (tmp_path / "credentials").write_text("[audit]\naws_access_key_id = testing\naws_secret_access_key = testing\n")
        monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "config"))
        monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "credentials"))
        for name in ("AWS_REGION", "AWS_DEFAULT_REGION", "AWS_PROFILE", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY",
                     "AWS_SESSION_TOKEN"):
            monkeypatch.delenv(name, raising=False)

    return isolate


def _scan(*argv: str) -> tuple[int, list[dict], str]:
    out, err = io.StringIO(), io.StringIO()
    status = main(["scan", "--format", "json", *argv], out, err)
    return status, [json.loads(line) for line in out.getvalue().splitlines()], err.getvalue()


def _untrusted_api(account, region: str) -> str:
    policy = {"Statement": [{"Effect": "Allow", "Principal": {"AWS": STRANGER}, "Action": "execute-api:Invoke", "Resource": "*"}]}
    return seed_rest_api(account.clients, region, f"api-{region}", json.dumps(policy), None, ("prod",))


def test_profile_and_its_region(account, aws_config, monkeypatch: pytest.MonkeyPatch) -> None:
    api_id = _untrusted_api(account, "ap-southeast-2")
    _untrusted_api(account, "eu-west-1")
    aws_config()
    status, records, err = _scan("--profile", "audit", "--endpoint-url", account.endpoint_url)
    assert (status, err) == (1, "") and [(r["region"], r["api_id"]) for r in records] == [("ap-southeast-2", api_id)]
    monkeypatch.setenv("AWS_PROFILE", "audit")  # the same through the environment, as the AWS CLI reads it
    assert _scan("--endpoint-url", account.endpoint_url)[1] == records
    monkeypatch.setenv("AWS_REGION", "eu-west-1")  # AWS_REGION wins over the profile's region
    assert [r["region"] for r in _scan("--endpoint-url", account.endpoint_url)[1]] == ["eu-west-1"]
    assert [r["region"] for r in _scan("--region", "ap-southeast-2", "--endpoint-url", account.endpoint_url)[1]] == ["ap-southeast-2"]


def test_no_region_and_an_unknown_profile_get_one_line(account, aws_config, monkeypatch: pytest.MonkeyPatch) -> None:
    aws_config()
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    status, _, err = _scan("--endpoint-url", account.endpoint_url)
    assert status == 2 and err.count("\n") == 1 and "no region: pass --regions" in err
    status, _, err = _scan("--profile", "nobody", "--endpoint-url", account.endpoint_url)
    assert status == 2 and err.count("\n") == 1 and "(nobody) could not be found" in err
