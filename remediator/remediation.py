"""The remediation service: assess, decide, fix and roll back REST APIs. The shell around the trust
engine that the CLI (scan, fix, rollback) and the workflow's Lambdas share.

Every write re-reads the API first and re-plans from what is there now, so a policy
changed since it was assessed is never overwritten with a stale fix.
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
import uuid
from collections.abc import Iterable, Iterator
from contextlib import nullcontext
from dataclasses import dataclass, field, replace
from enum import Enum
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from remediator import clock
from remediator.adapters.apigateway import ApiGatewayAdapter, ApiNotFound, DeploymentInfo, RestApi
from remediator.guard import (Authority, LiveChanged, Narrowing, PersonRollback, UndoOf, WriteRefused, guarded_write,
                              policy_digest)
from remediator.audit import AuditRecord, JsonLinesAuditLog
from remediator.journal import FileLease, Intent, IntentConflict, Journal, JsonLinesJournal, Lease, PlannedStage
from remediator.workflow.errors import THROTTLING_CODES, TRANSIENT_CODES
from remediator.core import ConfigError, Evaluation, PolicyError, TrustConfig, compact_json, evaluate_policy, parse_policy
from remediator.core.access import ApiAccess, effective_access
from remediator.core.policy import aws_principals, statements_of
from remediator.core.undeployed import (UNDEPLOYED_SETTINGS, SummaryError, UndeployedChange, summary_of_methods,
                                        unaccepted, undeployed_changes)
from remediator.findings_formats import worst_graded
from remediator.logs import get_logger

log = get_logger(__name__)

DEFAULT_EXEMPT_TAG_KEY = "remediator:exempt"


class Verdict(str, Enum):
    """What should happen to an API: decided in one place (`ApiReport.verdict`) for the CLI, the sweep
    Lambda and the workflow's Evaluate."""

    COMPLIANT = "compliant"  # nothing to do
    EXEMPT = "exempt"  # never changed, whatever it grants
    REPORT_ONLY = "report-only"  # findings a person must review (or a policy that cannot be read)
    FIX = "fix"  # untrusted principals the fix removes
    HELD = "held"  # the fix failed FailureLedger.LIMIT times on this policy: a person must look first
    RECOVER = "recover"  # a change of ours was left half-done (its holder is gone): finish or undo it first
    GONE = "gone"  # the API no longer exists
    # The fix would publish others' undeployed edits with it and the undeployed_changes setting does not allow
    # that here: nothing is written; the API is reported with the fix it needs and the edits in the way.
    BLOCKED = "blocked"

    @property
    def needs_attention(self) -> bool:
        """Whether the scheduled sweep sends the API through the workflow."""
        return self in (Verdict.FIX, Verdict.REPORT_ONLY, Verdict.RECOVER, Verdict.BLOCKED)


class StageSelection:
    """Which stages a fix redeploys: every stage, none, or the named ones."""

    def __init__(self, spec: str | Iterable[str] = "all") -> None:
        if isinstance(spec, str):
            spec = spec.strip()
            self.mode = spec if spec in ("all", "none") else "named"
            self.names = tuple(s.strip() for s in spec.split(",") if s.strip()) if self.mode == "named" else ()
        else:
            self.mode, self.names = "named", tuple(spec)
        if self.mode == "named" and not self.names:
            raise ValueError("stages must be 'all', 'none' or a comma-separated list of stage names")

    def pick(self, existing: list[str]) -> tuple[list[str], list[str]]:
        """(stages to redeploy, named stages that do not exist)."""
        if self.mode == "all":
            return list(existing), []
        if self.mode == "none":
            return [], []
        return [n for n in self.names if n in existing], [n for n in self.names if n not in existing]

    def __str__(self) -> str:
        return ",".join(self.names) if self.mode == "named" else self.mode


