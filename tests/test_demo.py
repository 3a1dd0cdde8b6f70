"""`make demo` is the README's main job: it must keep working, in every mode."""

from __future__ import annotations

import json
import os

from remediator import demo


def test_demo_runs_every_mode_and_reports_what_it_did(capsys, tmp_path, monkeypatch) -> None:
    saved = dict(os.environ)
    try:
        assert demo.main([]) == 0
    finally:
        os.environ.clear()
        os.environ.update(saved)
    out = capsys.readouterr().out
    for expected in ("mode: dry-run", "mode: approval", "mode: auto", "published: proposal",
                     "Slack message posted for approval", "[ Approve ]  [ Reject ]", "forged click (wrong signature): HTTP 401",
                     "signed click on Approve by U0APPROVER: HTTP 200", "approval:  approved by U0APPROVER",
                     "stages:    prod, dev now serve deployment", "audit:     {", "follow-up: CloudTrail recorded the fix's own writes (UpdateRestApi, CreateDeployment, UpdateStage); the rule matched 0 of them",
                         "AWS calls of the functions checked against the IAM policies of the synthesized template, 0 denied",
                     "duplicate: the same CreateRestApi event delivered again: duplicate", "Scheduled sweep",
                     "compliant    3 state transitions", "fix          10 state transitions"):
        assert expected in out, expected
    (swept,) = [line for line in out.splitlines() if line.startswith("  changed-while-events-were-lost (")]
    assert swept.endswith("SUCCEEDED, Evaluate > IsActionNeeded > ChooseMode > Apply > WasPatched > Redeploy > IsDeployed > Record > Notify > Done")


def test_demo_takes_a_seed_file(capsys, tmp_path) -> None:
    seed = tmp_path / "apis.json"
    seed.write_text(json.dumps([{"name": "mine", "stages": ["live"], "policy": {"Statement": [
        {"Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::999999999999:root"}, "Action": "execute-api:Invoke", "Resource": "*"}]}}]))
    saved = dict(os.environ)
    try:
        assert demo.main(["--seed", str(seed), "--modes", "auto"]) == 0
    finally:
        os.environ.clear()
        os.environ.update(saved)
    out = capsys.readouterr().out
    assert "API mine-auto" in out and "stages:    live now serve deployment" in out
