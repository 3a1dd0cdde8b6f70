"""The strict local account: IAM from the synthesized template, quotas, CloudTrail events of every
write (the bot's own too), escaped policies and Lambda timeouts; and what it revealed, fixed:
no self-triggered loop, trust bound to the bot's own account, alarms that can notify."""

from __future__ import annotations

import json
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from remediator.adapters.apigateway import ApiGatewayAdapter
from remediator.core import parse_policy
from remediator.local import cloudtrail, runner
from remediator.local.iam import Call, PolicySet, resource_policy_decide
from remediator.local.template import VARIANTS
from remediator.local.runner import LocalWorkflow
from remediator.local.strict import Principal, escape_policy
from remediator.local.template import of_type
from remediator.workflow.errors import RemediationFailed
from tests.conftest import OWNER, PARTNER, STRANGER
from tests.test_workflow import FIXED, REGION, UNTRUSTED, policy_of, run, seed


@pytest.fixture
def flow(make_flow) -> LocalWorkflow:
    return make_flow(mode="auto")


def executions(flow: LocalWorkflow) -> list[dict[str, Any]]:
    sfn = flow.clients.client("stepfunctions", REGION)
    return sfn.list_executions(stateMachineArn=flow.state_machine_arn)["executions"]


def without_integration(flow: LocalWorkflow, api_id: str) -> None:
    """A method with no integration: API Gateway then refuses every CreateDeployment of the API."""
    client = flow.clients.client("apigateway", REGION)
    root = client.get_resources(restApiId=api_id)["items"][0]["id"]
    client.put_method(restApiId=api_id, resourceId=root, httpMethod="POST", authorizationType="NONE")


# ---- IAM -------------------------------------------------------------------------------------------


def test_the_fix_is_authorized_by_the_template_grants(flow: LocalWorkflow) -> None:
    api_id = seed(flow, UNTRUSTED)
    _, result = run(flow, api_id)
    assert result.status == "SUCCEEDED" and policy_of(flow, api_id) == FIXED
    checked = [c for c in flow.strict.checked if c.principal == "apply"]
    assert any(c.action == "apigateway:UpdateRestApiPolicy" and c.allowed and c.resource.endswith(f"::/restapis/{api_id}")
               for c in checked)
    assert all(c.allowed for c in flow.strict.checked[-50:])


@pytest.mark.parametrize("missing", ["apigateway:UpdateRestApiPolicy", "apigateway:PATCH"])
def test_a_role_without_update_rest_api_policy_is_denied_the_fix(flow: LocalWorkflow, missing: str) -> None:
    """What every Apply met in a real account before the grant: PATCH alone cannot change a policy (nor
    UpdateRestApiPolicy alone)."""
    route = runner._routes[runner.FUNCTION_PREFIX + "apply"]
    assert route.principal is not None and route.principal.policies is not None
    statements = [dict(s) for s in route.principal.policies.statements]
    for statement in statements:
        actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
        statement["Action"] = [a for a in actions if a != missing]
    statements = [s for s in statements if s["Action"]]
    route.principal.policies = PolicySet([{"Version": "2012-10-17", "Statement": statements}], principal="apply")
    api_id = seed(flow, UNTRUSTED)
    first = len(flow.strict.checked)
    _, result = run(flow, api_id)
    assert result.status == "FAILED"
    assert policy_of(flow, api_id) == UNTRUSTED  # nothing changed
    (notice,) = flow.notifications()
    assert notice["kind"] == "failure" and "AccessDenied" in json.dumps(notice["error"])
    assert missing in json.dumps(notice["error"])
    denied = [c for c in flow.strict.checked[first:] if not c.allowed]
    assert [(c.principal, c.action) for c in denied] == [("apply", missing)]


def test_a_function_calling_outside_its_grants_is_denied(flow: LocalWorkflow) -> None:
    """The redeploy role may not write a policy, nor create or import an API."""
    route = runner._routes[runner.FUNCTION_PREFIX + "redeploy"]
    api_id = seed(flow, UNTRUSTED)
    assert route.principal is not None
    client = _client_as(flow, route.principal)
    with pytest.raises(ClientError) as denied:
        client.update_rest_api(restApiId=api_id, patchOperations=[{"op": "replace", "path": "/policy", "value": "{}"}])
    assert denied.value.response["Error"]["Code"] == "AccessDeniedException"
    with pytest.raises(ClientError) as denied:
        client.create_rest_api(name="mine")
    assert denied.value.response["Error"]["Code"] == "AccessDeniedException"
    assert client.get_stages(restApiId=api_id)["item"]  # what it is for still works


