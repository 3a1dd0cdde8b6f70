"""Each role allows exactly the calls its function makes: every call observed end to end is allowed,
and every grant of the synthesized template is used by some call.

Each mode is its own template, so each is driven through every path that touches AWS: a fix, a failing
redeploy and its restore, a proposal, approval, rejection and a stale approval, the scheduled sweep,
and an asynchronous failure that Lambda sends to the dead-letter queue with the function's role.
"""

from __future__ import annotations

import collections
import json
from pathlib import Path
from typing import Any

import pytest

from remediator.local import cloudtrail, runner
from remediator.local.iam import _wild
from remediator.local.runner import LocalWorkflow
from tests.conftest import OWNER
from tests.test_approvals import start, wait_for_buttons
from tests.test_strict_account import without_integration
from tests.test_notices import WILDCARD
from tests.test_workflow import COMPLIANT, REGION, UNTRUSTED, seed

APPROVER = "U0APPROVER"
REPORT_DIR = Path(__file__).resolve().parents[1] / "build"  # iam-coverage-<mode>.json: one file per mode (xdist workers)

# Granted to the state machine's role by CDK for Step Functions' own use (X-Ray tracing, log delivery):
# the service calls them, never our code, so no local run can observe them.
SERVICE_ONLY = {"logs:CreateLogDelivery", "logs:GetLogDelivery", "logs:UpdateLogDelivery", "logs:DeleteLogDelivery",
                "logs:ListLogDeliveries", "logs:PutResourcePolicy", "logs:DescribeResourcePolicies",
                "logs:DescribeLogGroups", "xray:PutTraceSegments", "xray:PutTelemetryRecords",
                "xray:GetSamplingRules", "xray:GetSamplingTargets"}


def fail_async(flow: LocalWorkflow, name: str) -> None:
    """An asynchronous invocation whose function fails: Lambda sends the event to the DLQ as the function's role."""
    route = runner._routes[runner.FUNCTION_PREFIX + name.lower()]
    real = route.handler

    def broken(event: dict, context: Any) -> Any:
        raise RuntimeError("injected failure")

    route.handler = broken
    try:
        assert flow.invoke_async(name, {"source": "aws.events", "detail": {}}) is None
    finally:
        route.handler = real
    assert len(flow.dead_letters()) == 1


def fix_and_fail(flow: LocalWorkflow) -> None:
    """A fix; a fix blocked by an undeployed edit (a method added, which its redeploy would publish: a person is
    told); and a redeploy API Gateway refuses, which Restore undoes (the policy put back)."""
    from remediator.functions import common
    from tests.faults.injection import Fault

    api_id = seed(flow, UNTRUSTED)
    flow.deliver(cloudtrail.api_call_event("UpdateRestApi", api_id, REGION, OWNER))
    blocked = seed(flow, UNTRUSTED)
    without_integration(flow, blocked)
    flow.discard_pending()
    started = flow.deliver(cloudtrail.api_call_event("UpdateRestApi", blocked, REGION, OWNER))
    assert flow.wait(started["execution_name"]).output["evaluation"]["verdict"] == "blocked"
    # Told already: the trigger reads what the redeploy would publish (stages, deployments) and starts nothing.
    assert flow.deliver(cloudtrail.api_call_event("UpdateRestApi", blocked, REGION, OWNER))["status"] == "not-started"
    broken = seed(flow, UNTRUSTED)
    flow.discard_pending()
    fault = Fault("apigateway", "CreateDeployment", "before", "refuse").install_on(common.clients(), REGION)
    try:
        started = flow.deliver(cloudtrail.api_call_event("UpdateRestApi", broken, REGION, OWNER))
        result = flow.wait(started["execution_name"])
    finally:
        fault.times = fault.fired
    assert result.status == "FAILED" and "Restore" in "".join(result.states), result.states
    assert flow.notifications()[-1]["kind"] == "failure"


def start_fix(flow: LocalWorkflow) -> tuple[str, str]:
    """A fix of a new API, started by its event (and, in approval mode, approved): (API, execution)."""
    if flow.config.mode == "approval":
        asked = sum(1 for method, f in list(flow.slack.calls) if method == "chat.postMessage" and '"actions"' in json.dumps(f["blocks"]))
        api_id, name = start(flow)
        assert flow.press(wait_for_buttons(flow, count=asked + 1), "approve")[0] == 200
        return api_id, name
    api_id = seed(flow, UNTRUSTED)
    flow.discard_pending()
    return api_id, flow.deliver(cloudtrail.api_call_event("UpdateRestApi", api_id, REGION, OWNER))["execution_name"]


