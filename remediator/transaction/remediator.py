"""The remediation service the CLI (scan, fix, rollback) and the workflow's Lambdas share: `Remediator`, a
thin facade composing the steps of a change, and the CLI's fix of one API from start to end.

Every write re-reads the API first and re-plans from what is there now, so a policy
changed since it was assessed is never overwritten with a stale fix.
"""

from __future__ import annotations

from remediator.adapters.apigateway import ApiGatewayAdapter, ApiNotFound
from remediator.audit import JsonLinesAuditLog
from remediator.journal import FileLease, IntentConflict, JsonLinesJournal
from remediator.core.undeployed import SummaryError
from remediator.transaction.deploying import Deploying
from remediator.transaction.outcomes import FixOutcome, gone
from remediator.transaction.planning import (ApiReport, SweepSettings, Verdict, blocked_detail, describe_undeployed,
                                             with_undeployed)
from remediator.transaction.recovery import Recovery
from remediator.transaction.rollback import Rollback
from remediator.transaction.writing import Writing


class Remediator(Writing, Deploying, Recovery, Rollback):
    """Every change as a transaction, for the CLI and the workflow alike:

    1. `begin`: reconcile an intent this API was left with, re-read and re-plan, write the intent
       (`pending`, with the stages and the deployment each serves now), then patch the policy;
    2. `deploy`: in the account's turn (the lease), one CreateDeployment, the other stages pointed at it;
    3. `complete`: close the intent as `applied` with its one audit record; or `undo`: every stage back
       on the deployment it served and the policy back to `before`, closed as `restored` with its record.

    The open intent is the claim on the API: a second fix of it waits (`busy`) instead of changing it twice.
    Each step lives in a module of its own (remediator.transaction); this class composes them and adds the
    CLI's fix of one API from start to end.
    """

    @classmethod
    def with_audit_log(cls, adapter: ApiGatewayAdapter, settings: SweepSettings, log: JsonLinesAuditLog, account: str,
                       triggered_by: str) -> Remediator:
        """The CLI's: intents and records in one JSON Lines file, runs taking turns through its lock file."""
        journal = JsonLinesJournal(log)
        return cls(adapter, settings, journal, FileLease(journal), account, triggered_by)

    def fix(self, report: ApiReport, apply: bool) -> FixOutcome:
        verdict = report.verdict()
        if verdict is Verdict.EXEMPT:
            return FixOutcome(report, "exempt", "never changed")
        if report.error:  # on the command line an unreadable policy is an error (exit 2), not a finding
            return FixOutcome(report, "failed", report.error)
        if verdict is Verdict.REPORT_ONLY:
            return FixOutcome(report, "report-only", "findings need a person's review; nothing to remove automatically")
        if verdict is Verdict.COMPLIANT:
            return FixOutcome(report, "unchanged", "compliant")
        try:
            report = with_undeployed(self.adapter, report, self.settings)
        except ApiNotFound:
            return gone(report.api.region, report.api.api_id)
        except SummaryError as error:
            return FixOutcome(report, "failed", f"what a redeploy would publish cannot be told: {error}; nothing changed")
        if report.verdict(undeployed=self.settings.undeployed) is Verdict.BLOCKED:
            return FixOutcome(report, "blocked", blocked_detail(report.undeployed, self.settings.undeployed))
        extra = f"; the redeploy also publishes {describe_undeployed(report.undeployed)}" if report.undeployed else ""
        if not apply:
            return FixOutcome(report, "proposed", "dry run: nothing changed" + extra)
        return self.apply(report.api.region, report.api.api_id, expected_policy=report.api.policy)

    def apply(self, region: str, api_id: str, expected_policy: str | None = None) -> FixOutcome:
        """Begin, deploy in the account's turn, and complete, holding the journal's lock throughout."""
        with self._exclusive():
            for _ in range(3):  # a person's write between the plan and the write: planned again from theirs
                patched = self.begin(region, api_id, expected_policy)
                if patched.action != "stale":
                    break
            if patched.action != "patched" or patched.intent is None:
                return patched.outcome()
            try:
                return self.finish(patched)
            except IntentConflict as conflict:
                # Its claim lapsed mid-change (a run paused past it) and an execution took the change over, which finishes
                # it: this run writes nothing more to it, and says so for this API alone (found by the seeded soak: it
                # ended the whole run with a traceback).
                return FixOutcome(patched.report, "busy", f"the change was taken over by another holder, which finishes "
                                                          f"it: {conflict}")
