"""Strict schemas for everything the bot reads back: intents (the journal), audit records, approval requests,
the DynamoDB items that carry them, and the deployment-turn file.

What was stored is untrusted input: a crafted journal line or DynamoDB item must never steer a write. Each
stored thing has one decoder here (a msgspec Struct, `forbid_unknown_fields` since the format is ours), with
exact types (a bool is not an int, an int is not a str), known states only, IDs in AWS's formats and sizes
bounded. `decode` turns whatever is wrong into one line naming the source and the item.

Patterns end in `\\Z`, not `$` (which also matches before a trailing newline), and use `[0-9]`, not `\\d`
(which matches every script's digits); msgspec applies them with `re.search`.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal, TypeVar

import msgspec

# --- formats ----------------------------------------------------------------------------------------------

# An AWS account ID is 12 digits ("Your AWS account ID", AWS Account Management Reference Guide).
Account = Annotated[str, msgspec.Meta(pattern=r"^[0-9]{12}\Z")]
# Region codes as listed in "AWS Regions and Availability Zones" (AWS General Reference): us-east-1,
# us-gov-west-1, cn-north-1, ap-southeast-5 ...
Region = Annotated[str, msgspec.Meta(pattern=r"^[a-z]{2}(-[a-z]+)+-[0-9]\Z")]
# A REST API's ID, as API Gateway's RestApi.id and the execute-api host name carry it: 10 lowercase letters/digits.
RestApiId = Annotated[str, msgspec.Meta(pattern=r"^[a-z0-9]{10}\Z")]
# Deployment.id: AWS issues 6 lowercase letters/digits, moto 10; bounded, never anything but [a-z0-9].
DeploymentId = Annotated[str, msgspec.Meta(pattern=r"^[a-z0-9]{1,32}\Z")]
# Stage names: "Stage names can only contain alphanumeric characters, hyphens, and underscores. Maximum length is
# 128 characters." (API Gateway Developer Guide, "Set up a stage for a REST API in API Gateway").
StageName = Annotated[str, msgspec.Meta(pattern=r"^[A-Za-z0-9_-]{1,128}\Z")]
# An intent's ID: uuid.uuid4().hex (remediator.transaction.writing).
IntentId = Annotated[str, msgspec.Meta(pattern=r"^[0-9a-f]{32}\Z")]
# Organization IDs: "o-" and 10 to 32 lowercase letters or digits (AWS Organizations API Reference, Organization.Id).
OrgId = Annotated[str, msgspec.Meta(pattern=r"^o-[a-z0-9]{10,32}\Z")]
# remediator.audit.utc_now(): seconds, UTC, "Z".
Timestamp = Annotated[str, msgspec.Meta(pattern=r"^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z\Z")]
# remediator.approvals.APPROVAL_ID (secrets.token_urlsafe(18) is 24 characters).
ApprovalId = Annotated[str, msgspec.Meta(pattern=r"^[A-Za-z0-9_-]{20,64}\Z")]

# "Length, in characters, of API Gateway resource policy: 8,192" is adjustable per account (API Gateway Developer
# Guide, "Quotas for configuring and running a REST API in API Gateway"), and a policy is kept exactly as API
# Gateway returned it (escaped); so no fixed AWS limit applies here, and 64 KiB is the hard bound.
POLICY_LIMIT = 64 * 1024
Policy = Annotated[str, msgspec.Meta(max_length=POLICY_LIMIT)]
Name = Annotated[str, msgspec.Meta(max_length=4096)]  # an API's name, a Sid, a principal (an ARN), a Slack channel or user
Text = Annotated[str, msgspec.Meta(max_length=16 * 1024)]  # who triggered a change, why it closed, a finding's detail
# Epoch seconds, bounded (NaN and infinities fail both bounds).
Seconds = Annotated[float, msgspec.Meta(ge=0, le=1e11)]
WholeSeconds = Annotated[int, msgspec.Meta(ge=0, le=10**11)]

# Lists: a policy within POLICY_LIMIT names at most a few thousand principals; a REST API has at most 10 stages by
# default (adjustable), and the engine writes one patch operation.
FINDINGS_LIMIT = 20_000
STAGES_LIMIT = 1_000
PATCH_LIMIT = 16
TRUSTED_LIMIT = 10_000


class _Strict(msgspec.Struct, forbid_unknown_fields=True):
    """Our own formats: a field nobody wrote is refused, not ignored."""


# --- the parts ---------------------------------------------------------------------------------------------

class PatchOperation(_Strict):
    # PatchOperation (API Gateway API Reference): op is one of add, remove, replace, move, copy, test.
    op: Literal["add", "remove", "replace", "move", "copy", "test"]
    path: Name
    value: Policy | msgspec.UnsetType = msgspec.UNSET


class Finding(_Strict):
    """remediator.core.trust.Finding.to_dict()."""

    kind: Literal["untrusted-account", "orphaned-principal", "wildcard-principal", "not-principal",
                  "unrecognized-principal", "ambiguous-policy"]
    statement_index: Annotated[int, msgspec.Meta(ge=0, le=100_000)]
    sid: Name | None
    principal: Name
    account: Name | None
    remediation: Literal["remove", "report-only"]
    detail: Text


class TrustSettings(_Strict):
    """remediator.core.TrustConfig.to_dict(): the trust settings a fix was computed under."""

    owner_account: Account
    trusted_accounts: Annotated[list[Account], msgspec.Meta(max_length=TRUSTED_LIMIT)] = []
    trusted_org_ids: Annotated[list[OrgId], msgspec.Meta(max_length=TRUSTED_LIMIT)] = []
    partition: Literal["aws", "aws-cn", "aws-us-gov", "aws-iso", "aws-iso-b"] = "aws"
    remove_wildcard_principals: bool = False


Findings = Annotated[list[Finding], msgspec.Meta(max_length=FINDINGS_LIMIT)]
PatchOperations = Annotated[list[PatchOperation], msgspec.Meta(max_length=PATCH_LIMIT)]
StageNames = Annotated[list[StageName], msgspec.Meta(max_length=STAGES_LIMIT)]

class UndeployedChange(_Strict):
    """remediator.core.undeployed.UndeployedChange.to_dict(): an edit of the API a stage did not serve yet."""

    stage: StageName
    path: Annotated[str, msgspec.Meta(pattern=r"^/", max_length=1024)]
    http_method: Literal["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS", "ANY"]
    kind: Literal["method-added", "method-removed", "authorization-changed", "api-key-changed"]
    deployed: Annotated[str, msgspec.Meta(max_length=1024)] | None = None
    now: Annotated[str, msgspec.Meta(max_length=1024)] | None = None


# A REST API's methods: at most a few thousand (300 resources by default, each at most 8 verbs) per stage.
UndeployedChanges = Annotated[list[UndeployedChange], msgspec.Meta(max_length=FINDINGS_LIMIT)]

ACTIONS = ("remediate", "rollback")
Action = Literal["remediate", "rollback"]


# --- the stored things ------------------------------------------------------------------------------------

class PlannedStage(_Strict):
    name: StageName
    deployment_id: DeploymentId | None


class Intent(_Strict):
    """remediator.journal.Intent.to_dict() (with `kind: "intent"` on a journal line)."""

    intent_id: IntentId
    account: Account
    region: Region
    api_id: RestApiId
    api_name: Name
    action: Action
    policy_before: Policy
    policy_after: Policy
    patch_operations: PatchOperations
    stages: Annotated[list[PlannedStage], msgspec.Meta(max_length=STAGES_LIMIT)]
    triggered_by: Text
    holder: Text
    expires_at: Seconds = 0.0
    created_at: Timestamp | msgspec.UnsetType = msgspec.UNSET
    # remediator.journal.PENDING and CLOSED_STATES
    state: Literal["pending", "applied", "restored", "failed", "abandoned", "superseded", "refused"] = "pending"
    deployment_id: DeploymentId | None = None
    missing_stages: StageNames = []
    findings: Findings = []
    reason: Text = ""
    trust: TrustSettings | None = None
    undoing: bool = False  # the undo began: once the policy is `before` again, the change closes as restored
    fence: Annotated[int, msgspec.Meta(ge=0, le=1_000_000)] = 0  # the claim's fencing token (DynamoJournal)
    serving: Annotated[dict[StageName, DeploymentId], msgspec.Meta(max_length=STAGES_LIMIT)] = {}  # a split, stage by stage
    undeployed: UndeployedChanges = []  # edits the redeploy may publish with the fix, as planned
    kind: Literal["intent"] | msgspec.UnsetType = msgspec.UNSET  # on a journal line only


class AuditRecord(_Strict):
    """remediator.audit.AuditRecord.to_dict()."""

    account: Account
    region: Region
    api_id: RestApiId
    action: Action
    policy_before: Policy
    policy_after: Policy
    patch_operations: PatchOperations
    stages_redeployed: StageNames
    api_name: Name
    deployment_id: DeploymentId | None
    triggered_by: Text
    findings: Findings = []
    timestamp: Timestamp | msgspec.UnsetType = msgspec.UNSET
    change_id: Annotated[str, msgspec.Meta(pattern=r"^([0-9a-f]{32})?\Z")] = ""  # an intent's ID, or none (older records)
    # refused: the guard wrote nothing; lost-update: a person's change one of the bot's writes landed on
    outcome: Literal["applied", "restored", "refused", "lost-update"] = "applied"
    trust: TrustSettings | None = None
    undeployed: UndeployedChanges = []  # applied: the edits published with the fix


# remediator.approvals.APPROVAL_STATUSES
ApprovalStatus = Literal["pending", "approved", "rejected", "timed-out", "applied", "failed", "superseded"]


class ApprovalRequest(_Strict):
    """remediator.approvals.ApprovalRequest.to_dict()."""

    approval_id: ApprovalId
    # A Step Functions execution name: 1 to 80 characters (Step Functions API Reference, StartExecution.name).
    execution: Annotated[str, msgspec.Meta(min_length=1, max_length=80)]
    # Step Functions task tokens are up to 1024 characters (SendTaskSuccess.taskToken).
    task_token: Annotated[str, msgspec.Meta(min_length=1, max_length=1024)]
    account: Account
    region: Region
    api_id: RestApiId
    api_name: Name
    changed_by: Text
    findings: Findings
    patch_operations: PatchOperations
    policy_before: Policy
    expires_at: WholeSeconds
    status: ApprovalStatus = "pending"
    channel: Name | None = None
    ts: Name | None = None
    decision: Literal["approved", "rejected"] | None = None
    decided_by: Name | None = None
    decided_at: WholeSeconds | None = None
    detail: Text = ""
    stages: StageNames = []
    undeployed: UndeployedChanges = []  # edits of the API the fix's redeploy also publishes: approving publishes them


# --- decoding ---------------------------------------------------------------------------------------------

T = TypeVar("T")


class StoredError(ValueError):
    """Something read back is not what the bot writes; nothing is taken from it. The message is one line."""


def problem(error: Exception) -> str:
    """msgspec's message on one line, bounded, the field first: "stages[0].name: Expected `str` ..."."""
    text = " ".join(str(error).split())
    found = _AT.search(text)
    if found:
        head = text[:found.start()]
        text = f"{found.group(1)}: {head}" if found.group(1) else head
    return text[:300]


_AT = re.compile(r" - at `\$\.?(.*)`\Z")


def decode(data: Any, schema: type[T], where: str, error: type[ValueError] = StoredError) -> T:
    """`data` (already parsed JSON, or a Python value) as `schema`, or `error` naming `where` and what is wrong."""
    try:
        return msgspec.convert(data, schema, strict=True)
    except msgspec.ValidationError as invalid:
        raise error(f"{where}: {problem(invalid)}") from None


def plain(value: Any) -> Any:
    """A decoded Struct (or list of them) as the dicts and lists the rest of the code uses (unset fields left out)."""
    return msgspec.to_builtins(value)


def fields_of(struct: Any) -> dict[str, Any]:
    """A decoded Struct's fields, unset ones left out, nested Structs kept as dicts."""
    return {name: plain(getattr(struct, name)) for name in struct.__struct_fields__
            if getattr(struct, name) is not msgspec.UNSET}