@dataclass(frozen=True)
class SweepSettings:
    trust: TrustConfig
    exempt_tag_key: str = DEFAULT_EXEMPT_TAG_KEY
    exempt_api_ids: frozenset[str] = frozenset()
    stages: StageSelection = field(default_factory=StageSelection)
    undeployed: str = "ask"  # UNDEPLOYED_SETTINGS

    def __post_init__(self) -> None:
        if self.undeployed not in UNDEPLOYED_SETTINGS:  # fail closed: a misspelt value must not publish anything
            raise ValueError(f"undeployed_changes {self.undeployed!r:.40} is not one of {', '.join(UNDEPLOYED_SETTINGS)}")

    def is_exempt(self, api: RestApi) -> bool:
        return api.api_id in self.exempt_api_ids or api.tags.get(self.exempt_tag_key, "").strip().lower() == "true"


@dataclass(frozen=True)
class ApiReport:
    """What the sweep found on one API."""

    api: RestApi
    exempt: bool
    evaluation: Evaluation | None
    error: str | None = None
    access: ApiAccess | None = None  # who can actually call, per finding (`with_access`); None: methods not read
    # What redeploying the planned stages would publish besides the fix (`with_undeployed`); empty: nothing, or not read.
    undeployed: tuple[UndeployedChange, ...] = ()

    @property
    def needs_fix(self) -> bool:
        return not self.exempt and self.evaluation is not None and bool(self.evaluation.patch_operations)

    def verdict(self, failures: int = 0, failure_limit: int | None = None, left_open: bool = False,
                undeployed: str = "ask", asks: bool = False) -> Verdict:
        """The one decision ladder: a change of ours left half-done, exempt, unreadable, fixable (unless the
        fix keeps failing, or its redeploy would publish others' undeployed edits that `undeployed`, the
        undeployed_changes setting, does not let it publish), findings, compliant. `asks`: a person approves
        this fix (approval mode), who is shown the edits; under "ask" their approval publishes them."""
        if left_open:
            return Verdict.RECOVER
        if self.exempt:
            return Verdict.EXEMPT
        if self.error or self.evaluation is None:
            return Verdict.REPORT_ONLY
        if self.needs_fix:
            if failure_limit is not None and failures >= failure_limit:
                return Verdict.HELD
            if self.undeployed and not (undeployed == "publish" or (undeployed == "ask" and asks)):
                return Verdict.BLOCKED
            return Verdict.FIX
        return Verdict.COMPLIANT if self.evaluation.compliant else Verdict.REPORT_ONLY

    @property
    def has_findings(self) -> bool:
        return not self.exempt and (self.error is not None or (self.evaluation is not None and not self.evaluation.compliant))

    def to_dict(self) -> dict[str, Any]:
        evaluation = self.evaluation
        record: dict[str, Any] = {
            "region": self.api.region,
            "api_id": self.api.api_id,
            "name": self.api.name,
            "compliant": evaluation.compliant if evaluation else False,
            "exempt": self.exempt,
            "findings": [f.to_dict() for f in evaluation.findings] if evaluation else [],
            "patch_operations": evaluation.patch_operations if evaluation and not self.exempt else [],
        }
        if self.error:
            record["error"] = self.error
        if self.undeployed:
            record["undeployed_changes"] = [change.to_dict() for change in self.undeployed]
        if evaluation is not None and not evaluation.compliant:
            access = self.access or effective_access(evaluation.findings, evaluation.policy, "", None, None)
            record["access"] = access.to_list()
            record["severity"] = worst_graded(record["findings"], record["access"]).name.lower()
        return record


def assess(api: RestApi, settings: SweepSettings) -> ApiReport:
    """Evaluate one API's policy as listed; an API without a policy grants no other account anything."""
    exempt = settings.is_exempt(api)
    if api.policy is None:
        return ApiReport(api, exempt, Evaluation({"Statement": []}, (), None))
    try:
        return ApiReport(api, exempt, evaluate_policy(api.policy, settings.trust))
    except PolicyError as error:
        return ApiReport(api, exempt, None, f"policy cannot be read: {error}")


def scan(adapter: ApiGatewayAdapter, regions: Iterable[str], settings: SweepSettings,
         reachability: bool = False) -> Iterator[ApiReport]:
    """Every API's report; with `reachability`, who can actually call each finding (its methods read: `with_access`)."""
    for region in regions:
        for api in adapter.list_rest_apis(region):
            report = assess(api, settings)
            yield with_access(adapter, report, settings.trust) if reachability else report