def partial_redeploy(flow: LocalWorkflow) -> None:
    """A redeploy refused on its second stage: Restore puts the first stage back, then the policy."""
    from remediator.functions import common
    from tests.faults.injection import Fault

    fault = Fault("apigateway", "UpdateStage", "before", "refuse").install_on(common.clients(), REGION)
    try:
        _, name = start_fix(flow)
        result = flow.wait(name)
    finally:
        fault.times = fault.fired
    assert result.status == "FAILED", (fault.fired, result.states)
    restores = [n.get("restore") or "" for n in flow.notifications() if n["kind"] == "failure"]
    # Restore undoes a fix no stage serves yet; one a stage already serves stays open (stages only move forward).
    assert any("back on their previous deployments" in r or "stages only move forward" in r for r in restores), restores


def recover_unrecorded(flow: LocalWorkflow) -> None:
    """A fix deployed whose Record kept failing: the next execution for the API settles it (Apply closes
    the intent with its record)."""
    from remediator.transaction.remediator import Remediator

    route = runner._routes[runner.FUNCTION_PREFIX + "record"]
    real = route.handler

    def broken(event: dict, context: Any) -> Any:
        raise RuntimeError("injected failure")

    route.handler = broken
    try:
        api_id, name = start_fix(flow)
        assert flow.wait(name).status == "FAILED"
    finally:
        route.handler = real
    flow.later(Remediator.CLAIM_SECONDS + 1)
    started = flow.deliver(cloudtrail.api_call_event("UpdateRestApi", api_id, REGION, OWNER))
    result = flow.wait(started["execution_name"])
    assert result.status == "SUCCEEDED" and result.states[:3] == ["Evaluate", "IsActionNeeded", "Apply"], result.states


def lost_update(flow: LocalWorkflow) -> None:
    """A person's UpdateRestApi lands just before the bot's write: once CloudTrail delivers it, Evaluate records
    the lost update (a record of its own) and a person is told."""
    from remediator.functions import common

    wrote: list[str] = []

    def race(**_: Any) -> None:
        if not wrote:
            wrote.append("person")
            flow.clients.client("apigateway", REGION).update_rest_api(
                restApiId=api_id[0], patchOperations=[{"op": "replace", "path": "/policy", "value": json.dumps(COMPLIANT)}])

    api_id: list[str] = []
    events = common.clients().client("apigateway", REGION).meta.events
    events.register("before-send.apigateway.UpdateRestApi", race)
    try:
        if flow.config.mode == "approval":
            asked = sum(1 for method, f in list(flow.slack.calls) if method == "chat.postMessage" and '"actions"' in json.dumps(f["blocks"]))
            seeded, name = start(flow)
            api_id.append(seeded)
            flow.discard_pending()  # the seed's own CreateRestApi: only the person's write is delivered below
            assert flow.press(wait_for_buttons(flow, count=asked + 1), "approve")[0] == 200
        else:
            api_id.append(seed(flow, UNTRUSTED))
            flow.discard_pending()
            name = flow.deliver(cloudtrail.api_call_event("UpdateRestApi", api_id[0], REGION, OWNER))["execution_name"]
        assert flow.wait(name).status == "SUCCEEDED" and wrote
    finally:
        events.unregister("before-send.apigateway.UpdateRestApi", race)
    flow.pump()
    assert [r for r in flow.audit_records() if r.outcome == "lost-update" and r.api_id == api_id[0]]


def sweep(flow: LocalWorkflow) -> None:
    seed(flow, UNTRUSTED)
    # Report-only, both told once (their notice items); one resolved by the next day's sweep, one by an event.
    told, also_told = seed(flow, WILDCARD), seed(flow, WILDCARD)
    flow.run_sweep()
    for execution in flow.clients.client("stepfunctions", REGION).list_executions(stateMachineArn=flow.state_machine_arn)["executions"]:
        if flow.config.mode != "approval" or told in execution["name"] or also_told in execution["name"]:
            flow.wait(execution["name"])  # in approval mode a fix waits for a person
    # An event on findings told already: the trigger decides (the notice read, who can call read), no execution.
    assert flow.deliver(cloudtrail.api_call_event("UpdateRestApi", told, REGION, OWNER))["status"] == "not-started"
    for api_id in (told, also_told):
        flow.clients.client("apigateway", REGION).update_rest_api(
            restApiId=api_id, patchOperations=[{"op": "replace", "path": "/policy", "value": json.dumps(COMPLIANT)}])
    flow.discard_pending()
    # Compliant now, and people were told: the trigger starts the execution in which Evaluate forgets the notice.
    started = flow.deliver(cloudtrail.api_call_event("UpdateRestApi", also_told, REGION, OWNER))
    assert flow.wait(started["execution_name"]).output["evaluation"]["verdict"] == "compliant"
    flow.later(24 * 3600)
    assert flow.run_sweep()["resolved"] == 1
    # Compliant, nothing to forget: decided in the trigger (Security Hub told it passed), no execution.
    assert flow.deliver(cloudtrail.api_call_event("UpdateRestApi", told, REGION, OWNER)) == {
        "status": "not-started", "verdict": "compliant"}
    fail_async(flow, "Trigger")
    fail_async(flow, "Sweep")


