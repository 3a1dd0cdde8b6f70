"""Deploying, the second step of a change: in the account's turn, one CreateDeployment (checked first for
edits of the API the plan did not allow to publish), the other planned stages pointed forward at it (the only
place a stage is moved), and the change closed as applied with its one record.

Uses `undo` of the recovery step (`Remediator` composes them).
"""

from __future__ import annotations

from botocore.exceptions import BotoCoreError, ClientError

from remediator import clock
from remediator.adapters.apigateway import ApiNotFound, DeploymentInfo
from remediator.audit import AuditRecord
from remediator.journal import Intent, IntentConflict
from remediator.workflow.errors import THROTTLING_CODES, TRANSIENT_CODES
from remediator.core import PolicyError
from remediator.core.undeployed import SummaryError, UndeployedChange, unaccepted
from remediator.logs import get_logger
from remediator.transaction.base import TransactionBase
from remediator.transaction.outcomes import Deployment, FixOutcome, Patched
from remediator.transaction.planning import describe_undeployed, undeployed_for

log = get_logger(__name__)


class UndeployedAppeared(Exception):
    """Right before CreateDeployment: edits of the API that the plan did not allow to publish appeared since."""


class StageMoveRefused(Exception):
    """A stage would be pointed at a deployment this change did not create, or at one older than it serves."""


def deployment_marker(intent: Intent) -> str:
    """The description of every deployment a change creates: how the bot recognises its own, read back
    with GetDeployment (a record naming a deployment is not proof)."""
    return f"apigw-remediator: {intent.action} ({intent.intent_id})"


