"""The preventive control (remediator:cloudFormationHook): a CloudFormation Lambda Hook that judges a RestApi's Policy
before CloudFormation provisions it, with the deployed trusted lists, in the documented request and answer shapes
(CloudFormation Hooks User Guide, "Create Lambda functions to evaluate resources for Lambda Hooks"); its roles allow
exactly what it does, on the strict account."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from infra import ConfigError, build_app
from infra.config import from_context
from remediator.local.iam import _wild
from remediator.local.template import HOOK_VARIANTS, committed_template, comparable, of_type, synthesized_template
from tests.conftest import OWNER, PARTNER, STRANGER
from tests.test_iam_coverage import grants
from tests.test_notices import WILDCARD
from tests.test_workflow import COMPLIANT, UNTRUSTED

SAMPLE = Path(__file__).parent / "data" / "cloudformation-hooks" / "resource-update-request.json"
# The documented answer (hookStatus required; errorCode required when FAILED).
ANSWER_KEYS = {"hookStatus", "errorCode", "message", "clientRequestToken", "callbackContext", "callbackDelaySeconds", "annotations"}
ANNOTATION_KEYS = {"annotationName", "status", "statusMessage", "remediationMessage", "remediationLink", "severityLevel"}


def request(properties: dict[str, Any] | None, point: str = "CREATE_PRE_PROVISION", target: str = "AWS::ApiGateway::RestApi",
            token: str = "123avjdjk31") -> dict[str, Any]:
    """The documented sample request, about a RestApi with these proposed properties."""
    sample = json.loads(SAMPLE.read_text())
    built = copy.deepcopy(sample)
    built.update(clientRequestToken=token, actionInvocationPoint=point, awsAccountId=OWNER)
    built["requestData"] = {"targetName": target, "targetType": target, "targetLogicalId": "Api",
                            "targetModel": {"resourceProperties": properties or {}, "previousResourceProperties": {}}}
    return built


def assert_documented(answer: dict[str, Any], token: str = "123avjdjk31") -> None:
    assert set(answer) <= ANSWER_KEYS and answer["hookStatus"] in ("SUCCESS", "FAILED", "IN_PROGRESS")
    assert answer["clientRequestToken"] == token and len(answer["message"]) <= 4096
    if answer["hookStatus"] == "FAILED":
        assert answer["errorCode"] in ("NonCompliant", "InternalFailure")
    for annotation in answer.get("annotations", []):
        assert set(annotation) <= ANNOTATION_KEYS and annotation["status"] in ("PASSED", "FAILED", "SKIPPED")
        assert annotation["severityLevel"] in ("INFORMATIONAL", "LOW", "MEDIUM", "HIGH", "CRITICAL")


@pytest.fixture
def flow(make_flow):
    return make_flow(mode="auto", hook="fail")


def test_the_vendored_sample_is_the_documented_resource_request() -> None:
    sample = json.loads(SAMPLE.read_text())
    assert sample["actionInvocationPoint"] == "UPDATE_PRE_PROVISION"
    assert set(sample["requestData"]["targetModel"]) == {"resourceProperties", "previousResourceProperties"}
    assert sample["requestContext"] == {"invocation": 1, "callbackContext": None}


def test_an_untrusted_principal_fails_the_create_or_update_with_the_finding(flow) -> None:
    for point in ("CREATE_PRE_PROVISION", "UPDATE_PRE_PROVISION"):
        answer = flow.invoke_hook(request({"Name": "orders", "Policy": UNTRUSTED}, point))
        assert_documented(answer)
        assert (answer["hookStatus"], answer["errorCode"]) == ("FAILED", "NonCompliant")
        assert STRANGER in answer["message"] and "untrusted-account" in answer["message"] and PARTNER not in answer["message"]
        assert answer["annotations"][0]["severityLevel"] == "HIGH"


def test_a_policy_given_as_a_string_is_judged_the_same(flow) -> None:
    answer = flow.invoke_hook(request({"Name": "orders", "Policy": json.dumps(WILDCARD)}))
    assert_documented(answer)
    assert answer["hookStatus"] == "FAILED" and "wildcard-principal" in answer["message"]


def test_trusted_only_missing_and_other_targets_succeed(flow) -> None:
    for properties, target, point in (({"Name": "ok", "Policy": COMPLIANT}, "AWS::ApiGateway::RestApi", "CREATE_PRE_PROVISION"),
                                      ({"Name": "none"}, "AWS::ApiGateway::RestApi", "UPDATE_PRE_PROVISION"),
                                      ({"Name": "gone", "Policy": UNTRUSTED}, "AWS::ApiGateway::RestApi", "DELETE_PRE_PROVISION"),
                                      ({"Policy": UNTRUSTED}, "AWS::DynamoDB::Table", "CREATE_PRE_PROVISION")):
        answer = flow.invoke_hook(request(properties, point, target))
        assert_documented(answer)
        assert answer["hookStatus"] == "SUCCESS" and "errorCode" not in answer, (properties, target, point)


def test_the_documented_sample_itself_is_not_checked(flow) -> None:
    sample = json.loads(SAMPLE.read_text())
    answer = flow.invoke_hook(sample)
    assert answer["hookStatus"] == "SUCCESS" and answer["clientRequestToken"] is None  # the sample has no token


def test_an_unresolved_intrinsic_is_reported_not_blocked(flow) -> None:
    policy = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"AWS": {"Fn::Sub": "arn:aws:iam::${Acct}:root"}},
                                                      "Action": "execute-api:Invoke", "Resource": "execute-api:/*"}]}
    answer = flow.invoke_hook(request({"Name": "sub", "Policy": policy}))
    assert_documented(answer)
    assert answer["hookStatus"] == "SUCCESS" and answer["message"].startswith("WARNING") and "Fn::Sub" in answer["message"]


def test_warn_mode_reports_without_failing(flow, monkeypatch) -> None:
    monkeypatch.setenv("HOOK_MODE", "warn")
    answer = flow.invoke_hook(request({"Name": "orders", "Policy": UNTRUSTED}))
    assert_documented(answer)
    assert answer["hookStatus"] == "SUCCESS" and answer["message"].startswith("WARNING") and STRANGER in answer["message"]


def test_the_deployed_trusted_lists_decide(flow) -> None:
    """The same SSM trust parameter the other functions read: trusting the stranger there lets the policy through."""
    parameter = next(iter(flow.clients.client("ssm", flow.region).describe_parameters()["Parameters"]))["Name"]
    flow.clients.client("ssm", flow.region).put_parameter(
        Name=parameter, Overwrite=True, Value=json.dumps({"trusted_accounts": [PARTNER, STRANGER], "trusted_org_ids": []}))
    from remediator.adapters import ssm

    ssm.forget_cached()
    assert flow.invoke_hook(request({"Name": "orders", "Policy": UNTRUSTED}))["hookStatus"] == "SUCCESS"


def test_the_hooks_roles_allow_exactly_what_it_does(flow) -> None:
    first = len(flow.strict.checked)
    flow.invoke_hook(request({"Name": "orders", "Policy": UNTRUSTED}))
    checked = flow.strict.checked[first:]
    assert [c for c in checked if not c.allowed] == []
    for name in ("hook", "cloudformation-hooks"):
        (principal,) = [p for p in flow.strict.principals.values() if p.name == name and p.scope == "auto"]
        calls = [c for c in checked if c.principal == name]
        unused = [(a, r) for a, r in grants(principal)
                  if not any(c.action.lower() == a.lower() and _wild(r, False).fullmatch(c.resource) for c in calls)]
        assert calls and unused == [], (name, unused)
    assert {c.action for c in checked if c.principal == "cloudformation-hooks"} == {"lambda:InvokeFunction"}


# ---- the stack --------------------------------------------------------------------------------------


def test_the_setting_is_off_by_default_and_a_bad_value_names_the_key() -> None:
    assert from_context(lambda key: None).cloudformation_hook == "off"
    with pytest.raises(ConfigError, match="remediator:cloudFormationHook"):
        from_context({"remediator:cloudFormationHook": "block"}.get)
    assert of_type(synthesized_template("auto"), "AWS::CloudFormation::LambdaHook") == {}


def test_the_hook_resource_and_its_execution_role() -> None:
    template = synthesized_template("auto", hook="fail")
    (hook,) = of_type(template, "AWS::CloudFormation::LambdaHook").values()
    properties = hook["Properties"]
    assert properties["TargetOperations"] == ["RESOURCE"] and properties["FailureMode"] == "FAIL"
    assert properties["TargetFilters"] == {"Targets": [
        {"Action": action, "InvocationPoint": "PRE_PROVISION", "TargetName": "AWS::ApiGateway::RestApi"} for action in ("CREATE", "UPDATE")]}
    role_id = properties["ExecutionRole"]["Fn::GetAtt"][0]
    (trust,) = template["Resources"][role_id]["Properties"]["AssumeRolePolicyDocument"]["Statement"]
    assert trust["Principal"] == {"Service": "hooks.cloudformation.amazonaws.com"}
    assert trust["Condition"]["StringEquals"] == {"aws:SourceAccount": {"Ref": "AWS::AccountId"}}
    policies = [p["Properties"]["PolicyDocument"]["Statement"] for p in of_type(template, "AWS::IAM::Policy").values()
                if p["Properties"]["Roles"] == [{"Ref": role_id}]]
    assert policies == [[{"Action": "lambda:InvokeFunction", "Effect": "Allow", "Resource": properties["LambdaFunction"]}]]
    # Nothing else may invoke the hook function: no resource-based permission on it at all.
    assert not [p for p in of_type(template, "AWS::Lambda::Permission").values()
                if p["Properties"]["FunctionName"] == properties["LambdaFunction"]]


def test_the_committed_hook_template_is_fresh() -> None:
    for mode, slack, organization, hook in HOOK_VARIANTS:
        assert comparable(synthesized_template(mode, slack, organization, hook)) == committed_template(mode, slack, organization, hook), \
            "run `make templates`"


def test_cdk_nag_and_cfn_lint_are_clean_with_the_hook(tmp_path) -> None:
    from cdk_nag import AwsSolutionsChecks
    from cfnlint.api import ManualArgs, lint_file

    for setting in ("fail", "warn"):
        app, stack = build_app({"remediator:mode": "auto", "remediator:cloudFormationHook": setting,
                                "remediator:securityHub": "on"}, outdir=str(tmp_path / setting), nag=False)
        template = app.synth().get_stack_by_name(stack.stack_name).template
        report = AwsSolutionsChecks().validate_scope(stack)
        assert [(v.rule_name, [r.construct_path for r in v.violating_resources]) for v in report.violations] == []
        path = tmp_path / f"{setting}.json"
        path.write_text(json.dumps(template))
        matches = lint_file(path, config=ManualArgs(regions=["us-east-1", "eu-west-1"]))
        assert [f"{m.rule.id}: {m.message}" for m in matches if m.rule.severity in ("error", "warning")] == []
        (hook,) = of_type(template, "AWS::CloudFormation::LambdaHook").values()
        assert hook["Properties"]["FailureMode"] == setting.upper()
