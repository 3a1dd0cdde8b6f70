"""The Record state: store the change's audit record, built from the execution's typed state."""

from __future__ import annotations

from typing import Any

from remediator.audit import AuditRecord
from remediator.functions.common import aws_call, ledger, read_state, remediator_for
from remediator.functions.needs import Needs
from remediator.logs import get_logger
from remediator.workflow.errors import RemediationFailed
from remediator.workflow.state import Redeployed

log = get_logger("remediator.functions.record")


def needs(mode: str, slack: bool) -> Needs | None:
    # It also clears the API's failure count once a fix went through (DeleteItem).
    return Needs(put_audit=True, failures=("dynamodb:DeleteItem",)) if mode in ("auto", "approval") else None


def handler(event: dict[str, Any], context: Any = None) -> dict[str, Any]:
    """Store the audit record of the change in DynamoDB."""
    state, change, settings = read_state(event, context)
    remediator = remediator_for(change, settings, event.get("execution"), judges=False)
    applied, deployed, evaluation = state.applied, state.redeploy or Redeployed(), state.evaluation
    if applied is None or applied.outcome != "patched":
        raise RemediationFailed("Record reached without a written fix in $.applied")
    findings = applied.findings if applied.findings is not None else (evaluation.findings if evaluation else [])
    audit = aws_call(lambda: remediator.record_change(AuditRecord(
        account=change.account, region=change.region, api_id=change.api_id, api_name=evaluation.name if evaluation else "",
        action="remediate", policy_before=applied.before, policy_after=applied.written, patch_operations=applied.patch_operations,
        stages_redeployed=list(deployed.stages), deployment_id=deployed.deployment_id, triggered_by=remediator.triggered_by,
        findings=findings, change_id=str(event.get("execution") or ""))))
    aws_call(lambda: ledger(settings).clear(change.region, change.api_id))  # the fix went through: the count starts over
    return audit.to_dict()
