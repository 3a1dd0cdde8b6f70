"""Planning: what should happen to an API, and the fix that would do it. The one decision ladder
(`ApiReport.verdict`), the settings a sweep plans with, the report of one API (its findings, who can actually
call them, what a redeploy would publish besides the fix) and the digests that tell one exposure, or one
policy, from another. Reads the account through the adapter; never writes to it.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Iterator
from enum import Enum
from typing import Any

import msgspec
from botocore.exceptions import BotoCoreError, ClientError
from msgspec.structs import replace

from remediator.adapters.apigateway import ApiGatewayAdapter, ApiNotFound, RestApi
from remediator.workflow.errors import THROTTLING_CODES, TRANSIENT_CODES
from remediator.core import Evaluation, PolicyError, TrustConfig, compact_json, evaluate_policy, parse_policy
from remediator.core.access import ApiAccess, effective_access
from remediator.core.policy import statements_of
from remediator.core.undeployed import UNDEPLOYED_SETTINGS, SummaryError, UndeployedChange, summary_of_methods, undeployed_changes
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


class SweepSettings(msgspec.Struct, frozen=True):
    trust: TrustConfig
    exempt_tag_key: str = DEFAULT_EXEMPT_TAG_KEY
    exempt_api_ids: frozenset[str] = frozenset()
    stages: StageSelection = msgspec.field(default_factory=StageSelection)
    undeployed: str = "ask"  # UNDEPLOYED_SETTINGS

    def __post_init__(self) -> None:
        if self.undeployed not in UNDEPLOYED_SETTINGS:  # fail closed: a misspelt value must not publish anything
            raise ValueError(f"undeployed_changes {self.undeployed!r:.40} is not one of {', '.join(UNDEPLOYED_SETTINGS)}")

    def is_exempt(self, api: RestApi) -> bool:
        return api.api_id in self.exempt_api_ids or api.tags.get(self.exempt_tag_key, "").strip().lower() == "true"


class ApiReport(msgspec.Struct, frozen=True):
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


def blocked_detail(changes: Iterable[UndeployedChange], setting: str) -> str:
    """Why a fix was not made, and how to go on."""
    return (f"not fixed: the redeploy would also publish edits of the API that are not deployed ({describe_undeployed(changes)}); "
            + how_to_proceed(setting))


def rollback_blocked_detail(changes: Iterable[UndeployedChange], setting: str) -> str:
    """Why a rollback was not made, and how to go on: a redeploy publishes the whole API, so a rollback publishes
    only what it restores, as a fix does (undeployed_changes; the rollback command's --undeployed-changes)."""
    return (f"not rolled back: the redeploy would also publish edits of the API that are not deployed "
            f"({describe_undeployed(changes)}); undeployed_changes is {setting}: deploy or revert those edits first, or "
            "publish them with the rollback (rollback --apply --undeployed-changes publish)")


def how_to_proceed(setting: str) -> str:
    """What a person can do about a fix blocked by undeployed edits."""
    return (f"undeployed_changes is {setting}: deploy or revert those edits first, or publish them with the fix "
            "(the CLI's --undeployed-changes publish; the stack's remediator:undeployedChanges)")


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
