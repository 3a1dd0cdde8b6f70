"""The AwaitApproval task: keep the task token under a random ID and ask in Slack."""

from __future__ import annotations

import time
from typing import Any

from remediator.adapters.dynamodb import ApprovalStore
from remediator.adapters.slack import SlackUnavailable
from remediator.approvals import message
from remediator.functions import coldstart, common
from remediator.functions.common import read_state, request_from_state
from remediator.functions.needs import Needs
from remediator.logs import get_logger
from remediator.workflow.errors import RemediationFailed

log = get_logger("remediator.functions.approval")


def needs(mode: str, slack: bool) -> Needs | None:
    """Reached in approval mode only. It builds no Remediator, so it never reads the trust parameter; one
    TransactWriteItems writes the approval and its execution pointer (IAM authorizes each Put as PutItem)."""
    if mode != "approval":
        return None
    return Needs(approvals=("dynamodb:PutItem", "dynamodb:UpdateItem"), slack_token=True)


def handler(event: dict[str, Any], context: Any = None) -> dict[str, Any]:
    """The AwaitApproval task: store the token under a random ID, post the proposal with buttons.

    The state machine now waits for the callback (or its timeout); if Slack cannot be reached
    this raises, and the execution fails with a notification: nothing is applied.
    """
    state, change, settings = read_state(event, context)
    token = event.get("task_token")
    if not isinstance(token, str) or not token:
        raise RemediationFailed("AwaitApproval was invoked without a task token")
    if not settings.slack_enabled:
        raise RemediationFailed("approval mode needs SLACK_CHANNEL and the Slack bot token secret")
    execution = event.get("execution") or ""
    request = request_from_state(state, change, execution, token, int(time.time()) + settings.approval_timeout_seconds)
    store = ApprovalStore(common.clients(), settings.audit_table)
    store.put(request)
    text, blocks = message(request, "pending", buttons=True)
    try:
        request.channel, request.ts = settings.slack().post(text, blocks)
    except SlackUnavailable as error:
        request.status = "failed"
        store.save(request)
        raise RemediationFailed(str(error)) from None
    store.place(request.approval_id, request.channel, request.ts)
    log.info("approval_requested", approval_id=request.approval_id, channel=request.channel)
    return {"approval_id": request.approval_id}


coldstart.loaded()  # last: this function's modules are loaded (remediator/functions/coldstart.py)
