"""Step Functions' names for a Lambda task's failures, on the strict local account as in AWS (Step Functions
developer guide, "Handle Lambda service exceptions"): a function timeout or a dead runtime is Lambda.Unknown,
Invoke's own errors Lambda.<code>, a handler's exception its class name, and only a Task's own TimeoutSeconds
States.Timeout. Each step retries what is safe for it: a redeploy that timed out after CreateDeployment is
retried (never put back) and the change ends fixed with one record."""

from __future__ import annotations

from typing import Any

import pytest

from remediator.adapters.stepfunctions import execution_arn
from remediator.functions import common
from remediator.local import runner
from remediator.local.runner import LocalWorkflow
from remediator.workflow import errors
from tests.faults.injection import TASK_ERRORS, Fault
from tests.test_workflow import FIX_PATH, FIXED, REGION, UNTRUSTED, policy_of, run, seed, stages_of

FAILURES = ("LambdaFunctionFailed", "LambdaFunctionTimedOut", "TaskFailed")


def task_errors(flow: LocalWorkflow, execution: str) -> list[str]:
    """The error of each failed attempt of a Lambda task in the execution's history, in order."""
    arn = execution_arn(flow.state_machine_arn, execution)
    events = flow.clients.client("stepfunctions", REGION).get_execution_history(executionArn=arn, maxResults=1000)["events"]
    return [details["error"] for event in events if event["type"] in FAILURES
            for key, details in event.items() if key.endswith("EventDetails")]


@pytest.mark.parametrize("kind", ["timeout", "oom"])
def test_a_redeploy_that_dies_after_create_deployment_is_retried_and_ends_fixed_with_one_record(make_flow, kind: str) -> None:
    flow = make_flow(mode="auto")
    api_id = seed(flow, UNTRUSTED)
    flow.discard_pending()
    flow.account.server.counts.clear()
    Fault("apigateway", "CreateDeployment", "after", kind).install_on(common.clients(), REGION)
    _, result = run(flow, api_id)
    assert task_errors(flow, result.name) == [TASK_ERRORS[kind]] == [errors.LAMBDA_UNKNOWN]
    assert result.status == "SUCCEEDED" and result.states == FIX_PATH, "retried, not restored"
    assert policy_of(flow, api_id) == FIXED and len(set(stages_of(flow, api_id).values())) == 1
    (record,) = flow.audit_records()
    assert record.outcome == "applied" and record.deployment_id == set(stages_of(flow, api_id).values()).pop()
    counts = flow.account.server.aws_requests()
    # The first deployment's ID died with the function: the retry makes one more, and every stage serves it.
    assert counts[("apigateway", "CreateDeployment")] <= 2


def test_a_handlers_exception_keeps_its_class_name_and_is_not_retried(make_flow) -> None:
    flow = make_flow(mode="auto")
    api_id = seed(flow, UNTRUSTED)
    flow.discard_pending()
    Fault("apigateway", "UpdateRestApi", "before", "crash").install_on(common.clients(), REGION)
    _, result = run(flow, api_id)
    assert task_errors(flow, result.name) == ["InjectedCrash"]
    assert result.status == "FAILED" and "RestorePolicy" in result.states
    assert policy_of(flow, api_id) == UNTRUSTED


def test_a_tasks_own_timeout_seconds_is_states_timeout(make_flow) -> None:
    """TimeoutSeconds a little above the function's timeout: only an invocation that outlives both (here a
    function whose timeout was raised past the Task's) fails with States.Timeout, retried, then caught."""
    flow = make_flow(mode="auto")
    api_id = seed(flow, UNTRUSTED)
    flow.discard_pending()
    route = runner._routes[runner.FUNCTION_PREFIX + "evaluate"]
    route.timeout = 100.0
    real, attempts = route.handler, []

    def slow_evaluate(event: dict, context: Any) -> Any:
        attempts.append(1)
        flow.strict.clock.sleep(50)  # past the Task's TimeoutSeconds (45), within the function's 100 s
        return real(event, context)

    route.handler = slow_evaluate
    _, result = run(flow, api_id)
    assert set(task_errors(flow, result.name)) == {errors.TIMEOUT} and len(attempts) == 1 + 6
    assert result.status == "FAILED" and result.states[:2] == ["Evaluate", "NotifyFailure"]
    (notice,) = flow.notifications()
    assert notice["error"]["Error"] == errors.TIMEOUT
    assert policy_of(flow, api_id) == UNTRUSTED


@pytest.mark.parametrize("code, name", [
    ("ServiceException", "Lambda.ServiceException"),
    ("TooManyRequestsException", "Lambda.TooManyRequestsException"),
    ("InternalFailure", "Lambda.AWSLambdaException"),  # an answer the SDK has no exception for
    (None, "Lambda.SdkClientException"),  # no answer at all
])
def test_lambdas_service_errors_are_named_as_step_functions_names_them_and_retried(make_flow, code: str | None, name: str) -> None:
    flow = make_flow(mode="auto")
    api_id = seed(flow, UNTRUSTED)
    flow.discard_pending()
    runner.inject_lambda_error("apply", code, times=2)
    _, result = run(flow, api_id)
    assert task_errors(flow, result.name) == [name, name] and name in errors.LAMBDA_SERVICE_ERRORS
    assert result.status == "SUCCEEDED" and result.states == FIX_PATH
    (record,) = flow.audit_records()
    assert record.outcome == "applied" and policy_of(flow, api_id) == FIXED


def test_the_names_step_functions_gives_lambda_failures() -> None:
    """Pinned from "Handle Lambda service exceptions" and Lambda's Invoke errors."""
    assert errors.lambda_function_error("Sandbox.Timedout") == "Lambda.Unknown"
    assert errors.lambda_function_error("Runtime.OutOfMemory") == "Lambda.Unknown"
    assert errors.lambda_function_error("Runtime.ExitError") == "Lambda.Unknown"
    assert errors.lambda_function_error("Throttled") == "Throttled"
    assert errors.lambda_task_error("ServiceException") == "Lambda.ServiceException"
    assert errors.lambda_task_error("TooManyRequestsException") == "Lambda.TooManyRequestsException"
    assert errors.lambda_task_error("SomethingNew") == "Lambda.AWSLambdaException"
    assert errors.lambda_task_error(None) == "Lambda.SdkClientException"
