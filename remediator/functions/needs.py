"""What a function needs from AWS, declared beside each function and turned into IAM by the stack.

Plain data, so that the Lambda bundle (which has no CDK) can hold it: each function module's
`needs(mode, slack)` returns a `Needs`, or None where the workflow never reaches that function in
that mode (its role is then granted nothing at all, not even its logs).
"""

from __future__ import annotations

from dataclasses import dataclass

# API Gateway control-plane resources, as paths under arn:<partition>:apigateway:<region>::
RESTAPIS = "/restapis"  # the collection: GetRestApis (GET)
RESTAPI = "/restapis/*"  # one REST API: GetRestApi (GET), UpdateRestApi (PATCH)
DEPLOYMENTS = "/restapis/*/deployments"  # CreateDeployment (POST)
STAGES = "/restapis/*/stages*"  # GetStages (GET), UpdateStage (PATCH)

# Changing a resource policy takes apigateway:UpdateRestApiPolicy on top of apigateway:PATCH
# (API Gateway developer guide, "Create and attach an API Gateway resource policy to an API").
WRITE_POLICY = (("GET", RESTAPI), ("PATCH", RESTAPI), ("UpdateRestApiPolicy", RESTAPI))

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
# What people were last told about each API needing a person (NoticeLedger): "notice#<region>".
NOTICE_ITEM_KEYS = ("notice#*",)


@dataclass(frozen=True)
class Needs:
    """What one function may do, beyond writing its own log group."""

    apigateway: tuple[tuple[str, str], ...] = ()  # (action, resource path): apigateway:<action> on that path
    read_trust: bool = False  # ssm:GetParameter on the trust parameter
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
