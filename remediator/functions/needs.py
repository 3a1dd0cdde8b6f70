"""What a function needs from AWS, declared beside each function and turned into IAM by the stack.

Plain data, so that the Lambda bundle (which has no CDK) can hold it: each function module's
`needs(mode, slack)` returns a `Needs`, or None where the workflow never reaches that function in
that mode (its role is then granted nothing at all, not even its logs).
"""

from __future__ import annotations

import msgspec
from msgspec.structs import replace

# API Gateway control-plane resources, as paths under arn:<partition>:apigateway:<region>:: . The resource types are
# the Service Authorization Reference's ("Actions, resources, and condition keys for Amazon API Gateway Management"):
#   RestApi      arn:${Partition}:apigateway:${Region}::/restapis/${RestApiId}
#   Stage        arn:${Partition}:apigateway:${Region}::/restapis/${RestApiId}/stages/${StageName}
#   Deployment   arn:${Partition}:apigateway:${Region}::/restapis/${RestApiId}/deployments/${DeploymentId}
#   Resource     arn:${Partition}:apigateway:${Region}::/restapis/${RestApiId}/resources/${ResourceId}
#   Method       arn:${Partition}:apigateway:${Region}::/restapis/${RestApiId}/resources/${ResourceId}/methods/${HttpMethodType}
#   Integration  .../resources/${ResourceId}/methods/${HttpMethodType}/integration
#   Authorizer   arn:${Partition}:apigateway:${Region}::/restapis/${RestApiId}/authorizers/${AuthorizerId}
#   Model, RequestValidator, GatewayResponse, DocumentationPart/Version: /restapis/${RestApiId}/models|requestvalidators|...
# IAM's `*` matches across `/` (IAM user guide, "IAM JSON policy elements: Resource"), so "/restapis/*" would also be
# every method, integration, resource and authorizer of every API. A REST API ID is 10 characters (API Gateway's
# generated IDs; CreateRestApi returns e.g. "a1b2c3d4e5"), and `?` matches exactly one character: "/restapis/??????????"
# is a REST API itself and nothing under it.
API_ID = "??????????"
RESTAPIS = "/restapis"  # the collection: GetRestApis (GET)
RESTAPI = f"/restapis/{API_ID}"  # one REST API: GetRestApi (GET), UpdateRestApi (PATCH)
DEPLOYMENTS = f"/restapis/{API_ID}/deployments"  # CreateDeployment (POST)
DEPLOYMENT = f"/restapis/{API_ID}/deployments/*"  # GetDeployment (GET): is it this change's, and not older than a stage serves
STAGES = f"/restapis/{API_ID}/stages*"  # GetStages (GET), UpdateStage (PATCH): /stages and /stages/<name>
# GetResources with embed=methods (GET /restapis/<id>/resources, paged): who can actually call each finding's methods
# (remediator.core.access). Read only, and only for APIs with findings.
RESOURCES = f"/restapis/{API_ID}/resources*"

# Changing a resource policy takes apigateway:UpdateRestApiPolicy on top of apigateway:PATCH
# (API Gateway developer guide, "Create and attach an API Gateway resource policy to an API").
WRITE_POLICY = (("GET", RESTAPI), ("PATCH", RESTAPI), ("UpdateRestApiPolicy", RESTAPI))

# The write verbs of API Gateway's control plane; a role that has any of them is a writer.
WRITE_VERBS = ("DELETE", "PATCH", "POST", "PUT")
# What a writer is explicitly denied, whatever else it is allowed (a Deny wins over any Allow): every write on the
# sub-resources of a REST API the bot never changes (the resource types above), and on a stage's own sub-resources
# (cache, SDKs, exports) and a deployment (UpdateDeployment, DeleteDeployment).
SUB_RESOURCES = tuple(f"/restapis/{API_ID}/{sub}" for sub in (
    "resources*",  # Resource, Method, Integration, MethodResponse, IntegrationResponse
    "authorizers*", "models*", "requestvalidators*", "gatewayresponses*", "documentation*",
    "deployments/*", "stages/*/*",
))

