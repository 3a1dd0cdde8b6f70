"""The real state-machine definition, executed by the emulator, calling the real handlers, in all three modes."""

from __future__ import annotations

import json
import types
from typing import Any

import pytest

from remediator.functions import common
from remediator.adapters.apigateway import ApiGatewayAdapter
from remediator.core import parse_policy
from remediator.local import cloudtrail, runner
from remediator.local.emulator import escaped, seed_rest_api
from remediator.local.runner import LocalWorkflow
from tests.conftest import OWNER, PARTNER, STRANGER
from tests.test_sweep import _Throttle

REGION = "eu-west-1"


def allow(*principals: str) -> dict[str, Any]:
    return {"Effect": "Allow", "Principal": {"AWS": list(principals)}, "Action": "execute-api:Invoke", "Resource": "execute-api:/*"}


UNTRUSTED = {"Version": "2012-10-17", "Statement": [allow(OWNER, STRANGER, f"arn:aws:iam::{PARTNER}:role/r")]}
FIXED = {"Version": "2012-10-17", "Statement": [allow(OWNER, f"arn:aws:iam::{PARTNER}:role/r")]}
COMPLIANT = {"Version": "2012-10-17", "Statement": [allow(OWNER)]}


@pytest.fixture
def flow(make_flow) -> LocalWorkflow:
    return make_flow(mode="auto")


def seed(flow: LocalWorkflow, policy: dict | None, stages=("prod", "dev"), tags=None, form="plain") -> str:
    text = None if policy is None else (escaped(policy) if form == "escaped" else json.dumps(policy))
    api_id = seed_rest_api(flow.clients, REGION, "api", text, tags, stages)
    flow.later()  # set up a minute before the change: its deployments do not share the quota's window
    return api_id


def run(flow: LocalWorkflow, api_id: str, event_name: str = "UpdateRestApi", identity=None):
    event = cloudtrail.api_call_event(event_name, api_id, REGION, OWNER, identity)
    started = flow.deliver(event)
    assert started["status"] == "started", started
    return event, flow.wait(started["execution_name"])


def run_directly(flow: LocalWorkflow, api_id: str, event_name: str = "UpdateRestApi", identity=None):
    """The execution an event would start, started as the trigger starts it whatever the trigger would decide (a
    sweep's, or one the trigger could not decide): for tests of the workflow's states themselves."""
    from remediator.events import parse_event

    event = cloudtrail.api_call_event(event_name, api_id, REGION, OWNER, identity)
    change = parse_event(event, owner_account=OWNER)
    flow.clients.client("stepfunctions", REGION).start_execution(
        stateMachineArn=flow.state_machine_arn, name=change.execution_name,
        input=json.dumps({"change": change.to_dict(), "source": "event"}))
    return event, flow.wait(change.execution_name)


def policy_of(flow: LocalWorkflow, api_id: str) -> dict:
    return parse_policy(ApiGatewayAdapter(flow.clients).get_rest_api(REGION, api_id).policy)


def stages_of(flow: LocalWorkflow, api_id: str) -> dict[str, str | None]:
    return {s.name: s.deployment_id for s in ApiGatewayAdapter(flow.clients).list_stages(REGION, api_id)}


FIX_PATH = ["Evaluate", "IsActionNeeded", "ChooseMode", "Apply", "WasPatched", "Redeploy", "IsDeployed", "Record", "Notify", "Done"]


@pytest.mark.parametrize("event_name", ["CreateRestApi", "UpdateRestApi", "PutRestApi", "ImportRestApi"])
def test_auto_mode_fixes_redeploys_records_and_notifies(flow: LocalWorkflow, event_name: str) -> None:
    api_id = seed(flow, UNTRUSTED, form="escaped")
    flow.account.server.counts.clear()
    _, result = run(flow, api_id, event_name)
    assert result.status == "SUCCEEDED" and result.states == FIX_PATH
    # Only the functions that judge read the trusted lists (the stack grants the parameter to no other): the trigger,
    # which decides before it starts the execution, Evaluate and Apply.
    assert flow.account.server.aws_requests()[("ssm", "GetParameter")] == 3
    assert policy_of(flow, api_id) == FIXED
    deployment = result.output["redeploy"]["deployment_id"]
    assert set(stages_of(flow, api_id).values()) == {deployment}
    (record,) = flow.audit_records()
    assert record.api_id == api_id and record.action == "remediate" and record.deployment_id == deployment
    assert parse_policy(record.policy_before) == UNTRUSTED and parse_policy(record.policy_after) == FIXED
    assert event_name in record.triggered_by and "user/alice" in record.triggered_by
    (message,) = flow.notifications()
    assert message["kind"] == "result" and sorted(message["stages_redeployed"]) == ["dev", "prod"]


