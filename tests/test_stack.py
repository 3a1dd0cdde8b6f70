"""The CDK stack: synthesized once through the Python API, then checked resource by resource,
against cdk-nag's AwsSolutions pack and against cfn-lint.

The first run on a clean machine builds the Lambda asset under build/ (pip downloads the
runtime dependencies once); later runs reuse it.
"""

from __future__ import annotations

import fnmatch
import json
import os
import re
from pathlib import Path
from typing import Any

import pytest

os.environ.setdefault("JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION", "1")
os.environ.setdefault("JSII_SILENCE_WARNING_UNTESTED_NODE_VERSION", "1")
os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")

import aws_cdk as cdk  # noqa: E402
from aws_cdk import assertions  # noqa: E402
from aws_cdk.assertions import Match  # noqa: E402
from cdk_nag import AwsSolutionsChecks  # noqa: E402

import remediator.workflow  # noqa: E402
from infra import ConfigError, build_app  # noqa: E402
from infra.asset import build_lambda_asset  # noqa: E402
from infra.config import DEFAULTS, cdk_json_context, from_context  # noqa: E402
from infra.stack import needs_of  # noqa: E402
from remediator.functions.needs import APPROVAL_ITEM_KEYS, AUDIT_ITEM_KEYS, FAILURE_ITEM_KEYS, JOURNAL_ITEM_KEYS, NOTICE_ITEM_KEYS  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]

PARTNER = "444455556666"
ORG = "o-a1b2c3d4e5"
CHANNEL = "C0123ABCDE"
APPROVERS = ["U012ABCDEF", "W0987654321"]
CONTEXT = {
    "remediator:mode": "approval",
    "remediator:slackChannel": CHANNEL,
    "remediator:approverUserIds": APPROVERS,
    "remediator:approvalTimeoutHours": 48,
    "remediator:trustedAccounts": [PARTNER],
    "remediator:trustedOrgIds": [ORG],
    "remediator:exemptApiIds": ["abcde12345", "fghij67890"],
    "remediator:redeployStages": "prod,staging",
    "remediator:removeWildcardPrincipals": True,
    "remediator:sweepSchedule": "rate(6 hours)",
}

TASK_HANDLERS = {name: f"remediator.functions.{name.lower()}.handler" for name in remediator.workflow.FUNCTIONS}
ALL_HANDLERS = {
    "remediator.functions.trigger.handler",
    "remediator.functions.sweep.handler",
    "remediator.functions.slack_callback.handler",
    *TASK_HANDLERS.values(),
}
COMMON_ENV = {
    "REMEDIATOR_MODE",
    "TRUST_PARAMETER_NAME",
    "EXEMPT_TAG_KEY",
    "SETTINGS_PARAMETER_NAME",
    "REDEPLOY_STAGES",
    "REMOVE_WILDCARD_PRINCIPALS",
    "AUDIT_TABLE_NAME",
    "TOPIC_ARN",
    "REMEDIATOR_LOG_LEVEL",
    "SLACK_CHANNEL",
    "SLACK_BOT_TOKEN_SECRET",
    "SLACK_SIGNING_SECRET_SECRET",
    "APPROVER_USER_IDS",
    "APPROVAL_TIMEOUT_SECONDS",
}

# The only rules acknowledged anywhere in the stack. A new one must be added here, with thought.
EXPECTED_ACKNOWLEDGMENTS = {
    "AwsSolutions-L1",
    # One REST API's (any 10-character ID) deployments and stages: the IDs of APIs created later are unknown. The
    # REST API itself and its deployments collection have no `*` (/restapis/??????????), so nothing to acknowledge.
    "AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:apigateway:<AWS::Region>::/restapis/??????????/deployments/*]",
    "AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:apigateway:<AWS::Region>::/restapis/??????????/stages*]",
    # Its resources and their methods, read (GET only) for APIs with findings: who can actually call.
    "AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:apigateway:<AWS::Region>::/restapis/??????????/resources*]",
    "AwsSolutions-IAM5[Resource::*]",
    # Slack's bot token and signing secret: issued and rotated by Slack, not by Secrets Manager.
    "AwsSolutions-SMG4",
}

# Statements CDK adds to the state machine role, on Resource "*" because these APIs have no
# resource-level permissions (vended log delivery, X-Ray).
STAR_RESOURCE_ACTIONS = {
    "logs:CreateLogDelivery", "logs:GetLogDelivery", "logs:UpdateLogDelivery", "logs:DeleteLogDelivery",
    "logs:ListLogDeliveries", "logs:PutResourcePolicy", "logs:DescribeResourcePolicies", "logs:DescribeLogGroups",
    "xray:PutTraceSegments", "xray:PutTelemetryRecords", "xray:GetSamplingRules", "xray:GetSamplingTargets",
}


# ---- fixtures and helpers --------------------------------------------------------------------


@pytest.fixture(scope="module")
def synth(tmp_path_factory):
    """One synth for the module. cdk-nag runs in its own tests (below), so that a finding fails
    those tests with the finding spelled out, rather than every test with ValidationFailed."""
    app, stack = build_app(CONTEXT, outdir=str(tmp_path_factory.mktemp("cdk.out")), nag=False)
    template = assertions.Template.from_stack(stack)
    return app, stack, template


@pytest.fixture(scope="module")
def stack(synth):
    return synth[1]


@pytest.fixture(scope="module")
def template(synth) -> assertions.Template:
    return synth[2]


@pytest.fixture(scope="module")
def resources(template) -> dict[str, dict[str, Any]]:
    return template.to_json()["Resources"]


def of_type(resources: dict[str, dict[str, Any]], cfn_type: str) -> dict[str, dict[str, Any]]:
    return {k: v for k, v in resources.items() if v["Type"] == cfn_type}


def flat(value: Any) -> str:
    """An intrinsic rendered as text: Fn::Join joined, Ref as <Id>, GetAtt as <Id.Attr>."""
    if isinstance(value, str):
        return value
    if isinstance(value, dict) and "Fn::Join" in value:
        sep, parts = value["Fn::Join"]
        return sep.join(flat(p) for p in parts)
    if isinstance(value, dict) and "Ref" in value:
        return f"<{value['Ref']}>"
    if isinstance(value, dict) and "Fn::GetAtt" in value:
        return "<" + ".".join(value["Fn::GetAtt"]) + ">"
    return json.dumps(value, sort_keys=True)


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def statements(resources) -> list[tuple[str, dict[str, Any]]]:
    """Every statement of every identity policy (AWS::IAM::Policy and inline role policies)."""
    found = []
    for logical_id, resource in resources.items():
        props = resource.get("Properties", {})
        if resource["Type"] in ("AWS::IAM::Policy", "AWS::IAM::ManagedPolicy"):
            found += [(logical_id, s) for s in props["PolicyDocument"]["Statement"]]
        if resource["Type"] == "AWS::IAM::Role":
            for policy in props.get("Policies", []):
                found += [(logical_id, s) for s in policy["PolicyDocument"]["Statement"]]
    return found


def functions_by_handler(resources) -> dict[str, tuple[str, dict[str, Any]]]:
    return {r["Properties"]["Handler"]: (k, r) for k, r in of_type(resources, "AWS::Lambda::Function").items()}


def role_actions(resources, function: dict[str, Any]) -> set[str]:
    role_id = function["Properties"]["Role"]["Fn::GetAtt"][0]
    actions: set[str] = set()
    for policy in of_type(resources, "AWS::IAM::Policy").values():
        if {"Ref": role_id} in policy["Properties"]["Roles"]:
            for statement in policy["Properties"]["PolicyDocument"]["Statement"]:
                actions.update(as_list(statement["Action"]))
    return actions


def logical_id(stack: cdk.Stack, construct) -> str:
    return stack.resolve(stack.get_logical_id(construct.node.default_child))


