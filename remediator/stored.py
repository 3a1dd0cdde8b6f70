"""The constrained field types of everything the bot reads back (intents, audit records, approval requests,
the DynamoDB items that carry them, the deployment-turn file), and the schemas of the parts they nest.

What was stored is untrusted input: a crafted journal line or DynamoDB item must never steer a write. Each
stored shape is one msgspec Struct beside the code that uses it (remediator.journal.Intent,
remediator.audit.AuditRecord, remediator.approvals.ApprovalRequest), decoded by remediator.codec with exact
types (a bool is not an int, an int is not a str), known states only, IDs in AWS's formats and sizes bounded,
from the types here. `decode` turns whatever is wrong into one line naming the source and the item.

Patterns end in `\\Z`, not `$` (which also matches before a trailing newline), and use `[0-9]`, not `\\d`
(which matches every script's digits); msgspec applies them with `re.search`.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

import msgspec

from remediator.codec import Checked, StoredError, decode, problem

__all__ = ["StoredError", "decode", "problem"]  # the codec's, where the readers have always found them

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



ACTIONS = ("remediate", "rollback")
Action = Literal["remediate", "rollback"]


# --- the parts the stored shapes nest, kept as dicts (remediator.codec.Checked) -----------------------------

class FindingDict(Checked):
    schema = Finding


class PatchDict(Checked):
    schema = PatchOperation


class TrustDict(Checked):
    schema = TrustSettings


class UndeployedDict(Checked):
    schema_at = "remediator.core.undeployed:UndeployedChange"  # the core's (importing it imports the engine)


FindingDicts = Annotated[list[FindingDict], msgspec.Meta(max_length=FINDINGS_LIMIT)]
PatchDicts = Annotated[list[PatchDict], msgspec.Meta(max_length=PATCH_LIMIT)]
# A REST API's methods: at most a few thousand (300 resources by default, each at most 8 verbs) per stage.
UndeployedDicts = Annotated[list[UndeployedDict], msgspec.Meta(max_length=FINDINGS_LIMIT)]


# remediator.approvals.APPROVAL_STATUSES
ApprovalStatus = Literal["pending", "approved", "rejected", "timed-out", "applied", "failed", "superseded"]
