"""The Evaluate state: read the API's policy as it is now and decide what happens to it."""

from __future__ import annotations

from typing import Any

from remediator import clock
from remediator.adapters.apigateway import ApiNotFound
from remediator.adapters.dynamodb import FailureLedger, NoticeLedger
from remediator.events import ApiChange
from remediator.functions import common
from remediator.functions.common import Settings, aws_call, ledger, read_state, remediator_for
from remediator.core.trust import Remediation
from remediator.functions.needs import RESTAPI, Needs
from remediator.workflow.errors import RemediationFailed
from remediator.logs import get_logger
from remediator.remediation import Verdict, assess, policy_digest
from remediator.workflow.state import Evaluation

log = get_logger("remediator.functions.evaluate")


def needs(mode: str, slack: bool) -> Needs | None:
    # Before proposing a fix it would apply, how often that fix already failed (GetItem on the counts), and
    # whether a change of ours was left half-done on the API (GetItem on its open intent).
    # An API that needs nobody any more (compliant, exempt, deleted) has what people were told forgotten
    # (DeleteItem on its notice), so that findings coming back are told again.
    writes = mode in ("auto", "approval")
    return Needs(apigateway=(("GET", RESTAPI),), read_trust=True, failures=("dynamodb:GetItem",) if writes else (),
                 journal=("dynamodb:GetItem",) if writes else (), notices=("dynamodb:DeleteItem",))


def handler(event: dict[str, Any], context: Any = None) -> dict[str, Any]:
    """Read the API's policy as it is now (never the event's copy) and decide what to do."""
    state, change, settings = read_state(event, context)
    if state.applied is not None and (state.applied.outcome != "stale" or state.applied.wrote):
        # Only a stale approval loops back here; an input that arrives carrying a change's state was not made by
        # this workflow, and RestorePolicy would take it for this execution's own undo authority.
        raise RemediationFailed("the execution's input carries the state of a change ($.applied); refused, nothing changed")
    remediator = remediator_for(change, settings, event.get("execution"))
    try:
        api = aws_call(lambda: remediator.adapter.get_rest_api(change.region, change.api_id))
    except ApiNotFound:
        log.info("api_gone")
        _resolved(change, settings)
        return Evaluation(Verdict.GONE.value, settings.mode).to_dict()
    report = assess(api, remediator.settings)
    failures, left_open = 0, False
    if settings.mode != "dry-run":
        # A change of ours left half-done (its holder gone) is settled first, whatever the policy says now.
        left = aws_call(lambda: remediator.journal.open_intent(change.account, change.region, change.api_id))
        left_open = left is not None and not remediator.journal.held_by_other(left, remediator.holder, clock.now())
    if report.verdict() is Verdict.FIX and settings.mode != "dry-run" and not left_open:
        # A fix that failed LIMIT times on this very policy waits for a person (or a policy change).
        failures = aws_call(lambda: ledger(settings).count(change.region, change.api_id, policy_digest(api.policy)))
    verdict = report.verdict(failures, FailureLedger.LIMIT, left_open).value
    if verdict in (Verdict.COMPLIANT.value, Verdict.EXEMPT.value):
        _resolved(change, settings)
    mode = settings.mode
    if verdict == Verdict.FIX.value and mode == "auto" and settings.organization:
        # An account that left the organization (or its trusted OUs) within the hour is untrusted, but not stripped
        # automatically: this execution proposes the fix; a sweep an hour or more later applies it (docs/organization.md).
        findings = report.evaluation.findings if report.evaluation else []
        removed = [f.account for f in findings if f.remediation is Remediation.REMOVE]
        held = aws_call(settings.roster).held_back(removed, clock.now())
        if held:
            mode = "dry-run"
            log.info("fix_held_back", accounts=held, reason="left the organization or its trusted OUs less than an hour ago")
    log.info("evaluated", verdict=verdict, failures=failures,
             findings=len(report.evaluation.findings) if report.evaluation else None)
    return Evaluation.from_dict({"verdict": verdict, "mode": mode, "policy": api.policy, "failures": failures,
                                 "approval_timeout_seconds": settings.approval_timeout_seconds, **report.to_dict()}).to_dict()


def _resolved(change: ApiChange, settings: Settings) -> None:
    """Findings people were told about are resolved: if they come back, they are news again."""
    place = settings.notice_place(change.account, change.region)
    aws_call(lambda: NoticeLedger(common.clients(), settings.audit_table).forget(place, change.api_id))