def _client_as(flow: LocalWorkflow, principal: Principal, service: str = "apigateway") -> Any:
    return boto3.client(service, region_name=REGION, endpoint_url=flow.account.endpoint_url,
                        aws_access_key_id=principal.access_key, aws_secret_access_key="x", aws_session_token="x",
                        config=Config(retries={"mode": "standard", "max_attempts": 1}))


# ---- no self-triggered work ------------------------------------------------------------------------


def test_a_failing_redeploy_runs_once_notifies_once_and_starts_nothing(make_flow) -> None:
    flow = make_flow(mode="auto", undeployed_changes="publish")  # the method without integration goes out with the fix
    api_id = seed(flow, UNTRUSTED)
    without_integration(flow, api_id)
    flow.discard_pending()
    _, result = run(flow, api_id)
    assert result.status == "FAILED" and "RestorePolicy" in result.states
    assert policy_of(flow, api_id) == UNTRUSTED  # restored
    # The bot's own Apply and RestorePolicy were both recorded by CloudTrail...
    own = flow.strict.events_by(flow.role_arn("apply")) + flow.strict.events_by(flow.role_arn("restore"))
    assert [e["eventName"] for e in own] == ["UpdateRestApi", "UpdateRestApi"]
    # ...and the rule matched neither: nothing more runs, however long EventBridge keeps delivering.
    assert flow.pump() == []
    assert len(executions(flow)) == 1
    (notice,) = flow.notifications()
    assert notice["kind"] == "failure" and "No integration defined" in json.dumps(notice["error"])


def test_the_trigger_ignores_the_bots_own_writes_even_if_the_rule_let_them_through(flow: LocalWorkflow) -> None:
    api_id = seed(flow, UNTRUSTED)
    run(flow, api_id)
    (own,) = flow.strict.events_by(flow.role_arn("apply"))
    envelope = {"version": "0", "id": "x", "detail-type": "AWS API Call via CloudTrail", "source": "aws.apigateway",
                "account": OWNER, "region": REGION, "resources": [], "detail": own}
    answer = flow.invoke_trigger(envelope)
    assert answer["status"] == "ignored" and "own role" in answer["reason"]


def test_a_burst_whose_own_writes_make_events_ends_with_no_second_fix(flow: LocalWorkflow) -> None:
    apis = [seed(flow, UNTRUSTED) for _ in range(3)]
    flow.discard_pending()
    for api_id in apis:
        _, result = run(flow, api_id)
        assert result.status == "SUCCEEDED", flow.notifications()
    bot_roles = {flow.role_arn(h) for h in ("apply", "redeploy", "restore")}
    bot_events = [e for e in flow.strict.trail if e["userIdentity"].get("sessionContext", {}).get("sessionIssuer", {}).get("arn") in bot_roles]
    assert {e["eventName"] for e in bot_events} == {"UpdateRestApi", "CreateDeployment", "UpdateStage"}
    assert flow.pump() == []
    assert len(executions(flow)) == 3
    records = flow.audit_records()
    assert sorted(r.api_id for r in records) == sorted(apis)  # one record per change, none twice


def test_user_edits_still_start_a_remediation(flow: LocalWorkflow) -> None:
    """The rule drops only the bot's roles: a person's UpdateRestApi, seen through CloudTrail, is fixed."""
    api_id = seed(flow, {"Version": "2012-10-17", "Statement": []})
    flow.discard_pending()
    ApiGatewayAdapter(flow.clients).update_policy(REGION, api_id, [{"op": "replace", "path": "/policy", "value": json.dumps(UNTRUSTED)}])
    (answer,) = flow.pump()
    assert answer["status"] == "started"
    assert policy_of(flow, api_id) == FIXED