def with_access(adapter: ApiGatewayAdapter, report: ApiReport, trust: TrustConfig) -> ApiReport:
    """The report with who can actually call each finding's methods (remediator.core.access). Methods are read
    only for an API with findings that is not exempt (GetResources costs a call or more per API). Methods that
    cannot be read make the findings indeterminate, never compliant; throttling and transient errors are raised
    for the caller to retry."""
    evaluation = report.evaluation
    if report.exempt or evaluation is None or evaluation.compliant:
        return report
    api = report.api
    arn = f"arn:{trust.partition}:execute-api:{api.region}:{trust.owner_account}:{api.api_id}"
    try:
        methods, unread = adapter.methods(api.region, api.api_id), None
    except ClientError as error:
        code = error.response.get("Error", {}).get("Code") or "ClientError"
        if code in THROTTLING_CODES or code in TRANSIENT_CODES:
            raise
        methods, unread = None, code
    except ApiNotFound:
        methods, unread = None, "the API no longer exists"
    except BotoCoreError as error:
        methods, unread = None, type(error).__name__
    if unread:
        log.warning("methods_unread", api_id=api.api_id, reason=unread)
    access = effective_access(evaluation.findings, evaluation.policy, arn, methods, api.endpoint, unread)
    return replace(report, access=access)


def undeployed_for(adapter: ApiGatewayAdapter, region: str, api_id: str,
                   serving: dict[str, str | None]) -> tuple[UndeployedChange, ...]:
    """What redeploying these stages (name -> the deployment each serves) would publish besides the policy: each
    deployment's apiSummary (GetDeployment, embed=apisummary) against the API's methods now (GetResources,
    embed=methods). Blind to changes inside an existing method's integration (remediator.core.undeployed).
    SummaryError (one line) when a deployment's summary cannot be read: nothing is decided from a guess."""
    if not any(serving.values()):
        return ()  # no stage serves anything yet: nothing deployed, nothing to compare
    now = summary_of_methods(adapter.methods(region, api_id))
    summaries: dict[str, Any] = {}
    found: list[UndeployedChange] = []
    for stage, deployment_id in sorted(serving.items()):
        if deployment_id is None:
            continue
        if deployment_id not in summaries:
            summaries[deployment_id] = adapter.deployed_summary(region, api_id, deployment_id)
        deployed = summaries[deployment_id]
        if deployed is None:
            raise SummaryError(f"stage {stage} serves deployment {deployment_id}, which GetDeployment does not find")
        found.extend(undeployed_changes(stage, deployed, now))
    return tuple(sorted(found))


def with_undeployed(adapter: ApiGatewayAdapter, report: ApiReport, settings: SweepSettings) -> ApiReport:
    """The report with what the fix's redeploy would publish besides the fix (only for an API that needs one)."""
    if not report.needs_fix:
        return report
    api = report.api
    current = {s.name: s.deployment_id for s in adapter.list_stages(api.region, api.api_id)}
    names, _ = settings.stages.pick(list(current))
    return replace(report, undeployed=undeployed_for(adapter, api.region, api.api_id, {n: current[n] for n in names}))


def describe_undeployed(changes: Iterable[UndeployedChange | dict[str, Any]]) -> str:
    """One line naming each undeployed edit."""
    items = [c if isinstance(c, UndeployedChange) else UndeployedChange.from_dict(c) for c in changes]
    return "; ".join(change.describe() for change in items)


class UndeployedAppeared(Exception):
    """Right before CreateDeployment: edits of the API that the plan did not allow to publish appeared since."""


@dataclass
class FixOutcome:
    """What a fix, a dry run or a rollback did to one API."""

    report: ApiReport
    # proposed | applied | unchanged | exempt | report-only | skipped | failed | refused | rolled-back | blocked
    action: str
    detail: str = ""
    stages_redeployed: list[str] = field(default_factory=list)
    deployment_id: str | None = None
    audit: AuditRecord | None = None
    replanned: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {
            **self.report.to_dict(),
            "action": self.action,
            "detail": self.detail,
            "stages_redeployed": self.stages_redeployed,
            "deployment_id": self.deployment_id,
        }


class RollbackRefused(Exception):
    """The API's policy is no longer the one the remediation wrote."""


