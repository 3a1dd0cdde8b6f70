"""The Apply state: the change begins: its intent is written, then the policy."""

from __future__ import annotations

import math
from typing import Any

from botocore.exceptions import ClientError

from remediator.adapters.dynamodb import ApprovalStore
from remediator.adapters.slack import SlackUnavailable
from remediator.approvals import message
from remediator import stored
from remediator.functions import coldstart, common
from remediator.functions.common import Settings, aws_call, read_state, remediator_for
from remediator.functions.needs import DEPLOYMENT, RESOURCES, STAGES, WRITE_POLICY, Needs
from remediator.logs import get_logger
from remediator.transaction.outcomes import Patched
from remediator.transaction.planning import Verdict
from remediator.workflow import errors
from remediator.workflow.state import Applied

log = get_logger("remediator.functions.apply")


def needs(mode: str, slack: bool) -> Needs | None:
    """It settles a change this API was left with (reading the stages, recording one that was deployed),
    writes the intent, then the policy. In approval mode it also marks a stale approval superseded and
    updates its Slack message."""
    if mode not in ("auto", "approval"):
        return None  # a dry run never writes
    approval = mode == "approval"
    # Before the write, what the redeploy would publish besides the fix: the API's methods (GetResources) against
    # what each planned stage serves (GetDeployment, embed=apisummary; remediator.core.undeployed).
    return Needs(apigateway=(*WRITE_POLICY, ("GET", STAGES), ("GET", DEPLOYMENT), ("GET", RESOURCES)), read_trust=True, put_audit=True,
                 journal=("dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:DeleteItem"),
                 approvals=("dynamodb:GetItem", "dynamodb:UpdateItem") if approval else (), slack_token=approval)


def handler(event: dict[str, Any], context: Any = None) -> dict[str, Any]:
    """Settle what the API was left with, re-read, re-plan if the policy changed since Evaluate, write the
    intent and then the fix; or wait (`busy`) while another change of the API is in flight."""
    state, change, settings = read_state(event, context)
    remediator = remediator_for(change, settings, event.get("execution"), writes=True, writes_api=True)
    evaluation = state.evaluation
    expected = evaluation.policy if evaluation else None
    # In approval mode a person approved this exact patch of this exact policy; anything else is asked again.
    # Settling a change left half-done needs no new approval, but a new plan after it does: none is approved.
    recovering = evaluation is not None and evaluation.verdict == Verdict.RECOVER.value
    approved, shown = None, None
    if settings.mode == "approval":
        approved = [] if recovering or evaluation is None else evaluation.patch_operations
        # The undeployed edits the approval message showed: approving publishes those, and no other.
        try:
            shown = [dict(c) for c in stored.decode(
                evaluation.undeployed_changes if evaluation else [], stored.UndeployedDicts, "$.evaluation.undeployed_changes")]
        except stored.StoredError as error:
            raise errors.RemediationFailed(str(error)) from None
    patched: Patched = aws_call(lambda: remediator.begin(change.region, change.api_id, expected, approved, shown))
    if patched.action == "failed":
        raise errors.from_aws(patched.error_code, patched.detail)
    if patched.action == "refused":  # recorded already; the failure path sends the notice
        raise errors.RemediationFailed(patched.detail)
    # Blocked: undeployed edits appeared since Evaluate; it looks again, and reports the API (verdict blocked).
    if patched.action in ("stale", "blocked") or (approved is not None and patched.action in ("unchanged", "exempt")):
        log.warning("approved_plan_is_stale", outcome=patched.action)
        supersede(settings, event.get("execution") or "")
        return Applied("stale", patched.detail, replanned=True).to_dict()
    log.info("applied", outcome=patched.action, replanned=patched.replanned, recovered=patched.recovered)
    intent = patched.intent
    if intent is None:
        return Applied(patched.action, patched.detail, patched.replanned, wait_seconds=math.ceil(patched.wait_seconds)).to_dict()
    return Applied(patched.action, patched.detail, patched.replanned, intent.policy_before, intent.policy_after,
                   intent.patch_operations, patched.report.to_dict() if patched.report.evaluation else None,
                   intent=intent.to_dict(), wrote=patched.transaction is not None).to_dict()


def supersede(settings: Settings, execution: str) -> None:
    """Say on the approved message that it no longer applies: a new proposal follows."""
    if not settings.slack_enabled:
        return
    store = ApprovalStore(common.clients(), settings.audit_table)
    try:
        request = store.for_execution(execution)
        if request is None:
            return
        request.status = "superseded"
        request.detail = "The policy changed after this proposal; nothing was applied. A new proposal follows."
        store.save(request)
        if request.channel and request.ts:
            settings.slack().update(request.channel, request.ts, *message(request, "superseded", buttons=False))
    except (SlackUnavailable, ClientError, LookupError) as error:
        log.warning("slack_not_told", kind="superseded", error=str(error))


coldstart.loaded()  # last: this function's modules are loaded (remediator/functions/coldstart.py)
