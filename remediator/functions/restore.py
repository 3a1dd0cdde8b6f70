"""The RestorePolicy state: after a failed redeploy, put the previous policy back."""

from __future__ import annotations

from typing import Any

from remediator.adapters.apigateway import ApiNotFound
from remediator.functions.common import aws_call, read_state, remediator_for
from remediator.functions.needs import WRITE_POLICY, Needs
from remediator.logs import get_logger
from remediator.workflow.errors import RemediationFailed

log = get_logger("remediator.functions.restore")


def needs(mode: str, slack: bool) -> Needs | None:
    return Needs(apigateway=WRITE_POLICY) if mode in ("auto", "approval") else None


def handler(event: dict[str, Any], context: Any = None) -> dict[str, Any]:
    """After a failed redeploy: put the previous policy back so the API is never left half-fixed."""
    state, change, settings = read_state(event, context)
    remediator = remediator_for(change, settings, event.get("execution"), judges=False)
    applied = state.applied
    if applied is None:
        raise RemediationFailed("RestorePolicy reached without $.applied: nothing was written, nothing to restore")
    try:
        result = aws_call(lambda: remediator.restore(change.region, change.api_id, applied.before, applied.written))
    except ApiNotFound:
        result = "not restored: the API was deleted"
    log.warning("restore", result=result)
    return {"result": result}
