"""Recovery: changes that did not go through. A change left open by a holder that is gone is reconciled
(finished, recorded or closed), a write whose deployment failed is undone (never moving a stage back), and
every change a killed run left half-done is finished or undone.

Uses `finish`, `complete`, `_own_deployment` and `_point_forward` of the deploying step (`Remediator` composes them).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable

from remediator.adapters.apigateway import ApiNotFound, DeploymentInfo
from remediator.guard import Narrowing, UndoOf, WriteRefused, guarded_write
from remediator.audit import AuditRecord
from remediator.journal import Intent, IntentConflict
from remediator.core import compact_json, parse_policy
from remediator.logs import get_logger
from remediator.transaction.base import TransactionBase
from remediator.transaction.outcomes import Deployment, Patched, intent_report
from remediator.transaction.planning import same_policy

log = get_logger(__name__)


class Recovery(TransactionBase):
    """Settling changes left open, and undoing one whose deployment failed."""

    def recover(self, regions: Iterable[str] | None = None) -> list[str]:
        """Finish or undo every change left half-done in this account by a run that was killed: what `fix`
        does first (the workflow settles them in Apply, one API at a time). Says what it did to each."""
        wanted = set(regions) if regions is not None else None
        done: list[str] = []
        with self._exclusive():
            for intent in self.journal.open_intents():
                if intent.account != self.account or (wanted is not None and intent.region not in wanted):
                    continue
                if self.journal.held_by_other(intent, self.holder, self.journal.now()):
                    continue
                try:
                    settled = self._settle(intent)
                except IntentConflict:  # another holder renewed or took it over between the read and the write
                    settled = "left to the holder that took it over just now"
                done.append(f"{intent.region}/{intent.api_id}: change {intent.intent_id} of {intent.created_at} {settled}")
        return done

    def _settle(self, intent: Intent) -> str:
        """Reconcile a change left open and, if it is to be carried on, deploy and record it now."""
        state, carry_on = self.reconcile(intent)
        if carry_on is None:
            return state
        outcome = self.finish(Patched(intent_report(carry_on), "patched", "", carry_on))
        return "applied" if outcome.action == "applied" else f"failed ({outcome.detail})"

    def undo(self, intent: Intent, reason: str, transaction: UndoOf | None = None) -> str:
        """Put the policy back to `before` when the fix was never published (it is still what was written),
        closed as `restored` with its record. Says what it did.

        Stages only move forward: once a stage serves this change's deployment, nothing is undone; the change
        stays open and the next run finishes it (a new deployment on every stage). The policy is restored
        wider than it is only with `transaction`, the undo authority of the run that wrote it; an intent read
        back from storage restores only what the guard proves is not wider (a refusal is recorded)."""
        stored = self.journal.open_intent(intent.account, intent.region, intent.api_id)
        if stored is None or stored.intent_id != intent.intent_id:
            return "nothing undone: the change was closed already"
        try:
            return self._undo(stored, reason, transaction)
        except IntentConflict:
            # The claim lapsed and another holder took the change over (its fence): that holder settles it; this one
            # writes nothing more, neither the journal nor the policy.
            log.warning("undo_taken_over", region=intent.region, api_id=intent.api_id, intent_id=intent.intent_id)
            return "nothing undone: the change was taken over by another holder, which settles it"

    def _undo(self, intent: Intent, reason: str, transaction: UndoOf | None) -> str:
        try:
            policy = self.adapter.get_rest_api(intent.region, intent.api_id).policy
        except ApiNotFound:
            self._close(intent, "abandoned", f"{reason}; the API was deleted")
            return "the API was deleted"
        published = self._serving_this_change(intent)
        if published:
            # Left split: the open intent says which stage serves which deployment; the next run deploys the fix
            # on every stage, and the failure notice carries this line.
            intent.serving = {s.name: d for s in self.adapter.list_stages(intent.region, intent.api_id)
                              if s.name in {p.name for p in intent.stages} and (d := s.deployment_id) is not None}
            split = ", ".join(f"{name} on {deployment}" for name, deployment in sorted(intent.serving.items()))
            intent.reason = f"{reason}; left split ({split}): the next run deploys the fix on every stage"
            self.journal.update(intent)
            log.warning("undo_left_forward", region=intent.region, api_id=intent.api_id, intent_id=intent.intent_id,
                        stages=published, serving=intent.serving)
            return (f"not undone: stages {', '.join(published)} already serve the fix and stages only move forward "
                    f"(now {split}); the change stays open and the next run deploys it on every stage")
        if same_policy(policy, intent.policy_after):
            restored = compact_json(parse_policy(intent.policy_before)) if intent.policy_before else ""
            operations = ([{"op": "replace", "path": "/policy", "value": restored}] if restored
                          else [{"op": "remove", "path": "/policy"}])
            authority = transaction if transaction is not None and transaction.intent_id == intent.intent_id else Narrowing()
            if not intent.undoing:  # written down first: if closing fails after the write, recovery still records it
                intent.undoing = True
                self._hold(intent, changed=True)  # the claim renewed with it
            try:
                guarded_write(self.adapter, intent.region, intent.api_id, operations, self.account, authority,
                              before_write=lambda: self._hold(intent))
            except WriteRefused as refusal:
                self._note_refusal(intent, policy, operations, f"undo refused: {refusal}")
                return (f"not undone: {refusal}; the fix stays written and the change open, "
                        "and the next run deploys it")
            result = "previous policy restored"
        elif same_policy(policy, intent.policy_before):
            result = "the policy was never changed"
        else:
            result = "policy not restored: it changed again since the fix was written"
        if result.startswith("the policy was never changed"):
            self._close(intent, "failed", f"{reason}; nothing was changed")
        else:
            intent.state, intent.reason = "restored", f"{reason}; {result}"
            self.journal.close(intent, intent.record("restored", [], None))
        log.warning("undone", region=intent.region, api_id=intent.api_id, result=result, intent_id=intent.intent_id)
        return result

    def _serving_this_change(self, intent: Intent) -> list[str]:
        """The planned stages that serve a deployment of this change now, told by GetDeployment (its description
        names the change), whether or not the journal recorded it: a CreateDeployment whose answer was lost
        moved its stage all the same."""
        if not intent.stages:
            return []
        current = {s.name: s.deployment_id for s in self.adapter.list_stages(intent.region, intent.api_id)}
        ours: dict[str, bool] = {}
        serving = []
        for stage in intent.stages:
            now = current.get(stage.name)
            if now is None or now == stage.deployment_id:
                continue
            if now not in ours:
                ours[now] = self._own_deployment(intent, now) is not None
            if ours[now]:
                serving.append(stage.name)
        return serving

    def _note_refusal(self, intent: Intent, live: str | None, operations: list[dict[str, str]], reason: str) -> None:
        """A refused write of a change that stays open: a record of its own (the change keeps its one record)."""
        record = AuditRecord(
            account=intent.account, region=intent.region, api_id=intent.api_id, api_name=intent.api_name, action=intent.action,
            policy_before=live or "", policy_after=operations[0].get("value", ""), patch_operations=operations,
            stages_redeployed=[], deployment_id=None, triggered_by=self.triggered_by, change_id=uuid.uuid4().hex,
            outcome="refused", trust=None)
        self.journal.note(record)
        log.error("policy_write_refused", region=intent.region, api_id=intent.api_id, intent_id=intent.intent_id, reason=reason)

    def reconcile(self, intent: Intent) -> tuple[str, Intent | None]:
        """Settle a change left open by a holder that is gone (or by this one, retried):
        policy = `after`: finish it (returned, to be deployed on a new deployment of its own) or, if it is
        deployed on every stage already (its deployment checked with GetDeployment), just record it;
        policy = `before`: never written (abandoned); else someone changed it since (superseded: it is
        re-planned from what is there now), unless stages serve its deployment already: then every planned stage
        is pointed at that deployment and it is recorded (never left split). Nothing is ever put back on an older
        deployment."""
        try:
            api = self.adapter.get_rest_api(intent.region, intent.api_id)
        except ApiNotFound:
            self._close(intent, "abandoned", "the API was deleted")
            return "abandoned", None
        if same_policy(api.policy, intent.policy_after):
            previous = intent.holder
            intent.holder, intent.expires_at = self.holder, self.journal.now() + self.CLAIM_SECONDS
            current = {s.name: s.deployment_id for s in self.adapter.list_stages(intent.region, intent.api_id)}
            planned = [s.name for s in intent.stages if s.name in current]
            if (intent.deployment_id and all(current[name] == intent.deployment_id for name in planned)
                    and self._own_deployment(intent, intent.deployment_id) is not None):
                self.journal.update(intent, previous_holder=previous)
                self.complete(intent, Deployment(planned, intent.deployment_id, intent.missing_stages))
                return "applied (it was deployed; its record is now written)", None
            intent.deployment_id = None  # a half-done redeploy is finished on a new deployment, never one a record names
            self.journal.update(intent, previous_holder=previous)
            return "resumed", intent
        if same_policy(api.policy, intent.policy_before) and not self._serving_this_change(intent):
            if intent.undoing:  # written, then undone, and its close failed: it keeps its restored record
                intent.state, intent.reason = "restored", intent.reason or "undone; its record written by recovery"
                self.journal.close(intent, intent.record("restored", [], None))
                return "restored (it was undone; its record is now written)", None
            # Taken over before its write went out: its holder, past its fence check, may still send it (a paused
            # run). Its window is kept for that write (found by the seeded soak: a person's write in between was lost
            # without a trace).
            self._close(intent, "abandoned", "the policy was never written", late=intent.holder != self.holder)
            return "abandoned", None
        published = self._serving_this_change(intent)
        if published:
            return self._finish_published(intent, published)
        # Its write may have gone out before someone wrote again: its window is kept, so that a person's write it
        # replaced is found as lost (found by the seeded soak: a superseded change kept none).
        self._close(intent, "superseded", "the policy changed since; re-planned from what is there now", wrote=True)
        return "superseded", None

    def _finish_published(self, intent: Intent, published: list[str]) -> tuple[str, Intent | None]:
        """The policy changed since (or was put back by someone), but stages serve this change's deployment already.
        Closed as superseded, it left them split for good with nothing open to say so (found by the seeded soak).
        Stages only move forward: the change is carried on with that same deployment of its own (read back with
        GetDeployment; never a new one, which would publish what is there now), so the deploy step points the other
        planned stages at it and records the change (in the workflow, Redeploy: only its role moves stages). If a
        stage serves a deployment newer than it, nothing can move forward: the change closes superseded, as before."""
        current = {s.name: s.deployment_id for s in self.adapter.list_stages(intent.region, intent.api_id)}
        seen: dict[str, DeploymentInfo | None] = {}
        for name in published:  # a retried CreateDeployment may have made two: the newest of them
            seen[str(current[name])] = self._own_deployment(intent, str(current[name]))
        ours = {d: info for d, info in seen.items() if info is not None}
        if not ours:
            self._close(intent, "superseded", "the policy changed since; re-planned from what is there now", wrote=True)
            return "superseded", None
        target = max(ours, key=lambda d: ours[d].created)  # type: ignore[union-attr]
        for stage in intent.stages:
            serving = current.get(stage.name)
            if serving and serving != target:
                if serving not in seen:
                    seen[serving] = self.adapter.get_deployment(intent.region, intent.api_id, serving)
                now = seen[serving]
                if now is not None and now.created > ours[target].created:  # type: ignore[union-attr]
                    self._close(intent, "superseded", f"the policy changed since; stage {stage.name} serves a newer "
                                                      f"deployment ({serving}) than this change's ({target})", wrote=True)
                    return "superseded", None
        previous = intent.holder
        intent.holder, intent.expires_at = self.holder, self.journal.now() + self.CLAIM_SECONDS
        intent.deployment_id = target
        self.journal.update(intent, previous_holder=previous)
        return "resumed (its deployment serves some stages: the others are pointed at it)", intent

    def _close(self, intent: Intent, state: str, reason: str, wrote: bool = False, late: bool = False) -> None:
        """`wrote`: the change's write may have gone out (a superseded change read back open): its window is kept.
        `late`: it may go out after this close (journal.close)."""
        intent.state, intent.reason = state, reason
        self.journal.close(intent, None, wrote=wrote, late=late)
        log.info("intent_closed", intent_id=intent.intent_id, state=state, reason=reason)
