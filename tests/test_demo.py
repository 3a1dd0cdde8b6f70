"""`make demo` is the README's main job: it must keep working, in every mode, and read well."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest

from remediator import demo
from remediator.local import template

REPO = Path(__file__).resolve().parents[1]


def _run(capsys, *argv: str) -> str:
    saved = dict(os.environ)
    try:
        assert demo.main(list(argv)) == 0
    finally:
        os.environ.clear()
        os.environ.update(saved)
    return capsys.readouterr().out


def test_demo_runs_every_mode_and_reports_what_it_did(capsys) -> None:
    out = _run(capsys)
    flat = " ".join(out.split())  # wrapped lines joined
    for expected in ("mode: dry-run", "mode: approval", "mode: auto", "published: proposal",
                     "Slack message posted for approval", "[ Approve ]  [ Reject ]", "forged:    a click with a wrong signature: HTTP 401",
                     "approver:  a signed click on Approve by U0APPROVER: HTTP 200", "approval:  approved by U0APPROVER",
                     "stages:    prod, dev now serve deployment", "audit:     {", "CloudTrail recorded the fix's own writes",
                     "(UpdateRestApi, CreateDeployment, UpdateStage); the rule matched 0 of them",
                     "the IAM policies of the synthesized template, 0 denied",
                     "the same CreateRestApi event delivered again: decided in the trigger, no execution (the API is "
                     "compliant now; not run twice)", "scheduled sweep",
                     "workflow:  decided in the trigger, no execution (0 state transitions) verdict:   compliant",
                     "workflow:  decided in the trigger, no execution (0 state transitions) verdict:   exempt",
                     "orders-api.yaml:17 OrdersApi: untrusted-account arn:aws:iam::999999999999:root",
                     "orders-api.yaml: fails (exit 1)", "orders-api-fixed.yaml: passes (exit 0)"):
        assert " ".join(expected.split()) in flat, expected
    # The organization: two member accounts' changes fixed by the hub, the outsider refused, the sweep's summary.
    organization = flat[flat.index("organization mode: one hub"):]
    assert organization.count("Evaluate > IsActionNeeded > ChooseMode > Apply > WasPatched > Redeploy") == 2
    assert "1 event(s) refused" in organization and "nothing started" in organization
    assert re.search(r"SUCCEEDED: Plan > SweepEachAccount > Summarize; \d+ account-regions, 4 APIs, 1 fix\(es\) "
                     r"started, 0 not swept", organization), organization
    assert ("swept: changed-while-events-were-lost (" in flat and "SUCCEEDED, Evaluate > IsActionNeeded > ChooseMode > Apply > "
            "WasPatched > Redeploy > IsDeployed > Record > Notify > Done" in flat)
    # The cost table has a row per mode and API, not one per verdict.
    rows = [line.split("│") for line in out.splitlines() if line.count("│") == 3]
    costs = {(mode.strip(), api.strip()): int(n) for mode, api, _, n in rows}
    assert costs[("dry-run", "orders")] == 5 and costs[("approval", "orders")] == 11 and costs[("auto", "orders")] == 10
    # Compliant and exempt APIs are decided in the trigger: no execution, no transition.
    assert all(costs[(mode, api)] == 0 for mode in demo.MODES for api in ("payments", "legacy-export"))
    assert all(costs[(mode, "internal-private")] > 0 for mode in demo.MODES), "findings not told yet start one"
    assert {mode for mode, _ in costs} == {"dry-run", "approval", "auto"} and len(costs) == 12


def test_demo_output_is_readable_when_not_a_terminal(capsys) -> None:
    out = _run(capsys, "--modes", "auto")
    lines = out.splitlines()
    assert max(len(line) for line in lines) <= 80, "wrapped to 80 columns"
    assert not [line for line in lines if line != line.rstrip()], "no trailing spaces"
    assert "\x1b[" not in out, "no colour codes in a file"
    # The policy is shown decoded, once, with the removed principals marked (no escaped form anywhere).
    assert '\\"' not in out
    assert re.search(r'^    -\s+"999999999999",?$', out, re.M) and re.search(r'^      \s+"arn:aws:iam::111122223333:root",?$', out, re.M)


def test_demo_shows_progress_from_the_first_line(capsys) -> None:
    lines = _run(capsys, "--modes", "dry-run", "--no-organization").splitlines()
    assert lines[0].startswith("apigw-remediator demo:") and lines[2].startswith("Starting the emulated account")


def test_demo_takes_a_seed_file(capsys, tmp_path) -> None:
    seed = tmp_path / "apis.json"
    seed.write_text(json.dumps([{"name": "mine", "stages": ["live"], "policy": {"Statement": [
        {"Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::999999999999:root"}, "Action": "execute-api:Invoke", "Resource": "*"}]}}]))
    out = _run(capsys, "--seed", str(seed), "--modes", "auto", "--no-organization")
    assert "API mine-auto" in out and "stages:    live now serve deployment" in out


def test_the_example_seed_file_is_the_demos_own() -> None:
    assert json.loads((REPO / "examples" / "demo-apis.json").read_text()) == demo.default_seed()


def test_demo_runs_on_the_committed_templates_without_the_cdk(capsys, monkeypatch: pytest.MonkeyPatch) -> None:
    """What `make demo` does on a machine with only the demo's requirements."""
    monkeypatch.setattr(template, "cdk_installed", lambda: False)
    template.synthesized_template.cache_clear()
    template.spoke_template.cache_clear()
    try:
        out = _run(capsys, "--modes", "auto", "--seed", str(REPO / "examples" / "demo-apis.json"))
    finally:
        template.synthesized_template.cache_clear()
        template.spoke_template.cache_clear()
    assert "as committed in remediator/local/templates" in " ".join(out.split())
    assert "0 denied" in out and "SweepEachAccount" in out
