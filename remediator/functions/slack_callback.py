"""Slack's interactive payloads, behind a Function URL: the Slack signature is the authentication."""

from __future__ import annotations

import base64
import json
import time
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from remediator.adapters.dynamodb import ApprovalConflict, ApprovalStore
from remediator.adapters.secrets import secret_value
from remediator.adapters.slack import SlackUnavailable
from remediator.adapters.stepfunctions import TaskGone, answer_task
from remediator.approvals import APPROVAL_ID, CallbackRejected, message, read_button_press, verify_request
from remediator.functions import coldstart, common
from remediator.functions.common import Settings
from remediator.functions.needs import Needs
from remediator.logs import bind, get_logger
from remediator.stored import StoredError

log = get_logger("remediator.functions.slack_callback")


def needs(mode: str, slack: bool) -> Needs | None:
    """It verifies the request (signing secret), reads and decides the approval, answers the waiting task, and
    invokes itself asynchronously to update the message (bot token) once Slack has its answer."""
    if mode != "approval":
        return None
    return Needs(approvals=("dynamodb:GetItem", "dynamodb:UpdateItem"), slack_token=True, slack_signing_secret=True,
                 answer_tasks=True, invoke_self=True)


# The asynchronous invocation's event: only the approval's ID. What the message then shows is what the table says,
# so the event carries nothing to trust; a Function URL request always has requestContext, so it never reads as one.
UPDATE_KEY = "update_message"


def is_update(event: Any) -> bool:
    return isinstance(event, dict) and set(event) == {UPDATE_KEY}


def handler(event: dict[str, Any], context: Any = None) -> dict[str, Any]:
    """Function URL for Slack's interactive payloads. The Slack signature is the authentication.

    Order matters: signature and age first (nothing else is read from a forged request), then
    the allow-list, then the approval's state, claimed atomically so a replay finds it decided.
    """
    if is_update(event):
        return update_message(event[UPDATE_KEY])
    now = int(time.time())
    bind(request="slack-callback")
    try:
        settings = Settings.from_environment()
        headers = {str(k): str(v) for k, v in (event.get("headers") or {}).items()}
        body = request_body(event)
        method = ((event.get("requestContext") or {}).get("http") or {}).get("method", "POST")
        if method != "POST":
            raise CallbackRejected(405, f"method {method} not allowed")
        verify_request(headers, body, secret_value(common.clients(), settings.slack_signing_secret), now)
        press = read_button_press(body, settings.approvers)
        bind(approval_id=press.approval_id, user=press.user_id)
        store = ApprovalStore(common.clients(), settings.audit_table)
        pending = store.get(press.approval_id)
        if pending is None:
            raise CallbackRejected(404, "unknown approval ID")
        if pending.status != "pending":
            raise CallbackRejected(409, f"approval already {pending.status}")
        if pending.expires_at <= now:
            raise CallbackRejected(410, "approval expired")
        decision = "approved" if press.action == "approve" else "rejected"
        try:
            request = store.decide(press.approval_id, decision, press.user_id, now)
        except ApprovalConflict:
            raise CallbackRejected(409, "approval already decided or expired") from None
        output = {"decision": decision, "approval_id": request.approval_id, "approver": press.user_id, "decided_at": now}
        try:
            answer_task(common.clients(), request.task_token, decision == "approved", output)
        except TaskGone as gone:
            raise CallbackRejected(410, f"the workflow no longer waits for this approval ({gone})") from None
        except (ClientError, BotoCoreError) as error:
            if not delivery_unknown(error):
                # Step Functions refused the call (4xx): the workflow did not hear the decision. Undo it, so that
                # a second click is not refused as a replay.
                reopened = store.reopen(pending, decision)
                log.error("task_not_answered", error=str(error), reopened=reopened)
                raise CallbackRejected(503, "the workflow could not be told; nothing was decided, try again") from None
            confirm_delivery(request.task_token, decision == "approved", output, error)
    except CallbackRejected as rejected:
        log.warning("callback_rejected", status=rejected.status, reason=rejected.reason)
        return {"statusCode": rejected.status, "headers": {"Content-Type": "text/plain"}, "body": rejected.reason}
    log.info("callback_accepted", decision=decision)
    # Slack wants the HTTP 200 within 3 seconds ("Handling user interaction in your Slack apps": acknowledge first, then
    # respond); in Lambda the response leaves when the handler returns, so the message is updated by an asynchronous
    # invocation of this function (InvocationType Event: Lambda queues it and answers 202 at once), not here.
    if request.channel and request.ts:
        request_update(context, request.approval_id)
    return {"statusCode": 200, "headers": {"Content-Type": "text/plain"}, "body": f"{decision} by <@{press.user_id}>"}


