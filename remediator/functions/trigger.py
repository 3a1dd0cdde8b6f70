"""The EventBridge rule's target: one execution per CloudTrail event."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from remediator.adapters.stepfunctions import start_execution
from remediator.events import ApiChange, EventError, Ignored, parse_event, parse_member_event
from remediator.functions import common
from remediator.functions.common import Settings, own_account
from remediator.functions.needs import Needs
from remediator.logs import bind, get_logger

log = get_logger("remediator.functions.trigger")


def needs(mode: str, slack: bool) -> Needs | None:
    return Needs(start_execution=True)


def organization_needs(found: Needs, mode: str) -> Needs:
    # Only an active account of the organization (the roster) gets an execution.
    return replace(found, roster=("dynamodb:GetItem",))


def handler(event: dict[str, Any], context: Any = None) -> dict[str, Any]:
    """EventBridge rule target: one execution per CloudTrail event, named after its event ID.

    The owner is this function's own account, never the event's: an event naming another account is
    refused. In an organization's hub it is the member account EventBridge says sent the event, which must be
    an active account of the organization (docs/organization.md). The remediator's own writes are ignored here
    too (the rule already filters them out).
    """
    settings = Settings.from_environment()
    try:
        if settings.organization:
            change = parse_member_event(event, spoke_role_name=settings.spoke_role_name, own_roles=settings.own_roles)
            if isinstance(change, ApiChange) and not settings.roster().is_member(change.account):
                raise EventError(f"account {change.account} is not an active account of organization "
                                 f"{settings.organization_id}; refused")
        else:
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