class StageMoveRefused(Exception):
    """A stage would be pointed at a deployment this change did not create, or at one older than it serves."""


def deployment_marker(intent: Intent) -> str:
    """The description of every deployment a change creates: how the bot recognises its own, read back
    with GetDeployment (a record naming a deployment is not proof)."""
    return f"apigw-remediator: {intent.action} ({intent.intent_id})"


def transaction_of(intent: Intent) -> UndoOf:
    """What an undo may restore, from an intent this process (or this execution) wrote itself."""
    return UndoOf(intent.intent_id, policy_digest(intent.policy_after), policy_digest(intent.policy_before))


@dataclass
class Patched:
    """The first step of a change: its intent written and the policy patched (or why nothing was written)."""

    report: ApiReport
    action: str  # patched | busy | unchanged | exempt | skipped | failed | stale | refused | blocked
    detail: str
    intent: Intent | None = None
    # The intent as this run wrote it (its pre-image read live, its write made here): the only authority
    # an undo has to restore a wider policy. None when the change was taken over from storage.
    transaction: UndoOf | None = None
    replanned: bool = False
    wait_seconds: float = 0.0  # busy: another change of this API is in flight; look again after this
    recovered: list[str] = field(default_factory=list)  # what reconciling a change left half-done did
    error_code: str | None = None  # failed: the AWS error code (the workflow retries throttling)

    def outcome(self) -> FixOutcome:
        return FixOutcome(self.report, self.action, self.detail, replanned=self.replanned)


@dataclass
class Deployment:
    """The second step: the stages that serve the change now, or how long to wait for the account's turn."""

    stages: list[str] = field(default_factory=list)
    deployment_id: str | None = None
    missing: list[str] = field(default_factory=list)
    wait_seconds: float = 0.0
    ticket: int | None = None  # waiting: the place in the account's deployment queue, for the next try