def test_a_fix_failing_three_times_waits_for_a_person_until_the_policy_changes(make_flow) -> None:
    flow = make_flow(mode="auto", undeployed_changes="publish")  # the method without integration goes out with the fix
    api_id = seed(flow, UNTRUSTED)
    without_integration(flow, api_id)
    notices = []
    for _ in range(3):
        _, result = run(flow, api_id)
        assert result.status == "FAILED"
        notices += flow.notifications()
    assert [n.get("consecutive_failures") for n in notices] == [1, 2, 3]
    assert "needs_person" in notices[-1] and "needs_person" not in notices[0]
    # The schedule no longer tries it: Evaluate holds it, quietly.
    _, result = run(flow, api_id)
    assert result.status == "SUCCEEDED" and result.states == ["Evaluate", "IsActionNeeded", "Done"]
    assert result.output["evaluation"]["verdict"] == "held" and flow.notifications() == []
    # A changed policy is tried again.
    other = {"Version": "2012-10-17", "Statement": [UNTRUSTED["Statement"][0], {**UNTRUSTED["Statement"][0], "Sid": "x"}]}
    ApiGatewayAdapter(flow.clients).update_policy(REGION, api_id, [{"op": "replace", "path": "/policy", "value": json.dumps(other)}])
    _, result = run(flow, api_id)
    assert "Apply" in result.states


# ---- trust bound to the bot's own account ------------------------------------------------------------


@pytest.mark.parametrize("where", ["recipient", "envelope", "resource"])
def test_an_event_naming_another_account_changes_nothing(flow: LocalWorkflow, where: str) -> None:
    api_id = seed(flow, UNTRUSTED)
    flow.discard_pending()
    event = cloudtrail.api_call_event("UpdateRestApi", api_id, REGION, OWNER)
    if where == "recipient":
        event["detail"]["recipientAccountId"] = STRANGER
    elif where == "envelope":
        event["account"] = STRANGER
    else:
        event["detail"]["resources"] = [{"ARN": f"arn:aws:iam::{STRANGER}:role/x", "accountId": STRANGER}]
    # EventBridge sets the envelope's account itself: a forwarded event from elsewhere reaches the trigger as is.
    answer = flow.invoke_trigger(event) if where == "envelope" else flow.deliver(event)
    assert answer["status"] == "rejected" and STRANGER in answer["error"] and "\n" not in answer["error"]
    assert executions(flow) == [] and policy_of(flow, api_id) == UNTRUSTED


def test_a_state_naming_another_account_is_refused(flow: LocalWorkflow) -> None:
    api_id = seed(flow, UNTRUSTED)
    change = {"api_id": api_id, "region": REGION, "account": STRANGER, "event_id": "e", "event_name": "UpdateRestApi",
              "caller": {"type": "IAMUser", "arn": None, "principal_id": None, "invoked_by": None, "session_issuer_arn": None}}
    with pytest.raises(RemediationFailed, match=f"names account {STRANGER}"):
        runner.run_function(runner.FUNCTION_PREFIX + "apply", {"input": {"change": change}, "execution": "x"})
    assert policy_of(flow, api_id) == UNTRUSTED


# ---- quotas, escaping, timeouts ----------------------------------------------------------------------


def test_create_deployment_is_one_per_five_seconds_per_account(flow: LocalWorkflow) -> None:
    api_id = seed(flow, UNTRUSTED)
    route = runner._routes[runner.FUNCTION_PREFIX + "redeploy"]
    assert route.principal is not None
    client = _client_as(flow, route.principal)
    client.create_deployment(restApiId=api_id, stageName="prod")
    with pytest.raises(ClientError) as throttled:
        client.create_deployment(restApiId=api_id, stageName="prod")
    assert throttled.value.response["Error"]["Code"] == "TooManyRequestsException"
    flow.later(5)
    client.create_deployment(restApiId=api_id, stageName="prod")


def test_policies_come_back_escaped_as_api_gateway_returns_them(flow: LocalWorkflow) -> None:
    api_id = seed(flow, UNTRUSTED)  # written as plain JSON
    raw = flow.clients.client("apigateway", REGION).get_rest_api(restApiId=api_id)["policy"]
    assert raw.startswith('{\\"Version\\"') and "\\/" not in raw or "\\/" in raw
    assert raw == escape_policy(json.dumps(UNTRUSTED))
    listed = [a["policy"] for a in flow.clients.client("apigateway", REGION).get_rest_apis()["items"] if a["id"] == api_id]
    assert listed == [raw] and parse_policy(raw) == UNTRUSTED