class Deploying(TransactionBase):
    """The deploy step (`deploy`, `complete`; `finish` for the CLI), shared with the workflow's Redeploy and Record."""

    def finish(self, patched: Patched, action: str = "applied") -> FixOutcome:
        """Deploy (waiting for the account's turn) and complete; undo if the deployment fails."""
        assert patched.intent is not None
        intent = patched.intent
        try:
            deployment = self._deploy_retrying(intent)
        except UndeployedAppeared as error:
            try:
                result = self.undo(intent, f"not deployed: {error}", patched.transaction)
            except (ApiNotFound, ClientError, BotoCoreError, PolicyError, StageMoveRefused) as undo_error:
                return FixOutcome(patched.report, "failed", f"{error}; and it could not be undone ({undo_error}); "
                                  "the change stays pending and is finished or undone by the next run")
            return FixOutcome(patched.report, "blocked", f"{error}; {result}")
        except (ApiNotFound, ClientError, BotoCoreError, StageMoveRefused) as error:
            try:
                result = self.undo(intent, f"redeploy failed: {error}", patched.transaction)
            except (ApiNotFound, ClientError, BotoCoreError, PolicyError, StageMoveRefused) as undo_error:
                log.error("undo_failed", region=intent.region, api_id=intent.api_id, error=str(undo_error))
                return FixOutcome(patched.report, "failed", f"redeploy failed ({error}) and could not be undone ({undo_error}); "
                                  "the change stays pending and is finished or undone by the next run")
            return FixOutcome(patched.report, "failed", f"redeploy failed, {result}: {error}")
        record = self.complete(intent, deployment)
        detail = _redeploy_detail(deployment.stages, deployment.missing)
        if intent.undeployed and deployment.stages:
            what = "fix" if intent.action == "remediate" else "rollback"
            detail += f"; published with the {what}: {describe_undeployed(intent.undeployed)}"
        return FixOutcome(patched.report, action, detail,
                          list(deployment.stages), deployment.deployment_id, record, patched.replanned)

    def _deploy_retrying(self, intent: Intent) -> Deployment:
        """Deploy in the account's turn; throttling and transient errors are retried with backoff (a repeated
        deploy creates no second deployment once the first is recorded in the intent)."""
        for attempt in range(self.RETRIES + 1):
            try:
                deployment = self.deploy(intent)
                while deployment.wait_seconds > 0:
                    clock.sleep(deployment.wait_seconds)
                    deployment = self.deploy(intent, deployment.ticket)
                return deployment
            except ClientError as error:
                code = error.response.get("Error", {}).get("Code")
                if attempt == self.RETRIES or (code not in THROTTLING_CODES and code not in TRANSIENT_CODES):
                    raise
                log.warning("deploy_retried", region=intent.region, api_id=intent.api_id, error=str(error), attempt=attempt + 1)
                clock.sleep(min(60.0, 5.0 * 2 ** attempt))
        raise AssertionError("unreachable")

    def deploy(self, intent: Intent, ticket: int | None = None) -> Deployment:
        """In the account's turn (`ticket`: the place in its queue from an earlier try): one CreateDeployment
        for the first planned stage (recorded in the intent at once), then the other stages pointed at it.
        Repeatable: a retry creates no second deployment, once GetDeployment shows the recorded one is this
        change's. Stages only move forward: never to a deployment of another change, never to an older one."""
        stored = self.journal.open_intent(intent.account, intent.region, intent.api_id)
        if stored is None or stored.intent_id != intent.intent_id or self.journal.held_by_other(stored, self.holder, self.journal.now()):
            raise IntentConflict(f"{intent.key}: change {intent.intent_id} is no longer this one's to deploy")
        intent = stored
        self._hold(intent)  # renewed if it is not fresh: the wait for the account's turn is inside the claim too
        if not intent.stages:
            return Deployment([], None, intent.missing_stages)
        if intent.deployment_id is not None and self._own_deployment(intent, intent.deployment_id) is None:
            log.warning("recorded_deployment_not_ours", region=intent.region, api_id=intent.api_id,
                        intent_id=intent.intent_id, deployment_id=intent.deployment_id)
            intent.deployment_id = None  # a record naming a deployment is no proof: create this change's own
        if intent.deployment_id is None:
            turn = self.lease.acquire(self.holder, clock.now(), ticket)
            if not turn.granted:
                return Deployment(wait_seconds=turn.seconds, ticket=turn.ticket)
            deployed_at = None
            try:
                clock.sleep(turn.seconds)  # the rest of the interval since the account's last deployment
                self._check_undeployed(intent)
                self._hold(intent)  # the turn may have taken a while: CreateDeployment only inside a fresh claim
                intent.deployment_id = self.adapter.create_deployment(
                    intent.region, intent.api_id, intent.stages[0].name, deployment_marker(intent))
                deployed_at = clock.now()
            finally:
                self.lease.release(self.holder, deployed_at)
            self.journal.update(intent)
        current = {s.name: s.deployment_id for s in self.adapter.list_stages(intent.region, intent.api_id)}
        seen: dict[str, DeploymentInfo | None] = {}  # GetDeployment once per deployment, however many stages
        for stage in intent.stages:
            if stage.name in current and current[stage.name] != intent.deployment_id:
                self._point_forward(intent, stage.name, current[stage.name], seen)
        return Deployment([s.name for s in intent.stages if s.name in current], intent.deployment_id,
                          intent.missing_stages + [s.name for s in intent.stages if s.name not in current])

    def _check_undeployed(self, intent: Intent) -> None:
        """Right before CreateDeployment: an edit of the API made since the plan is published only where the setting
        is publish; otherwise UndeployedAppeared (the caller undoes the write: the fix, or the rollback, was never
        published)."""
        if self.settings.undeployed == "publish":
            return
        current = {s.name: s.deployment_id for s in self.adapter.list_stages(intent.region, intent.api_id)}
        serving = {s.name: current[s.name] for s in intent.stages if s.name in current}
        try:
            found = undeployed_for(self.adapter, intent.region, intent.api_id, serving)
        except SummaryError as error:
            raise UndeployedAppeared(f"what the redeploy would publish cannot be told: {error}") from None
        new = unaccepted(found, [UndeployedChange.from_dict(c) for c in intent.undeployed])
        if new:
            log.warning("undeployed_appeared", region=intent.region, api_id=intent.api_id, intent_id=intent.intent_id,
                        undeployed=len(new))
            what = "fix" if intent.action == "remediate" else "rollback"
            raise UndeployedAppeared(f"edits of the API appeared since the {what} was planned and were not deployed: "
                                     f"{describe_undeployed(new)}; the redeploy would publish them, so it was not made "
                                     f"(undeployed_changes is {self.settings.undeployed})")

    def _own_deployment(self, intent: Intent, deployment_id: str) -> DeploymentInfo | None:
        """The deployment, if GetDeployment shows this change created it (its description names the intent)."""
        found = self.adapter.get_deployment(intent.region, intent.api_id, deployment_id)
        return found if found is not None and found.description == deployment_marker(intent) else None

    def _point_forward(self, intent: Intent, stage: str, serving: str | None, seen: dict[str, DeploymentInfo | None]) -> None:
        """Point `stage` at this change's deployment, only if it is this change's and not older than what the
        stage serves now (a deployment is a snapshot, policy included: an older one republishes old access).
        `seen`: the deployments read back so far in this deploy, by ID."""
        assert intent.deployment_id is not None
        if intent.deployment_id not in seen:
            seen[intent.deployment_id] = self._own_deployment(intent, intent.deployment_id)
        target = seen[intent.deployment_id]
        if target is None:
            raise StageMoveRefused(f"deployment {intent.deployment_id} was not created by change {intent.intent_id}; "
                                   f"stage {stage} not moved")
        if serving and serving not in seen:
            seen[serving] = self.adapter.get_deployment(intent.region, intent.api_id, serving)
        now = seen[serving] if serving else None
        if now is not None and now.created > target.created:
            raise StageMoveRefused(f"stage {stage} serves deployment {serving}, newer than {target.deployment_id} of change "
                                   f"{intent.intent_id}; stages only move forward, so it was not moved")
        self._hold(intent)  # UpdateStage only inside a fresh claim: never a stage moved by a holder taken over
        self.adapter.point_stage(intent.region, intent.api_id, stage, target.deployment_id)

    def complete(self, intent: Intent, deployment: Deployment) -> AuditRecord:
        """Close the intent as applied, with the change's one audit record (keyed by the intent)."""
        intent.state, intent.deployment_id = "applied", deployment.deployment_id
        record = intent.record("applied", deployment.stages, deployment.deployment_id)
        self.journal.close(intent, record)
        log.info("policy_changed", action=record.action, region=record.region, api_id=record.api_id,
                 stages=record.stages_redeployed, deployment_id=record.deployment_id, intent_id=intent.intent_id)
        return record


def _redeploy_detail(stages: list[str], missing: list[str]) -> str:
    detail = f"redeployed {', '.join(stages)}" if stages else "no stage redeployed: the change takes effect at the next deployment"
    if missing:
        detail += f"; stages not found: {', '.join(missing)}"
    return detail
