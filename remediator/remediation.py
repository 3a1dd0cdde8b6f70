"""The remediation service: assess, decide, fix and roll back REST APIs. The shell around the trust
engine that the CLI (scan, fix, rollback) and the workflow's Lambdas share.

Every write re-reads the API first and re-plans from what is there now, so a policy
changed since it was assessed is never overwritten with a stale fix.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from remediator.adapters.apigateway import ApiGatewayAdapter, ApiNotFound, RedeployFailed, RestApi
from remediator.audit import AuditRecord, AuditSink
from remediator.core import Evaluation, PolicyError, TrustConfig, compact_json, evaluate_policy, parse_policy
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
    GONE = "gone"  # the API no longer exists

    @property
    def needs_attention(self) -> bool:
        """Whether the scheduled sweep sends the API through the workflow."""
        return self in (Verdict.FIX, Verdict.REPORT_ONLY)


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

    def is_exempt(self, api: RestApi) -> bool:
        return api.api_id in self.exempt_api_ids or api.tags.get(self.exempt_tag_key, "").strip().lower() == "true"


@dataclass(frozen=True)
class ApiReport:
    """What the sweep found on one API."""

    api: RestApi
    exempt: bool
    evaluation: Evaluation | None
    error: str | None = None

    @property
    def needs_fix(self) -> bool:
        return not self.exempt and self.evaluation is not None and bool(self.evaluation.patch_operations)

    def verdict(self, failures: int = 0, failure_limit: int | None = None) -> Verdict:
        """The one decision ladder: exempt, unreadable, fixable (unless the fix keeps failing), findings, compliant."""
        if self.exempt:
            return Verdict.EXEMPT
        if self.error or self.evaluation is None:
            return Verdict.REPORT_ONLY
        if self.needs_fix:
            return Verdict.HELD if failure_limit is not None and failures >= failure_limit else Verdict.FIX
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


def scan(adapter: ApiGatewayAdapter, regions: Iterable[str], settings: SweepSettings) -> Iterator[ApiReport]:
    for region in regions:
        for api in adapter.list_rest_apis(region):
            yield assess(api, settings)


@dataclass
class FixOutcome:
    """What a fix, a dry run or a rollback did to one API."""

    report: ApiReport
    action: str  # proposed | applied | unchanged | exempt | report-only | skipped | failed | refused | rolled-back
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


class Remediator:
    """Applies fixes and rollbacks to live APIs through the adapter, recording each change."""

    def __init__(self, adapter: ApiGatewayAdapter, settings: SweepSettings, audit: AuditSink, account: str, triggered_by: str) -> None:
        self.adapter = adapter
        self.settings = settings
        self.audit = audit
        self.account = account
        self.triggered_by = triggered_by

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
        if not apply:
            return FixOutcome(report, "proposed", "dry run: nothing changed")
        return self.apply(report.api.region, report.api.api_id, expected_policy=report.api.policy)

    def apply(self, region: str, api_id: str, expected_policy: str | None = None) -> FixOutcome:
        """Patch, redeploy and record in one go (the CLI); the workflow runs the same steps as states."""
        patched = self.patch(region, api_id, expected_policy)
        if patched.action != "patched":
            return patched.outcome()
        try:
            stages, deployment_id, missing = self.redeploy(patched.report.api)
        except (RedeployFailed, ApiNotFound, ClientError, BotoCoreError) as error:
            return self._undo(patched, error)
        record = self.record(patched, stages, deployment_id)
        outcome = patched.outcome()
        outcome.action = "applied"
        outcome.detail = _redeploy_detail(stages, missing)
        outcome.stages_redeployed, outcome.deployment_id, outcome.audit = list(stages), deployment_id, record
        return outcome

    def patch(self, region: str, api_id: str, expected_policy: str | None = None,
              approved_operations: list[dict[str, str]] | None = None) -> Patched:
        """Re-read the API, re-plan if its policy changed since it was assessed, and write the fix.

        With `approved_operations` (approval mode) nothing is written unless the policy is still the
        one the person saw and the plan still that patch: otherwise it comes back as "stale", from
        the same read that would have been patched, to be proposed again.
        """
        try:
            api = self.adapter.get_rest_api(region, api_id)
        except ApiNotFound:
            return Patched(_gone_report(region, api_id), "skipped", f"{region}/{api_id}: API was deleted; skipped")
        report = assess(api, self.settings)
        replanned = expected_policy is not None and not _same_policy(api.policy, expected_policy)
        if report.exempt:
            return Patched(report, "exempt", "never changed", replanned=replanned)
        if report.error or report.evaluation is None:
            return Patched(report, "failed", report.error or "no evaluation", replanned=replanned)
        if not report.needs_fix:
            return Patched(report, "unchanged", "nothing to remove now", replanned=replanned)
        operations = report.evaluation.patch_operations
        if approved_operations is not None and (replanned or operations != approved_operations):
            return Patched(report, "stale", "the policy changed after the proposal; nothing written", replanned=True)
        try:
            updated = self.adapter.update_policy(region, api_id, operations)
        except ApiNotFound:
            return Patched(_gone_report(region, api_id), "skipped", f"{region}/{api_id}: API was deleted; skipped")
        except (ClientError, BotoCoreError) as error:
            return Patched(report, "failed", f"policy not changed: {error}", replanned=replanned)
        written = updated.policy or operations[0]["value"]
        return Patched(report, "patched", "policy written", api.policy or "", written, operations, replanned)

    def redeploy(self, api: RestApi, stages: list[str] | None = None) -> tuple[list[str], str | None, list[str]]:
        """(stages redeployed, deployment ID, named stages that do not exist)."""
        missing: list[str] = []
        if stages is None:
            existing = [s.name for s in self.adapter.list_stages(api.region, api.api_id)]
            stages, missing = self.settings.stages.pick(existing)
        deployment_id = self.adapter.redeploy(api.region, api.api_id, stages, "apigw-remediator: resource policy fixed")
        return stages, deployment_id, missing

    def record(self, patched: Patched, stages: list[str], deployment_id: str | None,
               findings: list[dict[str, Any]] | None = None) -> AuditRecord:
        """Append the audit record; `findings` when they were judged in an earlier step (the workflow)."""
        api = patched.report.api
        if findings is None:
            findings = [f.to_dict() for f in patched.report.evaluation.findings] if patched.report.evaluation else []
        return self.record_change(AuditRecord(
            account=self.account,
            region=api.region,
            api_id=api.api_id,
            api_name=api.name,
            action=patched.change,
            policy_before=patched.before,
            policy_after=patched.written,
            patch_operations=patched.operations,
            stages_redeployed=list(stages),
            deployment_id=deployment_id,
            triggered_by=self.triggered_by,
            findings=findings,
        ))

    def record_change(self, record: AuditRecord) -> AuditRecord:
        """Append one audit record (the workflow builds it from its typed state)."""
        self.audit.append(record)
        log.info("policy_changed", action=record.action, region=record.region, api_id=record.api_id,
                 stages=record.stages_redeployed, deployment_id=record.deployment_id)
        return record

    def restore(self, region: str, api_id: str, before: str, written: str) -> str:
        """Put the previous policy back, only if the API still holds what we wrote; says what it did."""
        current = self.adapter.get_rest_api(region, api_id)
        if not _same_policy(current.policy, written):
            return "not restored: the policy changed again since the fix was written"
        self.adapter.update_policy(region, api_id, [{"op": "replace", "path": "/policy", "value": compact_json(parse_policy(before))}])
        return "previous policy restored"

    def rollback(self, record: AuditRecord, apply: bool, force: bool = False) -> FixOutcome:
        """Restore the policy from before a remediation, unless someone changed it since (or `force`)."""
        try:
            api = self.adapter.get_rest_api(record.region, record.api_id)
        except ApiNotFound:
            return _gone(record.region, record.api_id)
        report = ApiReport(api, self.settings.is_exempt(api), None)
        if not force and not _same_policy(api.policy, record.policy_after):
            raise RollbackRefused(
                f"{record.api_id}: the current policy is not the one the remediation of {record.timestamp} wrote; "
                "someone changed it since (use --force to restore anyway)"
            )
        restored = compact_json(parse_policy(record.policy_before))
        operations = [{"op": "replace", "path": "/policy", "value": restored}]
        if not apply:
            return FixOutcome(report, "proposed", f"dry run: would restore the policy of {record.timestamp}")
        try:
            updated = self.adapter.update_policy(record.region, record.api_id, operations)
        except ApiNotFound:
            return _gone(record.region, record.api_id)
        patched = Patched(report, "patched", "", api.policy or "", updated.policy or restored, operations, change="rollback")
        existing = [s.name for s in self.adapter.list_stages(record.region, record.api_id)]
        try:
            stages, deployment_id, _ = self.redeploy(api, [s for s in record.stages_redeployed if s in existing])
        except (RedeployFailed, ApiNotFound, ClientError, BotoCoreError) as error:
            return self._undo(patched, error)
        audit = self.record(patched, stages, deployment_id)
        return FixOutcome(report, "rolled-back", _redeploy_detail(stages, []), list(stages), deployment_id, audit)

    def _undo(self, patched: Patched, error: Exception) -> FixOutcome:
        """A redeploy failed: put the previous policy back so the API is never left half-fixed."""
        api = patched.report.api
        stages_done = error.stages_done if isinstance(error, RedeployFailed) else []
        if stages_done:
            # A stage already serves the new policy; restoring the policy alone would split stages and source.
            record = self.record(patched, stages_done, getattr(error, "deployment_id", None))
            return FixOutcome(patched.report, "failed", f"policy changed and partly redeployed ({', '.join(stages_done)}): {error}",
                              stages_done, record.deployment_id, record)
        try:
            result = self.restore(api.region, api.api_id, patched.before, patched.written)
        except (ApiNotFound, ClientError, BotoCoreError, PolicyError) as undo_error:
            log.error("undo_failed", region=api.region, api_id=api.api_id, error=str(undo_error))
            return FixOutcome(patched.report, "failed", f"redeploy failed ({error}) and the previous policy could not be restored ({undo_error})")
        log.warning("redeploy_failed", region=api.region, api_id=api.api_id, error=str(error), undo=result)
        return FixOutcome(patched.report, "failed", f"redeploy failed, {result}, nothing changed: {error}")


@dataclass
class Patched:
    """The result of writing a fix (or of deciding not to): what the redeploy and the record need."""

    report: ApiReport
    action: str  # patched | unchanged | exempt | skipped | failed | stale
    detail: str
    before: str = ""
    written: str = ""
    operations: list[dict[str, str]] = field(default_factory=list)
    replanned: bool = False
    change: str = "remediate"

    def outcome(self) -> FixOutcome:
        return FixOutcome(self.report, self.action, self.detail, replanned=self.replanned)


def _redeploy_detail(stages: list[str], missing: list[str]) -> str:
    detail = f"redeployed {', '.join(stages)}" if stages else "no stage redeployed: the change takes effect at the next deployment"
    if missing:
        detail += f"; stages not found: {', '.join(missing)}"
    return detail


def _gone_report(region: str, api_id: str) -> ApiReport:
    return ApiReport(RestApi(region, api_id, "", None, {}), False, None, "API no longer exists")


def _gone(region: str, api_id: str) -> FixOutcome:
    return FixOutcome(_gone_report(region, api_id), "skipped", f"{region}/{api_id}: API was deleted; skipped")


def policy_digest(policy: str | None) -> str:
    """One digest per policy document, whatever form API Gateway returned it in (escaped or not)."""
    if policy is None:
        return "none"
    try:
        text = compact_json(parse_policy(policy))
    except PolicyError:
        text = policy
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


def _same_policy(left: str | None, right: str | None) -> bool:
    """Equal as documents: API Gateway returns what it stored in its own escaped form."""
    if left is None or right is None:
        return left == right
    if left == right:
        return True
    try:
        return parse_policy(left) == parse_policy(right)
    except PolicyError:
        return False
