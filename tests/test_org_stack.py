"""Organization mode (docs/organization.md): the hub stack and the spoke its StackSet deploys.

Two synths for the module: approval mode with Slack (every function, every grant) checked resource by
resource, and dry-run mode synthesized the way `cdk synth` does it (cdk-nag registered on the app).
The settings are checked without a synth.
"""

from __future__ import annotations

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
from cdk_nag import AwsSolutionsChecks  # noqa: E402

import remediator.functions  # noqa: E402
import remediator.workflow  # noqa: E402
from infra import ConfigError, build_app  # noqa: E402
from infra.config import DEFAULTS, from_context  # noqa: E402
from infra.spoke import HUB_ROLE_PREFIX, spoke_api_calls, spoke_functions  # noqa: E402
from infra.stack import ACCOUNT_EVENTS, HUB_BUS_NAME, ORG_SWEEP_NAME  # noqa: E402
from remediator.events import event_pattern  # noqa: E402
from remediator.functions.needs import ORGANIZATION_READS, ROSTER_ITEM_KEYS, denied_writes, spoke_calls  # noqa: E402
from tests.test_stack import as_list, flat, of_type  # noqa: E402

ORG = "o-a1b2c3d4e5"
OUS = ["ou-ab12-abcdefgh", "r-ab12"]
TRUSTED_OUS = ["ou-ab12-zyxwvuts"]
REGIONS = ["eu-west-1", "us-east-1"]
ORG_CONTEXT: dict[str, Any] = {
    "remediator:deployment": "organization",
    "remediator:organizationId": ORG,
    "remediator:spokeOrganizationalUnits": OUS,
    "remediator:spokeRegions": REGIONS,
}
CONTEXT = {
    **ORG_CONTEXT,
    "remediator:mode": "approval",
    "remediator:slackChannel": "C0123ABCDE",
    "remediator:approverUserIds": ["U012ABCDEF"],
    "remediator:trustOrganization": True,
    "remediator:trustedOrganizationalUnits": TRUSTED_OUS,
    "remediator:orgSweepConcurrency": 25,
}
ORG_ENV = {
    "REMEDIATOR_DEPLOYMENT": "organization",
    "ORGANIZATION_ID": ORG,
    "SPOKE_ROLE_NAME": "apigw-remediator-spoke",
    "SWEEP_REGIONS": ",".join(REGIONS),
    "ORG_SWEEP_CONCURRENCY": "25",
}

# The rules acknowledged in the hub (beyond the single-account stack's) and in the spoke, each with a reason.
EXPECTED_HUB_ACKNOWLEDGMENTS = {
    "AwsSolutions-L1",
    "AwsSolutions-IAM5[Resource::*]",
    "AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:iam::*:role/apigw-remediator-spoke]",
    "AwsSolutions-IAM5[Resource::<ResultsBucketA95A2103.Arn>/*]",
    "AwsSolutions-IAM5[Resource::<ResultsBucketA95A2103.Arn>/results/*]",
    f"AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:states:<AWS::Region>:<AWS::AccountId>:execution:{ORG_SWEEP_NAME}/*]",
    "AwsSolutions-SMG4",
    "AwsSolutions-S1",
}
EXPECTED_SPOKE_ACKNOWLEDGMENTS = {
    f"AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:apigateway:{region}::{path}]"
    for region in REGIONS for path in ("/restapis/??????????/deployments/*", "/restapis/??????????/stages*",
                                     "/restapis/??????????/resources*")  # methods read to grade who can call
} | {"AwsSolutions-SQS3"}


# ---- helpers ---------------------------------------------------------------------------------------


# of_type, flat and as_list: tests/test_stack.py's, imported above.


def functions(resources) -> dict[str, tuple[str, dict[str, Any]]]:
    """{function name: (logical ID, resource)}, by handler."""
    return {
        remediator.functions.name_of(r["Properties"]["Handler"]): (k, r)
        for k, r in of_type(resources, "AWS::Lambda::Function").items()
    }


def role_statements(resources, role_id: str) -> list[dict[str, Any]]:
    return [
        s for p in of_type(resources, "AWS::IAM::Policy").values() if {"Ref": role_id} in p["Properties"]["Roles"]
        for s in p["Properties"]["PolicyDocument"]["Statement"]
    ]


