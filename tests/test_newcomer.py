"""A newcomer's first minutes: the repository cloned away from the workspace, the demo's install, and the
README's commands run verbatim there (evaluate, --help, --version, the emulator walk-through)."""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
from pathlib import Path

import pytest

from remediator import __version__

REPO = Path(__file__).resolve().parents[1]


def readme_block(after_heading: str) -> str:
    """The first ```sh block after a heading of the README, as a newcomer would paste it."""
    text = (REPO / "README.md").read_text(encoding="utf-8")
    section = text[text.index(after_heading):]
    match = re.search(r"```sh\n(.*?)```", section, re.S)
    assert match, f"no sh block after {after_heading!r}"
    return match.group(1)


@pytest.fixture(scope="module")
def clone(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The repository as `git clone` gives it, in a folder with nothing beside it, and `make install-demo` run there."""
    if shutil.which("git") is None or not (REPO / ".git").exists():
        pytest.fail("the newcomer test needs git and a git checkout")
    where = tmp_path_factory.mktemp("newcomer") / "apigw-remediator"
    subprocess.run(["git", "clone", "--quiet", str(REPO), str(where)], check=True, timeout=120)
    done = subprocess.run(["make", "install-demo"], cwd=where, env=_env(), capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "installing what the demo needs" in done.stdout
    return where


def _env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith(("VIRTUAL_ENV", "REMEDIATOR_", "AWS_", "MOTO_", "PYTHONPATH"))}


def test_the_clone_has_everything_the_tests_and_the_readme_use(clone: Path) -> None:
    for path in ("tests/data/corpus/policies", "tests/data/corpus/README.md", "examples/policy.json", "examples/demo-apis.json",
                 "examples/emulator.sh", "remediator/local/templates/auto.json"):
        assert (clone / path).exists(), path
    assert not list((clone / ".venv" / "lib").glob("*/site-packages/aws_cdk")), "the demo's install has no CDK toolchain"


def test_the_readmes_evaluate_example_verbatim(clone: Path) -> None:
    command = readme_block("## Evaluate a policy")
    assert "examples/policy.json" in command
    done = subprocess.run(["bash", "-c", command], cwd=clone, env=_env(), capture_output=True, text=True, timeout=120)
    assert done.returncode == 1, done.stderr  # 1: findings
    (result,) = [json.loads(line) for line in done.stdout.splitlines()]
    assert [(f["kind"], f["account"]) for f in result["findings"]] == [("untrusted-account", "999999999999")]


def test_the_installed_command(clone: Path) -> None:
    command = clone / ".venv" / "bin" / "apigw-remediator"
    help_text = subprocess.run([str(command), "--help"], cwd=clone, env=_env(), capture_output=True, text=True, timeout=60)
    assert help_text.returncode == 0 and help_text.stdout.startswith("usage: apigw-remediator") and "examples:" in help_text.stdout
    version = subprocess.run([str(command), "--version"], cwd=clone, env=_env(), capture_output=True, text=True, timeout=60)
    assert (version.returncode, version.stdout.strip()) == (0, f"apigw-remediator {__version__}")
    where = subprocess.run([str(clone / ".venv" / "bin" / "python"), "-c", "import remediator; print(remediator.__file__)"],
                           cwd="/", env=_env(), capture_output=True, text=True, timeout=60)
    assert where.stdout.strip().startswith(str(clone)), "the clone's own code, installed editable"


def test_the_emulator_walk_through_verbatim(clone: Path) -> None:
    assert readme_block("### Try it against a local emulator").strip() == "bash examples/emulator.sh            # PORT=5001 bash examples/emulator.sh to use another port"
    with socket.socket() as probe:  # a free port, as the script's comment says to choose
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    done = subprocess.run(["bash", "examples/emulator.sh"], cwd=clone, env={**_env(), "PORT": str(port)},
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    assert "-> applied: redeployed prod, dev" in done.stdout and "-> rolled-back: redeployed prod, dev" in done.stdout
    # The README shows the script as it is.
    script = (clone / "examples" / "emulator.sh").read_text().splitlines()[5:]
    assert "\n".join(script) in (clone / "README.md").read_text()