class Remediator:
    """Every change as a transaction, for the CLI and the workflow alike:

    1. `begin`: reconcile an intent this API was left with, re-read and re-plan, write the intent
       (`pending`, with the stages and the deployment each serves now), then patch the policy;
    2. `deploy`: in the account's turn (the lease), one CreateDeployment, the other stages pointed at it;
    3. `complete`: close the intent as `applied` with its one audit record; or `undo`: every stage back
       on the deployment it served and the policy back to `before`, closed as `restored` with its record.

    The open intent is the claim on the API: a second fix of it waits (`busy`) instead of changing it twice.
    """

    CLAIM_SECONDS = 600.0  # a holder that stops renewing its claim for this long is taken for dead
    POLL_SECONDS = 10  # how long a duplicate waits before it looks again
    RETRIES = 4  # the CLI's deploy: throttling or a transient error past botocore's retries is tried again, not undone

    def __init__(self, adapter: ApiGatewayAdapter, settings: SweepSettings, journal: Journal, lease: Lease,
                 account: str, triggered_by: str, holder: str | None = None) -> None:
        self.adapter = adapter
        self.settings = settings
        self.journal = journal
        self.lease = lease
        self.account = account
        self.triggered_by = triggered_by
        self.holder = holder or f"cli:{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"

    @classmethod
    def with_audit_log(cls, adapter: ApiGatewayAdapter, settings: SweepSettings, log: JsonLinesAuditLog, account: str,
                       triggered_by: str) -> Remediator:
        """The CLI's: intents and records in one JSON Lines file, runs taking turns through its lock file."""
        journal = JsonLinesJournal(log)
        return cls(adapter, settings, journal, FileLease(journal), account, triggered_by)

    def _exclusive(self) -> Any:
        exclusive = getattr(self.journal, "exclusive", None)
        return exclusive() if exclusive is not None else nullcontext()

    # --- the CLI: each API from start to end, one at a time -------------------------------------

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
            return _gone(report.api.region, report.api.api_id)
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
            return self.finish(patched)

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
            detail += f"; published with the fix: {describe_undeployed(intent.undeployed)}"
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
                done.append(f"{intent.region}/{intent.api_id}: change {intent.intent_id} of {intent.created_at} "
                            f"{self._settle(intent)}")
        return done

    def _settle(self, intent: Intent) -> str:
        """Reconcile a change left open and, if it is to be carried on, deploy and record it now."""
        state, carry_on = self.reconcile(intent)
        if carry_on is None:
            return state
        outcome = self.finish(Patched(_intent_report(carry_on), "patched", "", carry_on))
        return "applied" if outcome.action == "applied" else f"failed ({outcome.detail})"

    # --- the steps, shared with the workflow's states ---------------------------------------------

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
                return Patched(_intent_report(left), "busy", f"a change of this API is in progress ({left.holder}); waiting for it",
                               wait_seconds=self.POLL_SECONDS)
            state, carry_on = self.reconcile(left)
            recovered.append(f"change {left.intent_id} {state}")
            if carry_on is not None:
                return Patched(_intent_report(carry_on), "patched", "finishing the change left half-done", carry_on, recovered=recovered)
        try:
            api = self.adapter.get_rest_api(region, api_id)
        except ApiNotFound:
            return Patched(_gone_report(region, api_id), "skipped", f"{region}/{api_id}: API was deleted; skipped", recovered=recovered)
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
        setting allows (`ApiReport.verdict`); `accepted`: the edits a person approved (approval mode)."""
        api = report.api
        try:
            current = {s.name: s.deployment_id for s in self.adapter.list_stages(api.region, api.api_id)}
        except ApiNotFound:
            return Patched(_gone_report(api.region, api.api_id), "skipped", f"{api.region}/{api.api_id}: API was deleted; skipped")
        if stage_names is None:
            stage_names, missing = self.settings.stages.pick(list(current))
        else:
            stage_names, missing = [n for n in stage_names if n in current], [n for n in stage_names if n not in current]
        undeployed: tuple[UndeployedChange, ...] = ()
        if action == "remediate":
            try:
                undeployed = undeployed_for(self.adapter, api.region, api.api_id, {n: current[n] for n in stage_names})
            except ApiNotFound:
                return Patched(_gone_report(api.region, api.api_id), "skipped", f"{api.region}/{api.api_id}: API was deleted; skipped")
            except SummaryError as error:
                return Patched(report, "failed", f"what a redeploy would publish cannot be told: {error}; nothing changed")
            report = replace(report, undeployed=undeployed)
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
                          planned_from=api.policy)
        except WriteRefused as refusal:
            return self._refused(report, intent, str(refusal))
        except LiveChanged as changed:
            self._close(intent, "superseded", str(changed))
            return Patched(report, "stale", str(changed), replanned=True)
        except ApiNotFound:
            self._close(intent, "abandoned", "the API was deleted before the policy was written")
            return Patched(_gone_report(api.region, api.api_id), "skipped", f"{api.region}/{api.api_id}: API was deleted; skipped")
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

    def deploy(self, intent: Intent, ticket: int | None = None) -> Deployment:
        """In the account's turn (`ticket`: the place in its queue from an earlier try): one CreateDeployment
        for the first planned stage (recorded in the intent at once), then the other stages pointed at it.
        Repeatable: a retry creates no second deployment, once GetDeployment shows the recorded one is this
        change's. Stages only move forward: never to a deployment of another change, never to an older one."""
        stored = self.journal.open_intent(intent.account, intent.region, intent.api_id)
        if stored is None or stored.intent_id != intent.intent_id or self.journal.held_by_other(stored, self.holder, self.journal.now()):
            raise IntentConflict(f"{intent.key}: change {intent.intent_id} is no longer this one's to deploy")
        intent = stored
        if intent.expires_at - self.journal.now() < self.CLAIM_SECONDS / 2:
            self._renew(intent)
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
        is publish; otherwise UndeployedAppeared (the caller undoes the write: the fix was never published)."""
        if self.settings.undeployed == "publish" or intent.action != "remediate":
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
            raise UndeployedAppeared(f"edits of the API appeared since the fix was planned and were not deployed: "
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
        self.adapter.point_stage(intent.region, intent.api_id, stage, target.deployment_id)

    def complete(self, intent: Intent, deployment: Deployment) -> AuditRecord:
        """Close the intent as applied, with the change's one audit record (keyed by the intent)."""
        intent.state, intent.deployment_id = "applied", deployment.deployment_id
        record = intent.record("applied", deployment.stages, deployment.deployment_id)
        self.journal.close(intent, record)
        log.info("policy_changed", action=record.action, region=record.region, api_id=record.api_id,
                 stages=record.stages_redeployed, deployment_id=record.deployment_id, intent_id=intent.intent_id)
        return record

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
        intent = stored
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
                self.journal.update(intent)
            try:
                guarded_write(self.adapter, intent.region, intent.api_id, operations, self.account, authority)
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
            self._close(intent, "abandoned", "the policy was never written")
            return "abandoned", None
        published = self._serving_this_change(intent)
        if published:
            return self._finish_published(intent, published)
        self._close(intent, "superseded", "the policy changed since; re-planned from what is there now")
        return "superseded", None

    def _finish_published(self, intent: Intent, published: list[str]) -> tuple[str, Intent | None]:
        """The policy changed since (or was put back by someone), but stages serve this change's deployment already.
        Closed as superseded, it left them split for good with nothing open to say so (found by the seeded soak).
        Stages only move forward: the other planned stages are pointed at that same deployment of this change (read
        back with GetDeployment; never a new one, which would publish what is there now) and the change is recorded as
        applied. A stage on a newer deployment than it is not moved: the change then closes superseded, as before."""
        previous = intent.holder
        intent.holder, intent.expires_at = self.holder, self.journal.now() + self.CLAIM_SECONDS
        current = {s.name: s.deployment_id for s in self.adapter.list_stages(intent.region, intent.api_id)}
        seen: dict[str, DeploymentInfo | None] = {}
        for name in published:  # a retried CreateDeployment may have made two: the newest of them
            seen[str(current[name])] = self._own_deployment(intent, str(current[name]))
        ours = {d: info for d, info in seen.items() if info is not None}
        if not ours:
            self._close(intent, "superseded", "the policy changed since; re-planned from what is there now")
            return "superseded", None
        intent.deployment_id = max(ours, key=lambda d: ours[d].created)  # type: ignore[union-attr]
        self.journal.update(intent, previous_holder=previous)
        try:
            for stage in intent.stages:
                if stage.name in current and current[stage.name] != intent.deployment_id:
                    self._point_forward(intent, stage.name, current[stage.name], seen)
        except StageMoveRefused as refused:
            self._close(intent, "superseded", f"the policy changed since; {refused}")
            return "superseded", None
        planned = [s.name for s in intent.stages if s.name in current]
        self.complete(intent, Deployment(planned, intent.deployment_id, intent.missing_stages))
        return "applied (its deployment served some stages; now it serves every one, and its record is written)", None

    def _renew(self, intent: Intent) -> None:
        intent.expires_at = self.journal.now() + self.CLAIM_SECONDS
        self.journal.update(intent)

    def _close(self, intent: Intent, state: str, reason: str) -> None:
        intent.state, intent.reason = state, reason
        self.journal.close(intent, None)
        log.info("intent_closed", intent_id=intent.intent_id, state=state, reason=reason)

    def rollback(self, record: AuditRecord, apply: bool, force: bool = False) -> FixOutcome:
        """Restore the policy from before a remediation, as a change of its own (intent first, the record's
        stages redeployed, one record). Refused, with what it would re-grant, when the record does not add
        up (RollbackRefused), and, unless `force`, when someone changed the policy since or the rollback
        would re-grant what the current trust settings call untrusted."""
        check = check_rollback(record, self.settings.trust)
        if check.inconsistent and not (force and check.only_unverifiable):
            raise RollbackRefused(f"{record.api_id}: the audit record of {record.timestamp} does not add up: "
                                  f"{'; '.join(check.inconsistent)}; nothing changed")
        with self._exclusive():
            left = self.journal.open_intent(self.account, record.region, record.api_id)
            if left is not None and not self.journal.held_by_other(left, self.holder, self.journal.now()):
                self._settle(left)
            try:
                api = self.adapter.get_rest_api(record.region, record.api_id)
            except ApiNotFound:
                return _gone(record.region, record.api_id)
            report = ApiReport(api, self.settings.is_exempt(api), None)
            if not force and not same_policy(api.policy, record.policy_after):
                raise RollbackRefused(
                    f"{record.api_id}: the current policy is not the one the remediation of {record.timestamp} wrote; "
                    "someone changed it since (use --force to restore anyway)"
                )
            restored = compact_json(parse_policy(record.policy_before))
            operations = [{"op": "replace", "path": "/policy", "value": restored}]
            regrants = f"re-granting {', '.join(check.regranted)}" if check.regranted else "re-granting no principal"
            if check.untrusted:
                regrants += f" (untrusted under the current trust settings: {', '.join(check.untrusted)}; it takes --force)"
            if not apply:
                return FixOutcome(report, "proposed", f"dry run: would restore the policy of {record.timestamp}, {regrants}")
            if check.untrusted and not force:
                raise RollbackRefused(f"{record.api_id}: the rollback would re-grant {', '.join(check.untrusted)}, untrusted "
                                      "under the current trust settings (use --force to re-grant anyway)")
            patched = self._write(report, operations, restored, "rollback", list(record.stages_redeployed), [],
                                  PersonRollback(self.settings.trust, force))
            if patched.action != "patched":
                return patched.outcome()
            outcome = self.finish(patched, action="rolled-back")
            outcome.detail += f"; {regrants}"
            return outcome