def role_statements(resources, function: dict[str, Any]) -> list[dict[str, Any]]:
    role_id = function["Properties"]["Role"]["Fn::GetAtt"][0]
    return [
        s for p in of_type(resources, "AWS::IAM::Policy").values() if {"Ref": role_id} in p["Properties"]["Roles"]
        for s in p["Properties"]["PolicyDocument"]["Statement"]
    ]


def secret_ids(resources) -> dict[str, str]:
    """{"token": logical ID, "signing": logical ID} of the two Slack secrets."""
    found = {}
    for key, secret in of_type(resources, "AWS::SecretsManager::Secret").items():
        found["token" if "bot token" in secret["Properties"]["Description"] else "signing"] = key
    return found


# ---- triggers ----------------------------------------------------------------------------------


def own_role_refs(resources) -> list[dict[str, Any]]:
    """GetAtt Arn of the role of every function of the stack."""
    return [f["Properties"]["Role"] for f in of_type(resources, "AWS::Lambda::Function").values()]


def test_event_rule_pattern_is_exact(resources):
    rules = [r for r in of_type(resources, "AWS::Events::Rule").values() if "EventPattern" in r["Properties"]]
    assert len(rules) == 1
    issuer = lambda leaf: {"userIdentity": {"sessionContext": {"sessionIssuer": {"arn": leaf}}}}  # noqa: E731
    pattern = rules[0]["Properties"]["EventPattern"]
    roles = own_role_refs(resources)
    assert len(roles) == 10  # 7 tasks, trigger, sweep, slack_callback (approval mode)
    assert pattern == {
        "source": ["aws.apigateway"],
        "detail-type": ["AWS API Call via CloudTrail"],
        "detail": {
            "eventSource": ["apigateway.amazonaws.com"],
            "eventName": ["CreateRestApi", "UpdateRestApi", "PutRestApi", "ImportRestApi"],
            # failed calls changed nothing
            "errorCode": [{"exists": False}],
            # an UpdateRestApi only if its patch touches /policy (in any case, as target or source), or if its record
            # has no patch paths to tell (tests/test_event_rule.py)
            "requestParameters": {"updateRestApiInput": {"patchOperations": {"$or": [
                {"path": [{"prefix": {"equals-ignore-case": "/policy"}}]},
                {"from": [{"prefix": {"equals-ignore-case": "/policy"}}]},
                {"path": [{"exists": False}]},
            ]}}},
            # callers without a session issuer (IAM users, root), or any role but the stack's own
            "$or": [issuer([{"exists": False}]), issuer([{"anything-but": pattern["detail"]["$or"][1]["userIdentity"]
                                                          ["sessionContext"]["sessionIssuer"]["arn"][0]["anything-but"]}])],
        },
    }
    (anything_but,) = pattern["detail"]["$or"][1]["userIdentity"]["sessionContext"]["sessionIssuer"]["arn"]
    assert sorted(map(json.dumps, anything_but["anything-but"])) == sorted(map(json.dumps, roles))


def test_trigger_knows_the_stack_roles(resources):
    _, trigger = functions_by_handler(resources)["remediator.functions.trigger.handler"]
    joined = trigger["Properties"]["Environment"]["Variables"]["REMEDIATOR_ROLE_ARNS"]
    assert joined["Fn::Join"][0] == ","
    assert sorted(map(json.dumps, joined["Fn::Join"][1])) == sorted(map(json.dumps, own_role_refs(resources)))


def test_event_rule_matches_what_the_trigger_parses(resources):
    events = pytest.importorskip("remediator.events")
    (rule,) = [r for r in of_type(resources, "AWS::Events::Rule").values() if "EventPattern" in r["Properties"]]
    pattern = rule["Properties"]["EventPattern"]
    assert pattern["detail"]["eventName"] == list(events.WATCHED_EVENTS)
    assert pattern["detail"]["eventSource"] == [events.EVENT_SOURCE]
    assert pattern["detail-type"] == [events.DETAIL_TYPE]


def test_schedule_rule(resources):
    rules = [r for r in of_type(resources, "AWS::Events::Rule").values() if "ScheduleExpression" in r["Properties"]]
    assert [r["Properties"]["ScheduleExpression"] for r in rules] == ["rate(6 hours)"]


def test_both_rules_target_their_lambda_with_a_dead_letter_queue(resources):
    (dlq_id,) = of_type(resources, "AWS::SQS::Queue")
    handlers = {k: r["Properties"]["Handler"] for k, r in of_type(resources, "AWS::Lambda::Function").items()}
    targeted = set()
    for rule in of_type(resources, "AWS::Events::Rule").values():
        (target,) = rule["Properties"]["Targets"]
        assert target["DeadLetterConfig"] == {"Arn": {"Fn::GetAtt": [dlq_id, "Arn"]}}
        assert target["RetryPolicy"]["MaximumRetryAttempts"] >= 1
        targeted.add(handlers[target["Arn"]["Fn::GetAtt"][0]])
    assert targeted == {"remediator.functions.trigger.handler", "remediator.functions.sweep.handler"}
    # EventBridge may send to the queue (CDK's queue policy), and the queue is encrypted and SSL-only.
    (queue,) = of_type(resources, "AWS::SQS::Queue").values()
    assert queue["Properties"]["SqsManagedSseEnabled"] is True
    queue_statements = [
        s for p in of_type(resources, "AWS::SQS::QueuePolicy").values() for s in p["Properties"]["PolicyDocument"]["Statement"]
    ]
    insecure = {"Bool": {"aws:SecureTransport": "false"}}
    assert any(s["Effect"] == "Deny" and s["Condition"] == insecure for s in queue_statements)
    events_principal = {"Service": "events.amazonaws.com"}
    assert any(s.get("Principal") == events_principal and s["Action"] == "sqs:SendMessage" for s in queue_statements)


def test_trigger_and_sweep_async_failures_also_reach_the_queue(resources):
    (dlq_id,) = of_type(resources, "AWS::SQS::Queue")
    by_handler = functions_by_handler(resources)
    for handler in ("remediator.functions.trigger.handler", "remediator.functions.sweep.handler"):
        _, function = by_handler[handler]
        assert function["Properties"]["DeadLetterConfig"] == {"TargetArn": {"Fn::GetAtt": [dlq_id, "Arn"]}}


# ---- the state machine -----------------------------------------------------------------------


def test_state_machine_runs_the_package_definition_unchanged(resources):
    (machine,) = of_type(resources, "AWS::StepFunctions::StateMachine").values()
    props = machine["Properties"]
    assert props["StateMachineType"] == "STANDARD"
    # The definition string is the package's file, placeholders and all, its service-integration ARNs in the
    # stack's partition...
    text = flat(props["DefinitionString"])
    assert "arn:aws:" not in text
    assert json.loads(text.replace("arn:<AWS::Partition>:", "arn:aws:")) == json.loads(remediator.workflow.definition_text())
    # ...and each placeholder is substituted with the ARN of the function with the matching handler.
    substitutions = props["DefinitionSubstitutions"]
    assert set(substitutions) == remediator.workflow.placeholders()
    handlers = {k: r["Properties"]["Handler"] for k, r in of_type(resources, "AWS::Lambda::Function").items()}
    arns = {}
    for name, handler in TASK_HANDLERS.items():
        ref = substitutions[f"{name}FunctionArn"]
        assert set(ref) == {"Fn::GetAtt"} and ref["Fn::GetAtt"][1] == "Arn"
        assert handlers[ref["Fn::GetAtt"][0]] == handler
        arns[name] = flat(ref)
    # Rendered the way Step Functions will, it is the package's own rendering.
    rendered = flat(props["DefinitionString"])
    for key, value in substitutions.items():
        rendered = rendered.replace("${" + key + "}", flat(value))
    assert json.loads(rendered.replace("arn:<AWS::Partition>:states:", "arn:aws:states:")) == remediator.workflow.definition(arns)


