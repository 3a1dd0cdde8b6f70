"""Faults at every step of the workflow, on the strict local account: throttling, a Lambda whose handler raises
(its class name), or that times out or runs out of memory (Lambda.Unknown, retried), before and after each write (the policy, the intent, the deployment, a stage, the record, the
lease), once or every time.

Whatever happens, the API ends either fixed and deployed on every stage, or untouched (its policy and
every stage as before); a failed execution is notified; and once the fault is gone, the next sweep
leaves it fixed with exactly one applied audit record and no change left open.
"""

from __future__ import annotations

import threading
from typing import Any

import pytest

from remediator.functions import common
from remediator.transaction.remediator import Remediator
from remediator.local.runner import LocalWorkflow
from tests.faults.injection import Fault
from tests.test_workflow import FIXED, REGION, UNTRUSTED, policy_of, run, seed, stages_of

WRITES = [("apigateway", "UpdateRestApi"), ("apigateway", "CreateDeployment"), ("apigateway", "UpdateStage"),
          ("dynamodb", "PutItem"), ("dynamodb", "TransactWriteItems")]
CASES = [Fault(service, operation, when, kind) for service, operation in WRITES
         for when in ("before", "after") for kind in ("throttle", "crash", "timeout")]
CASES += [Fault(service, operation, "before", "refuse", times=99) for service, operation in WRITES]
CASES += [Fault("dynamodb", "UpdateItem", "after", "crash"), Fault("dynamodb", "UpdateItem", "before", "throttle", times=12)]
# A runtime that dies (out of memory) is Lambda.Unknown, as a timeout is: retried, the intent says what was done.
CASES += [Fault("apigateway", operation, "after", "oom") for operation in ("UpdateRestApi", "CreateDeployment")]


def open_intents(flow: LocalWorkflow) -> list:
    from remediator.adapters.dynamodb import DynamoJournal

    return DynamoJournal(flow.clients, flow.audit.table_name, REGION).open_intents()


def fixed_or_untouched(flow: LocalWorkflow, api_id: str, original: dict[str, str | None], stuck: bool = False) -> str:
    """The API is never half-changed for good: the fix on every stage, or the policy and every stage as before.

    Stages only move forward: once a stage serves the fix, it is never put back, so a fault after that leaves
    the fix part-deployed with its intent open, and the next execution finishes it (the sweep below).
    """
    stages, policy = stages_of(flow, api_id), policy_of(flow, api_id)
    if policy == FIXED and len(set(stages.values())) > 1:
        assert [i.api_id for i in open_intents(flow)] == [api_id]
        return "pending"
    if policy == FIXED:
        (deployment,) = set(stages.values())
        assert deployment not in original.values(), "the fix is served by a deployment made after it"
        return "fixed"
    assert policy == UNTRUSTED, policy
    assert stages == original, "every stage back on the deployment it served"
    return "untouched"


@pytest.mark.parametrize("fault", CASES, ids=str)
def test_a_fault_at_any_step_leaves_the_api_fixed_or_untouched_and_recorded_once(make_flow, fault: Fault) -> None:
    flow = make_flow(mode="auto")
    api_id = seed(flow, UNTRUSTED)
    flow.discard_pending()  # the setup's own CloudTrail events
    original = stages_of(flow, api_id)
    fault.install_on(common.clients(), REGION)
    _, result = run(flow, api_id)
    assert fault.fired, f"{fault} was never reached"
    state = fixed_or_untouched(flow, api_id, original, stuck=fault.operation == "UpdateStage" and fault.times > 1)
    notices = flow.notifications()
    if result.status == "SUCCEEDED":
        assert state == "fixed" and result.states[-1] == "Done"
        (record,) = flow.audit_records()
        assert record.outcome == "applied" and record.deployment_id == set(stages_of(flow, api_id).values()).pop()
        assert open_intents(flow) == []
    else:
        assert [n for n in notices if n["kind"] == "failure"], "every failure is notified"
        assert all(r.outcome in ("applied", "restored") for r in flow.audit_records())
    assert flow.matched() == [], "the product's own writes start nothing"

    # The fault is gone; an hour later the sweep settles whatever is left: fixed, recorded once, nothing open.
    fault.times = fault.fired
    flow.later(3600)
    flow.run_sweep()
    for execution in flow.clients.client("stepfunctions", REGION).list_executions(stateMachineArn=flow.state_machine_arn)["executions"]:
        assert flow.wait(execution["name"]).status != "RUNNING"
    assert fixed_or_untouched(flow, api_id, original) == "fixed"
    records = flow.audit_records()
    applied = [r for r in records if r.outcome == "applied"]
    assert len(applied) == 1 and applied[0].deployment_id == set(stages_of(flow, api_id).values()).pop()
    assert len(records) - len(applied) <= 1 and all(r.outcome == "restored" for r in records if r not in applied)
    assert len({r.change_id for r in records}) == len(records), "one record per change"
    assert open_intents(flow) == []


