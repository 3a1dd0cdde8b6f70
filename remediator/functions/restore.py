"""The RestorePolicy state: after a failed Apply or Redeploy, undo a fix no stage serves yet (stages never move back)."""

from __future__ import annotations

from typing import Any

from remediator.functions import coldstart
from remediator.adapters.apigateway import ApiNotFound
from remediator.functions.common import aws_call, read_state, remediator_for
from remediator.functions.needs import DEPLOYMENT, STAGES, WRITE_POLICY, Needs
from remediator.guard import UndoOf, policy_digest
from remediator.journal import Intent
from remediator.workflow.state import WorkflowState
from remediator.logs import get_logger

log = get_logger("remediator.functions.restore")


def needs(mode: str, slack: bool) -> Needs | None:
    if mode not in ("auto", "approval"):
        return None
    return Needs(apigateway=(*WRITE_POLICY, ("GET", STAGES), ("GET", DEPLOYMENT)), put_audit=True,
                 journal=("dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:DeleteItem"))


def handler(event: dict[str, Any], context: Any = None) -> dict[str, Any]:
    """Never half-deployed: a fix no stage serves yet is undone (the policy back to `before`, only on this
    execution's own undo authority, else only what the guard proves is not wider); one some stage serves
    already stays open and the next run deploys it everywhere. Stages are never moved back."""
    state, change, settings = read_state(event, context)
    remediator = remediator_for(change, settings, event.get("execution"), judges=False, writes_api=True)
    applied = state.applied
    transaction: UndoOf | None = None
    if applied is not None and applied.intent is not None:
        intent: Intent | None = aws_call(lambda: Intent.from_dict(applied.intent, "the workflow state's $.applied.intent"))
        if applied.wrote and intent is not None:  # this execution read `before` and wrote `written` itself
            transaction = UndoOf(intent.intent_id, policy_digest(applied.written), policy_digest(applied.before))
    else:  # Apply failed: if it wrote an intent before failing, it is the API's open one, held by this execution
        left = aws_call(lambda: remediator.journal.open_intent(change.account, change.region, change.api_id))
        intent = left if left is not None and left.holder == remediator.holder else None
        transaction = _planned_by_evaluate(state, intent)
    if intent is None:
        log.info("restore", result="nothing was written")
        return {"result": "nothing was written"}
    error = state.get("error") or {}
    reason = f"{error.get('Error', 'error')}: {error.get('Cause', '')}".strip() if isinstance(error, dict) else str(error)
    try:
        result = aws_call(lambda: remediator.undo(intent, reason[:500], transaction))
    except ApiNotFound:
        result = "not restored: the API was deleted"
    log.warning("restore", result=result)
    return {"result": result}


def _planned_by_evaluate(state: WorkflowState, intent: Intent | None) -> UndoOf | None:
    """When Apply failed before saying what it wrote, this execution's own Evaluate still says what it read
    live and which fix it planned ($.evaluation, written by the workflow, never by the input): an undo may
    restore that pre-image over that fix, and nothing else."""
    evaluation = state.evaluation
    if intent is None or evaluation is None or evaluation.policy is None or len(evaluation.patch_operations) != 1:
        return None
    planned = evaluation.patch_operations[0].get("value")
    return UndoOf(intent.intent_id, policy_digest(planned), policy_digest(evaluation.policy)) if isinstance(planned, str) else None


coldstart.loaded()  # last: this function's modules are loaded (remediator/functions/coldstart.py)