def function_statements(resources, function: dict[str, Any]) -> list[dict[str, Any]]:
    return role_statements(resources, function["Properties"]["Role"]["Fn::GetAtt"][0])


def acknowledged(stack: cdk.Stack) -> dict[str, list[str]]:
    key = cdk.Validations.ACKNOWLEDGED_RULES_METADATA_KEY
    found: dict[str, list[str]] = {}
    for construct in stack.node.find_all():
        if construct is not stack and isinstance(construct, cdk.Stack):
            continue
        if construct is not stack and cdk.Stack.of(construct) is not stack:
            continue
        for entry in construct.node.metadata:
            if entry.type == key:
                for rule_id, reason in entry.data.items():
                    found.setdefault(re.sub(r"^annotation::", "", rule_id, flags=re.I), []).append(reason)
    return found


def lint(template: dict[str, Any], path: Path) -> list[str]:
    from cfnlint.api import ManualArgs, lint_file

    path.write_text(json.dumps(template, indent=1))
    matches = lint_file(path, config=ManualArgs(regions=["us-east-1", "eu-west-1"]))
    return [f"{m.rule.id} {m.rule.severity}: {m.message}" for m in matches if m.rule.severity in ("error", "warning")]


def spoke_template_of(outdir: Path, hub_template: dict[str, Any], hub_name: str) -> dict[str, Any]:
    """The spoke's template as the StackSet deploys it: the file asset its TemplateURL names, from the assembly."""
    (stack_set,) = of_type(hub_template["Resources"], "AWS::CloudFormation::StackSet").values()
    url = stack_set["Properties"]["TemplateURL"]["Fn::Sub"]
    assets = json.loads((outdir / f"{hub_name}.assets.json").read_text())
    (source,) = [
        asset["source"]["path"] for asset in assets["files"].values()
        if any(url.endswith("/" + d["objectKey"]) for d in asset["destinations"].values())
    ]
    assert source.endswith(".stackset.template.json")
    return json.loads((outdir / source).read_text())


# ---- fixtures: one synth for the module's resource checks, one the way `cdk synth` does it ----------


@pytest.fixture(scope="module")
def synth(tmp_path_factory):
    outdir = tmp_path_factory.mktemp("org.cdk.out")
    app, stack = build_app(CONTEXT, outdir=str(outdir), nag=False)
    app.synth()
    template = json.loads((outdir / f"{stack.stack_name}.template.json").read_text())
    spoke = spoke_template_of(outdir, template, stack.stack_name)
    return app, stack, template, spoke


@pytest.fixture(scope="module")
def stack(synth):
    return synth[1]


@pytest.fixture(scope="module")
def template(synth) -> dict[str, Any]:
    return synth[2]


@pytest.fixture(scope="module")
def resources(template) -> dict[str, dict[str, Any]]:
    return template["Resources"]


@pytest.fixture(scope="module")
def spoke(synth) -> dict[str, Any]:
    return synth[3]


@pytest.fixture(scope="module")
def hub_bus_id(resources) -> str:
    (bus_id,) = of_type(resources, "AWS::Events::EventBus")
    return bus_id


@pytest.fixture(scope="module")
def bucket_ids(resources) -> tuple[str, str]:
    """(results bucket, access-log bucket)."""
    buckets = of_type(resources, "AWS::S3::Bucket")
    (results,) = [k for k, b in buckets.items() if "LoggingConfiguration" in b["Properties"]]
    (logs,) = [k for k in buckets if k != results]
    return results, logs


# ---- settings ----------------------------------------------------------------------------------------


def config_of(context: dict[str, Any]):
    return from_context(context.get)


@pytest.mark.parametrize(
    "key,value",
    [
        ("remediator:deployment", "org"),
        ("remediator:deployment", ""),
        ("remediator:organizationId", "o-short"),
        ("remediator:organizationId", "O-A1B2C3D4E5"),
        ("remediator:organizationId", 12),
        ("remediator:trustOrganization", "yes"),
        ("remediator:trustedOrganizationalUnits", ["ou-ab12"]),
        ("remediator:trustedOrganizationalUnits", ["r-AB12"]),
        ("remediator:trustedOrganizationalUnits", "o-a1b2c3d4e5"),
        ("remediator:spokeOrganizationalUnits", ["ou-ab12-abc"]),
        ("remediator:spokeOrganizationalUnits", [7]),
        ("remediator:spokeRegions", ["us-east"]),
        ("remediator:spokeRegions", "US-EAST-1"),
        ("remediator:spokeRoleName", "a role"),
        ("remediator:spokeRoleName", "r" * 65),
        ("remediator:spokeRoleName", "rôle"),
        ("remediator:orgSweepConcurrency", 0),
        ("remediator:orgSweepConcurrency", 1001),
        ("remediator:orgSweepConcurrency", "many"),
        ("remediator:orgSweepConcurrency", True),
    ],
)
def test_organization_settings_refuse_bad_values(key, value):
    with pytest.raises(ConfigError) as raised:
        config_of({**ORG_CONTEXT, key: value})
    message = str(raised.value)
    assert key in message and "\n" not in message