def request_update(context: Any, approval_id: str) -> None:
    """Queue the message's update (an asynchronous self-invocation); a refusal is logged: the workflow's Notify
    updates the message again when the decision has run its course."""
    arn = getattr(context, "invoked_function_arn", "") or ""
    if not arn:
        log.warning("slack_not_updated", error="no function ARN to invoke")
        return
    try:
        common.clients().client("lambda").invoke(FunctionName=arn, InvocationType="Event",
                                                 Payload=json.dumps({UPDATE_KEY: approval_id}).encode())
    except (ClientError, BotoCoreError) as error:
        log.warning("slack_update_not_queued", error=str(error))


def update_message(approval_id: Any) -> dict[str, Any]:
    """The asynchronous half: the message as the table has the approval now (decided, or further along if the
    workflow's Notify got there first), without buttons."""
    bind(request="slack-message-update")
    if not isinstance(approval_id, str) or not APPROVAL_ID.fullmatch(approval_id):
        log.warning("slack_not_updated", error="malformed approval ID")
        return {"updated": False}
    settings = Settings.from_environment()
    try:
        request = ApprovalStore(common.clients(), settings.audit_table).get(approval_id)
        if request is None or request.status == "pending" or not (request.channel and request.ts):
            log.warning("slack_not_updated", error="no decided approval with a message")
            return {"updated": False}
        text, blocks = message(request, request.status, buttons=False)
        settings.slack().update(request.channel, request.ts, text, blocks)
    except (SlackUnavailable, LookupError, StoredError, ClientError, BotoCoreError) as error:
        log.warning("slack_not_updated", error=str(error))
        return {"updated": False}
    return {"updated": True, "status": request.status}


def delivery_unknown(error: Exception) -> bool:
    """An error after which the decision may have reached the workflow: no answer (a timeout, a dropped
    connection) or a server error (5xx). A 4xx means Step Functions refused the call."""
    if isinstance(error, ClientError):
        return int(error.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 500) >= 500
    return True


def confirm_delivery(task_token: str, approved: bool, output: dict[str, Any], first: Exception) -> None:
    """The answer to SendTask* was lost: send the same decision with the same token once more. Accepted, it
    is delivered now; refused as gone, the first call delivered it (a task answered once is gone). Either
    way the decision recorded is the one delivered, and it is never reopened for someone to decide otherwise."""
    try:
        answer_task(common.clients(), task_token, approved, output)
    except TaskGone:
        log.warning("task_answered_before", first_error=str(first))
    except (ClientError, BotoCoreError) as error:
        log.error("task_delivery_unknown", first_error=str(first), error=str(error))
        raise CallbackRejected(502, "the decision may or may not have reached the workflow; it stays recorded as made "
                                    "and the message will show what happened") from None


def request_body(event: dict[str, Any]) -> str:
    """The raw body exactly as Slack signed it; a body that is not UTF-8 text is refused, not crashed on."""
    raw = event.get("body") or ""
    if not isinstance(raw, str):
        raise CallbackRejected(400, "request body is not text")
    if not event.get("isBase64Encoded"):
        return raw
    try:
        return base64.b64decode(raw, validate=True).decode("utf-8")
    except (ValueError, UnicodeDecodeError):
        raise CallbackRejected(400, "request body is not base64-encoded UTF-8 text") from None


coldstart.loaded()  # last: this function's modules are loaded (remediator/functions/coldstart.py)
