"""The error names of the workflow: each one the definition retries on or catches is raised somewhere,
and each AWS error that outlives botocore's retries becomes the right one."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from botocore.exceptions import ClientError

from remediator import workflow
from remediator.functions.common import aws_call
from remediator.workflow import errors

PACKAGE = Path(__file__).resolve().parents[1] / "remediator"


def definition() -> dict:
    return json.loads(workflow.definition_text())


def test_every_error_the_definition_names_is_one_the_package_produces() -> None:
    named = errors.names_in(definition())
    custom = {n for n in named if not n.startswith("States.") and n not in errors.LAMBDA_SERVICE_ERRORS}
    assert custom == set(errors.RETRIED) | {errors.REJECTED}
    # Each retried name is what some AWS error that outlived botocore's retries becomes...
    produced = {type(errors.from_aws(code, "")).__name__ for code in errors.THROTTLING_CODES | errors.TRANSIENT_CODES}
    assert produced == set(errors.RETRIED)
    # ...and "Rejected" is what the Slack callback sends when a person rejects.
    adapter = (PACKAGE / "adapters" / "stepfunctions.py").read_text(encoding="utf-8")
    assert "send_task_failure(taskToken=task_token, error=REJECTED" in adapter


def test_every_task_retries_lambdas_own_errors_and_the_retried_names() -> None:
    for name, state in definition()["States"].items():
        if state["Type"] != "Task":
            continue
        retried = {n for block in state.get("Retry", []) for n in block["ErrorEquals"]}
        assert set(errors.LAMBDA_SERVICE_ERRORS) <= retried, name
        if state["Resource"].startswith("${"):  # our functions (not the approval callback task)
            assert set(errors.RETRIED) | {errors.TIMEOUT} <= retried, name
    # The approval task's timeout is the person's, not a Lambda's: it is caught (NotifyTimeout), never retried.
    approval = definition()["States"]["AwaitApproval"]
    assert errors.TIMEOUT not in {n for block in approval["Retry"] for n in block["ErrorEquals"]}


def _client_error(code: str) -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": "m"}}, "PutItem")


@pytest.mark.parametrize("code, raised", [
    ("ProvisionedThroughputExceededException", errors.Throttled),
    ("TooManyRequestsException", errors.Throttled),
    ("ThrottlingException", errors.Throttled),
    ("InternalServerError", errors.Transient),
    ("ServiceUnavailable", errors.Transient),
    ("TransactionConflictException", errors.Transient),
    ("AccessDeniedException", errors.RemediationFailed),
    ("ValidationException", errors.RemediationFailed),
])
def test_aws_errors_become_the_workflows(code: str, raised: type) -> None:
    def call() -> None:
        raise _client_error(code)

    with pytest.raises(raised) as caught:
        aws_call(call)
    assert type(caught.value).__name__ in errors.names_in(definition()) or raised is errors.RemediationFailed