@dataclass
class RollbackCheck:
    """What a rollback of a record would do, and whether the record can be trusted to say so."""

    inconsistent: list[str]  # why the record does not add up (empty: it does)
    regranted: list[str]  # principals the rollback gives back, with their statements
    untrusted: list[str]  # of those (or wildcards), what the current trust settings call untrusted
    only_unverifiable: bool = False  # the only problem: an older record without its trust settings


def check_rollback(record: AuditRecord, current: TrustConfig) -> RollbackCheck:
    """A record is only as good as it is consistent: its patch must turn `before` into `after`, and `after`
    must be the engine's fix of `before` under the trust settings the record names."""
    try:
        before, after = parse_policy(record.policy_before), parse_policy(record.policy_after)
    except PolicyError as error:
        return RollbackCheck([f"its policies cannot be read ({error})"], [], [])
    problems: list[str] = []
    operations = record.patch_operations
    try:
        patched = (len(operations) == 1 and operations[0].get("op") == "replace" and operations[0].get("path") == "/policy"
                   and parse_policy(operations[0]["value"]) == after)
    except (PolicyError, KeyError, AttributeError):
        patched = False
    if not patched:
        problems.append("its patch does not turn policy_before into policy_after")
    unverifiable = record.trust is None
    if unverifiable:
        problems.append("it names no trust settings, so its fix cannot be checked (an older record: --force)")
    else:
        try:
            settings = TrustConfig.from_dict(record.trust or {})
        except (ConfigError, ValueError) as error:
            problems.append(f"its trust settings are malformed ({error})")
        else:
            if settings.owner_account != record.account:
                problems.append(f"its trust settings are of account {settings.owner_account}, not {record.account}")
            elif evaluate_policy(before, settings).remediated_policy != after:
                problems.append("policy_after is not the fix of policy_before under the trust settings it names")
    kept = set(aws_principals(after))
    where: dict[str, list[str]] = {}
    for index, statement in enumerate(statements_of(before)):
        for principal in aws_principals({"Statement": [statement]}):
            where.setdefault(principal, []).append(f"statement {index}" + (f" ({statement['Sid']})" if statement.get("Sid") else ""))
    regranted = [p for p in aws_principals(before) if p not in kept]
    wildcard = {"*", f"arn:{current.partition}:iam::*:root"}
    try:
        flagged = {f.principal for f in evaluate_policy(before, current).findings}
    except PolicyError:
        flagged = set(regranted)
    untrusted = [p for p in regranted if p in flagged or p in wildcard]
    return RollbackCheck(problems, [f"{p} in {', '.join(where[p])}" for p in regranted], untrusted,
                         only_unverifiable=unverifiable and len(problems) == 1)