@pytest.mark.parametrize(
    "key,value",
    [
        ("remediator:organizationId", ORG),
        ("remediator:trustOrganization", True),
        ("remediator:trustOrganization", "true"),
        ("remediator:trustedOrganizationalUnits", TRUSTED_OUS),
        ("remediator:spokeOrganizationalUnits", OUS),
        ("remediator:spokeRegions", REGIONS),
        ("remediator:spokeRoleName", "another-role"),
        ("remediator:orgSweepConcurrency", 10),
    ],
)
def test_organization_keys_are_refused_in_account_mode(key, value):
    with pytest.raises(ConfigError) as raised:
        config_of({key: value})
    message = str(raised.value)
    assert key in message and "organization mode only" in message and "\n" not in message
    # Their defaults (as cdk.json carries them) are fine.
    assert config_of({key: DEFAULTS[key]}).deployment == "account"


@pytest.mark.parametrize(
    "missing", ["remediator:organizationId", "remediator:spokeOrganizationalUnits", "remediator:spokeRegions"]
)
def test_organization_mode_requires(missing):
    with pytest.raises(ConfigError) as raised:
        config_of({**ORG_CONTEXT, missing: DEFAULTS[missing]})
    message = str(raised.value)
    assert missing in message and "\n" not in message


def test_organization_settings_from_the_command_line():
    config = config_of({
        **ORG_CONTEXT,
        "remediator:spokeOrganizationalUnits": "ou-ab12-abcdefgh,r-ab12",
        "remediator:spokeRegions": '["eu-west-1", "us-east-1"]',
        "remediator:trustOrganization": "true",
        "remediator:trustedOrganizationalUnits": "ou-ab12-zyxwvuts",
        "remediator:orgSweepConcurrency": "25",
        "remediator:spokeRoleName": "team+remediator@spoke",
    })
    assert config.organization and config.organization_id == ORG
    assert config.spoke_ous == tuple(OUS) and config.spoke_regions == tuple(REGIONS)
    assert config.trust_organization is True and config.trusted_ous == tuple(TRUSTED_OUS)
    assert config.org_sweep_concurrency == 25 and config.spoke_role_name == "team+remediator@spoke"


def test_trust_document():
    # Account mode: byte for byte what it always was.
    assert config_of({}).trust_document() == '{"trusted_accounts":[],"trusted_org_ids":[]}'
    assert json.loads(config_of(CONTEXT).trust_document()) == {
        "trusted_accounts": [], "trusted_org_ids": [], "trust_organization": True, "trusted_ous": TRUSTED_OUS,
    }
    assert json.loads(config_of(ORG_CONTEXT).trust_document())["trust_organization"] is False


def test_build_app_refuses_bad_organization_settings():
    with pytest.raises(ConfigError, match="remediator:spokeRegions"):
        build_app({**ORG_CONTEXT, "remediator:spokeRegions": "mars-1"}, nag=False)


# ---- the hub: its bus and what listens on it ----------------------------------------------------------


def test_hub_bus_takes_events_only_from_the_organization(resources, hub_bus_id):
    assert resources[hub_bus_id]["Properties"] == {"Name": HUB_BUS_NAME}
    (policy,) = of_type(resources, "AWS::Events::EventBusPolicy").values()
    props = policy["Properties"]
    assert props["EventBusName"] == {"Ref": hub_bus_id}
    statement = props["Statement"]
    assert statement["Effect"] == "Allow" and statement["Action"] == "events:PutEvents"
    assert statement["Principal"] == {"AWS": "*"}
    assert statement["Condition"] == {"StringEquals": {"aws:PrincipalOrgID": ORG}}
    assert statement["Resource"] == {"Fn::GetAtt": [hub_bus_id, "Arn"]}