def test_compliant_event_costs_no_transition(flow: LocalWorkflow) -> None:
    api_id = seed(flow, COMPLIANT)
    answer = flow.deliver(cloudtrail.api_call_event("UpdateRestApi", api_id, REGION, OWNER))
    assert answer == {"status": "not-started", "verdict": "compliant"}  # the trigger decided (tests/test_trigger_decides.py)
    assert flow.clients.client("stepfunctions", REGION).list_executions(stateMachineArn=flow.state_machine_arn)["executions"] == []
    # An execution that does start for a compliant API (a sweep's, say) ends after Evaluate, in 3 transitions.
    _, result = run_directly(flow, api_id)
    assert result.status == "SUCCEEDED" and result.states == ["Evaluate", "IsActionNeeded", "Done"]
    assert result.transitions <= 4
    assert flow.notifications() == [] and flow.audit_records() == []


def test_dry_run_proposes_and_changes_nothing(make_flow) -> None:
    flow = make_flow(mode="dry-run")  # the dry-run stack's own template: its functions may write nothing
    api_id = seed(flow, UNTRUSTED)
    before = stages_of(flow, api_id)
    _, result = run(flow, api_id)
    assert result.status == "SUCCEEDED" and result.states == ["Evaluate", "IsActionNeeded", "ChooseMode", "Propose", "Done"]
    assert policy_of(flow, api_id) == UNTRUSTED and stages_of(flow, api_id) == before
    (message,) = flow.notifications()
    assert message["kind"] == "proposal" and json.loads(message["patch_operations"][0]["value"]) == FIXED
    assert flow.audit_records() == []
    (posted,) = flow.slack.messages.values()
    assert "Proposed fix (dry run" in posted["text"] and not [b for b in posted["blocks"] if b["type"] == "actions"]


def test_exempt_and_report_only(flow: LocalWorkflow) -> None:
    exempt = seed(flow, UNTRUSTED, tags={"remediator:exempt": "true"})
    assert flow.deliver(cloudtrail.api_call_event("UpdateRestApi", exempt, REGION, OWNER)) == {"status": "not-started",
                                                                                              "verdict": "exempt"}
    wildcard = seed(flow, {"Statement": [{"Effect": "Allow", "Principal": "*", "Action": "execute-api:Invoke", "Resource": "*"}]})
    _, result = run(flow, wildcard)
    assert result.states == ["Evaluate", "IsActionNeeded", "ReportFindings", "Done"]
    assert policy_of(flow, exempt) == UNTRUSTED and [m["kind"] for m in flow.notifications()] == ["findings"]


def test_duplicate_delivery_runs_once(flow: LocalWorkflow) -> None:
    api_id = seed(flow, UNTRUSTED)
    event, result = run(flow, api_id)
    assert result.status == "SUCCEEDED"
    # Delivered again: the API needs nothing now (the trigger starts nothing), and were it to start, the execution's
    # name is taken (a duplicate). Either way the change is made once.
    assert flow.deliver(event)["status"] in ("duplicate", "not-started")
    executions = flow.clients.client("stepfunctions", REGION).list_executions(stateMachineArn=flow.state_machine_arn)["executions"]
    assert len(executions) == 1 and len(flow.audit_records()) == 1


def test_the_fixs_own_event_ends_compliant(flow: LocalWorkflow) -> None:
    api_id = seed(flow, UNTRUSTED)
    run(flow, api_id)
    flow.notifications()
    follow_up = flow.deliver(cloudtrail.api_call_event("UpdateRestApi", api_id, REGION, OWNER, cloudtrail.remediator_caller(OWNER)))
    assert follow_up == {"status": "not-started", "verdict": "compliant"}  # nothing left to do: no execution
    assert len(flow.audit_records()) == 1 and flow.notifications() == []


def test_policy_changed_between_evaluate_and_apply_is_replanned(flow: LocalWorkflow) -> None:
    api_id = seed(flow, UNTRUSTED)
    newer = {"Version": "2012-10-17", "Statement": [allow(OWNER, "123456789012")]}
    name = runner.FUNCTION_PREFIX + "evaluate"
    real = runner._routes[name].handler

    def evaluate_then_someone_edits(event: dict, context: Any) -> dict:
        result = real(event, context)
        ApiGatewayAdapter(flow.clients).update_policy(REGION, api_id, [{"op": "replace", "path": "/policy", "value": json.dumps(newer)}])
        return result

    runner._routes[name].handler = evaluate_then_someone_edits
    _, result = run(flow, api_id)
    assert result.status == "SUCCEEDED" and result.output["applied"]["replanned"] is True
    assert policy_of(flow, api_id) == {"Version": "2012-10-17", "Statement": [allow(OWNER)]}, "the newer policy was fixed, not the stale one"
    (record,) = flow.audit_records()
    assert parse_policy(record.policy_before) == newer