def blocked_detail(changes: Iterable[UndeployedChange], setting: str) -> str:
    """Why a fix was not made, and how to go on."""
    return (f"not fixed: the redeploy would also publish edits of the API that are not deployed ({describe_undeployed(changes)}); "
            + how_to_proceed(setting))


def how_to_proceed(setting: str) -> str:
    """What a person can do about a fix blocked by undeployed edits."""
    return (f"undeployed_changes is {setting}: deploy or revert those edits first, or publish them with the fix "
            "(the CLI's --undeployed-changes publish; the stack's remediator:undeployedChanges)")


def _redeploy_detail(stages: list[str], missing: list[str]) -> str:
    detail = f"redeployed {', '.join(stages)}" if stages else "no stage redeployed: the change takes effect at the next deployment"
    if missing:
        detail += f"; stages not found: {', '.join(missing)}"
    return detail


def _gone_report(region: str, api_id: str) -> ApiReport:
    return ApiReport(RestApi(region, api_id, "", None, {}), False, None, "API no longer exists")


def _intent_report(intent: Intent) -> ApiReport:
    """What to report of an API known only from its intent."""
    return ApiReport(RestApi(intent.region, intent.api_id, intent.api_name, intent.policy_after, {}), False, None)


def _gone(region: str, api_id: str) -> FixOutcome:
    return FixOutcome(_gone_report(region, api_id), "skipped", f"{region}/{api_id}: API was deleted; skipped")


