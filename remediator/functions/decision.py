"""What Evaluate and the trigger share, so that an API's outcome is decided alike wherever it is decided: the trigger
decides before it starts an execution (docs/concepts/workflow.md, "Decided before starting"); the verdict itself is
ApiReport.verdict's, the one ladder.

Not a Lambda function of its own (like `common` and `security_hub`): a helper of evaluate, trigger and notify.
"""

from __future__ import annotations

import json
from typing import Any

from remediator.adapters.apigateway import ApiNotFound, RestApi
from remediator.events import ApiChange
from remediator.functions import security_hub
from remediator.functions.common import Settings, aws_call
from remediator.transaction.planning import ApiReport, Verdict, describe_undeployed, findings_fingerprint
from remediator.transaction.remediator import Remediator
from remediator.workflow.state import Evaluation

# What needs nobody: Evaluate's execution ends there (IsActionNeeded's Default), and the trigger starts none for it.
SETTLED = (Verdict.COMPLIANT, Verdict.EXEMPT)


def read_api(remediator: Remediator, change: ApiChange) -> RestApi | None:
    """The API as it is now (never the event's copy of it); None once it is deleted."""
    try:
        return aws_call(lambda: remediator.adapter.get_rest_api(change.region, change.api_id))  # type: ignore[no-any-return]
    except ApiNotFound:
        return None


def told_once(verdict: Verdict, mode: str) -> str | None:
    """The notice kind told once per set of findings (remediator.functions.notify.TOLD_ONCE) this verdict leads to:
    findings for review (a fix blocked by undeployed edits among them), or a dry run's proposal; None for any other
    outcome."""
    if verdict in (Verdict.REPORT_ONLY, Verdict.BLOCKED):
        return "findings"
    if verdict is Verdict.FIX and mode == "dry-run":
        return "proposal"
    return None


def evaluation(report: ApiReport, verdict: Verdict | str, mode: str, settings: Settings, failures: int = 0,
               lost: dict[str, Any] | None = None) -> Evaluation:
    """$.evaluation as Evaluate hands it on (and as the trigger works out what the notice would say)."""
    return Evaluation.from_dict({"verdict": Verdict(verdict).value, "mode": mode, "policy": report.api.policy, "failures": failures,
                                 "approval_timeout_seconds": settings.approval_timeout_seconds, **report.to_dict(),
                                 **({"lost_update": lost} if lost else {})})


def notice_fingerprint(evaluation: Evaluation) -> str:
    """What people are told about an evaluation, as one digest: the same one is not told twice (NoticeLedger). The one
    formula for Notify, which remembers it, and the trigger, which compares with it before it starts an execution."""
    # A lost update is news of its own: each one (who, when, what they wrote, which change wrote over it) is told, even
    # two in one second with the same findings (found by the seeded soak: the second was taken for the first, not told).
    lost = evaluation.lost_update
    reason = evaluation.error or (f"lost update {json.dumps(lost, sort_keys=True, default=str)}" if lost else None)
    if evaluation.verdict == Verdict.BLOCKED.value:  # other edits in the way of the fix are other news
        reason = f"{reason or ''} blocked by {describe_undeployed(evaluation.undeployed_changes)}"
    return findings_fingerprint(evaluation.findings, reason, evaluation.policy, evaluation.access or None)


def settled_finding(settings: Settings, change: ApiChange, report: ApiReport) -> None:
    """Security Hub's finding of a compliant (PASSED) or exempt API, where Security Hub is on."""
    found = report.evaluation
    security_hub.send(settings, change.region, [security_hub.finding(
        change.account, change.region, change.api_id, report.api.name, [f.to_dict() for f in found.findings] if found else [],
        compliant=found is not None and found.compliant, exempt=report.exempt)])


def gone_finding(settings: Settings, change: ApiChange) -> None:
    """A deleted API grants nothing: its finding is archived."""
    security_hub.send(settings, change.region, [security_hub.finding(
        change.account, change.region, change.api_id, "", [], compliant=True, archived=True)])


def evaluated_fields(verdict: str, failures: int, report: ApiReport | None) -> dict[str, Any]:
    """The fields of the `evaluated` log line, the same wherever the decision is made."""
    found = report.evaluation if report is not None else None
    return {"verdict": verdict, "failures": failures, "findings": len(found.findings) if found else None}
