"""The write, the first step of a change: reconcile what the API was left with, re-read it, re-plan, write
the intent down, then patch the policy through the one guard (`remediator.guard.guarded_write`). A change is
never made before it is written down, and never one the guard refuses.

Uses `reconcile` and `_close` of the recovery step (`Remediator` composes them).
"""

from __future__ import annotations

import uuid
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError
from msgspec.structs import replace

from remediator.adapters.apigateway import ApiNotFound
from remediator.guard import Authority, LiveChanged, Narrowing, UndoOf, WriteRefused, guarded_write, policy_digest
from remediator.journal import Intent, IntentConflict, PlannedStage
from remediator.core.undeployed import SummaryError, UndeployedChange, unaccepted
from remediator.logs import get_logger
from remediator.transaction.base import TransactionBase
from remediator.transaction.outcomes import Patched, gone_report, intent_report
from remediator.transaction.planning import (ApiReport, Verdict, assess, blocked_detail, describe_undeployed,
                                             rollback_blocked_detail, same_policy, undeployed_for)

log = get_logger(__name__)


def transaction_of(intent: Intent) -> UndoOf:
    """What an undo may restore, from an intent this process (or this execution) wrote itself."""
    return UndoOf(intent.intent_id, policy_digest(intent.policy_after), policy_digest(intent.policy_before))