def test_state_machine_logs_and_traces(resources):
    (machine,) = of_type(resources, "AWS::StepFunctions::StateMachine").values()
    props = machine["Properties"]
    logging = props["LoggingConfiguration"]
    assert logging["Level"] in ("ALL", "ERROR")
    assert logging["IncludeExecutionData"] is False
    (destination,) = logging["Destinations"]
    group_id = destination["CloudWatchLogsLogGroup"]["LogGroupArn"]["Fn::GetAtt"][0]
    assert resources[group_id]["Type"] == "AWS::Logs::LogGroup"
    assert "RetentionInDays" in resources[group_id]["Properties"]
    assert props["TracingConfiguration"] == {"Enabled": True}


def test_state_machine_may_invoke_exactly_the_task_functions(resources):
    (machine,) = of_type(resources, "AWS::StepFunctions::StateMachine").values()
    role_id = machine["Properties"]["RoleArn"]["Fn::GetAtt"][0]
    by_handler = functions_by_handler(resources)
    expected = sorted(f"<{by_handler[h][0]}.Arn>" for h in TASK_HANDLERS.values())
    invoke = [
        s for p in of_type(resources, "AWS::IAM::Policy").values() if {"Ref": role_id} in p["Properties"]["Roles"]
        for s in p["Properties"]["PolicyDocument"]["Statement"] if s["Action"] == "lambda:InvokeFunction"
    ]
    assert len(invoke) == 1
    assert sorted(flat(r) for r in invoke[0]["Resource"]) == expected


# ---- functions -----------------------------------------------------------------------------------


def test_lambdas(resources):
    functions = of_type(resources, "AWS::Lambda::Function")
    by_handler = functions_by_handler(resources)
    assert set(by_handler) == ALL_HANDLERS and len(functions) == len(ALL_HANDLERS)
    code = {json.dumps(f["Properties"]["Code"], sort_keys=True) for f in functions.values()}
    assert len(code) == 1, "one shared code asset"
    roles = {f["Properties"]["Role"]["Fn::GetAtt"][0] for f in functions.values()}
    assert len(roles) == len(functions), "one role per function"
    for handler, (_, function) in by_handler.items():
        props = function["Properties"]
        assert props["Runtime"] == "python3.12"
        assert props["Architectures"] == ["arm64"]
        assert props["MemorySize"] == 256
        assert props["Timeout"] == {"remediator.functions.sweep.handler": 300, "remediator.functions.slack_callback.handler": 10}.get(handler, 30)
        group_id = props["LoggingConfig"]["LogGroup"]["Ref"]
        assert resources[group_id]["Properties"]["RetentionInDays"] > 0


def test_lambda_environment(resources):
    by_handler = functions_by_handler(resources)
    params = {p["Properties"]["Name"].rsplit("/", 1)[1]: k for k, p in of_type(resources, "AWS::SSM::Parameter").items()}
    param_id, settings_id = params["trust"], params["settings"]
    (table_id,) = of_type(resources, "AWS::DynamoDB::Table")
    (topic_id,) = of_type(resources, "AWS::SNS::Topic")
    (machine_id,) = of_type(resources, "AWS::StepFunctions::StateMachine")
    secrets = secret_ids(resources)
    for handler, (_, function) in by_handler.items():
        env = function["Properties"]["Environment"]["Variables"]
        starts = handler in ("remediator.functions.trigger.handler", "remediator.functions.sweep.handler")
        own_roles = {"REMEDIATOR_ROLE_ARNS"} if handler == "remediator.functions.trigger.handler" else set()
        assert set(env) == COMMON_ENV | ({"STATE_MACHINE_ARN"} if starts else set()) | own_roles, handler
        assert not any(key.startswith("POWERTOOLS") for key in env)
        assert env["REMEDIATOR_MODE"] == "approval"
        assert env["SLACK_CHANNEL"] == CHANNEL
        assert env["APPROVER_USER_IDS"] == ",".join(APPROVERS)
        # Evaluate passes it on as $.evaluation.approval_timeout_seconds, AwaitApproval's TimeoutSecondsPath.
        assert env["APPROVAL_TIMEOUT_SECONDS"] == str(48 * 3600)
        # The secrets' ARNs (Ref), never a value.
        assert env["SLACK_BOT_TOKEN_SECRET"] == {"Ref": secrets["token"]}
        assert env["SLACK_SIGNING_SECRET_SECRET"] == {"Ref": secrets["signing"]}
        assert env["TRUST_PARAMETER_NAME"] == {"Ref": param_id}
        assert env["EXEMPT_TAG_KEY"] == "remediator:exempt"
        assert env["SETTINGS_PARAMETER_NAME"] == {"Ref": settings_id}  # the exempt IDs are in the parameter
        assert env["REDEPLOY_STAGES"] == "prod,staging"
        assert env["REMOVE_WILDCARD_PRINCIPALS"] == "true"
        assert env["AUDIT_TABLE_NAME"] == {"Ref": table_id}
        assert env["TOPIC_ARN"] == {"Ref": topic_id}
        assert env["REMEDIATOR_LOG_LEVEL"] == "INFO"
        if starts:
            assert env["STATE_MACHINE_ARN"] == {"Ref": machine_id}


def test_every_handler_exists_in_the_package():
    import importlib

    for name in sorted(ALL_HANDLERS):
        module, attribute = name.rsplit(".", 1)
        assert callable(getattr(importlib.import_module(module), attribute, None)), name


# ---- least privilege ---------------------------------------------------------------------------


def test_no_wildcard_actions(resources):
    found = statements(resources)
    assert found
    for owner, statement in found:
        for action in as_list(statement.get("Action", [])):
            assert "*" not in action, f"{owner}: wildcard action {action}"
        assert "NotAction" not in statement and "NotResource" not in statement, owner


def test_star_resources_only_where_the_api_has_no_resource_permissions(resources):
    for owner, statement in statements(resources):
        if "*" in as_list(statement["Resource"]):
            assert set(as_list(statement["Action"])) <= STAR_RESOURCE_ACTIONS, f"{owner}: {statement}"


APIGW = "arn:<AWS::Partition>:apigateway:<AWS::Region>::"
API = "/restapis/??????????"  # exactly one REST API (its ID is 10 characters), nothing under it
WRITE_POLICY_GRANTS = {("apigateway:GET", API), ("apigateway:PATCH", API), ("apigateway:UpdateRestApiPolicy", API)}
READ_DEPLOYMENT = ("apigateway:GET", f"{API}/deployments/*")
SUB_RESOURCES = {f"{API}/{sub}" for sub in ("resources*", "authorizers*", "models*", "requestvalidators*",
                                            "gatewayresponses*", "documentation*", "deployments/*", "stages/*/*")}


def apigateway_statements(resources, function, effect: str) -> set[tuple[str, str]]:
    found = set()
    for statement in role_statements(resources, function):
        actions = as_list(statement["Action"])
        if any(a.startswith("apigateway:") for a in actions) and statement.get("Effect", "Allow") == effect:
            assert all(a.startswith("apigateway:") for a in actions)
            for resource in as_list(statement["Resource"]):
                text = flat(resource)
                assert text.startswith(APIGW), text
                found |= {(a, text[len(APIGW):]) for a in actions}
    return found


