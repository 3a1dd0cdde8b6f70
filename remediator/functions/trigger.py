"""The EventBridge rule's target: one execution per CloudTrail event."""

from __future__ import annotations

from typing import Any

from remediator.adapters.stepfunctions import start_execution
from remediator.events import EventError, Ignored, parse_event
from remediator.functions import common
from remediator.functions.common import Settings, own_account
from remediator.functions.needs import Needs
from remediator.logs import bind, get_logger

log = get_logger("remediator.functions.trigger")


def needs(mode: str, slack: bool) -> Needs | None:
    return Needs(start_execution=True)


def handler(event: dict[str, Any], context: Any = None) -> dict[str, Any]:
    """EventBridge rule target: one execution per CloudTrail event, named after its event ID.

    The owner is this function's own account, never the event's: an event naming another account is
    refused. The remediator's own writes are ignored here too (the rule already filters them out).
    """
    settings = Settings.from_environment()
    try:
        change = parse_event(event, owner_account=own_account(context), own_roles=settings.own_roles)
    except EventError as error:
        bind(event_id=event.get("id") if isinstance(event, dict) else None)
        log.error("event_rejected", error=str(error))
        return {"status": "rejected", "error": str(error)}
    if isinstance(change, Ignored):
        bind(event_id=change.event_id)
        log.info("event_ignored", reason=change.reason)
        return {"status": "ignored", "reason": change.reason}
    bind(event_id=change.event_id, execution=change.execution_name, api_id=change.api_id)
    status = start_execution(common.clients(), settings.state_machine_arn, change.execution_name, {"change": change.to_dict(), "source": "event"})
    log.info("execution_" + status, event_name=change.event_name)
    return {"status": status, "execution_name": change.execution_name}