def test_api_change_rule_is_on_the_hub_bus(resources, hub_bus_id):
    rules = {k: r["Properties"] for k, r in of_type(resources, "AWS::Events::Rule").items()}
    api_rules = [r for r in rules.values() if r.get("EventPattern", {}).get("source") == ["aws.apigateway"]]
    (rule,) = api_rules  # none on the default bus
    assert rule["EventBusName"] == {"Ref": hub_bus_id}
    assert rule["EventPattern"] == event_pattern([])
    (target,) = rule["Targets"]
    assert target["Arn"]["Fn::GetAtt"][0] == functions(resources)["trigger"][0]


def test_roster_runs_daily_and_on_account_events(resources, hub_bus_id):
    roster_id = functions(resources)["roster"][0]
    rules = [r["Properties"] for r in of_type(resources, "AWS::Events::Rule").values()
             if any(t["Arn"] == {"Fn::GetAtt": [roster_id, "Arn"]} for t in r["Properties"]["Targets"])]
    assert sorted("ScheduleExpression" in r for r in rules) == [False, True]
    (events_rule,) = [r for r in rules if "EventPattern" in r]
    assert events_rule["EventBusName"] == {"Ref": hub_bus_id}
    assert events_rule["EventPattern"] == {
        "source": ["aws.organizations"],
        # CreateAccountResult is a service event (CloudTrail eventType AwsServiceEvent), the rest API calls.
        "detail-type": ["AWS API Call via CloudTrail", "AWS Service Event via CloudTrail"],
        "detail": {"eventSource": ["organizations.amazonaws.com"], "eventName": list(ACCOUNT_EVENTS)},
    }
    assert set(ACCOUNT_EVENTS) == {"CreateAccountResult", "InviteAccountToOrganization", "AcceptHandshake",
                                   "RemoveAccountFromOrganization", "LeaveOrganization", "MoveAccount", "CloseAccount"}


def test_sweep_schedule_starts_the_organization_sweep(resources):
    (machine_id,) = [k for k, m in of_type(resources, "AWS::StepFunctions::StateMachine").items()
                     if m["Properties"].get("StateMachineName") == ORG_SWEEP_NAME]
    (rule,) = [r["Properties"] for r in of_type(resources, "AWS::Events::Rule").values()
               if r["Properties"].get("ScheduleExpression") == DEFAULTS["remediator:sweepSchedule"]
               and r["Properties"]["Targets"][0]["Arn"] == {"Ref": machine_id}]
    (target,) = rule["Targets"]
    role_id = target["RoleArn"]["Fn::GetAtt"][0]
    (statement,) = role_statements(resources, role_id)
    assert statement["Action"] == "states:StartExecution" and statement["Resource"] == {"Ref": machine_id}
    assert "DeadLetterConfig" in target and target["RetryPolicy"]["MaximumRetryAttempts"] >= 1
    # The sweep Lambda is no schedule's target: the Map invokes it.
    sweep_id = functions(resources)["sweep"][0]
    assert not any(t["Arn"] == {"Fn::GetAtt": [sweep_id, "Arn"]}
                   for r in of_type(resources, "AWS::Events::Rule").values() for t in r["Properties"]["Targets"])


# ---- the hub's functions -----------------------------------------------------------------------------


def test_every_function_of_the_hub_with_its_fixed_role_name(resources):
    found = functions(resources)
    expected = {*remediator.functions.NAMES, *remediator.functions.ORGANIZATION_NAMES}
    assert set(found) == expected
    for name, (_, function) in found.items():
        role = resources[function["Properties"]["Role"]["Fn::GetAtt"][0]]
        assert role["Properties"]["RoleName"] == f"{HUB_ROLE_PREFIX}{name}"
        assert len(role["Properties"]["RoleName"]) <= 64
    timeouts = {name: f["Properties"]["Timeout"] for name, (_, f) in found.items()}
    # The sweep is the organization sweep's Express child: 130 s, under its task's 140 s (org_sweep.json).
    assert (timeouts["roster"], timeouts["plan"], timeouts["summarize"], timeouts["sweep"]) == (60, 60, 120, 130)


def test_every_function_gets_the_organization_environment(resources, bucket_ids):
    for name, (_, function) in functions(resources).items():
        env = function["Properties"]["Environment"]["Variables"]
        assert {k: env[k] for k in ORG_ENV} == ORG_ENV, name
        assert env["RESULTS_BUCKET"] == {"Ref": bucket_ids[0]}, name