def test_a_function_past_its_timeout_fails_its_task_with_lambda_unknown(flow: LocalWorkflow) -> None:
    """Step Functions developer guide, "Handle Lambda service exceptions": a function timeout is Lambda.Unknown.
    Redeploy retries it; one that always runs out of time ends restored, notified under that name."""
    api_id = seed(flow, UNTRUSTED)
    route = runner._routes[runner.FUNCTION_PREFIX + "redeploy"]
    assert route.timeout == 30.0  # from the template
    real, attempts = route.handler, []

    def slow_redeploy(event: dict, context: Any) -> Any:
        attempts.append(1)
        flow.strict.clock.sleep(31)  # e.g. botocore's backoff on a throttled CreateDeployment
        return real(event, context)

    route.handler = slow_redeploy
    _, result = run(flow, api_id)
    assert result.status == "FAILED" and "RestorePolicy" in result.states
    assert len(attempts) == 1 + 6, "the first attempt and the definition's six retries"
    (notice,) = flow.notifications()
    assert notice["error"]["Error"] == "Lambda.Unknown"
    assert policy_of(flow, api_id) == UNTRUSTED


# ---- alarms that notify ------------------------------------------------------------------------------


def test_the_alarms_may_publish_to_the_topic_and_use_its_key(flow: LocalWorkflow) -> None:
    template, resolve = flow.template, flow.resolve
    (topic_policy,) = of_type(template, "AWS::SNS::TopicPolicy").values()
    document = resolve(topic_policy["Properties"]["PolicyDocument"])
    alarm = f"arn:aws:cloudwatch:{REGION}:{OWNER}:alarm:ExecutionsFailed"
    context = {"aws:SourceAccount": (OWNER,), "aws:SourceArn": (alarm,), "aws:SecureTransport": ("true",)}
    publish = Call("sns:Publish", flow.topic_arn, context)
    assert resource_policy_decide(document, "cloudwatch.amazonaws.com", publish).allowed
    elsewhere = {**context, "aws:SourceAccount": (STRANGER,), "aws:SourceArn": (alarm.replace(OWNER, STRANGER),)}
    assert not resource_policy_decide(document, "cloudwatch.amazonaws.com", Call("sns:Publish", flow.topic_arn, elsewhere)).allowed
    (key,) = of_type(template, "AWS::KMS::Key").values()
    key_policy = resolve(key["Properties"]["KeyPolicy"])
    key_arn = resolve({"Fn::GetAtt": [next(iter(of_type(template, "AWS::KMS::Key"))), "Arn"]})
    for action in ("kms:GenerateDataKey", "kms:Decrypt"):
        assert resource_policy_decide(key_policy, "cloudwatch.amazonaws.com", Call(action, key_arn, context)).allowed


def test_the_rule_pattern_comes_from_the_template(flow: LocalWorkflow) -> None:
    detail = flow.event_pattern["detail"]
    assert detail["errorCode"] == [{"exists": False}]
    (excluded,) = detail["$or"][1]["userIdentity"]["sessionContext"]["sessionIssuer"]["arn"]
    assert flow.role_arn("apply") in excluded["anything-but"] and PARTNER not in json.dumps(excluded)


def test_the_public_callback_is_capped_at_its_reserved_concurrency(make_flow) -> None:
    """A flood of requests to the public URL is throttled at the template's reserved concurrency (5)."""
    import threading

    from remediator.local.slack import post

    flow = make_flow(mode="approval", approvers=["U0APPROVER"])
    route = runner._routes[runner.FUNCTION_PREFIX + "slack_callback"]
    release, busy = threading.Event(), threading.Semaphore(0)
    real = route.handler

    def slow(event: dict, context: Any) -> Any:
        busy.release()
        release.wait(10)
        return real(event, context)

    route.handler = slow
    assert flow.callback is not None
    answers: list[int] = []
    threads = [threading.Thread(target=lambda: answers.append(post(flow.callback.url, "x", {})[0])) for _ in range(5)]
    for thread in threads:
        thread.start()
    for _ in range(5):
        assert busy.acquire(timeout=10)
    code, body = post(flow.callback.url, "x", {})
    assert code == 429 and "Rate Exceeded" in body
    release.set()
    for thread in threads:
        thread.join(10)
    assert sorted(answers) == [401] * 5  # unsigned: refused by the handler once it had a slot