def test_api_deleted_mid_execution(flow: LocalWorkflow) -> None:
    api_id = seed(flow, UNTRUSTED)
    name = runner.FUNCTION_PREFIX + "evaluate"
    real = runner._routes[name].handler

    def evaluate_then_delete(event: dict, context: Any) -> dict:
        result = real(event, context)
        flow.clients.client("apigateway", REGION).delete_rest_api(restApiId=api_id)
        return result

    runner._routes[name].handler = evaluate_then_delete
    _, result = run(flow, api_id)
    assert result.status == "SUCCEEDED" and result.states[-2:] == ["WasPatched", "Done"]
    assert result.output["applied"]["outcome"] == "skipped" and flow.audit_records() == []


def test_throttled_create_deployment_is_retried(flow: LocalWorkflow) -> None:
    api_id = seed(flow, UNTRUSTED)
    throttle = _Throttle(times=2)
    common.clients().client("apigateway", REGION).meta.events.register("before-send.apigateway.CreateDeployment", throttle)
    _, result = run(flow, api_id)
    assert result.status == "SUCCEEDED" and throttle.calls == 3
    assert set(stages_of(flow, api_id).values()) == {result.output["redeploy"]["deployment_id"]}


def test_throttling_beyond_the_sdk_retries_is_retried_by_the_state_machine(flow: LocalWorkflow, monkeypatch) -> None:
    import moto.stepfunctions.parser.asl.component.common.retry.retrier_decl as retrier

    waits: list[float] = []
    monkeypatch.setattr(retrier, "time", types.SimpleNamespace(sleep=waits.append))
    api_id = seed(flow, UNTRUSTED)
    factory = common.clients()
    factory.retry_mode, factory.max_attempts = "standard", 2  # the SDK gives up quickly here
    factory.client("apigateway", REGION).meta.events.register("before-send.apigateway.CreateDeployment", _Throttle(times=3))
    _, result = run(flow, api_id)
    assert result.status == "SUCCEEDED" and result.states == FIX_PATH
    assert waits and waits[0] >= 5, "the state machine backed off before retrying"


def test_failed_redeploy_restores_the_policy_and_notifies(flow: LocalWorkflow) -> None:
    api_id = seed(flow, UNTRUSTED)
    common.clients().client("apigateway", REGION).meta.events.register(
        "before-send.apigateway.CreateDeployment", _Throttle(times=99, status=400, code="BadRequestException"))
    _, result = run(flow, api_id)
    assert result.status == "FAILED" and result.error == "RemediationFailed"
    assert result.states[-3:] == ["RestorePolicy", "NotifyFailure", "Failed"]
    assert policy_of(flow, api_id) == UNTRUSTED, "never left half-fixed"
    (message,) = flow.notifications()
    assert message["kind"] == "failure" and message["restore"] == "previous policy restored"
    (record,) = flow.audit_records()  # the policy was written, then put back: one record says both
    assert record.outcome == "restored" and record.deployment_id is None and record.change_id


def test_rejected_and_ignored_events_start_nothing(flow: LocalWorkflow) -> None:
    http_api = cloudtrail.api_call_event("UpdateRestApi", "abcde12345", REGION, OWNER)
    del http_api["detail"]["requestParameters"]["restApiId"]
    http_api["detail"]["requestParameters"]["apiId"] = "abcde12345"
    assert flow.invoke_trigger(http_api)["status"] == "ignored"
    forged = cloudtrail.api_call_event("UpdateRestApi", "abcde12345", REGION, OWNER)
    forged["detail"]["requestParameters"]["restApiId"] = "not an id!"
    assert flow.invoke_trigger(forged)["status"] == "rejected"
    other = cloudtrail.api_call_event("CreateDeployment", "abcde12345", REGION, OWNER)
    assert flow.deliver(other) == {"status": "not-matched"}, "the rule does not deliver other calls"
    assert flow.clients.client("stepfunctions", REGION).list_executions(stateMachineArn=flow.state_machine_arn)["executions"] == []


def test_scheduled_sweep_uses_the_same_path(flow: LocalWorkflow) -> None:
    missed = seed(flow, UNTRUSTED)
    seed(flow, COMPLIANT)
    seed(flow, UNTRUSTED, tags={"remediator:exempt": "true"})
    assert flow.run_sweep() == {"apis": 3, "started": 1, "duplicate": 0, "told_already": 0, "new": 0, "resolved": 0}
    (execution,) = flow.clients.client("stepfunctions", REGION).list_executions(stateMachineArn=flow.state_machine_arn)["executions"]
    result = flow.wait(execution["name"])
    assert result.states == FIX_PATH and policy_of(flow, missed) == FIXED
    assert flow.run_sweep()["started"] == 0