def test_trust_parameter_holds_the_organization_keys(resources):
    (param,) = [p for p in of_type(resources, "AWS::SSM::Parameter").values() if p["Properties"]["Name"].endswith("/trust")]
    assert json.loads(param["Properties"]["Value"]) == {
        "trusted_accounts": [], "trusted_org_ids": [], "trust_organization": True, "trusted_ous": TRUSTED_OUS,
    }


def test_the_hub_makes_no_api_gateway_call_itself(resources):
    for name, (_, function) in functions(resources).items():
        for statement in function_statements(resources, function):
            assert not any(a.startswith("apigateway:") for a in as_list(statement["Action"])), name


def test_spoke_assumers_are_exactly_the_functions_that_need_it(resources):
    spoke_arn = "arn:<AWS::Partition>:iam::*:role/apigw-remediator-spoke"
    assumers = set()
    for name, (_, function) in functions(resources).items():
        for statement in function_statements(resources, function):
            if "sts:AssumeRole" in as_list(statement["Action"]):
                assert as_list(statement["Action"]) == ["sts:AssumeRole"]
                assert [flat(r) for r in as_list(statement["Resource"])] == [spoke_arn]
                # Only a role owned by an account of the hub's own organization.
                assert statement["Condition"] == {"StringEquals": {"aws:ResourceOrgID": "${aws:PrincipalOrgID}"}}
                assumers.add(name)
    assert assumers == set(spoke_functions(from_context(CONTEXT.get)))
    assert assumers == {"trigger", "sweep", "evaluate", "apply", "redeploy", "restore"}  # the trigger reads, to decide


def test_organization_reads_roster_and_results_grants(resources, bucket_ids):
    results_bucket = bucket_ids[0]
    by_name = functions(resources)
    for name, (_, function) in by_name.items():
        needs = remediator.functions.needs(name, "approval", True, organization=True)
        grants = function_statements(resources, function)
        reads = [s for s in grants if set(as_list(s["Action"])) & set(ORGANIZATION_READS)]
        if needs is not None and needs.read_organization:
            (statement,) = reads
            assert sorted(as_list(statement["Action"])) == sorted(ORGANIZATION_READS) and statement["Resource"] == "*"
        else:
            assert reads == [], name
        roster = [s for s in grants if s.get("Condition", {}).get("ForAllValues:StringLike", {})
                  .get("dynamodb:LeadingKeys") == list(ROSTER_ITEM_KEYS)]
        assert sorted(a for s in roster for a in as_list(s["Action"])) == sorted(needs.roster if needs else ()), name
        s3 = [s for s in grants if any(a.startswith("s3:") for a in as_list(s["Action"]))]
        if needs is not None and needs.results:
            (statement,) = s3
            assert sorted(as_list(statement["Action"])) == sorted(needs.results)
            assert flat(statement["Resource"]) == f"<{results_bucket}.Arn>/*"
        else:
            assert s3 == [], name
    roster_reads = [s for s in function_statements(resources, by_name["roster"][1])
                    if set(as_list(s["Action"])) & set(ORGANIZATION_READS)]
    assert len(roster_reads) == 1  # the roster function is the one that reads the organization


# ---- the organization sweep ---------------------------------------------------------------------------


def test_org_sweep_runs_the_package_definition(resources, bucket_ids):
    (machine,) = [m for m in of_type(resources, "AWS::StepFunctions::StateMachine").values()
                  if m["Properties"].get("StateMachineName") == ORG_SWEEP_NAME]
    props = machine["Properties"]
    assert props["StateMachineType"] == "STANDARD"
    name = "org_sweep.json"
    text = flat(props["DefinitionString"])
    assert "arn:aws:" not in text  # the service integrations' ARNs are the stack's partition's
    assert json.loads(text.replace("arn:<AWS::Partition>:", "arn:aws:")) == json.loads(remediator.workflow.definition_text(name))
    substitutions = props["DefinitionSubstitutions"]
    assert set(substitutions) == remediator.workflow.placeholders(name)
    by_name = functions(resources)
    arns = {}
    for task in remediator.workflow.ORG_SWEEP_FUNCTIONS:
        ref = substitutions[f"{task}FunctionArn"]
        assert ref == {"Fn::GetAtt": [by_name[task.lower()][0], "Arn"]}
        arns[task] = flat(ref)
    assert substitutions[remediator.workflow.ORG_SWEEP_BUCKET] == {"Ref": bucket_ids[0]}
    rendered = flat(props["DefinitionString"])
    for key, value in substitutions.items():
        rendered = rendered.replace("${" + key + "}", flat(value))
    assert json.loads(rendered.replace("arn:<AWS::Partition>:states:", "arn:aws:states:")) == json.loads(
        remediator.workflow.render(arns, name, ResultsBucket=f"<{bucket_ids[0]}>")
    )
    # Logged and traced like the remediation workflow.
    assert props["LoggingConfiguration"]["Level"] == "ALL" and props["LoggingConfiguration"]["IncludeExecutionData"] is False
    assert props["TracingConfiguration"] == {"Enabled": True}


