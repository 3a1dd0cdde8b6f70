"""The error names the workflow definition retries on and catches, and which AWS errors are worth retrying,
defined once.

Step Functions matches a Lambda error by the exception's class name, so each class here is named
exactly as `definition.json` names it; `tests/test_workflow_errors.py` holds the two together.
"""

from __future__ import annotations

from typing import Any, Literal

import msgspec

# --- the names Step Functions gives a Lambda task's failures ----------------------------------------------
# Step Functions developer guide, "Handle Lambda service exceptions"
# (https://docs.aws.amazon.com/step-functions/latest/dg/bp-lambda-serviceexception.html): Lambda's transient
# service errors reach the state machine as `Lambda.<exception>` (ServiceException, AWSLambdaException,
# SdkClientException, and TooManyRequestsException when Lambda hits its invocation limit); "unhandled errors
# in Lambda are reported as Lambda.Unknown ... These include out-of-memory errors and function timeouts".
# An error the handler raises reaches it under the exception's class name (`Throttled`, `RemediationFailed`).
LAMBDA_SERVICE_ERRORS = (
    "Lambda.ServiceException",
    "Lambda.AWSLambdaException",
    "Lambda.SdkClientException",
    "Lambda.TooManyRequestsException",
    "Lambda.ClientExecutionTimeoutException",  # in the guide's own Retry example
)

# A function that ran past its own timeout, or whose runtime died (out of memory, `Sandbox.Timedout`,
# `Runtime.ExitError`). Every step of a change can be repeated (the intent says what was done), so our
# tasks retry it; AwaitApproval does not (a repeat would ask in Slack twice), it is caught as a failure.
LAMBDA_UNKNOWN = "Lambda.Unknown"

# What Lambda itself names an invocation that died in the runtime (Lambda developer guide, "Invoke": the
# payload's errorType of a FunctionError "Unhandled"); Step Functions reports each as LAMBDA_UNKNOWN.
LAMBDA_RUNTIME_ERRORS = frozenset({"Sandbox.Timedout", "Runtime.ExitError", "Runtime.OutOfMemory", "Runtime.Unknown"})

# Lambda Invoke's error codes ("Invoke", Errors: https://docs.aws.amazon.com/lambda/latest/api/API_Invoke.html):
# Step Functions names a Task's failure `Lambda.<code>` for these; an answer it cannot map is
# Lambda.AWSLambdaException, and a call that got no answer at all (a connection failure) Lambda.SdkClientException.
LAMBDA_INVOKE_CODES = frozenset({
    "ServiceException", "TooManyRequestsException", "EC2ThrottledException", "EC2UnexpectedException",
    "ENILimitReachedException", "ResourceNotReadyException", "ResourceConflictException", "ResourceNotFoundException",
    "InvalidRequestContentException", "RequestTooLargeException", "KMSAccessDeniedException", "KMSThrottlingException",
    "UnsupportedMediaTypeException", "InvalidParameterValueException",
})


def lambda_task_error(code: str | None) -> str:
    """The error name a Lambda task fails with when Invoke itself failed with `code` (None: no answer)."""
    if code is None:
        return "Lambda.SdkClientException"
    return f"Lambda.{code}" if code in LAMBDA_INVOKE_CODES else "Lambda.AWSLambdaException"


def lambda_function_error(error_type: str) -> str:
    """The error name a Lambda task fails with when the function failed with this errorType: the handler's
    exception class name as it is, a death of the runtime (timeout, out of memory) Lambda.Unknown."""
    return LAMBDA_UNKNOWN if error_type in LAMBDA_RUNTIME_ERRORS or not error_type else error_type


# A Task's own TimeoutSeconds ran out (or a task token's heartbeat/timeout): the state fails with
# States.Timeout (Step Functions developer guide, "Handling errors in Step Functions workflows", "Error
# names"). On AwaitApproval it means the person did not answer in time (caught: NotifyTimeout); on our
# other tasks TimeoutSeconds is a little above the function's own timeout, so it means the invocation never
# came back (Lambda itself was stuck): retried like Lambda.Unknown.
TIMEOUT = "States.Timeout"

# The error SendTaskFailure sends when a person rejects a proposal in Slack; AwaitApproval catches it.
REJECTED = "Rejected"


# --- AWS error codes: transient or permanent, per service ---------------------------------------------------
# botocore retries throttling and 5xx already (its standard retry mode); what outlives its retries becomes
# Throttled or Transient, which the state machine retries with backoff; everything else is permanent
# (RemediationFailed: caught, notified). A code that is not in the table is permanent.

Kind = Literal["throttling", "transient", "permanent"]


class AwsError(msgspec.Struct, frozen=True):
    """One row: a service's error code, what it means for a retry, and where AWS documents it."""

    service: str
    code: str
    kind: Kind
    source: str


