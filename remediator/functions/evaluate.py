"""The Evaluate state: read the API's policy as it is now and decide what happens to it."""

from __future__ import annotations

import hashlib
from typing import Any

from remediator import clock
from remediator.adapters.apigateway import ApiNotFound
from remediator.adapters.dynamodb import DynamoJournal, FailureLedger, NoticeLedger
from remediator.audit import AuditRecord
from remediator.core.trust import Remediation
from remediator.events import ApiChange
from remediator.functions import coldstart, common, decision
from remediator.functions.common import Settings, aws_call, ledger, read_state, remediator_for
from remediator.functions.needs import DEPLOYMENT, RESOURCES, RESTAPI, STAGES, Needs
from remediator.logs import get_logger
from remediator.core.undeployed import SummaryError
from remediator.guard import policy_digest
from remediator.transaction.planning import Verdict, assess, same_policy, with_access, with_undeployed
from remediator.transaction.remediator import Remediator
from remediator.workflow.errors import RemediationFailed
from remediator.workflow.state import Evaluation

log = get_logger("remediator.functions.evaluate")


def needs(mode: str, slack: bool) -> Needs | None:
    # Before proposing a fix it would apply, how often that fix already failed (GetItem on the counts), and
    # whether a change of ours was left half-done on the API (GetItem on its open intent).
    # An API that needs nobody any more (compliant, exempt, deleted) has what people were told forgotten
    # (DeleteItem on its notice), so that findings coming back are told again.
    # Where the bot writes, a person's write that one of its changes landed on is recorded (PutItem of a record).
    writes = mode in ("auto", "approval")
    # Security Hub: a compliant or exempt API's finding is PASSED, a deleted API's ARCHIVED (remediator.functions.security_hub).
    # For an API with findings, its methods (GetResources): who can actually call, and the grade. Where the bot writes,
    # for an API it would fix, what each planned stage serves (GetStages; GetDeployment, embed=apisummary): the
    # undeployed edits its redeploy would publish (remediator.core.undeployed).
    reads = (("GET", RESTAPI), ("GET", RESOURCES)) + ((("GET", STAGES), ("GET", DEPLOYMENT)) if writes else ())
    return Needs(apigateway=reads, read_trust=True, failures=("dynamodb:GetItem",) if writes else (),
                 journal=("dynamodb:GetItem",) if writes else (), notices=("dynamodb:DeleteItem",), put_audit=writes,
                 import_findings=True)


def handler(event: dict[str, Any], context: Any = None) -> dict[str, Any]:
    """Read the API's policy as it is now (never the event's copy) and decide what to do."""
    state, change, settings = read_state(event, context)
    if state.applied is not None and (state.applied.outcome != "stale" or state.applied.wrote):
        # Only a stale approval loops back here; an input that arrives carrying a change's state was not made by
        # this workflow, and RestorePolicy would take it for this execution's own undo authority.
        raise RemediationFailed("the execution's input carries the state of a change ($.applied); refused, nothing changed")
    remediator = remediator_for(change, settings, event.get("execution"))
    api = decision.read_api(remediator, change)
    if api is None:
        log.info("api_gone")
        decision.gone_finding(settings, change)
        _resolved(change, settings)
        return Evaluation(Verdict.GONE.value, settings.mode).to_dict()
    report = aws_call(lambda: with_access(remediator.adapter, assess(api, remediator.settings), remediator.settings.trust))
    failures, left_open = 0, False
    if settings.mode != "dry-run":
        # A change of ours left half-done (its holder gone) is settled first, whatever the policy says now.
        left = aws_call(lambda: remediator.journal.open_intent(change.account, change.region, change.api_id))
        left_open = left is not None and not remediator.journal.held_by_other(left, remediator.holder, remediator.journal.now())
    if report.verdict() is Verdict.FIX and settings.mode != "dry-run" and not left_open:
        # A fix that failed LIMIT times on this very policy waits for a person (or a policy change).
        failures = aws_call(lambda: ledger(settings).count(change.region, change.api_id, policy_digest(api.policy)))
    if report.verdict(failures, FailureLedger.LIMIT, left_open) is Verdict.FIX and settings.mode != "dry-run":
        # What the redeploy would publish besides the fix; the undeployed_changes setting decides (ApiReport.verdict).
        try:
            report = aws_call(lambda: with_undeployed(remediator.adapter, report, remediator.settings))
        except ApiNotFound:
            raise RemediationFailed(f"{change.region}/{change.api_id}: API was deleted while it was read") from None
        except SummaryError as error:
            raise RemediationFailed(f"what a redeploy would publish cannot be told: {error}; nothing changed") from None
    verdict = report.verdict(failures, FailureLedger.LIMIT, left_open, undeployed=settings.undeployed_changes,
                             asks=settings.mode == "approval").value
    lost = _written_over(change, api.policy, remediator) if settings.mode != "dry-run" else None
    if lost is not None and verdict in (Verdict.COMPLIANT.value, Verdict.EXEMPT.value):
        verdict = Verdict.REPORT_ONLY.value  # nothing to fix, but a person must hear that their change was lost
    if verdict in (Verdict.COMPLIANT.value, Verdict.EXEMPT.value):
        decision.settled_finding(settings, change, report)
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
    log.info("evaluated", **decision.evaluated_fields(verdict, failures, report))
    return decision.evaluation(report, verdict, mode, settings, failures, lost).to_dict()