@pytest.mark.parametrize("handler, grants", [
    # For an API with findings, its methods (GetResources embed=methods): who can actually call.
    # For an API it would fix, what each stage serves (GetStages, GetDeployment embed=apisummary): what else a redeploy
    # would publish.
    ("evaluate", {("apigateway:GET", API), ("apigateway:GET", f"{API}/resources*"), ("apigateway:GET", f"{API}/stages*"),
                  READ_DEPLOYMENT}),
    # Changing a policy takes UpdateRestApiPolicy on top of PATCH; without it every fix is denied.
    # It reads the stages to write them into the intent (the deployment each serves before the change), and the
    # methods against what those deployments serve (undeployed edits the redeploy would publish).
    ("apply", WRITE_POLICY_GRANTS | {("apigateway:GET", f"{API}/stages*"), READ_DEPLOYMENT,
                                     ("apigateway:GET", f"{API}/resources*")}),
    # It puts every stage back on the deployment it served, then the policy.
    ("restore", WRITE_POLICY_GRANTS | {("apigateway:GET", f"{API}/stages*"), READ_DEPLOYMENT}),
    # Deployments and stages only: no CreateRestApi/ImportRestApi (POST /restapis), no policy writes.
    # Right before CreateDeployment, the methods again (GetResources): an undeployed edit since the plan is not published.
    ("redeploy", {("apigateway:POST", f"{API}/deployments"), ("apigateway:GET", f"{API}/stages*"),
                  ("apigateway:PATCH", f"{API}/stages*"), READ_DEPLOYMENT, ("apigateway:GET", f"{API}/resources*")}),
    ("sweep", {("apigateway:GET", "/restapis"), ("apigateway:GET", f"{API}/resources*")}),
])
def test_apigateway_grants_are_exactly_the_calls_made(resources, handler, grants):
    _, function = functions_by_handler(resources)[f"remediator.functions.{handler}.handler"]
    assert apigateway_statements(resources, function, "Allow") == grants


@pytest.mark.parametrize("handler", ["evaluate", "apply", "restore", "redeploy", "sweep"])
def test_writers_are_denied_every_sub_resource_of_a_rest_api(resources, handler):
    """A writer changes a REST API itself and its stages: PATCH (and any write verb it has) on a method, integration,
    resource, authorizer, model, ... is explicitly denied, whatever an Allow says. A reader gets no Deny (it has
    nothing to deny)."""
    _, function = functions_by_handler(resources)[f"remediator.functions.{handler}.handler"]
    allowed = apigateway_statements(resources, function, "Allow")
    verbs = {a for a, _ in allowed if a in ("apigateway:PATCH", "apigateway:POST", "apigateway:PUT", "apigateway:DELETE")}
    assert apigateway_statements(resources, function, "Deny") == {(verb, path) for verb in verbs for path in SUB_RESOURCES}
    assert bool(verbs) == (handler in ("apply", "restore", "redeploy"))


def test_only_five_functions_touch_api_gateway(resources):
    touching = {
        handler for handler, (_, function) in functions_by_handler(resources).items()
        if any(a.startswith("apigateway:") for s in role_statements(resources, function) for a in as_list(s["Action"]))
    }
    # The trigger reads (GET only): it judges the API before it starts an execution.
    assert touching == {f"remediator.functions.{h}.handler" for h in ("trigger", "evaluate", "apply", "restore", "redeploy", "sweep")}


LOGS = {"logs:CreateLogStream", "logs:PutLogEvents"}
APPROVAL_READ_WRITE = {"dynamodb:GetItem", "dynamodb:UpdateItem"}
JOURNAL_WRITE = {"dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:DeleteItem"}  # the intent (and the record it closes with)
READ_SECRET = {"secretsmanager:GetSecretValue"}
# remediator:securityHub (auto by default): the states that know an API's outcome import its finding, after DescribeHub.
SECURITY_HUB = {"securityhub:BatchImportFindings", "securityhub:DescribeHub"}


@pytest.mark.parametrize(
    "handler, actions",
    [
        # PutItem: a record of a person's write that one of the bot's changes landed on (committed in 484b253).
        ("evaluate", {"apigateway:GET", "ssm:GetParameter", "dynamodb:GetItem", "dynamodb:DeleteItem", "dynamodb:PutItem"}
         | SECURITY_HUB),
        ("apply", {"apigateway:GET", "apigateway:PATCH", "apigateway:UpdateRestApiPolicy", "ssm:GetParameter"}
         | JOURNAL_WRITE | APPROVAL_READ_WRITE | READ_SECRET),
        # No ssm:GetParameter: restore, redeploy and record judge nothing.
        ("restore", {"apigateway:GET", "apigateway:PATCH", "apigateway:UpdateRestApiPolicy"} | JOURNAL_WRITE),
        ("redeploy", {"apigateway:GET", "apigateway:POST", "apigateway:PATCH", "dynamodb:GetItem", "dynamodb:PutItem",
                      "dynamodb:UpdateItem"}),
        # GetItem: the API's recent write windows, kept with this one for lost-update detection.
        ("record", {"dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:DeleteItem"}),
        ("notify", {"sns:Publish", "kms:Decrypt", "kms:GenerateDataKey", "dynamodb:PutItem"} | APPROVAL_READ_WRITE | READ_SECRET
         | SECURITY_HUB),
        # No ssm:GetParameter: the approval handler builds no Remediator.
        ("approval", {"dynamodb:PutItem", "dynamodb:UpdateItem"} | READ_SECRET),
        # lambda:InvokeFunction on itself: the message is updated by an asynchronous invocation once Slack has its answer.
        ("slack_callback", APPROVAL_READ_WRITE | READ_SECRET | {"states:SendTaskSuccess", "states:SendTaskFailure",
                                                                 "lambda:InvokeFunction"}),
        # It judges before it starts: reads the API and the trusted lists, GetItem on the notice and the open intent,
        # and a compliant API's Security Hub finding (tests/test_trigger_decides.py).
        ("trigger", {"states:StartExecution", "sqs:SendMessage", "apigateway:GET", "ssm:GetParameter", "dynamodb:GetItem"}
         | SECURITY_HUB),
        ("sweep", {"apigateway:GET", "ssm:GetParameter", "states:StartExecution", "sqs:SendMessage", "dynamodb:Query",
                   "dynamodb:DeleteItem", "sns:Publish", "kms:Decrypt", "kms:GenerateDataKey", "securityhub:GetFindings"}
         | SECURITY_HUB),
    ],
)
def test_each_function_may_do_only_its_job(resources, handler, actions):
    _, function = functions_by_handler(resources)[f"remediator.functions.{handler}.handler"]
    assert role_actions(resources, function) == actions | LOGS
    role = resources[function["Properties"]["Role"]["Fn::GetAtt"][0]]
    assert "ManagedPolicyArns" not in role["Properties"]


def test_permissions_name_the_resources(resources):
    ids = {t: next(iter(of_type(resources, t))) for t in (
        "AWS::DynamoDB::Table", "AWS::SNS::Topic", "AWS::StepFunctions::StateMachine", "AWS::KMS::Key",
    )}
    parameters = {"arn:<AWS::Partition>:ssm:<AWS::Region>:<AWS::AccountId>:parameter<%s>" % k
                  for k in of_type(resources, "AWS::SSM::Parameter")}  # the trust and the settings parameters
    assert len(parameters) == 2
    expected = {
        "dynamodb:PutItem": "<%s.Arn>" % ids["AWS::DynamoDB::Table"],
        "dynamodb:GetItem": "<%s.Arn>" % ids["AWS::DynamoDB::Table"],
        "dynamodb:UpdateItem": "<%s.Arn>" % ids["AWS::DynamoDB::Table"],
        "sns:Publish": "<%s>" % ids["AWS::SNS::Topic"],
        "states:StartExecution": "<%s>" % ids["AWS::StepFunctions::StateMachine"],
        "states:SendTaskSuccess": "<%s>" % ids["AWS::StepFunctions::StateMachine"],
        "states:SendTaskFailure": "<%s>" % ids["AWS::StepFunctions::StateMachine"],
        "kms:GenerateDataKey": "<%s.Arn>" % ids["AWS::KMS::Key"],
    }
    for owner, statement in statements(resources):
        for action in as_list(statement["Action"]):
            if action in expected:
                assert [flat(r) for r in as_list(statement["Resource"])] == [expected[action]], owner
            if action == "ssm:GetParameter":
                (resource,) = [flat(r) for r in as_list(statement["Resource"])]
                assert resource in parameters, owner