_COMMON = "https://docs.aws.amazon.com/apigateway/latest/api/CommonErrors.html"  # the same page for every query/JSON API
_APIGW = "https://docs.aws.amazon.com/apigateway/latest/api/API_UpdateRestApi.html#API_UpdateRestApi_Errors"
_DDB = "https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/Programming.Errors.html#Programming.Errors.MessagesAndCodes"
_DDB_TX = "https://docs.aws.amazon.com/amazondynamodb/latest/APIReference/API_TransactWriteItems.html#API_TransactWriteItems_Errors"
_SNS = "https://docs.aws.amazon.com/sns/latest/api/API_Publish.html#API_Publish_Errors"
_SFN = "https://docs.aws.amazon.com/step-functions/latest/apireference/API_StartExecution.html#API_StartExecution_Errors"
_SFN_TASK = "https://docs.aws.amazon.com/step-functions/latest/apireference/API_SendTaskSuccess.html#API_SendTaskSuccess_Errors"
_STS = "https://docs.aws.amazon.com/STS/latest/APIReference/API_AssumeRole.html#API_AssumeRole_Errors"
_ORG = "https://docs.aws.amazon.com/organizations/latest/APIReference/API_ListAccounts.html#API_ListAccounts_Errors"
_SECHUB = "https://docs.aws.amazon.com/securityhub/1.0/APIReference/API_BatchImportFindings.html#API_BatchImportFindings_Errors"
_LAMBDA = "https://docs.aws.amazon.com/lambda/latest/api/API_Invoke.html#API_Invoke_Errors"

TABLE: tuple[AwsError, ...] = (
    # Errors common to all AWS APIs ("Common Errors" of each API reference).
    AwsError("common", "ThrottlingException", "throttling", _COMMON),
    AwsError("common", "Throttling", "throttling", _COMMON),  # the query protocol's name (STS, SNS)
    AwsError("common", "InternalFailure", "transient", _COMMON),
    AwsError("common", "ServiceUnavailable", "transient", _COMMON),
    AwsError("common", "AccessDeniedException", "permanent", _COMMON),
    AwsError("common", "ValidationError", "permanent", _COMMON),
    AwsError("common", "ExpiredTokenException", "permanent", _COMMON),
    # API Gateway (UpdateRestApi, CreateDeployment, UpdateStage, GetRestApi): 429s and 503 only.
    AwsError("apigateway", "TooManyRequestsException", "throttling", _APIGW),
    AwsError("apigateway", "LimitExceededException", "throttling", _APIGW),
    AwsError("apigateway", "ServiceUnavailableException", "transient", _APIGW),
    AwsError("apigateway", "BadRequestException", "permanent", _APIGW),
    AwsError("apigateway", "ConflictException", "permanent", _APIGW),
    AwsError("apigateway", "NotFoundException", "permanent", _APIGW),
    AwsError("apigateway", "UnauthorizedException", "permanent", _APIGW),
    # DynamoDB ("Error handling with DynamoDB": the 400s marked "OK to retry? Yes", and the 5xx).
    AwsError("dynamodb", "ProvisionedThroughputExceededException", "throttling", _DDB),
    AwsError("dynamodb", "RequestLimitExceeded", "throttling", _DDB),
    AwsError("dynamodb", "ThrottlingException", "throttling", _DDB),
    AwsError("dynamodb", "LimitExceededException", "throttling", _DDB),
    AwsError("dynamodb", "InternalServerError", "transient", _DDB),
    AwsError("dynamodb", "ServiceUnavailable", "transient", _DDB),
    AwsError("dynamodb", "TransactionConflictException", "transient", _DDB_TX),
    AwsError("dynamodb", "TransactionInProgressException", "transient", _DDB_TX),
    AwsError("dynamodb", "ConditionalCheckFailedException", "permanent", _DDB),
    AwsError("dynamodb", "TransactionCanceledException", "permanent", _DDB_TX),
    AwsError("dynamodb", "ResourceNotFoundException", "permanent", _DDB),
    AwsError("dynamodb", "ValidationException", "permanent", _DDB),
    # SNS Publish: "InternalError: Indicates an internal service error" (500), KMS throttling (400).
    AwsError("sns", "Throttled", "throttling", _SNS),
    AwsError("sns", "KMSThrottling", "throttling", _SNS),
    AwsError("sns", "InternalError", "transient", _SNS),
    AwsError("sns", "AuthorizationError", "permanent", _SNS),
    AwsError("sns", "KMSAccessDenied", "permanent", _SNS),
    AwsError("sns", "KMSDisabled", "permanent", _SNS),
    AwsError("sns", "NotFound", "permanent", _SNS),
    AwsError("sns", "InvalidParameter", "permanent", _SNS),
    # Step Functions (StartExecution, SendTask*).
    AwsError("stepfunctions", "ThrottlingException", "throttling", _SFN),
    AwsError("stepfunctions", "ExecutionLimitExceeded", "permanent", _SFN),
    AwsError("stepfunctions", "ExecutionAlreadyExists", "permanent", _SFN),
    AwsError("stepfunctions", "TaskDoesNotExist", "permanent", _SFN_TASK),
    AwsError("stepfunctions", "TaskTimedOut", "permanent", _SFN_TASK),
    AwsError("stepfunctions", "InvalidToken", "permanent", _SFN_TASK),
    # STS AssumeRole: a missing or untrusting role is permanent; throttling is the common one.
    AwsError("sts", "IDPCommunicationError", "transient", _STS),
    AwsError("sts", "RegionDisabledException", "permanent", _STS),
    AwsError("sts", "MalformedPolicyDocument", "permanent", _STS),
    AwsError("sts", "PackedPolicyTooLarge", "permanent", _STS),
    AwsError("sts", "AccessDenied", "permanent", _STS),
    # Organizations: "Try again later" for throttling, an internal error, a concurrent modification.
    AwsError("organizations", "TooManyRequestsException", "throttling", _ORG),
    AwsError("organizations", "ServiceException", "transient", _ORG),
    AwsError("organizations", "ConcurrentModificationException", "transient", _ORG),
    AwsError("organizations", "AWSOrganizationsNotInUseException", "permanent", _ORG),
    AwsError("organizations", "AccessDeniedException", "permanent", _ORG),
    # Security Hub: LimitExceeded covers its throttling limits; InternalException is a 500.
    AwsError("securityhub", "LimitExceededException", "throttling", _SECHUB),
    AwsError("securityhub", "InternalException", "transient", _SECHUB),
    AwsError("securityhub", "InvalidAccessException", "permanent", _SECHUB),
    AwsError("securityhub", "InvalidInputException", "permanent", _SECHUB),
    # Lambda Invoke (the trigger's and the CLI's own invocations).
    AwsError("lambda", "TooManyRequestsException", "throttling", _LAMBDA),
    AwsError("lambda", "EC2ThrottledException", "throttling", _LAMBDA),
    AwsError("lambda", "ServiceException", "transient", _LAMBDA),
    AwsError("lambda", "ResourceNotReadyException", "transient", _LAMBDA),
    AwsError("lambda", "ResourceConflictException", "transient", _LAMBDA),
    AwsError("lambda", "ResourceNotFoundException", "permanent", _LAMBDA),
    AwsError("lambda", "InvalidRequestContentException", "permanent", _LAMBDA),
    AwsError("lambda", "RequestTooLargeException", "permanent", _LAMBDA),
)