def test_org_sweep_role(resources, bucket_ids):
    (machine,) = [m for m in of_type(resources, "AWS::StepFunctions::StateMachine").values()
                  if m["Properties"].get("StateMachineName") == ORG_SWEEP_NAME]
    grants = role_statements(resources, machine["Properties"]["RoleArn"]["Fn::GetAtt"][0])
    by_action: dict[str, set[str]] = {}
    for statement in grants:
        for action in as_list(statement["Action"]):
            by_action.setdefault(action, set()).update(flat(r) for r in as_list(statement["Resource"]))
    by_name = functions(resources)
    assert by_action["lambda:InvokeFunction"] == {f"<{by_name[n][0]}.Arn>" for n in ("plan", "sweep", "summarize")}
    bucket = bucket_ids[0]
    assert by_action["s3:GetObject"] == {f"<{bucket}.Arn>/*", f"<{bucket}.Arn>/results/*"}
    for action in ("s3:PutObject", "s3:ListMultipartUploadParts", "s3:AbortMultipartUpload"):
        assert by_action[action] == {f"<{bucket}.Arn>/results/*"}, action
    assert by_action["states:StartExecution"] == {
        f"arn:<AWS::Partition>:states:<AWS::Region>:<AWS::AccountId>:stateMachine:{ORG_SWEEP_NAME}"}
    for action in ("states:DescribeExecution", "states:StopExecution"):
        assert by_action[action] == {
            f"arn:<AWS::Partition>:states:<AWS::Region>:<AWS::AccountId>:execution:{ORG_SWEEP_NAME}/*"}, action