class Writing(TransactionBase):
    """The write step of a change (`begin`), shared by the CLI and the workflow's Apply."""

    def begin(self, region: str, api_id: str, expected_policy: str | None = None,
              approved_operations: list[dict[str, str]] | None = None,
              approved_undeployed: list[dict[str, Any]] | None = None) -> Patched:
        """Reconcile what this API was left with, re-read, re-plan, write the intent, patch the policy.

        With `approved_operations` (approval mode) nothing is written unless the policy is still the
        one the person saw and the plan still that patch, and the redeploy publishes no undeployed edit
        beyond `approved_undeployed` (those the person was shown): otherwise it comes back as "stale".
        """
        recovered: list[str] = []
        left = self.journal.open_intent(self.account, region, api_id)
        if left is not None:
            if self.journal.held_by_other(left, self.holder, self.journal.now()):
                return Patched(intent_report(left), "busy", f"a change of this API is in progress ({left.holder}); waiting for it",
                               wait_seconds=self.POLL_SECONDS)
            try:
                state, carry_on = self.reconcile(left)
            except IntentConflict:  # its holder came back and renewed, or another holder settled it, just now
                return Patched(intent_report(left), "busy", f"a change of this API is in progress ({left.holder}); waiting for it",
                               wait_seconds=self.POLL_SECONDS)
            recovered.append(f"change {left.intent_id} {state}")
            if carry_on is not None:
                return Patched(intent_report(carry_on), "patched", "finishing the change left half-done", carry_on, recovered=recovered)
        try:
            api = self.adapter.get_rest_api(region, api_id)
        except ApiNotFound:
            return Patched(gone_report(region, api_id), "skipped", f"{region}/{api_id}: API was deleted; skipped", recovered=recovered)
        report = assess(api, self.settings)
        replanned = expected_policy is not None and not same_policy(api.policy, expected_policy)
        if report.exempt:
            return Patched(report, "exempt", "never changed", replanned=replanned)
        if report.error or report.evaluation is None:
            return Patched(report, "failed", report.error or "no evaluation", replanned=replanned)
        if not report.needs_fix:
            return Patched(report, "unchanged", "nothing to remove now", replanned=replanned, recovered=recovered)
        operations = report.evaluation.patch_operations
        if approved_operations is not None and (replanned or operations != approved_operations):
            return Patched(report, "stale", "the policy changed after the proposal; nothing written", replanned=True)
        findings = [f.to_dict() for f in report.evaluation.findings]
        accepted = None
        if approved_operations is not None:
            accepted = [UndeployedChange.from_dict(c) for c in approved_undeployed or []]
        patched = self._write(report, operations, operations[0]["value"], "remediate", None, findings, accepted=accepted)
        patched.replanned, patched.recovered = replanned, recovered
        return patched

    def _write(self, report: ApiReport, operations: list[dict[str, str]], after: str, action: str,
               stage_names: list[str] | None, findings: list[dict[str, Any]], authority: Authority | None = None,
               accepted: list[UndeployedChange] | None = None) -> Patched:
        """Write the intent, then the policy through the one guard: a change is never made before it is
        written down, and never one the guard refuses (then the intent closes as refused, with its record).

        A fix whose redeploy would publish undeployed edits of the API is written only as the undeployed_changes
        setting allows (`ApiReport.verdict`); `accepted`: the edits a person approved (approval mode). A rollback,
        which nobody is asked to approve, publishes them only where the setting is publish."""
        api = report.api
        try:
            current = {s.name: s.deployment_id for s in self.adapter.list_stages(api.region, api.api_id)}
        except ApiNotFound:
            return Patched(gone_report(api.region, api.api_id), "skipped", f"{api.region}/{api.api_id}: API was deleted; skipped")
        if stage_names is None:
            stage_names, missing = self.settings.stages.pick(list(current))
        else:
            stage_names, missing = [n for n in stage_names if n in current], [n for n in stage_names if n not in current]
        # A fix and a rollback alike publish only themselves: what the redeploy would publish besides is read first.
        try:
            undeployed = undeployed_for(self.adapter, api.region, api.api_id, {n: current[n] for n in stage_names})
        except ApiNotFound:
            return Patched(gone_report(api.region, api.api_id), "skipped", f"{api.region}/{api.api_id}: API was deleted; skipped")
        except SummaryError as error:
            return Patched(report, "failed", f"what a redeploy would publish cannot be told: {error}; nothing changed")
        report = replace(report, undeployed=undeployed)
        if action != "remediate" and undeployed and self.settings.undeployed != "publish":
            log.warning("rollback_blocked", region=api.region, api_id=api.api_id, undeployed=len(undeployed))
            return Patched(report, "blocked", rollback_blocked_detail(undeployed, self.settings.undeployed))
        if action == "remediate":
            if report.verdict(undeployed=self.settings.undeployed, asks=accepted is not None) is Verdict.BLOCKED:
                log.warning("fix_blocked", region=api.region, api_id=api.api_id, undeployed=len(undeployed))
                return Patched(report, "blocked", blocked_detail(undeployed, self.settings.undeployed))
            if accepted is not None and self.settings.undeployed != "publish" and unaccepted(undeployed, accepted):
                return Patched(report, "stale", "the API has undeployed edits the approval did not show "
                               f"({describe_undeployed(unaccepted(undeployed, accepted))}); nothing written", replanned=True)
        intent = Intent(
            intent_id=uuid.uuid4().hex, account=self.account, region=api.region, api_id=api.api_id, api_name=api.name,
            action=action, policy_before=api.policy or "", policy_after=after, patch_operations=operations,
            stages=[PlannedStage(name, current[name]) for name in stage_names], missing_stages=missing,
            triggered_by=self.triggered_by, holder=self.holder, expires_at=self.journal.now() + self.CLAIM_SECONDS, findings=findings,
            trust=self.settings.trust.to_dict() if action == "remediate" else None,
            undeployed=[change.to_dict() for change in undeployed],
        )
        try:
            self.journal.begin(intent)
        except IntentConflict:
            return Patched(report, "busy", "another change of this API began just now; waiting for it", wait_seconds=self.POLL_SECONDS)
        log.info("intent_written", intent_id=intent.intent_id, region=api.region, api_id=api.api_id, stages=stage_names)
        try:
            guarded_write(self.adapter, api.region, api.api_id, operations, self.account, authority or Narrowing(),
                          planned_from=api.policy, before_write=lambda: self._hold(intent))
        except IntentConflict:
            # Its claim lapsed before the write (a paused run) and another holder took the change over: nothing written.
            return Patched(report, "busy", "the change was taken over by another holder before its write; waiting for it",
                           wait_seconds=self.POLL_SECONDS)
        except WriteRefused as refusal:
            return self._refused(report, intent, str(refusal))
        except LiveChanged as changed:
            self._close(intent, "superseded", str(changed))
            return Patched(report, "stale", str(changed), replanned=True)
        except ApiNotFound:
            self._close(intent, "abandoned", "the API was deleted before the policy was written")
            return Patched(gone_report(api.region, api.api_id), "skipped", f"{api.region}/{api.api_id}: API was deleted; skipped")
        except (ClientError, BotoCoreError) as error:
            # Did it go through? An answer can be lost after the write (a timeout, a throttled retry).
            try:
                now_there = self.adapter.get_rest_api(api.region, api.api_id).policy
            except (ApiNotFound, ClientError, BotoCoreError):
                raise error from None  # unknown: the intent stays open and is reconciled
            if same_policy(now_there, intent.policy_before):
                self._close(intent, "failed", f"policy not changed: {error}")
                code = error.response.get("Error", {}).get("Code") if isinstance(error, ClientError) else None
                return Patched(report, "failed", f"policy not changed: {error}", error_code=code)
            if not same_policy(now_there, intent.policy_after):
                raise  # someone else wrote in between: the intent stays open and is reconciled (superseded)
            log.warning("write_answer_lost", region=api.region, api_id=api.api_id, error=str(error))
        return Patched(report, "patched", "policy written", intent, transaction=transaction_of(intent))

    def _refused(self, report: ApiReport, intent: Intent, reason: str) -> Patched:
        """The guard refused the write: nothing was written; the intent closes as refused, with its one
        record, and the caller sends the notice (the workflow's failure notice, the CLI's output)."""
        intent.state, intent.reason = "refused", reason
        self.journal.close(intent, intent.record("refused", [], None))
        log.error("policy_write_refused", region=intent.region, api_id=intent.api_id, intent_id=intent.intent_id, reason=reason)
        return Patched(report, "refused", f"policy write refused: {reason}; nothing changed")