def findings_fingerprint(findings: Iterable[Any], reason: str | None = None, policy: Any = None,
                         access: list[dict[str, Any]] | None = None) -> str:
    """One digest per exposure (Finding objects or their dicts), whatever its wording: what a person was told
    about an API. The same exposure on the next sweep is not told again; a wider one is.

    The exposure is each finding's kind, principal and remediation, with the Condition of the statement that
    grants it (operator, key, values: a removed aws:SourceVpce widens it), and the Conditions of the policy's
    Deny statements (`policy`, in any form parse_policy reads). Statement order, Sids, the case of condition
    keys and the order of values are wording: they change nothing. With `access` (ApiReport.to_dict's, aligned
    with the findings), each finding's reachability and the methods it reaches (verb, path, authorizationType,
    apiKeyRequired) are part of the exposure: a method switched from AWS_IAM to NONE is told again.
    """
    def canonical(condition: Any) -> Any:  # the same tests however worded: (operator, key in lower case, values)
        if not isinstance(condition, dict):
            return compact_json(condition) if condition is not None else None
        tests = []
        for operator, block in condition.items():
            if not isinstance(block, dict):
                tests.append([operator, None, [compact_json(block)]])
                continue
            for key, values in block.items():
                values = values if isinstance(values, list) else [values]
                tests.append([operator, key.lower() if isinstance(key, str) else key, sorted(compact_json(v) for v in values)])
        return sorted(tests, key=json.dumps)

    statements: list[Any] = []
    if policy:
        try:
            statements = statements_of(parse_policy(policy))
        except (PolicyError, TypeError):
            statements = []

    def granted_under(index: Any) -> Any:
        if type(index) is not int or not 0 <= index < len(statements) or not isinstance(statements[index], dict):
            return None
        return canonical(statements[index].get("Condition"))

    reach = {item.get("finding"): item for item in access or [] if isinstance(item, dict)}

    def reached(index: int) -> list[Any]:
        item = reach.get(index)
        return [] if item is None else [item.get("reachability"), item.get("methods_digest")]

    rows = sorted(json.dumps([d.get("kind"), d.get("principal"), d.get("remediation"), granted_under(d.get("statement_index"))]
                             + ([reached(i)] if access is not None else []))
                  for i, d in enumerate(f.to_dict() if hasattr(f, "to_dict") else f for f in findings))
    denies = sorted(json.dumps(canonical(s.get("Condition"))) for s in statements
                    if isinstance(s, dict) and s.get("Effect") == "Deny")
    return hashlib.sha256(json.dumps([rows, reason or "", denies]).encode("utf-8", "surrogatepass")).hexdigest()[:32]


def same_policy(left: str | None, right: str | None) -> bool:
    """Equal as documents: API Gateway returns what it stored in its own escaped form."""
    if left is None or right is None:
        return left == right
    if left == right:
        return True
    try:
        return parse_policy(left) == parse_policy(right)
    except PolicyError:
        return False