# Partition keys in the table (remediator.adapters.dynamodb): "approval#<id>" holds a pending approval
# and its task token, "execution#<name>" points an execution at its approval; "failures#<region>#<id>"
# counts an API's failed fixes. Functions granted these may touch only these items, never the audit
# records ("api#...").
APPROVAL_ITEM_KEYS = ("approval#*", "execution#*")
FAILURE_ITEM_KEYS = ("failures#*",)
# The intent journal and the deployment lease (remediator.adapters.dynamodb.DynamoJournal, DynamoLease):
# "intent#open" holds each API's open intent, "intent#<id>" a closed one, "lease#deployments" the
# account's turn to deploy. Audit records are "api#<region>#<id>" items, put only (never rewritten).
JOURNAL_ITEM_KEYS = ("intent#*", "lease#*")
AUDIT_ITEM_KEYS = ("api#*",)
# What people were last told about each API needing a person (NoticeLedger): "notice#<region>", and in an
# organization's hub "notice#<region>#<account>".
NOTICE_ITEM_KEYS = ("notice#*",)
# Organization mode: the organization's roster (its active accounts, those under each trusted OU, those that
# left): "org#roster" / <organization id>, written by the roster function only.
ROSTER_ITEM_KEYS = ("org#*",)
# The Organizations calls that read the roster (delegated administrator); none takes a resource ARN.
ORGANIZATION_READS = ("organizations:DescribeOrganization", "organizations:ListAccounts",
                      "organizations:ListAccountsForParent", "organizations:ListOrganizationalUnitsForParent")


class Needs(msgspec.Struct, frozen=True):
    """What one function may do, beyond writing its own log group."""

    apigateway: tuple[tuple[str, str], ...] = ()  # (action, resource path): apigateway:<action> on that path
    read_trust: bool = False  # ssm:GetParameter on the trust parameter
    read_settings: bool = False  # ssm:GetParameter on the settings parameter (the exempt API IDs)
    start_execution: bool = False  # states:StartExecution on the state machine
    put_audit: bool = False  # dynamodb:PutItem of audit records (AUDIT_ITEM_KEYS), alone or in a transaction
    journal: tuple[str, ...] = ()  # DynamoDB actions on the journal and lease items only (JOURNAL_ITEM_KEYS)
    publish: bool = False  # sns:Publish to the topic, and the topic key for it
    approvals: tuple[str, ...] = ()  # DynamoDB actions on the approval items only (APPROVAL_ITEM_KEYS)
    failures: tuple[str, ...] = ()  # DynamoDB actions on the failure counts only (FAILURE_ITEM_KEYS)
    notices: tuple[str, ...] = ()  # DynamoDB actions on what people were told only (NOTICE_ITEM_KEYS)
    slack_token: bool = False  # read the Slack bot token secret
    slack_signing_secret: bool = False  # read the Slack signing secret
    answer_tasks: bool = False  # states:SendTaskSuccess / SendTaskFailure for the workflow's task tokens
    invoke_self: bool = False  # lambda:InvokeFunction on the function itself (an asynchronous invocation of its own)
    # Organization mode only.
    assume_spoke: bool = False  # sts:AssumeRole on the spoke role of the member accounts (its API Gateway calls)
    # Whether its spoke sessions may write; those that may not are read-only sessions (remediator.adapters.sts,
    # `read_only`: a session policy that leaves only apigateway:GET).
    spoke_writes: bool = False
    read_organization: bool = False  # ORGANIZATION_READS
    roster: tuple[str, ...] = ()  # DynamoDB actions on the roster item only (ROSTER_ITEM_KEYS)
    results: tuple[str, ...] = ()  # S3 actions on the organization sweep's results bucket (objects)
    # Security Hub (remediator:securityHub; the stack grants these only where the setting is not off, and in account
    # mode only): securityhub:BatchImportFindings on the account's default product, DescribeHub on the hub where the
    # setting is auto; GetFindings on the hub (the sweep: the findings of APIs deleted since).
    import_findings: bool = False
    read_findings: bool = False

    def in_organization(self) -> Needs:
        """The same function in the hub of an organization: its API Gateway calls are made in the member
        accounts, as their spoke role (granted there, see `spoke_calls`); it assumes that role and reads
        the roster to know which accounts are the organization's."""
        if not self.apigateway:
            return self
        return replace(self, apigateway=(), assume_spoke=True, spoke_writes=writes_apigateway(self.apigateway),
                       roster=tuple(sorted({*self.roster, "dynamodb:GetItem"})))


def spoke_calls(all_needs: list[Needs | None]) -> tuple[tuple[str, str], ...]:
    """The API Gateway calls the spoke role must allow: every hub function's, as the single-account stack grants them."""
    return tuple(sorted({call for needs in all_needs if needs is not None for call in needs.apigateway}))


def writes_apigateway(calls: tuple[tuple[str, str], ...]) -> bool:
    """Whether these API Gateway calls change anything (any verb but GET, or UpdateRestApiPolicy)."""
    return any(action != "GET" for action, _ in calls)


def denied_writes(calls: tuple[tuple[str, str], ...]) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The explicit Deny a role with these calls gets: (actions, paths), empty for a role that only reads. The
    write verbs it is allowed anywhere, on every sub-resource path (SUB_RESOURCES)."""
    verbs = sorted({f"apigateway:{action}" for action, _ in calls if action in WRITE_VERBS})
    return (tuple(verbs), SUB_RESOURCES) if verbs else ((), ())