SERVICES = tuple(dict.fromkeys(row.service for row in TABLE if row.service != "common"))


def _codes(kind: Kind) -> frozenset[str]:
    return frozenset(row.code for row in TABLE if row.kind == kind)


def kind_of(code: str | None, service: str | None = None) -> Kind:
    """What an error code means for a retry. With `service`, by that service's rows and the common ones;
    without (a caller that does not know which client failed), a code any service retries is retried."""
    if not code:
        return "permanent"
    rows = [row for row in TABLE if row.code == code and (service is None or row.service in (service, "common"))]
    for kind in ("throttling", "transient"):
        if any(row.kind == kind for row in rows):
            return kind  # type: ignore[return-value]
    return "permanent"


# Every service's throttling and transient codes (the CLI's deploy retries use them as one set).
THROTTLING_CODES = _codes("throttling")
TRANSIENT_CODES = _codes("transient") - THROTTLING_CODES


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


def from_aws(code: str | None, message: str, service: str | None = None) -> WorkflowError:
    """The workflow error for an AWS error code that outlived botocore's retries (see TABLE)."""
    kind = kind_of(code, service)
    if kind == "throttling":
        return Throttled(message)
    if kind == "transient":
        return Transient(message)
    return RemediationFailed(message)


def names_in(definition: dict[str, Any]) -> set[str]:
    """Every error name the definition's Retry and Catch blocks mention (the Map's inner states too)."""
    found: set[str] = set()
    for state in _states(definition):
        for block in (*state.get("Retry", []), *state.get("Catch", [])):
            found.update(block.get("ErrorEquals", []))
    return found


def _states(definition: dict[str, Any]) -> list[dict[str, Any]]:
    """Every state of a definition, a Map's ItemProcessor's included."""
    found: list[dict[str, Any]] = []
    for state in definition.get("States", {}).values():
        found.append(state)
        for inner in ("ItemProcessor", "Iterator"):
            if inner in state:
                found.extend(_states(state[inner]))
    return found


def tasks_in(definition: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Every Task state by name, a Map's ItemProcessor's included."""
    found: dict[str, dict[str, Any]] = {}
    for name, state in definition.get("States", {}).items():
        if state.get("Type") == "Task":
            found[name] = state
        for inner in ("ItemProcessor", "Iterator"):
            if inner in state:
                found.update(tasks_in(state[inner]))
    return found
