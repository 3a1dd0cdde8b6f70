"""The RestorePolicy state: after a failed Apply or Redeploy, put every stage and the policy back."""

from __future__ import annotations

from typing import Any

from remediator.adapters.apigateway import ApiNotFound
from remediator.functions.common import aws_call, read_state, remediator_for
from remediator.functions.needs import STAGES, WRITE_POLICY, Needs
from remediator.journal import Intent
from remediator.logs import get_logger

log = get_logger("remediator.functions.restore")


def needs(mode: str, slack: bool) -> Needs | None:
    if mode not in ("auto", "approval"):
        return None
    return Needs(apigateway=(*WRITE_POLICY, ("GET", STAGES), ("PATCH", STAGES)), put_audit=True,
                 journal=("dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:DeleteItem"))


def handler(event: dict[str, Any], context: Any = None) -> dict[str, Any]:
    """Never half-deployed: each planned stage back on the deployment it served, the policy back to
    `before`, both taken from the intent; the intent closes as restored, with its one record."""
    state, change, settings = read_state(event, context)
    remediator = remediator_for(change, settings, event.get("execution"), judges=False)
    applied = state.applied
    if applied is not None and applied.intent is not None:
        intent: Intent | None = Intent.from_dict(applied.intent)
    else:  # Apply failed: if it wrote an intent before failing, it is the API's open one, held by this execution
        left = aws_call(lambda: remediator.journal.open_intent(change.account, change.region, change.api_id))
        intent = left if left is not None and left.holder == remediator.holder else None
    if intent is None:
        log.info("restore", result="nothing was written")
        return {"result": "nothing was written"}
    error = state.get("error") or {}
    reason = f"{error.get('Error', 'error')}: {error.get('Cause', '')}".strip() if isinstance(error, dict) else str(error)
    try:
        result = aws_call(lambda: remediator.undo(intent, reason[:500]))
    except ApiNotFound:
        result = "not restored: the API was deleted"
    log.warning("restore", result=result)
    return {"result": result}