def exercise_auto(flow: LocalWorkflow) -> None:
    fix_and_fail(flow)
    partial_redeploy(flow)
    recover_unrecorded(flow)
    lost_update(flow)
    sweep(flow)


def exercise_dry_run(flow: LocalWorkflow) -> None:
    api_id = seed(flow, UNTRUSTED)
    started = flow.deliver(cloudtrail.api_call_event("UpdateRestApi", api_id, REGION, OWNER))
    flow.wait(started["execution_name"])
    sweep(flow)


def exercise_approval(flow: LocalWorkflow) -> None:
    from remediator.adapters.apigateway import ApiGatewayAdapter

    _, approved = start(flow)
    assert flow.press(wait_for_buttons(flow), "approve")[0] == 200
    flow.wait(approved)
    _, rejected = start(flow)
    assert flow.press(wait_for_buttons(flow, count=2), "reject")[0] == 200
    flow.wait(rejected)
    api_id, stale = start(flow)
    first = wait_for_buttons(flow, count=3)
    newer = {"Version": "2012-10-17", "Statement": [{**UNTRUSTED["Statement"][0], "Sid": "newer"}]}
    ApiGatewayAdapter(flow.clients).update_policy(REGION, api_id, [{"op": "replace", "path": "/policy", "value": json.dumps(newer)}])
    assert flow.press(first, "approve")[0] == 200
    assert flow.press(wait_for_buttons(flow, count=4), "approve")[0] == 200
    flow.wait(stale)
    broken, failing = start(flow)
    without_integration(flow, broken)
    assert flow.press(wait_for_buttons(flow, count=5), "approve")[0] == 200
    flow.wait(failing)
    partial_redeploy(flow)
    recover_unrecorded(flow)
    lost_update(flow)
    sweep(flow)


EXERCISE = {"auto": exercise_auto, "dry-run": exercise_dry_run, "approval": exercise_approval}


def grants(principal: Any) -> set[tuple[str, str]]:
    """(action, resource pattern) for every action an Allow statement grants (PolicySet.granted) and each
    resource the statement names."""
    resources = [s["Resource"] if isinstance(s["Resource"], list) else [s["Resource"]] for s in principal.policies.statements]
    return {(action, resource) for index, action in principal.policies.granted() for resource in resources[index]}


@pytest.mark.parametrize("mode", ["auto", "dry-run", "approval"])
def test_each_role_allows_exactly_the_calls_its_function_makes(make_flow, mode: str) -> None:
    flow = make_flow(mode=mode, approvers=[APPROVER])
    assert flow.strict is not None
    first = len(flow.strict.checked)
    EXERCISE[mode](flow)
    checked = [c for c in flow.strict.checked[first:] if c.scope == mode]
    assert [c for c in checked if not c.allowed] == [], "a call the function makes is not granted"
    principals = {p.name: p for p in flow.strict.principals.values() if p.scope == mode and p.policies is not None}
    report: dict[str, Any] = {}
    for name, principal in sorted(principals.items()):
        calls = [c for c in checked if c.principal == name]
        unused = sorted(
            (action, resource) for action, resource in grants(principal)
            if action not in SERVICE_ONLY
            and not any(c.action.lower() == action.lower() and _wild(resource, False).fullmatch(c.resource) for c in calls)
        )
        assert unused == [], f"{mode}/{name}: granted but never used: {unused}"
        report[name] = dict(sorted(collections.Counter(c.action for c in calls).items()))
    REPORT_DIR.mkdir(parents=True, exist_ok=True)
    (REPORT_DIR / f"iam-coverage-{mode}.json").write_text(
        json.dumps({"calls_checked": len(checked), "calls_per_function": report}, indent=1, sort_keys=True))
