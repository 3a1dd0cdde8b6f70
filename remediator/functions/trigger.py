"""The EventBridge rule's target: decide what a CloudTrail event needs, and start an execution only for that."""

from __future__ import annotations

from typing import Any

import msgspec

from remediator.adapters.dynamodb import NoticeLedger
from remediator.adapters.stepfunctions import start_execution
from remediator.events import ApiChange, EventError, Ignored, parse_event, parse_member_event
from remediator.functions import coldstart, common, decision, security_hub
from remediator.functions.common import Settings, aws_call, own_account, remediator_for
from remediator.functions.needs import DEPLOYMENT, RESOURCES, RESTAPI, STAGES, Needs
from remediator.logs import bind, get_logger
from remediator.transaction.planning import Verdict, assess, same_policy, with_access, with_undeployed

log = get_logger("remediator.functions.trigger")


def needs(mode: str, slack: bool) -> Needs | None:
    # Before it starts an execution it reads the API as Evaluate does (GetRestApi; for findings told once, GetResources:
    # who can call is part of what was told) and judges it (the trusted lists), read only. What else it must know is
    # a GetItem each: what people were told (the notice), and, where the bot writes, a change of ours left open.
    # A compliant or exempt API's Security Hub finding is PASSED (remediator.functions.security_hub), as Evaluate's.
    # In auto mode, for a fix people were told about, what its redeploy would publish besides it (GetStages;
    # GetDeployment, embed=apisummary): a fix blocked by others' undeployed edits is told once (`_blocked_is_decided_here`).
    writes = mode in ("auto", "approval")
    undeployed = (("GET", STAGES), ("GET", DEPLOYMENT)) if mode == "auto" else ()
    return Needs(start_execution=True, apigateway=(("GET", RESTAPI), ("GET", RESOURCES)) + undeployed, read_trust=True,
                 notices=("dynamodb:GetItem",), journal=("dynamodb:GetItem",) if writes else (), import_findings=True)


def organization_needs(found: Needs, mode: str) -> Needs:
    # Only an active account of the organization (the roster) gets an execution.
    return msgspec.structs.replace(found, roster=("dynamodb:GetItem",))


def handler(event: dict[str, Any], context: Any = None) -> dict[str, Any]:
    """EventBridge rule target: one execution per CloudTrail event that needs one, named after its event ID.

    The owner is this function's own account, never the event's: an event naming another account is
    refused. In an organization's hub it is the member account EventBridge says sent the event, which must be
    an active account of the organization (docs/organization.md). The remediator's own writes are ignored here
    too (the rule already filters them out). An API that needs nothing (`decide`) starts no execution.
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
    bind(event_id=change.event_id, api_id=change.api_id, region=change.region)
    settled = decide(change, settings)
    if settled is not None:
        return {"status": "not-started", "verdict": settled}
    bind(event_id=change.event_id, api_id=change.api_id, region=change.region, execution=change.execution_name)
    status = start_execution(common.clients(), settings.state_machine_arn, change.execution_name, {"change": change.to_dict(), "source": "event"})
    log.info("execution_" + status, event_name=change.event_name)
    return {"status": status, "execution_name": change.execution_name}


def decide(change: ApiChange, settings: Settings) -> str | None:
    """The verdict of an API that needs no execution (what Evaluate would have found and done, done here), or None
    when an execution must start: for a fix, an approval, a proposal or findings people were not told yet, a change
    of ours left open, a person's write the bot's own may have landed on, a deleted API people were told about. Never
    a reason to miss a change: whatever cannot be decided here (an error, throttling, an unreadable policy) starts
    the execution, as every event did before."""
    try:
        return _settled(change, settings)
    except Exception as error:  # noqa: BLE001 - anything undecided goes to the workflow, which retries and reports
        log.warning("undecided", error=f"{type(error).__name__}: {str(error)[:300]}")
        return None


def _settled(change: ApiChange, settings: Settings) -> str | None:
    remediator = remediator_for(change, settings, None)
    notices = NoticeLedger(common.clients(), settings.audit_table)
    place = settings.notice_place(change.account, change.region)
    api = decision.read_api(remediator, change)
    if api is None:
        if aws_call(lambda: notices.fingerprint(place, change.api_id)) is not None:
            return _start("gone, and people were told about its findings")
        decision.gone_finding(settings, change)
        return _done(Verdict.GONE.value, None)
    report = assess(api, remediator.settings)
    if report.error:
        return _start("its policy cannot be read")
    if settings.mode != "dry-run":
        if aws_call(lambda: remediator.journal.open_intent(change.account, change.region, change.api_id)) is not None:
            return _start("a change of ours is open on it")
        if change.written_policy is not None and not same_policy(api.policy, change.written_policy or None):
            return _start("the policy is not the one the event wrote: a write of ours may have landed on it")
    verdict = report.verdict()
    told: list[str | None] = []  # what people were told (the notice's fingerprint), read once when needed

    def told_before() -> str | None:
        if not told:
            told.append(aws_call(lambda: notices.fingerprint(place, change.api_id)))
        return told[0]

    if verdict is Verdict.FIX and _blocked_is_decided_here(settings):
        if told_before() is None:
            return _start("fix")  # fixed, or blocked and not told yet: the execution decides and tells
        report = aws_call(lambda: with_undeployed(remediator.adapter, report, remediator.settings))
        verdict = report.verdict(undeployed=settings.undeployed_changes, asks=settings.mode == "approval")
    kind = decision.told_once(verdict, settings.mode)
    if kind is not None:
        report = aws_call(lambda: with_access(remediator.adapter, report, remediator.settings.trust))
        evaluation = decision.evaluation(report, verdict, settings.mode, settings)
        if told_before() != decision.notice_fingerprint(evaluation):
            return _start(f"{kind}: not told yet")
        security_hub.send(settings, change.region, [security_hub.finding(
            change.account, change.region, change.api_id, api.name, evaluation.findings, evaluation.compliant,
            evaluation.exempt, security_hub.NOTES[kind])])
        return _done(verdict.value, report, told_already=True)
    if verdict not in decision.SETTLED:
        return _start(f"{verdict.value}")
    if told_before() is not None:
        return _start("resolved: what people were told is forgotten")
    decision.settled_finding(settings, change, report)
    return _done(verdict.value, report)


def _blocked_is_decided_here(settings: Settings) -> bool:
    """Whether a fix may come out blocked (its redeploy would publish others' undeployed edits, which the
    undeployed_changes setting does not let it publish) and the trigger tells that apart: in auto mode unless the
    setting is publish. A blocked fix is told once, like findings. The trigger does not read the fix's failure count:
    a fix held after failing (Evaluate's "held") tells nobody either. In approval mode (blocked only under report)
    the execution decides, and Notify tells nobody twice."""
    return settings.mode == "auto" and settings.undeployed_changes != "publish"


def _start(reason: str) -> None:
    log.info("needs_execution", reason=reason)


def _done(verdict: str, report: Any, **extra: Any) -> str:
    """Logged as the Evaluate state logs it, with no execution started."""
    log.info("evaluated", **decision.evaluated_fields(verdict, 0, report), execution_started=False, **extra)
    return verdict


coldstart.loaded()  # last: this function's modules are loaded (remediator/functions/coldstart.py)