def test_each_dynamodb_grant_is_limited_to_its_items(resources):
    """Every DynamoDB grant names the keys it may touch: approvals, failure counts, the journal and lease, or
    audit records (put only). So the public-facing slack_callback (and the others) can neither read nor
    rewrite audit records, and no function may rewrite one."""
    by_handler = functions_by_handler(resources)
    keys = {tuple(APPROVAL_ITEM_KEYS): "approvals", tuple(FAILURE_ITEM_KEYS): "failures",
            tuple(JOURNAL_ITEM_KEYS): "journal", tuple(AUDIT_ITEM_KEYS): "audit", tuple(NOTICE_ITEM_KEYS): "notices"}
    expected = {
        "evaluate": {"failures": ["dynamodb:GetItem"], "journal": ["dynamodb:GetItem"], "notices": ["dynamodb:DeleteItem"],
                     "audit": ["dynamodb:PutItem"]},
        "apply": {"journal": ["dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:DeleteItem"], "audit": ["dynamodb:PutItem"],
                  "approvals": ["dynamodb:GetItem", "dynamodb:UpdateItem"]},
        "redeploy": {"journal": ["dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem"]},
        "restore": {"journal": ["dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:DeleteItem"], "audit": ["dynamodb:PutItem"]},
        "record": {"journal": ["dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:DeleteItem"], "audit": ["dynamodb:PutItem"],
                   "failures": ["dynamodb:DeleteItem"]},
        "notify": {"failures": ["dynamodb:UpdateItem"], "approvals": ["dynamodb:GetItem", "dynamodb:UpdateItem"],
                   "notices": ["dynamodb:GetItem", "dynamodb:PutItem"]},
        "approval": {"approvals": ["dynamodb:PutItem", "dynamodb:UpdateItem"]},
        "slack_callback": {"approvals": ["dynamodb:GetItem", "dynamodb:UpdateItem"]},
        "sweep": {"journal": ["dynamodb:Query"], "notices": ["dynamodb:Query", "dynamodb:DeleteItem"]},
        "trigger": {"journal": ["dynamodb:GetItem"], "notices": ["dynamodb:GetItem"]},
    }
    for handler, (_, function) in by_handler.items():
        name = handler.split(".")[-2]
        found = {}
        for statement in role_statements(resources, function):
            actions = as_list(statement["Action"])
            if not any(a.startswith("dynamodb:") for a in actions):
                continue
            leading = statement["Condition"]["ForAllValues:StringLike"]["dynamodb:LeadingKeys"]
            found[keys[tuple(leading)]] = actions
        assert found == expected.get(name, {}), handler


class _RecordingDynamoDB:
    """Just enough of a DynamoDB client for ApprovalStore: records (IAM action, partition key)."""

    class exceptions:  # noqa: N801 - mirrors botocore's client.exceptions
        ConditionalCheckFailedException = type("ConditionalCheckFailedException", (Exception,), {})

    def __init__(self) -> None:
        self.calls: list[tuple[str, str]] = []
        self.items: dict[str, dict[str, Any]] = {}

    def transact_write_items(self, TransactItems):  # noqa: N803 - boto3's parameter names
        for entry in TransactItems:
            (operation, body), = entry.items()
            assert operation == "Put"  # IAM authorizes a transaction's Put as dynamodb:PutItem
            self.calls.append(("dynamodb:PutItem", body["Item"]["pk"]["S"]))
            self.items[body["Item"]["pk"]["S"]] = body["Item"]

    def get_item(self, TableName, Key, **_):  # noqa: N803
        self.calls.append(("dynamodb:GetItem", Key["pk"]["S"]))
        item = self.items.get(Key["pk"]["S"])
        return {"Item": item} if item else {}

    def update_item(self, TableName, Key, **_):  # noqa: N803
        self.calls.append(("dynamodb:UpdateItem", Key["pk"]["S"]))


def test_approval_store_keys_and_calls_fit_the_grants():
    """The IAM condition names ApprovalStore's key prefixes, and each handler's store calls fit its
    grant: if the package changes either, this fails here rather than with AccessDenied in AWS."""
    dynamodb = pytest.importorskip("remediator.adapters.dynamodb")
    approvals = pytest.importorskip("remediator.approvals")
    fake = _RecordingDynamoDB()

    class Clients:
        def client(self, service, region=None):
            assert service == "dynamodb"
            return fake

    store = dynamodb.ApprovalStore(Clients(), "table")
    request = approvals.ApprovalRequest(
        approval_id=approvals.new_approval_id(), execution="exec-1", task_token="token", account=PARTNER,
        region="eu-west-1", api_id="abcde12345", api_name="api", changed_by="someone", findings=[],
        patch_operations=[], policy_before="", expires_at=2_000_000_000,
    )
    flows = {
        "approval": lambda: (store.put(request), store.save(request)),
        "slack_callback": lambda: (store.get(request.approval_id), store.decide(request.approval_id, "approved", APPROVERS[0], 1)),
        "notify": lambda: (store.for_execution("exec-1"), store.save(request)),
        "apply": lambda: (store.for_execution("exec-1"), store.save(request)),
    }
    for handler, flow in flows.items():
        fake.calls.clear()
        flow()
        assert fake.calls, handler
        for action, key in fake.calls:
            assert action in needs_of(handler, from_context(CONTEXT.get)).approvals, (handler, action)
            assert any(fnmatch.fnmatchcase(key, pattern) for pattern in APPROVAL_ITEM_KEYS), (handler, key)


def test_slack_secrets_are_read_only_by_the_functions_that_use_them(resources):
    secrets = secret_ids(resources)
    readers: dict[str, set[str]] = {"token": set(), "signing": set()}
    for handler, (_, function) in functions_by_handler(resources).items():
        for statement in role_statements(resources, function):
            if "secretsmanager:GetSecretValue" in as_list(statement["Action"]):
                assert as_list(statement["Action"]) == ["secretsmanager:GetSecretValue"]  # no DescribeSecret etc.
                for resource in as_list(statement["Resource"]):
                    (kind,) = [k for k, v in secrets.items() if resource == {"Ref": v}]
                    readers[kind].add(handler.split(".")[-2])
    assert readers == {"token": {"approval", "notify", "apply", "slack_callback"}, "signing": {"slack_callback"}}
    # AWS managed key: Secrets Manager decrypts for principals of this account, so no kms:Decrypt grants.
    for secret in of_type(resources, "AWS::SecretsManager::Secret").values():
        assert "KmsKeyId" not in secret["Properties"]


def test_only_slack_callback_answers_tasks_and_only_this_state_machine(resources):
    (machine_id,) = of_type(resources, "AWS::StepFunctions::StateMachine")
    by_role = {f["Properties"]["Role"]["Fn::GetAtt"][0]: h for h, (_, f) in functions_by_handler(resources).items()}
    answering = []
    for owner, statement in statements(resources):
        actions = set(as_list(statement["Action"]))
        assert "states:SendTaskHeartbeat" not in actions, owner
        if actions & {"states:SendTaskSuccess", "states:SendTaskFailure"}:
            assert actions == {"states:SendTaskSuccess", "states:SendTaskFailure"}, owner
            assert as_list(statement["Resource"]) == [{"Ref": machine_id}], owner
            (policy,) = [p for k, p in resources.items() if k == owner]
            answering += [by_role.get(r["Ref"], r["Ref"]) for r in policy["Properties"]["Roles"]]
    assert answering == ["remediator.functions.slack_callback.handler"]


# ---- Slack -------------------------------------------------------------------------------------------


