"""The documentation: the site builds with --strict (no broken link or anchor, no stale generated reference, every
notice's fields documented), the README stays two screens, and the generated references cover what the code has."""

from __future__ import annotations

import importlib.util
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def _docs_gen():
    spec = importlib.util.spec_from_file_location("docs_gen", REPO / "tools" / "docs_gen.py")
    module = importlib.util.module_from_spec(spec)
    assert spec.loader is not None
    spec.loader.exec_module(module)
    return module


docs_gen = _docs_gen()


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """`mkdocs build --strict`, as `make docs` runs it, into a temporary folder."""
    where = tmp_path_factory.mktemp("site")
    started = time.monotonic()
    done = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(where)], cwd=REPO,
                          env={**os.environ, "NO_MKDOCS_2_WARNING": "1"}, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-4000:]
    assert time.monotonic() - started < 30, "the site should build in seconds"
    return where


def _page(site: Path, name: str) -> str:
    return (site / name).read_text(encoding="utf-8")


def test_the_readme_is_two_screens() -> None:
    lines = (REPO / "README.md").read_text(encoding="utf-8").splitlines()
    assert len(lines) <= 150, f"README.md has {len(lines)} lines; the rest belongs on the site (docs/)"


def test_the_readme_keeps_the_quick_start_true() -> None:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    makefile = (REPO / "Makefile").read_text(encoding="utf-8")
    assert "make demo" in readme and "make test" in readme and "```mermaid" in readme
    for target in ("demo", "test", "synth", "docs"):
        assert re.search(rf"^{target}:", makefile, re.M), target
    assert "make test" in (REPO / ".ci" / "run").read_text(encoding="utf-8")


def test_the_readmes_links_and_anchors_resolve(site: Path) -> None:
    """The README is not on the site, so its links are checked here: each file exists; each anchor is on its page."""
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    for target, anchor in re.findall(r"\]\(([^)#\s]+)(?:#([^)\s]+))?\)", readme):
        if "://" in target:
            continue
        assert (REPO / target).exists(), target
        if anchor:
            assert target.startswith("docs/") and target.endswith(".md"), target
            built = site / (target[len("docs/"):-len(".md")] + ".html")
            assert f'id="{anchor}"' in built.read_text(encoding="utf-8"), f"{target}#{anchor}"


def test_every_command_is_in_the_cli_reference(site: Path) -> None:
    page = _page(site, "reference/cli.html")
    commands = docs_gen.cli_commands()
    assert {"evaluate", "check", "scan", "fix", "rollback"} <= set(commands)
    for command in commands:
        assert f'id="{command}"' in page, command
        assert f"usage: apigw-remediator {command}" in page, command


def test_every_setting_is_in_the_settings_page(site: Path) -> None:
    page = _page(site, "reference/settings.html")
    context = json.loads((REPO / "cdk.json").read_text(encoding="utf-8"))["context"]
    keys = [key for key in context if key.startswith("remediator:")]
    assert keys
    for key in keys:
        assert f"<code>{key}</code>" in page, key
    assert all(s["meaning"] for s in docs_gen.settings()), "every setting has a meaning in infra/config.py's table"


@pytest.mark.parametrize("name", ["definition.json", "org_sweep.json"])
def test_every_state_is_in_the_diagram(name: str) -> None:
    definition = docs_gen.workflow(name)
    markdown = docs_gen.state_machine_markdown(name)
    diagram = markdown.split("```mermaid", 1)[1].split("```", 1)[0]
    for state in docs_gen.all_states(definition):
        assert re.search(rf"(^|\s){re.escape(state)}(\s|:|$)", diagram, re.M), state
    for state_name, state in definition["States"].items():
        for target in [state.get("Next"), state.get("Default")] + [c["Next"] for c in state.get("Choices", []) + state.get("Catch", [])]:
            if target:
                assert f"{state_name} --> {target}" in diagram, (state_name, target)


def test_the_state_machine_page_has_the_diagram(site: Path) -> None:
    page = _page(site, "reference/state-machine.html")
    assert page.count('class="mermaid"') == 2
    for state in docs_gen.all_states(docs_gen.workflow("definition.json")):
        assert state in page, state


def test_every_notice_has_a_runbook_naming_its_fields(site: Path) -> None:
    fields = docs_gen.notice_fields()
    kinds = {"proposal", "findings", "result", "failure", "rejected", "timeout", "summary", "organization-summary",
             "not-enrolled", "lost-update"}
    assert kinds <= set(fields)
    for kind in fields:
        source = (REPO / "docs" / "runbooks" / f"{kind}.md").read_text(encoding="utf-8")
        assert f"<!-- docs-gen: notice-fields:{kind} -->" in source, kind
        assert docs_gen.missing_fields(kind, source) == [], kind
        assert "What to do" in _page(site, f"runbooks/{kind}.html"), kind


def test_a_broken_link_fails_the_build(tmp_path: Path) -> None:
    """--strict is what makes a stale link an error: a copy of the docs with one broken anchor does not build."""
    import shutil

    shutil.copytree(REPO / "docs", tmp_path / "docs")
    config = (REPO / "mkdocs.yml").read_text(encoding="utf-8").replace("tools/docs_gen.py", str(REPO / "tools" / "docs_gen.py"))
    (tmp_path / "mkdocs.yml").write_text(config, encoding="utf-8")
    index = tmp_path / "docs" / "index.md"
    index.write_text(index.read_text(encoding="utf-8") + "\n[gone](trust-model.md#no-such-section)\n", encoding="utf-8")
    done = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path / "site")],
                          cwd=tmp_path, env={**os.environ, "NO_MKDOCS_2_WARNING": "1"}, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode != 0 and "no-such-section" in done.stderr + done.stdout


def test_the_full_figures_moved_intact() -> None:
    """The benchmark and cost tables are on the site, whole."""
    performance = (REPO / "docs" / "figures" / "performance.md").read_text(encoding="utf-8")
    cost = (REPO / "docs" / "figures" / "cost.md").read_text(encoding="utf-8")
    for needle in ("bench/bench_sweep.py", "bench/bench_burst.py", "bench/bench_coldstart.py", "bench/bench_org_sweep.py",
                   "bench/bench_evaluate.py"):
        assert needle in performance, needle
    for needle in ("cost model: 1000 accounts x 17 regions", "sweep per month", "2 calls/account/day", "fixed per month"):
        assert needle in cost, needle
