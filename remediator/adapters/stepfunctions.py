"""Step Functions: start the workflow once per event, and (locally) create and watch it."""

from __future__ import annotations

import json
import time
from typing import Any

from botocore.exceptions import ClientError

from remediator.adapters.clients import ClientFactory
from remediator.workflow.errors import REJECTED


def start_execution(clients: ClientFactory, state_machine_arn: str, name: str, payload: dict[str, Any]) -> str:
    """Start an execution named after the event; a second delivery of the same event is a no-op.

    Returns "started" or "duplicate".
    """
    region = state_machine_arn.split(":")[3]
    try:
        clients.client("stepfunctions", region).start_execution(stateMachineArn=state_machine_arn, name=name, input=json.dumps(payload))
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") == "ExecutionAlreadyExists":
            return "duplicate"
        raise
    return "started"


def execution_arn(state_machine_arn: str, name: str) -> str:
    return state_machine_arn.replace(":stateMachine:", ":execution:") + f":{name}"


def create_state_machine(clients: ClientFactory, region: str, name: str, definition: str, role_arn: str) -> str:
    client = clients.client("stepfunctions", region)
    return str(client.create_state_machine(name=name, definition=definition, roleArn=role_arn, type="STANDARD")["stateMachineArn"])


def wait_for_execution(clients: ClientFactory, arn: str, timeout: float = 60.0, poll: float = 0.05) -> dict[str, Any]:
    client = clients.client("stepfunctions", arn.split(":")[3])
    deadline = time.monotonic() + timeout
    while True:
        description = client.describe_execution(executionArn=arn)
        if description["status"] != "RUNNING":
            return dict(description)
        if time.monotonic() > deadline:
            raise TimeoutError(f"execution {arn} still running after {timeout:.0f} s")
        time.sleep(poll)


def states_entered(clients: ClientFactory, arn: str) -> list[str]:
    """The states an execution entered, in order: Standard workflows bill per state transition."""
    events = clients.client("stepfunctions", arn.split(":")[3]).get_execution_history(executionArn=arn)["events"]
    return [e["stateEnteredEventDetails"]["name"] for e in events if e["type"].endswith("StateEntered")]


class TaskGone(LookupError):
    """The execution no longer waits for this token (timed out, or already answered)."""


def answer_task(clients: ClientFactory, task_token: str, approved: bool, output: dict[str, Any], region: str | None = None) -> None:
    client = clients.client("stepfunctions", region)
    try:
        if approved:
            client.send_task_success(taskToken=task_token, output=json.dumps(output))
        else:
            client.send_task_failure(taskToken=task_token, error=REJECTED, cause=json.dumps(output))
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") in ("TaskTimedOut", "TaskDoesNotExist", "InvalidToken"):
            raise TaskGone(str(error)) from None
        raise
