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
    custom = {n for n in named if not n.startswith("States.") and n not in errors.LAMBDA_SERVICE_ERRORS
              and n != errors.LAMBDA_UNKNOWN}
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
            # Every step of a change can be repeated (the intent says what was done): a function timeout or a
            # dead runtime (Lambda.Unknown) and the Task's own timeout are retried, as AWS throttling is.
            assert set(errors.RETRIED) | {errors.TIMEOUT, errors.LAMBDA_UNKNOWN} <= retried, name
    # The approval task's timeout is the person's, not a Lambda's: it is caught (NotifyTimeout), never retried;
    # nor is Lambda.Unknown (a repeat would post a second proposal): it is caught as a failure, nothing applied.
    approval = definition()["States"]["AwaitApproval"]
    approval_retried = {n for block in approval["Retry"] for n in block["ErrorEquals"]}
    assert errors.TIMEOUT not in approval_retried and errors.LAMBDA_UNKNOWN not in approval_retried
    assert [c["Next"] for c in approval["Catch"] if errors.TIMEOUT in c["ErrorEquals"]] == ["NotifyTimeout"]


@pytest.mark.parametrize("name", ["definition.json", "org_sweep.json"])
def test_every_task_has_a_timeout_a_little_above_its_functions(name: str) -> None:
    """Without TimeoutSeconds a Task has next to no limit of its own (Amazon States Language: the default is
    99999999 s); with it just above the function's own timeout, a function timeout is Lambda.Unknown and only
    an invocation that never comes back States.Timeout."""
    from remediator import functions as function_modules
    from remediator.local.template import of_type, synthesized_template

    template = synthesized_template("approval", slack=True, organization=True)
    timeouts = {function_modules.name_of(f["Properties"]["Handler"]): float(f["Properties"].get("Timeout", 3))
                for f in of_type(template, "AWS::Lambda::Function").values()}
    document = json.loads(workflow.definition_text(name))
    for task, state in errors.tasks_in(document).items():
        if task == "AwaitApproval":
            assert state["TimeoutSecondsPath"] == "$.evaluation.approval_timeout_seconds"
            continue
        handler = state["Resource"].removeprefix("${").removesuffix("FunctionArn}").lower()
        assert timeouts[handler] < state["TimeoutSeconds"] <= timeouts[handler] * 1.5, task
        retried = {n for block in state["Retry"] for n in block["ErrorEquals"]}
        assert {errors.LAMBDA_UNKNOWN, errors.TIMEOUT, *errors.LAMBDA_SERVICE_ERRORS} <= retried, task


@pytest.mark.parametrize("row", errors.TABLE, ids=lambda row: f"{row.service}:{row.code}")
def test_each_aws_error_is_classified_as_its_documentation_says(row: errors.AwsError) -> None:
    """One row per documented code; its source is the AWS documentation page that names it."""
    expected = {"throttling": errors.Throttled, "transient": errors.Transient, "permanent": errors.RemediationFailed}[row.kind]
    service = None if row.service == "common" else row.service
    assert type(errors.from_aws(row.code, "m", service)) is expected
    assert row.source.startswith("https://docs.aws.amazon.com/")
    if row.kind != "permanent":
        assert row.code in errors.THROTTLING_CODES | errors.TRANSIENT_CODES  # the CLI's retries see it too


def test_the_table_covers_every_service_the_bot_calls() -> None:
    assert set(errors.SERVICES) == {"apigateway", "dynamodb", "sns", "stepfunctions", "sts", "organizations",
                                    "securityhub", "lambda"}
    # An SNS InternalError is a 500 the next attempt usually gets past: a fix whose notice hit it still ends fixed.
    assert type(errors.from_aws("InternalError", "m")) is errors.Transient
    assert type(errors.from_aws("InternalError", "m", "sns")) is errors.Transient
    assert type(errors.from_aws("NoSuchCode", "m")) is errors.RemediationFailed
    assert type(errors.from_aws(None, "m")) is errors.RemediationFailed


def _client_error(code: str) -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": "m"}}, "PutItem")


@pytest.mark.parametrize("code, raised", [
    ("ProvisionedThroughputExceededException", errors.Throttled),
    ("TooManyRequestsException", errors.Throttled),
    ("ThrottlingException", errors.Throttled),
    ("InternalServerError", errors.Transient),
    ("InternalError", errors.Transient),  # SNS
    ("KMSThrottling", errors.Throttled),  # SNS
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

