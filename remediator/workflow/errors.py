"""The error names the workflow definition retries on and catches, defined once.

Step Functions matches a Lambda error by the exception's class name, so each class here is named
exactly as `definition.json` names it; `tests/test_workflow_errors.py` holds the two together.
"""

from __future__ import annotations

from typing import Any

# Lambda's own service errors: Step Functions retries these on every task (AWS's recommendation).
LAMBDA_SERVICE_ERRORS = (
    "Lambda.ServiceException",
    "Lambda.AWSLambdaException",
    "Lambda.SdkClientException",
    "Lambda.TooManyRequestsException",
)

# A Lambda function that ran past its timeout. Every step of a change can be repeated (the intent says
# what was done), so our tasks retry it; on AwaitApproval it means the person did not answer in time.
TIMEOUT = "States.Timeout"

# The error SendTaskFailure sends when a person rejects a proposal in Slack; AwaitApproval catches it.
REJECTED = "Rejected"

# AWS error codes: throttling, and failures that a later attempt usually gets past. botocore retries
# both already; what outlives its retries is handed to the state machine, which retries with backoff.
THROTTLING_CODES = frozenset({
    "TooManyRequestsException", "ThrottlingException", "Throttling", "LimitExceededException",
    "ProvisionedThroughputExceededException", "RequestLimitExceeded", "RequestThrottled", "SlowDown",
})
TRANSIENT_CODES = frozenset({
    "InternalServerError", "InternalFailure", "InternalServerException", "ServiceUnavailable",
    "ServiceUnavailableException", "TransactionConflictException", "RequestTimeout", "RequestTimeoutException",
})


class WorkflowError(Exception):
    """An error a state raises on purpose; Step Functions sees its class name as the error name."""


class Throttled(WorkflowError):
    """AWS kept throttling after the SDK's own retries; the state machine retries with backoff."""


class Transient(WorkflowError):
    """AWS failed in a way a later attempt usually gets past (a 5xx, a transaction conflict); retried."""


class RemediationFailed(WorkflowError):
    """A step could not complete; the state machine catches this and notifies."""


# The errors the definition retries on, besides Lambda's own: each one a class above.
RETRIED = (Throttled.__name__, Transient.__name__)


def from_aws(code: str | None, message: str) -> WorkflowError:
    """The workflow error for an AWS error code that outlived botocore's retries."""
    if code in THROTTLING_CODES:
        return Throttled(message)
    if code in TRANSIENT_CODES:
        return Transient(message)
    return RemediationFailed(message)


def names_in(definition: dict[str, Any]) -> set[str]:
    """Every error name the definition's Retry and Catch blocks mention."""
    found: set[str] = set()
    for state in definition.get("States", {}).values():
        for block in (*state.get("Retry", []), *state.get("Catch", [])):
            found.update(block.get("ErrorEquals", []))
    return found