def test_results_bucket_is_encrypted_tls_only_logged_and_expires(resources, bucket_ids):
    results, logs = bucket_ids
    for bucket_id in (results, logs):
        props = resources[bucket_id]["Properties"]
        assert props["BucketEncryption"]["ServerSideEncryptionConfiguration"][0]["ServerSideEncryptionByDefault"] == {
            "SSEAlgorithm": "AES256"}
        assert props["PublicAccessBlockConfiguration"] == {
            "BlockPublicAcls": True, "BlockPublicPolicy": True, "IgnorePublicAcls": True, "RestrictPublicBuckets": True}
        rules = props["LifecycleConfiguration"]["Rules"]
        assert any("ExpirationInDays" in r for r in rules) and any("AbortIncompleteMultipartUpload" in r for r in rules)
        (policy,) = [p for p in of_type(resources, "AWS::S3::BucketPolicy").values()
                     if p["Properties"]["Bucket"] == {"Ref": bucket_id}]
        assert any(s["Effect"] == "Deny" and s["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
                   for s in policy["Properties"]["PolicyDocument"]["Statement"])
    assert resources[results]["Properties"]["LoggingConfiguration"]["DestinationBucketName"] == {"Ref": logs}
    assert resources[results]["Properties"]["LifecycleConfiguration"]["Rules"][0]["ExpirationInDays"] == 90


def test_outputs(template, hub_bus_id, bucket_ids):
    outputs = template["Outputs"]
    assert outputs["HubBusArn"]["Value"] == {"Fn::GetAtt": [hub_bus_id, "Arn"]}
    assert outputs["ResultsBucketName"]["Value"] == {"Ref": bucket_ids[0]}
    assert "OrgSweepStateMachineArn" in outputs


# ---- the StackSet and the spoke -------------------------------------------------------------------------


def test_stack_set_is_service_managed_with_auto_deployment(resources, hub_bus_id):
    (stack_set,) = of_type(resources, "AWS::CloudFormation::StackSet").values()
    props = stack_set["Properties"]
    assert props["PermissionModel"] == "SERVICE_MANAGED"
    # A new account in a target OU gets the spoke; one that leaves loses it.
    assert props["AutoDeployment"] == {"Enabled": True, "RetainStacksOnAccountRemoval": False}
    assert props["CallAs"] == "DELEGATED_ADMIN"
    assert "CAPABILITY_NAMED_IAM" in props["Capabilities"]
    (group,) = props["StackInstancesGroup"]
    assert group["DeploymentTargets"]["OrganizationalUnitIds"] == OUS
    assert group["Regions"] == REGIONS
    assert {p["ParameterKey"]: p["ParameterValue"] for p in props["Parameters"]} == {
        "HubAccountId": {"Ref": "AWS::AccountId"},
        "HubBusArn": {"Fn::GetAtt": [hub_bus_id, "Arn"]},
    }
    ops = props["OperationPreferences"]
    assert ops == {"MaxConcurrentPercentage": 25, "FailureTolerancePercentage": 10, "RegionConcurrencyType": "PARALLEL"}
    # IAM refuses a trust policy naming a role that does not exist yet: the hub's assuming roles come first.
    by_name = functions(resources)
    for name in spoke_functions(from_context(CONTEXT.get)):
        role_id = by_name[name][1]["Properties"]["Role"]["Fn::GetAtt"][0]
        assert role_id in stack_set["DependsOn"], name


def test_spoke_role_trust_is_the_hub_roles_from_the_organization(spoke):
    roles = of_type(spoke["Resources"], "AWS::IAM::Role")
    (role,) = [r for r in roles.values() if r["Properties"].get("RoleName") == "apigw-remediator-spoke"]
    # IAM is global: the role exists once per account, in the first spoke region.
    assert role["Condition"] == "RoleRegion"
    assert spoke["Conditions"]["RoleRegion"] == {"Fn::Equals": [{"Ref": "AWS::Region"}, REGIONS[0]]}
    (statement,) = role["Properties"]["AssumeRolePolicyDocument"]["Statement"]
    assert statement["Effect"] == "Allow" and statement["Action"] == "sts:AssumeRole"
    assert statement["Condition"] == {"StringEquals": {"aws:PrincipalOrgID": ORG}}
    assert sorted(flat(p) for p in statement["Principal"]["AWS"]) == sorted(
        f"arn:<AWS::Partition>:iam::<HubAccountId>:role/{HUB_ROLE_PREFIX}{name}"
        for name in ("trigger", "sweep", "evaluate", "apply", "redeploy", "restore")
    )
    assert set(statement) == {"Effect", "Action", "Principal", "Condition"}


def test_spoke_role_allows_exactly_the_spoke_calls(spoke):
    (role,) = [r for r in of_type(spoke["Resources"], "AWS::IAM::Role").values()
               if r["Properties"].get("RoleName") == "apigw-remediator-spoke"]
    granted, denied = set(), set()
    for policy in role["Properties"]["Policies"]:
        for statement in policy["PolicyDocument"]["Statement"]:
            assert "Condition" not in statement
            for action in as_list(statement["Action"]):
                for resource in as_list(statement["Resource"]):
                    (granted if statement["Effect"] == "Allow" else denied).add((action, flat(resource)))
    single_account = [remediator.functions.needs(n, "approval", True) for n in remediator.functions.NAMES]
    expected = {
        (f"apigateway:{action}", f"arn:<AWS::Partition>:apigateway:{region}::{path}")
        for action, path in spoke_calls(single_account) for region in REGIONS
    }
    assert granted == expected
    assert spoke_api_calls(from_context(CONTEXT.get)) == spoke_calls(single_account)
    # Writes on a REST API and its stages only: every write verb it has is denied on the sub-resources.
    verbs, paths = denied_writes(spoke_calls(single_account))
    assert verbs == ("apigateway:PATCH", "apigateway:POST") and "/restapis/??????????/resources*" in paths
    assert denied == {(verb, f"arn:<AWS::Partition>:apigateway:{region}::{path}")
                      for verb in verbs for path in paths for region in REGIONS}
    # Only the remediation role and the forward rule's own role (PutEvents to the hub bus) exist.
    assert len(of_type(spoke["Resources"], "AWS::IAM::Role")) == 2


def test_spoke_forward_rule(spoke):
    (rule,) = of_type(spoke["Resources"], "AWS::Events::Rule").values()
    props = rule["Properties"]
    assert "EventBusName" not in props  # the member account's default bus
    own_role = "arn:<AWS::Partition>:iam::<AWS::AccountId>:role/apigw-remediator-spoke"
    pattern = props["EventPattern"]
    issuer = pattern["detail"]["$or"][1]["userIdentity"]["sessionContext"]["sessionIssuer"]["arn"]
    (anything_but,) = issuer
    assert [flat(a) for a in anything_but["anything-but"]] == [own_role]
    # Exactly the single-account pattern with the spoke role as the only "own" role: failed calls and the
    # spoke role's writes never match.
    assert pattern == event_pattern(anything_but["anything-but"])
    assert pattern["detail"]["errorCode"] == [{"exists": False}]
    (target,) = props["Targets"]
    assert target["Arn"] == {"Ref": "HubBusArn"}
    role_id = target["RoleArn"]["Fn::GetAtt"][0]
    (put,) = role_statements(spoke["Resources"], role_id)
    assert put["Action"] == "events:PutEvents" and put["Resource"] == {"Ref": "HubBusArn"}
    queue_id = target["DeadLetterConfig"]["Arn"]["Fn::GetAtt"][0]
    assert spoke["Resources"][queue_id]["Properties"]["SqsManagedSseEnabled"] is True
    assert set(spoke["Parameters"]) == {"HubAccountId", "HubBusArn"}


# ---- cdk-nag and cfn-lint ------------------------------------------------------------------------------


def test_cdk_nag_clean_hub_and_spoke(stack):
    for scope in (stack, stack.spoke):
        report = AwsSolutionsChecks().validate_scope(scope)
        findings = [(v.rule_name, [r.construct_path for r in v.violating_resources]) for v in report.violations]
        assert findings == [], scope.node.path


def test_every_acknowledgment_is_expected_and_explained(stack):
    for scope, expected in ((stack, EXPECTED_HUB_ACKNOWLEDGMENTS), (stack.spoke, EXPECTED_SPOKE_ACKNOWLEDGMENTS)):
        found = acknowledged(scope)
        assert set(found) == expected, scope.node.path
        for rule_id, reasons in found.items():
            assert all(isinstance(r, str) and len(r.strip()) >= 10 for r in reasons), rule_id


def test_cfn_lint_clean_hub_and_spoke(template, spoke, tmp_path):
    assert lint(template, tmp_path / "hub.json") == []
    assert lint(spoke, tmp_path / "spoke.json") == []


def test_dry_run_hub_synthesizes_with_aws_solutions_checks(tmp_path):
    """What `cdk synth -c remediator:deployment=organization ...` does: cdk-nag registered on the app; any
    unacknowledged finding in the hub or the spoke would make the synth raise."""
    app, stack = build_app({**ORG_CONTEXT, "remediator:spokeRegions": "us-east-1"}, outdir=str(tmp_path))
    app.synth()
    report = json.loads((tmp_path / "validation-report.json").read_text())
    for plugin in report["pluginReports"]:
        assert plugin["violations"] == [], plugin["pluginName"]
    hub = json.loads((tmp_path / f"{stack.stack_name}.template.json").read_text())
    spoke = spoke_template_of(tmp_path, hub, stack.stack_name)
    # A dry run's spoke role may only read.
    (role,) = [r for r in of_type(spoke["Resources"], "AWS::IAM::Role").values()
               if r["Properties"].get("RoleName") == "apigw-remediator-spoke"]
    actions = {a for p in role["Properties"]["Policies"] for s in p["PolicyDocument"]["Statement"] for a in as_list(s["Action"])}
    assert actions == {"apigateway:GET"}
    # Only the functions a dry run reaches assume it.
    (statement,) = role["Properties"]["AssumeRolePolicyDocument"]["Statement"]
    assert sorted(flat(p).rsplit("/", 1)[1] for p in statement["Principal"]["AWS"]) == [
        f"{HUB_ROLE_PREFIX}evaluate", f"{HUB_ROLE_PREFIX}sweep", f"{HUB_ROLE_PREFIX}trigger"]
    assert lint(hub, tmp_path / "hub.json") == [] and lint(spoke, tmp_path / "spoke.json") == []