@pytest.mark.parametrize("mode", ["auto", "approval"])
def test_the_synthesized_template_lets_the_fix_happen_and_nothing_more(mode: str) -> None:
    from remediator.local.template import synthesized_template

    template = synthesized_template(mode)
    resources = template["Resources"]
    roles = {f["Properties"]["Handler"].split(".")[-2]: f["Properties"]["Role"]["Fn::GetAtt"][0]
             for f in of_type(template, "AWS::Lambda::Function").values()}

    def statements(handler: str) -> list[dict[str, Any]]:
        return [s for p in of_type(template, "AWS::IAM::Policy").values() if {"Ref": roles[handler]} in p["Properties"]["Roles"]
                for s in p["Properties"]["PolicyDocument"]["Statement"]]

    def apigateway(handler: str) -> set[tuple[str, str]]:
        return {(a, json.dumps(s["Resource"]).split("::")[-1].rstrip('"]}')) for s in statements(handler) if s["Effect"] == "Allow"
                for a in (s["Action"] if isinstance(s["Action"], list) else [s["Action"]]) if a.startswith("apigateway:")}

    api = "/restapis/??????????"  # one REST API (10-character ID), nothing under it
    for handler in ("apply", "restore"):
        assert ("apigateway:UpdateRestApiPolicy", api) in apigateway(handler)
    assert apigateway("redeploy") == {("apigateway:POST", f"{api}/deployments"), ("apigateway:GET", f"{api}/stages*"),
                                      ("apigateway:PATCH", f"{api}/stages*"), ("apigateway:GET", f"{api}/deployments/*"),
                                      ("apigateway:GET", f"{api}/resources*")}  # what else a redeploy would publish
    # The trigger only reads: the API and its methods (who can call), and in auto mode, for a fix people were told is
    # blocked, what its redeploy would publish (tests/test_trigger_decides.py).
    blocked = {("apigateway:GET", f"{api}/stages*"), ("apigateway:GET", f"{api}/deployments/*")} if mode == "auto" else set()
    assert apigateway("trigger") == {("apigateway:GET", api), ("apigateway:GET", f"{api}/resources*")} | blocked
    (topic_policy,) = of_type(template, "AWS::SNS::TopicPolicy").values()
    assert any(s.get("Principal") == {"Service": "cloudwatch.amazonaws.com"} and s["Effect"] == "Allow"
               for s in topic_policy["Properties"]["PolicyDocument"]["Statement"])
    (rule,) = [r for r in of_type(template, "AWS::Events::Rule").values() if "EventPattern" in r["Properties"]]
    detail = rule["Properties"]["EventPattern"]["detail"]
    assert detail["errorCode"] == [{"exists": False}] and "anything-but" in json.dumps(detail["$or"])
    callback = [f for f in of_type(template, "AWS::Lambda::Function").values() if f["Properties"]["Handler"] == "remediator.functions.slack_callback.handler"]
    assert [f["Properties"].get("ReservedConcurrentExecutions") for f in callback] == ([5] if mode == "approval" else [])
    assert resources  # the template is the stack's, synthesized by the CDK


def test_a_record_retried_after_its_write_went_through_leaves_one_record(flow: LocalWorkflow) -> None:
    """The audit record's key is the change's intent: a retried Record writes nothing twice."""
    from remediator.workflow.errors import Transient

    route = runner._routes[runner.FUNCTION_PREFIX + "record"]
    real, calls = route.handler, []

    def record_then_fail_once(event: dict, context: Any) -> Any:
        result = real(event, context)
        calls.append(result)
        if len(calls) == 1:
            raise Transient("injected: the write went through, then the function failed")
        return result

    route.handler = record_then_fail_once
    api_id = seed(flow, UNTRUSTED)
    _, result = run(flow, api_id)
    assert result.status == "SUCCEEDED" and len(calls) == 2  # Step Functions retried Record
    (record,) = flow.audit_records()
    assert record.api_id == api_id and record.change_id == result.output["applied"]["intent"]["intent_id"]


@pytest.mark.parametrize("mode, slack, organization", VARIANTS)
def test_the_committed_templates_are_what_the_stack_synthesizes(mode: str, slack: bool, organization: bool) -> None:
    """`make demo` runs without the CDK on the templates committed under remediator/local/templates: they
    must be the stack's, to the byte but for the code asset's hash (`make templates` rewrites them); in
    organization mode the hub's and the spoke's."""
    from remediator.local.template import (cdk_installed, committed_spoke, committed_template, comparable, spoke_template,
                                           synthesized_template)

    assert cdk_installed()
    assert comparable(synthesized_template(mode, slack, organization)) == committed_template(mode, slack, organization), \
        "out of date: run `make templates`"
    if organization:
        assert comparable(spoke_template(mode, slack)) == committed_spoke(mode, slack), "out of date: run `make templates`"