def _written_over(change: ApiChange, live: str | None, remediator: Remediator) -> dict[str, Any] | None:
    """A person's UpdateRestApi that landed between the bot's last read of the policy and its write, so that the
    bot's write replaced it (API Gateway has no conditional update; the guard narrows the window to the moment
    between its re-read and its write, and this finds what fell into it once CloudTrail delivers the call).
    Recorded once (a record of its own, keyed by the event) and told to a person: who, when, and their policy."""
    journal = remediator.journal
    if change.written_policy is None or change.event_time is None or not isinstance(journal, DynamoJournal):
        return None
    if same_policy(live, change.written_policy or None):
        return None  # theirs is what is there
    windows = aws_call(lambda: journal.recent_writes(change.account, change.region, change.api_id))
    if not windows or any(policy_digest(change.written_policy) == w.before_digest for w in windows):
        return None  # the bot never wrote here, or it read their policy and planned from it
    # The change whose window (its read to its close) their write fell into; later changes may have closed since. The
    # earliest such window: the first write of the bot's after theirs replaced it (times are whole seconds).
    # A window closed as taken over before its write (`late`) counts only where the live policy is what that change
    # wrote: its write landed after their event, whenever it closed.
    live_digest = policy_digest(live)
    last = next((w for w in reversed(windows) if w.read_at <= change.event_time
                 and (w.after_digest == live_digest if w.late else change.event_time <= w.closed_at)), None)
    if last is None:
        return None  # before the bot read the policy (it would have read theirs) or outside its changes
    lost = {"who": change.caller.describe(), "when": change.event_time, "policy": change.written_policy,
            "written_over_by": last.intent_id}
    record = AuditRecord(
        account=change.account, region=change.region, api_id=change.api_id, api_name="", action="remediate",
        policy_before=change.written_policy, policy_after=live or "", patch_operations=[], stages_redeployed=[],
        deployment_id=None, triggered_by=f"{change.event_name} {change.event_id} by {lost['who']} at {lost['when']}",
        change_id=hashlib.md5(f"lost-update#{change.event_id}".encode(), usedforsecurity=False).hexdigest(),
        outcome="lost-update")
    aws_call(lambda: journal.note(record))
    log.warning("person_write_lost", who=lost["who"], when=lost["when"], written_over_by=last.intent_id)
    return lost


def _resolved(change: ApiChange, settings: Settings) -> None:
    """Findings people were told about are resolved: if they come back, they are news again."""
    place = settings.notice_place(change.account, change.region)
    aws_call(lambda: NoticeLedger(common.clients(), settings.audit_table).forget(place, change.api_id))


coldstart.loaded()  # last: this function's modules are loaded (remediator/functions/coldstart.py)