def test_slack_callback_has_a_public_function_url_and_nothing_else_does(resources, template):
    by_handler = functions_by_handler(resources)
    callback_id, _ = by_handler["remediator.functions.slack_callback.handler"]
    (url_id, url), = of_type(resources, "AWS::Lambda::Url").items()
    # NONE: Slack cannot sign requests with AWS credentials; the handler verifies Slack's signature.
    assert url["Properties"]["AuthType"] == "NONE"
    assert url["Properties"]["TargetFunctionArn"] == {"Fn::GetAtt": [callback_id, "Arn"]}
    assert "Cors" not in url["Properties"]  # server-to-server: no browser calls it
    public = [p["Properties"] for p in of_type(resources, "AWS::Lambda::Permission").values() if p["Properties"]["Principal"] == "*"]
    assert {json.dumps(p["FunctionName"]) for p in public} == {json.dumps({"Fn::GetAtt": [callback_id, "Arn"]})}
    # Function URLs need both: InvokeFunctionUrl (auth type NONE) and InvokeFunction only via the URL.
    assert sorted((p["Action"], p.get("FunctionUrlAuthType"), p.get("InvokedViaFunctionUrl")) for p in public) == [
        ("lambda:InvokeFunction", None, True),
        ("lambda:InvokeFunctionUrl", "NONE", None),
    ]
    outputs = template.to_json()["Outputs"]
    assert outputs["SlackInteractivityUrl"]["Value"] == {"Fn::GetAtt": [url_id, "FunctionUrl"]}


def test_slack_secrets_exist_and_hold_no_slack_credential(resources, template):
    secrets = of_type(resources, "AWS::SecretsManager::Secret")
    assert len(secrets) == 2
    for secret in secrets.values():
        props = secret["Properties"]
        # A random placeholder generated by Secrets Manager at deploy time; the template carries no value.
        assert "SecretString" not in props and "GenerateSecretString" in props
        assert "put-secret-value" in props["Description"]
    text = json.dumps(template.to_json())
    assert not re.search(r"xox[abpre]-[0-9A-Za-z]", text), "a Slack token in the template"
    assert not re.search(r"\b[0-9a-f]{32}\b", text), "something shaped like a Slack signing secret in the template"
    outputs = template.to_json()["Outputs"]
    ids = secret_ids(resources)
    assert outputs["SlackBotTokenSecretArn"]["Value"] == {"Ref": ids["token"]}
    assert outputs["SlackSigningSecretArn"]["Value"] == {"Ref": ids["signing"]}


def test_no_fixed_cost_for_what_is_not_used() -> None:
    """Secrets only where Slack is configured (the signing secret only in approval mode, the callback's), and one KMS
    key per deployment, shared: the topic's (everything else uses AWS owned or managed keys). The spoke has none."""
    from remediator.local.template import spoke_template, synthesized_template

    for mode, slack, organization, secrets in (("dry-run", False, False, set()), ("auto", False, True, set()),
                                               ("dry-run", True, False, {"token"}), ("auto", True, False, {"token"}),
                                               ("approval", True, False, {"token", "signing"})):
        resources = synthesized_template(mode, slack=slack, organization=organization)["Resources"]
        assert set(secret_ids(resources)) == secrets, (mode, slack, organization)
        (key_id,) = of_type(resources, "AWS::KMS::Key")
        environments = [f["Properties"]["Environment"]["Variables"] for f in of_type(resources, "AWS::Lambda::Function").values()]
        if not secrets:
            assert all(e.get("SLACK_BOT_TOKEN_SECRET", "") == "" for e in environments), "no secret, no ARN"
        encrypted = [r for r in resources.values() if "KmsMasterKeyId" in r["Properties"] or "KmsKeyId" in r["Properties"]]
        assert encrypted and all({"Fn::GetAtt": [key_id, "Arn"]} in (r["Properties"].get("KmsMasterKeyId"), r["Properties"].get("KmsKeyId"))
                                 or r["Properties"].get("KmsMasterKeyId") == {"Ref": key_id} for r in encrypted), "the one key"
    assert of_type(spoke_template("auto")["Resources"], "AWS::KMS::Key") == {}


def test_await_approval_invokes_the_approval_function(resources):
    """AwaitApproval is a lambda:invoke.waitForTaskToken task on the unqualified approval function ARN,
    which the state machine role's lambda:InvokeFunction grant names, waiting at most the configured time."""
    (machine,) = of_type(resources, "AWS::StepFunctions::StateMachine").values()
    definition = json.loads(flat(machine["Properties"]["DefinitionString"]))
    state = definition["States"]["AwaitApproval"]
    assert state["Resource"].endswith(":states:::lambda:invoke.waitForTaskToken")
    assert state["Parameters"]["FunctionName"] == "${ApprovalFunctionArn}"
    assert state["TimeoutSecondsPath"] == "$.evaluation.approval_timeout_seconds"
    approval_id, _ = functions_by_handler(resources)["remediator.functions.approval.handler"]
    assert machine["Properties"]["DefinitionSubstitutions"]["ApprovalFunctionArn"] == {"Fn::GetAtt": [approval_id, "Arn"]}


# ---- storage, configuration, notification, alarms, outputs ---------------------------------------