def test_a_change_left_patched_but_undeployed_is_finished_by_the_next_execution(make_flow) -> None:
    """Redeploy and RestorePolicy both crash: the execution fails (notified) with the policy patched but not
    deployed and its intent open. Once the failed execution's claim lapses, the next event for the API
    finishes the deployment and records it, instead of finding the policy 'compliant'."""
    from tests.faults.injection import crashing

    flow = make_flow(mode="auto")
    api_id = seed(flow, UNTRUSTED)
    original = stages_of(flow, api_id)
    with crashing("redeploy", "restore"):
        _, first = run(flow, api_id)
    assert first.status == "FAILED" and [n for n in flow.notifications() if n["kind"] == "failure"]
    assert policy_of(flow, api_id) == FIXED and stages_of(flow, api_id) == original, "patched, not deployed"
    (left,) = open_intents(flow)
    flow.later(Remediator.CLAIM_SECONDS + 1)
    _, second = run(flow, api_id)
    assert second.output["evaluation"]["verdict"] == "recover"
    assert second.status == "SUCCEEDED" and fixed_or_untouched(flow, api_id, original) == "fixed"
    (record,) = flow.audit_records()
    assert record.change_id == left.intent_id and record.outcome == "applied"
    assert open_intents(flow) == []


def test_many_events_for_one_api_make_one_fix_and_one_deployment(make_flow) -> None:
    """A burst of events for one API while its fix is in flight collapses into one fix: the others wait for
    it (WaitForApi), then find the API compliant."""
    from remediator.local import cloudtrail
    from tests.conftest import OWNER

    from remediator.local import runner

    flow = make_flow(mode="auto")
    api_id = seed(flow, UNTRUSTED)
    flow.account.server.counts.clear()
    # The fix is held at Apply until the whole burst is in: the trigger decides before starting (issue R), so an
    # event that arrived after the fix would rightly start nothing, and the burst would depend on timing.
    route = runner._routes[runner.FUNCTION_PREFIX + "apply"]
    real, burst_in = route.handler, threading.Event()

    def held_apply(event: dict, context: Any) -> Any:
        assert burst_in.wait(timeout=60), "the burst was not delivered"
        return real(event, context)

    route.handler = held_apply
    names = []
    try:
        for _ in range(6):
            started = flow.deliver(cloudtrail.api_call_event("UpdateRestApi", api_id, REGION, OWNER))
            assert started["status"] == "started"
            names.append(started["execution_name"])
        burst_in.set()
        results = [flow.wait(name, timeout=120) for name in names]
    finally:
        burst_in.set()
        route.handler = real
    assert {r.status for r in results} == {"SUCCEEDED"}
    counts = flow.account.server.aws_requests()
    assert counts[("apigateway", "UpdateRestApi")] == 1 and counts[("apigateway", "CreateDeployment")] == 1
    (record,) = flow.audit_records()
    assert record.outcome == "applied" and policy_of(flow, api_id) == FIXED
    assert open_intents(flow) == []


def test_in_approval_mode_a_change_left_open_is_settled_without_a_new_approval(make_flow) -> None:
    """An approved fix, deployed, whose Record crashed: the next event settles it (records it) without
    asking anyone again, and proposes nothing new (the policy is compliant)."""
    from remediator.local import runner
    from tests.faults.injection import InjectedCrash
    from tests.test_approvals import start, wait_for_buttons

    flow = make_flow(mode="approval", approvers=["U0APPROVER"])
    route = runner._routes[runner.FUNCTION_PREFIX + "record"]
    real = route.handler
    route.handler = lambda event, context: (_ for _ in ()).throw(InjectedCrash("injected crash"))
    try:
        api_id, name = start(flow)
        assert flow.press(wait_for_buttons(flow), "approve")[0] == 200
        assert flow.wait(name).status == "FAILED"
    finally:
        route.handler = real
    assert policy_of(flow, api_id) == FIXED and len(set(stages_of(flow, api_id).values())) == 1
    assert flow.audit_records() == [] and len(open_intents(flow)) == 1
    asked = len(flow.slack.calls)
    flow.later(Remediator.CLAIM_SECONDS + 1)
    _, result = run(flow, api_id)
    # recover: straight to Apply, which records the change; the plan after it (nothing to fix) is looked
    # at again from the start, and the API is compliant.
    assert result.status == "SUCCEEDED" and result.states[:3] == ["Evaluate", "IsActionNeeded", "Apply"]
    assert "AwaitApproval" not in result.states and result.output["evaluation"]["verdict"] == "compliant"
    (record,) = flow.audit_records()
    assert record.outcome == "applied" and open_intents(flow) == []
    assert not [f for method, f in flow.slack.calls[asked:] if method == "chat.postMessage" and '"actions"' in str(f)]