def test_audit_table(resources):
    (table,) = of_type(resources, "AWS::DynamoDB::Table").values()
    props = table["Properties"]
    assert props["KeySchema"] == [{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}]
    assert {"AttributeName": "pk", "AttributeType": "S"} in props["AttributeDefinitions"]
    assert {"AttributeName": "sk", "AttributeType": "S"} in props["AttributeDefinitions"]
    assert props["BillingMode"] == "PAY_PER_REQUEST"
    assert props["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}
    # TTL only on finished items (DynamoDB developer guide, "Time to Live (TTL)"): never the claims in `expires_at`.
    assert props["TimeToLiveSpecification"] == {"AttributeName": "ttl", "Enabled": True}
    assert props["SSESpecification"] == {"SSEEnabled": True}  # AWS managed key
    assert table["DeletionPolicy"] == "Retain" and table["UpdateReplacePolicy"] == "Retain"


def test_topic_is_encrypted_and_ssl_only(resources):
    (topic_id, topic), = of_type(resources, "AWS::SNS::Topic").items()
    (key_id, key), = of_type(resources, "AWS::KMS::Key").items()
    assert topic["Properties"]["KmsMasterKeyId"] == {"Fn::GetAtt": [key_id, "Arn"]}
    assert key["Properties"]["EnableKeyRotation"] is True
    # CloudWatch alarms can publish to the encrypted topic only if the key lets them.
    assert any(
        s.get("Principal") == {"Service": "cloudwatch.amazonaws.com"}
        and set(as_list(s["Action"])) == {"kms:Decrypt", "kms:GenerateDataKey"}
        for s in key["Properties"]["KeyPolicy"]["Statement"]
    )
    (policy,) = of_type(resources, "AWS::SNS::TopicPolicy").values()
    assert policy["Properties"]["Topics"] == [{"Ref": topic_id}]
    assert any(
        s["Effect"] == "Deny" and s["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
        for s in policy["Properties"]["PolicyDocument"]["Statement"]
    )
    # The alarms publish as CloudWatch: allowed, for this account's alarms only.
    (allow,) = [s for s in policy["Properties"]["PolicyDocument"]["Statement"] if s["Effect"] == "Allow"]
    assert allow["Principal"] == {"Service": "cloudwatch.amazonaws.com"} and allow["Action"] == "sns:Publish"
    assert allow["Resource"] == {"Ref": topic_id}
    assert allow["Condition"]["StringEquals"] == {"aws:SourceAccount": {"Ref": "AWS::AccountId"}}
    assert flat(allow["Condition"]["ArnLike"]["aws:SourceArn"]) == (
        "arn:<AWS::Partition>:cloudwatch:<AWS::Region>:<AWS::AccountId>:alarm:*")


def test_no_function_reserves_concurrency_by_default(resources):
    """Off unless set: Lambda keeps 100 of the account's concurrency unreserved, and a new account's quota may be
    lower than that ("Configuring reserved concurrency for a function"; "Lambda quotas"): the deploy would fail."""
    for handler, (_, function) in functions_by_handler(resources).items():
        assert "ReservedConcurrentExecutions" not in function["Properties"], handler


def test_the_public_callback_reserves_concurrency_when_set():
    _, stack = build_app({**CONTEXT, "remediator:callbackReservedConcurrency": 5}, nag=False)
    for handler, (_, function) in functions_by_handler(assertions.Template.from_stack(stack).to_json()["Resources"]).items():
        reserved = function["Properties"].get("ReservedConcurrentExecutions")
        assert reserved == (5 if handler == "remediator.functions.slack_callback.handler" else None), handler


def test_trust_parameter(resources):
    params = {p["Properties"]["Name"]: p["Properties"] for p in of_type(resources, "AWS::SSM::Parameter").values()}
    assert set(params) == {"/ApiPolicyRemediator/trust", "/ApiPolicyRemediator/settings"}
    assert all(p["Type"] == "String" for p in params.values())
    trust, settings = params["/ApiPolicyRemediator/trust"], params["/ApiPolicyRemediator/settings"]
    assert json.loads(trust["Value"]) == {"trusted_accounts": [PARTNER], "trusted_org_ids": [ORG]}
    assert json.loads(settings["Value"]) == {"exempt_api_ids": ["abcde12345", "fghij67890"]}


def test_executions_failed_alarm_notifies_the_topic(resources):
    (machine_id,) = of_type(resources, "AWS::StepFunctions::StateMachine")
    (topic_id,) = of_type(resources, "AWS::SNS::Topic")
    alarms = [
        a["Properties"] for a in of_type(resources, "AWS::CloudWatch::Alarm").values()
        if a["Properties"]["MetricName"] == "ExecutionsFailed"
    ]
    assert len(alarms) == 1
    alarm = alarms[0]
    assert alarm["Namespace"] == "AWS/States"
    assert alarm["Dimensions"] == [{"Name": "StateMachineArn", "Value": {"Ref": machine_id}}]
    assert alarm["Statistic"] == "Sum" and alarm["Period"] == 300 and alarm["EvaluationPeriods"] == 1
    assert alarm["Threshold"] == 1 and alarm["ComparisonOperator"] == "GreaterThanOrEqualToThreshold"
    assert alarm["AlarmActions"] == [{"Ref": topic_id}]


def test_outputs(template):
    outputs = template.to_json()["Outputs"]
    assert {
        "StateMachineArn", "TopicArn", "AuditTableName", "TrustParameterName",
        "SlackInteractivityUrl", "SlackBotTokenSecretArn", "SlackSigningSecretArn",
    } <= set(outputs)


# ---- configuration ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "key, value, message",
    [
        ("remediator:mode", "yolo", r"remediator:mode must be one of auto, dry-run, approval"),
        ("remediator:trustedAccounts", ["123"], r"remediator:trustedAccounts: '123' is not a 12-digit"),
        ("remediator:trustedAccounts", "123", r"remediator:trustedAccounts: '123' is not a 12-digit"),
        ("remediator:trustedAccounts", [111122223333], r"remediator:trustedAccounts must be a list of strings"),
        ("remediator:trustedOrgIds", ["org-1"], r"remediator:trustedOrgIds: 'org-1' is not an AWS Organizations ID"),
        ("remediator:exemptApiIds", ["not an id"], r"remediator:exemptApiIds"),
        ("remediator:redeployStages", "prod;dev", r"remediator:redeployStages"),
        ("remediator:removeWildcardPrincipals", "maybe", r"remediator:removeWildcardPrincipals must be true or false"),
        ("remediator:sweepSchedule", "every day", r"remediator:sweepSchedule must be an EventBridge schedule"),
        ("remediator:sweepSchedule", "rate(1 days)", r"singular unit for 1"),
        ("remediator:slackChannel", "general channel", r"remediator:slackChannel: 'general channel' is not a Slack channel"),
        ("remediator:slackChannel", ["C0123ABCDE"], r"remediator:slackChannel must be a Slack channel"),
        ("remediator:approverUserIds", ["alice"], r"remediator:approverUserIds: 'alice' is not a Slack user ID"),
        ("remediator:approverUserIds", "U012ABCDEF,u012abcdef", r"remediator:approverUserIds: 'u012abcdef' is not a Slack user ID"),
        ("remediator:approverUserIds", ["U123"], r"remediator:approverUserIds: 'U123' is not a Slack user ID"),
        ("remediator:approvalTimeoutHours", 0, r"remediator:approvalTimeoutHours must be between 1 and 8760"),
        ("remediator:approvalTimeoutHours", 8761, r"remediator:approvalTimeoutHours must be between 1 and 8760"),
        ("remediator:approvalTimeoutHours", "1.5", r"remediator:approvalTimeoutHours must be a whole number"),
        ("remediator:approvalTimeoutHours", True, r"remediator:approvalTimeoutHours must be a whole number"),
        ("remediator:callbackReservedConcurrency", 0, r"remediator:callbackReservedConcurrency must be between 1 and 100"),
        ("remediator:callbackReservedConcurrency", 101, r"remediator:callbackReservedConcurrency must be between 1 and 100"),
        ("remediator:callbackReservedConcurrency", "five", r"remediator:callbackReservedConcurrency must be a whole number"),
        ("remediator:callbackReservedConcurrency", False, r"remediator:callbackReservedConcurrency must be a whole number"),
        ("remediator:callbackReservedConcurrency", "-1", r"remediator:callbackReservedConcurrency must be a whole number"),
    ],
)
def test_context_validation_rejects(key, value, message):
    with pytest.raises(ConfigError, match=message):
        build_app({key: value}, nag=False)


@pytest.mark.parametrize(
    "context, message",
    [
        ({"remediator:approverUserIds": APPROVERS}, r"approval, which needs remediator:slackChannel"),
        ({"remediator:slackChannel": CHANNEL}, r"approval, which needs at least one Slack user ID in remediator:approverUserIds"),
        ({"remediator:slackChannel": "  ", "remediator:approverUserIds": APPROVERS}, r"remediator:slackChannel"),
    ],
)
def test_approval_mode_needs_a_channel_and_approvers(context, message):
    with pytest.raises(ConfigError, match=message):
        build_app({"remediator:mode": "approval", **context}, nag=False)


def test_slack_settings_are_optional_outside_approval_mode():
    config = from_context({"remediator:mode": "dry-run", "remediator:slackChannel": "#api-security"}.get)
    assert (config.slack_channel, config.approver_user_ids) == ("#api-security", ())
    assert config.approval_timeout_seconds == 24 * 3600


def test_context_accepts_command_line_strings():
    values = {
        "remediator:trustedAccounts": f'["{PARTNER}"]',
        "remediator:trustedOrgIds": ORG,
        "remediator:exemptApiIds": "abcde12345, fghij67890",
        "remediator:removeWildcardPrincipals": "true",
        "remediator:sweepSchedule": "cron(0 3 * * ? *)",
        "remediator:mode": "approval",
        "remediator:slackChannel": "api-security",
        "remediator:approverUserIds": "U012ABCDEF, W0987654321",
        "remediator:approvalTimeoutHours": "8760",
    }
    config = from_context(values.get)
    assert config.approver_user_ids == ("U012ABCDEF", "W0987654321")
    assert config.approval_timeout_hours == 8760 and config.approval_timeout_seconds == 31_536_000
    assert config.trusted_accounts == (PARTNER,)
    assert config.trusted_org_ids == (ORG,)
    assert config.exempt_api_ids == ("abcde12345", "fghij67890")
    assert config.remove_wildcard_principals is True
    assert config.sweep_schedule == "cron(0 3 * * ? *)"


def test_cdk_json_documents_every_key_with_its_default():
    settings = json.loads((ROOT / "cdk.json").read_text())
    assert "app.py" in settings["app"]
    assert cdk_json_context() == DEFAULTS == settings["context"]
    config = from_context(lambda key: None)
    assert (config.mode, config.redeploy_stages, config.sweep_schedule) == ("dry-run", "all", "rate(1 day)")
    assert config.remove_wildcard_principals is False


# ---- cdk-nag, CDK validation, cfn-lint --------------------------------------------------------------


def test_cdk_nag_aws_solutions_clean(stack):
    """cdk-nag 3 packs are validation plugins; validate_scope runs the same rules directly and
    lists what it finds."""
    report = AwsSolutionsChecks().validate_scope(stack)
    findings = [(v.rule_name, v.severity, [r.construct_path for r in v.violating_resources]) for v in report.violations]
    assert findings == []  # errors and warnings alike


def test_app_synthesizes_with_aws_solutions_checks_and_default_context(tmp_path):
    """What `python app.py` / `cdk synth` do: cdk.json's defaults, the AwsSolutions plugin registered
    on the app; any unacknowledged finding would make synth raise ValidationFailed."""
    app, stack = build_app(outdir=str(tmp_path))
    app.synth()
    annotations = assertions.Annotations.from_stack(stack)
    assert annotations.find_error("*", Match.string_like_regexp("AwsSolutions-.*")) == []
    assert annotations.find_warning("*", Match.string_like_regexp("AwsSolutions-.*")) == []
    report = json.loads((tmp_path / "validation-report.json").read_text())
    for plugin in report["pluginReports"]:
        assert plugin["violations"] == [], plugin["pluginName"]
    template = json.loads((tmp_path / f"{stack.stack_name}.template.json").read_text())
    env = [f["Properties"]["Environment"]["Variables"] for f in of_type(template["Resources"], "AWS::Lambda::Function").values()]
    assert {e["REMEDIATOR_MODE"] for e in env} == {"dry-run"}
    assert {e["REMOVE_WILDCARD_PRINCIPALS"] for e in env} == {"false"}
    assert {e["SLACK_CHANNEL"] for e in env} == {""} and {e["APPROVER_USER_IDS"] for e in env} == {""}
    assert {e["APPROVAL_TIMEOUT_SECONDS"] for e in env} == {"86400"}
    (param,) = [p for p in of_type(template["Resources"], "AWS::SSM::Parameter").values() if p["Properties"]["Name"].endswith("/trust")]
    assert json.loads(param["Properties"]["Value"]) == {"trusted_accounts": [], "trusted_org_ids": []}
    # Outside approval mode nothing is public: no Slack callback, no Function URL, nothing answers tasks.
    assert of_type(template["Resources"], "AWS::Lambda::Url") == {}
    assert "remediator.functions.slack_callback.handler" not in {
        f["Properties"]["Handler"] for f in of_type(template["Resources"], "AWS::Lambda::Function").values()}
    assert "SlackInteractivityUrl" not in template["Outputs"]
    assert "states:SendTaskSuccess" not in json.dumps(of_type(template["Resources"], "AWS::IAM::Policy"))
    # A dry-run stack cannot change anything, even if one of its functions is invoked by hand: its only writes
    # are what it told people (the notice items, so that the same proposal is not told every day).
    writes = {"apigateway:PATCH", "apigateway:POST", "apigateway:UpdateRestApiPolicy", "dynamodb:PutItem",
              "dynamodb:DeleteItem", "dynamodb:UpdateItem", "secretsmanager:GetSecretValue"}
    for _, statement in statements(template["Resources"]):
        written = writes & set(as_list(statement["Action"]))
        if written:
            assert written <= {"dynamodb:PutItem", "dynamodb:DeleteItem"}, written
            assert statement["Condition"]["ForAllValues:StringLike"]["dynamodb:LeadingKeys"] == list(NOTICE_ITEM_KEYS)
    # The tasks a dry run never reaches may do nothing at all, not even write logs.
    for handler, (_, function) in functions_by_handler(template["Resources"]).items():
        unreachable = handler.split(".")[-2] in ("apply", "restore", "redeploy", "record", "approval")
        assert (role_actions(template["Resources"], function) == set()) == unreachable, handler


def test_no_cdk_warnings_or_errors(stack):
    annotations = assertions.Annotations.from_stack(stack)
    assert annotations.find_error("*", Match.any_value()) == []
    assert annotations.find_warning("*", Match.any_value()) == []


def test_synth_validation_report_is_clean(synth):
    app = synth[0]
    report = json.loads((Path(app.outdir) / "validation-report.json").read_text())
    for plugin in report["pluginReports"]:
        assert plugin["violations"] == [], plugin["pluginName"]


def test_every_acknowledgment_is_expected_and_explained(stack):
    key = cdk.Validations.ACKNOWLEDGED_RULES_METADATA_KEY
    acknowledged: dict[str, list[str]] = {}
    for construct in stack.node.find_all():
        for entry in construct.node.metadata:
            if entry.type == key:
                for rule_id, reason in entry.data.items():
                    acknowledged.setdefault(re.sub(r"^annotation::", "", rule_id, flags=re.I), []).append(reason)
    assert set(acknowledged) == EXPECTED_ACKNOWLEDGMENTS
    for rule_id, reasons in acknowledged.items():
        for reason in reasons:
            assert isinstance(reason, str) and len(reason.strip()) >= 10, rule_id
    # Rotation is waived for the two Slack secrets and nothing else.
    waived = [
        construct for construct in stack.node.find_all()
        for entry in construct.node.metadata
        if entry.type == key and any(r.endswith("AwsSolutions-SMG4") for r in entry.data)
    ]
    assert sorted(c.node.id for c in waived) == ["SlackBotTokenSecret", "SlackSigningSecret"]


def test_cfn_lint_clean(template, tmp_path):
    from cfnlint.api import ManualArgs, lint_file

    path = tmp_path / "template.json"
    path.write_text(json.dumps(template.to_json(), indent=1))
    matches = lint_file(path, config=ManualArgs(regions=["us-east-1", "eu-west-1"]))
    problems = [f"{m.rule.id} {m.rule.severity}: {m.message}" for m in matches if m.rule.severity in ("error", "warning")]
    assert problems == []


def test_cfn_lint_ignores_are_narrow(resources, template):
    """The only cfn-lint ignore: W3005 template-wide (CDK's redundant DependsOn on roles)."""
    assert template.to_json()["Metadata"]["cfn-lint"] == {"config": {"ignore_checks": ["W3005"]}}
    ignores = {
        logical_id: resource["Metadata"]["cfn-lint"]["config"]["ignore_checks"]
        for logical_id, resource in resources.items()
        if "cfn-lint" in resource.get("Metadata", {})
    }
    assert ignores == {}


# ---- the code asset --------------------------------------------------------------------------------


def test_lambda_asset_holds_the_package_and_its_dependencies():
    asset = build_lambda_asset()
    assert build_lambda_asset() == asset  # cached: same inputs, same directory, no rebuild
    assert (asset / "remediator" / "__init__.py").is_file()
    assert (asset / "remediator" / "workflow" / "definition.json").is_file()
    assert (asset / "structlog" / "__init__.py").is_file()
    assert not (asset / "remediator" / "local").exists()
    # Bytecode for the runtime's Python only (3.12), one file per module: Lambda cannot write __pycache__.
    sources = [p for p in asset.rglob("*.py") if "__pycache__" not in p.parts]
    pycs = list(asset.rglob("*.pyc"))
    assert pycs and all(p.name.endswith(".cpython-312.pyc") for p in pycs)
    assert len(pycs) == len(sources)
    assert not (asset / "boto3").exists() and not (asset / "botocore").exists()
