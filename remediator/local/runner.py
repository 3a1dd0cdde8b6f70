"""Run the real workflow on the emulated account: the same state-machine definition, the same functions.

The emulator executes the definition; its Lambda invocations are routed to the handler
functions in this process (no Docker), exactly as AWS would call them.
"""

from __future__ import annotations

import collections
import datetime
import functools
import hashlib
import io
import json
import os
import secrets
import threading
import time
import traceback
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

import botocore.session
from botocore.credentials import CredentialProvider
from botocore.exceptions import BotoCoreError, ClientError, EndpointConnectionError
from moto.awslambda_simple.models import LambdaSimpleBackend
from moto.stepfunctions.parser.asl.component.state.exec.state_map.result_writer.resource_eval import (
    resource_eval_s3 as result_writer_s3,
)
from moto.stepfunctions.parser.asl.component.common.timeouts.timeout import EvalTimeoutError
from moto.stepfunctions.parser.asl.component.state.exec.state_task import lambda_eval_utils
from moto.stepfunctions.parser.asl.component.state.exec.state_task.state_task_lambda import StateTaskLambda

from remediator import functions as function_modules
from remediator import workflow
from remediator.workflow import errors
from remediator.functions import common, security_hub
from remediator.adapters.clients import ClientFactory, new_session
from remediator.adapters import secrets as secrets_adapter
from remediator.adapters.dynamodb import AuditTable
from remediator.adapters.stepfunctions import create_state_machine, execution_arn, states_entered, wait_for_execution
from remediator.audit import AuditRecord
from remediator.local.emulator import EmulatedAccount
from remediator.local.iam import Call, PolicySet
from remediator.local.slack import FunctionUrl, SlackStandIn, button_press_body, post, signed_headers
from remediator.local.strict import (
    SFN_KEY,
    InvocationCredentials,
    current_invocation,
    Invocation,
    LambdaRuntimeExited,
    LambdaTimedOut,
    Principal,
    StrictLayer,
    invocation,
)
from remediator import containers
from remediator.adapters import ssm
from remediator.local import express
from remediator.local.organization import LocalOrganization
from remediator.local.template import LOCAL_ORGANIZATION_ID, Resolver, of_type, spoke_template, synthesized_template

FUNCTION_PREFIX = "apigw-remediator-"
# Organization mode's settings in the functions' environment (infra/stack.py sets them; docs/organization.md).
ORGANIZATION_ENVIRONMENT = ("REMEDIATOR_DEPLOYMENT", "ORGANIZATION_ID", "SPOKE_ROLE_NAME", "SWEEP_REGIONS", "RESULTS_BUCKET",
                            "ORG_SWEEP_CONCURRENCY")
# The functions the local account runs, each by its module (remediator/functions/<name>.py).
HANDLERS: dict[str, Callable[[dict[str, Any], Any], Any]] = {
    name: function_modules.handler(name) for name in (*function_modules.NAMES, *function_modules.ORGANIZATION_NAMES)}


@dataclass
class Route:
    """A local function: its handler and, on the strict account, its role session and timeout."""

    handler: Callable[[dict[str, Any], Any], Any]
    principal: Principal | None = None
    timeout: float = 30.0
    log_group_arn: str | None = None
    strict: StrictLayer | None = None


_routes: dict[str, Route] = {}
_routes_lock = threading.Lock()


def _invoke(self: Any, function_name: str, qualifier: Any, body: Any, headers: Any, response_headers: dict[str, str]) -> bytes:
    """The emulator's Lambda invoke, routed to a handler in this process.

    As Lambda answers (Lambda developer guide, "Invoke"; "Lambda function errors"): a function error is
    FunctionError "Unhandled" with the payload's errorType the handler's exception class name, or the
    runtime's own name for an invocation it ended (`Sandbox.Timedout` past the timeout, `Runtime.OutOfMemory`).
    The invocation's duration on the local clock goes back in DURATION_HEADER, for the Task's TimeoutSeconds."""
    name = function_name.split(":function:")[-1].split(":")[0]
    event = json.loads(body) if body else {}
    used: list[float] = []
    try:
        return json.dumps(run_function(name, event, used=used)).encode()
    except FunctionTimedOut as error:  # what Lambda answers for a function that ran out of time
        response_headers["x-amz-function-error"] = "Unhandled"
        return json.dumps({"errorType": "Sandbox.Timedout", "errorMessage": f"RequestId: local Error: {error}"}).encode()
    except FunctionCrashed as error:  # the runtime died under the handler (out of memory, the process exited)
        response_headers["x-amz-function-error"] = "Unhandled"
        return json.dumps({"errorType": error.error_type, "errorMessage": f"RequestId: local Error: {error}"}).encode()
    except Exception as error:  # a handler's exception is a Lambda error, named after its class, as in AWS
        response_headers["x-amz-function-error"] = "Unhandled"
        return json.dumps({"errorType": type(error).__name__, "errorMessage": str(error),
                           "stackTrace": traceback.format_exception(error)[-3:]}).encode()
    finally:
        if used:
            response_headers[DURATION_HEADER] = repr(used[0])


DURATION_HEADER = "x-local-duration"  # not Lambda's: the local runner's report of an invocation's time
# Lambda service errors to answer instead of running the function, by function name (see inject_lambda_error).
_lambda_faults: dict[str, collections.deque[str | None]] = collections.defaultdict(collections.deque)
_task_timeout = threading.local()  # the running Lambda task's TimeoutSeconds, in the interpreter's thread


def inject_lambda_error(function: str, code: str | None, times: int = 1) -> None:
    """The next `times` invocations of `function` by the state machine fail in Lambda's service, not in the
    function: `code` an Invoke error code (ServiceException, TooManyRequestsException...), None a call that
    got no answer. The function does not run."""
    _lambda_faults[FUNCTION_PREFIX + function if not function.startswith(FUNCTION_PREFIX) else function].extend([code] * times)


def clear_lambda_errors() -> None:
    """Forget the injected Lambda errors not met yet."""
    _lambda_faults.clear()


def _invoke_lambda_function(original: Callable[..., Any]) -> Callable[..., Any]:
    """The interpreter's Invoke call, as Step Functions makes it: an injected service failure instead of the
    call, and a Task whose TimeoutSeconds passed before the function answered fails with States.Timeout
    (Step Functions developer guide, "Error names": States.Timeout, "a Task state ... ran longer than the
    TimeoutSeconds value"), whatever the function answered afterwards. The interpreter times a Task in
    real time; the functions run on the local clock, so the invocation's local duration decides."""
    if getattr(original, "_local_lambda", False):
        return original

    def invoke_lambda_function(parameters: dict[str, Any], region: str, state_credentials: Any) -> Any:
        name = str(parameters.get("FunctionName", "")).split(":function:")[-1].split(":")[0]
        faults = _lambda_faults.get(name)
        if faults:
            code = faults.popleft()
            if code is None:
                raise EndpointConnectionError(endpoint_url=f"https://lambda.{region}.amazonaws.com/")
            status = 429 if "TooManyRequests" in code or "Throttl" in code else 500
            raise ClientError({"Error": {"Code": code, "Message": f"injected {code}"},
                               "ResponseMetadata": {"HTTPStatusCode": status, "RequestId": "local"}}, "Invoke")
        response = original(parameters=parameters, region=region, state_credentials=state_credentials)
        limit = getattr(_task_timeout, "seconds", None)
        duration = (response.get("ResponseMetadata", {}).get("HTTPHeaders") or {}).get(DURATION_HEADER)
        if limit is not None and duration is not None and float(duration) > limit:
            raise EvalTimeoutError()
        return response

    invoke_lambda_function._local_lambda = True  # type: ignore[attr-defined]
    return invoke_lambda_function


def _exec_lambda_function(original: Callable[..., None]) -> Callable[..., None]:
    """Step Functions' names for a Lambda task's failures (Step Functions developer guide, "Handle Lambda
    service exceptions"): an invocation the runtime ended (timeout, out of memory) is Lambda.Unknown; Invoke's
    own errors are Lambda.<code>; a handler's exception keeps its class name. The emulator's interpreter
    names a failed Invoke call "Exception", and a runtime's death by Lambda's errorType."""
    if getattr(original, "_local_names", False):
        return original

    def exec_lambda_function(*args: Any, **kwargs: Any) -> None:
        try:
            original(*args, **kwargs)
        except lambda_eval_utils.LambdaFunctionErrorException as error:
            try:
                payload = json.loads(error.payload)
            except ValueError:
                payload = {}
            error_type = str(payload.get("errorType", "")) if isinstance(payload, dict) else ""
            name = errors.lambda_function_error(error_type)
            if name == error_type:
                raise
            raise _task_error(name, error.payload, error.function_error) from None
        except ClientError as error:
            code = error.response.get("Error", {}).get("Code")
            raise _task_error(errors.lambda_task_error(code), str(error), None) from None
        except BotoCoreError as error:
            raise _task_error(errors.lambda_task_error(None), str(error), None) from None

    exec_lambda_function._local_names = True  # type: ignore[attr-defined]
    return exec_lambda_function


def _task_error(name: str, cause: str, function_error: str | None) -> lambda_eval_utils.LambdaFunctionErrorException:
    """A failure the interpreter reports under `name` (it takes the payload's errorType as the error name)."""
    return lambda_eval_utils.LambdaFunctionErrorException(
        function_error, json.dumps({"errorType": name, "errorMessage": cause}, separators=(",", ":")))


def _timed_task(original: Callable[..., None]) -> Callable[..., None]:
    """A Lambda task's TimeoutSeconds, kept where the Invoke call above can compare the invocation with it."""
    if getattr(original, "_local_timed", False):
        return original

    def eval_execution(self: Any, env: Any) -> None:
        seconds = None
        if not self.timeout.is_default_value():
            self.timeout.eval(env=env)
            seconds = float(env.stack.pop())
        _task_timeout.seconds = seconds
        try:
            original(self, env)
        finally:
            _task_timeout.seconds = None

    eval_execution._local_timed = True  # type: ignore[attr-defined]
    return eval_execution


def _kept_clients(original: Callable[..., Any]) -> Callable[..., Any]:
    """The interpreter makes a new boto3 client for every Task's Invoke, always with the same fixed credentials and
    settings; clients are thread-safe (boto3 guide, "Multithreading or multiprocessing with clients"), so one per
    region and service serves them all."""
    made: dict[tuple[str, str, int], Any] = {}
    lock = threading.Lock()

    def boto_client_for(region: str, service: str, state_credentials: Any = None) -> Any:
        from moto.settings import moto_server_port

        key = (region, service, moto_server_port())
        with lock:
            if key not in made:
                made[key] = original(region, service, state_credentials)
            return made[key]

    return boto_client_for


lambda_eval_utils.boto_client_for = _kept_clients(lambda_eval_utils.boto_client_for)
lambda_eval_utils._invoke_lambda_function = _invoke_lambda_function(lambda_eval_utils._invoke_lambda_function)
lambda_eval_utils.execute_lambda_function_integration = _exec_lambda_function(lambda_eval_utils.execute_lambda_function_integration)
StateTaskLambda._eval_execution = _timed_task(StateTaskLambda._eval_execution)  # type: ignore[method-assign]


def _write_results(env: Any, resource_runtime_part: Any, state_credentials: Any) -> None:
    """A Distributed Map's ResultWriter as Step Functions writes it: the children's results in SUCCEEDED_<n>.json
    files and a manifest.json naming them, under <Prefix>/<map run ID>/ (the emulator writes the manifest only)."""
    parameters = env.stack.pop()
    results = env.stack.pop()
    s3 = result_writer_s3.ResourceEvalS3._get_s3_client(resource_runtime_part=resource_runtime_part,
                                                         state_credentials=state_credentials)
    map_run_arn = env.map_run_record_pool_manager.get_all().pop().map_run_arn
    prefix = parameters.get("Prefix", "")
    prefix = prefix + "/" if prefix and not prefix.endswith("/") else prefix
    base = f"{prefix}{map_run_arn.split(':')[-1]}/"
    children: dict[str, list[dict[str, Any]]] = {"SUCCEEDED": [], "FAILED": []}
    for index, result in enumerate(results or []):
        child = {"ExecutionArn": f"{map_run_arn}:{index}", "Name": str(index), "StateMachineArn": map_run_arn}
        failure = result.get(express.LOCAL_FAILURE) if isinstance(result, dict) else None
        if failure is not None:  # an Express child that failed (express.py): listed with its input, error and cause
            children["FAILED"].append({**child, "Input": json.dumps(failure["Input"]), "Status": "FAILED",
                                       "Error": failure["Error"], "Cause": failure["Cause"]})
        else:
            children["SUCCEEDED"].append({**child, "Input": "{}", "Output": json.dumps(result), "Status": "SUCCEEDED"})
    files: dict[str, list[dict[str, Any]]] = {"FAILED": [], "PENDING": [], "SUCCEEDED": []}
    for status, listed in children.items():
        for start in range(0, len(listed), 1000) or ([0] if status == "SUCCEEDED" else []):
            body = json.dumps(listed[start:start + 1000]).encode()
            key = f"{base}{status}_{start // 1000}.json"
            s3.put_object(Bucket=parameters["Bucket"], Key=key, Body=body)
            files[status].append({"Key": key, "Size": len(body)})
    manifest = {"DestinationBucket": parameters["Bucket"], "MapRunArn": map_run_arn, "ResultFiles": files}
    key = base + "manifest.json"
    s3.put_object(Bucket=parameters["Bucket"], Key=key, Body=json.dumps(manifest).encode())
    env.stack.append({"MapRunArn": map_run_arn, "ResultWriterDetails": {"Bucket": parameters["Bucket"], "Key": key}})


result_writer_s3.ResourceEvalS3._handle_put_object = staticmethod(_write_results)  # type: ignore[assignment]
express.install()  # a Distributed Map's EXPRESS children: counted apart, 5 minutes at most (remediator/local/express.py)


class FunctionTimedOut(Exception):
    """The invocation ran past its function's timeout: Lambda ends it (errorType Sandbox.Timedout) and Step
    Functions sees the task fail with Lambda.Unknown (errors.LAMBDA_UNKNOWN)."""


class FunctionCrashed(Exception):
    """The runtime died under the handler (out of memory, the process exited): Lambda.Unknown too."""

    def __init__(self, message: str, error_type: str) -> None:
        super().__init__(message)
        self.error_type = error_type


# Every invocation on the strict account: (function, its duration on the local clock). Lambda bills each request and
# its duration; the cost bench reads them from here.
INVOCATIONS: list[tuple[str, float]] = []
_invocations_lock = threading.Lock()


def run_function(name: str, event: Any, used: list[float] | None = None) -> Any:
    """Run a local function as Lambda does: as its role's session, under its timeout, logging to its group.
    `used` receives the invocation's duration on the local clock (its own time and its sleeps)."""
    route = _routes[name]
    region = os.environ.get("AWS_DEFAULT_REGION", "us-east-1")
    owner = route.strict.account if route.strict is not None else os.environ.get("MOTO_ACCOUNT_ID")
    arn = f"arn:aws:lambda:{region}:{owner}:function:{name}"
    context = SimpleNamespace(invoked_function_arn=arn, function_name=name, aws_request_id="local")
    if route.principal is None or route.strict is None:
        with containers.running_as(name):
            return route.handler(event, context)
    # The runtime writes the function's logs with its role: CreateLogStream, then PutLogEvents.
    stream = f"{route.log_group_arn[:-2]}:log-stream:local" if route.log_group_arn else "*"
    denied = route.strict.authorize(route.principal, [Call("logs:CreateLogStream", stream), Call("logs:PutLogEvents", stream)])
    if denied is not None:
        raise RuntimeError(f"{name}: the function cannot write its logs: {denied.reason}")
    record = Invocation(name, route.principal, route.timeout)
    try:
        with invocation(record), containers.running_as(name):  # each function keeps its own caches, as in Lambda
            try:
                result = route.handler(event, context)
            except LambdaTimedOut as timed_out:
                raise FunctionTimedOut(str(timed_out)) from None
            except LambdaRuntimeExited as exited:
                raise FunctionCrashed(str(exited), exited.error_type) from None
        if record.used() > route.timeout:
            raise FunctionTimedOut(f"{name}: Task timed out after {route.timeout:.2f} seconds")
        return result
    finally:
        if used is not None:
            used.append(min(record.used(), route.timeout))
        with _invocations_lock:  # what Lambda bills: one request, and its duration (bench/bench_cost.py)
            INVOCATIONS.append((name, min(record.used(), route.timeout)))


@dataclass
class ExecutionResult:
    name: str
    status: str
    states: list[str]
    output: dict[str, Any] | None
    error: str | None
    cause: str | None
    # A Distributed Map's Express children (remediator/local/express.py): not in `states`, since Step Functions bills
    # them per request and duration, not per transition.
    express: list[express.ExpressChild] = field(default_factory=list)

    @property
    def transitions(self) -> int:
        """The Standard state transitions: the states the execution entered (its Express children's are not)."""
        return len(self.states)


@dataclass
class WorkflowConfig:
    mode: str = "dry-run"
    trusted_accounts: list[str] = field(default_factory=list)
    trusted_org_ids: list[str] = field(default_factory=list)
    exempt_tag_key: str = "remediator:exempt"
    stages: str = "all"
    slack_channel: str = "#api-security"
    approvers: list[str] = field(default_factory=lambda: ["U0APPROVER"])
    approval_timeout_seconds: int = 24 * 3600
    # Organization mode: the stack is the hub of a local organization (remediator.local.organization) of this many
    # member accounts besides the hub; its trust settings as in the trust parameter's document.
    organization: bool = False
    members: int = 3
    trust_organization: bool = False
    trusted_ous: list[str] = field(default_factory=list)
    # Security Hub enabled in the account and region (remediator:securityHub is auto: the functions import findings
    # where DescribeHub answers); False: not enabled, so nothing is imported and people are told so once.
    security_hub: bool = True
    # remediator:cloudFormationHook: the stack's setting (off: no hook; fail | warn: the hook function and its role).
    hook: str = "off"
    # remediator:undeployedChanges: what a fix does when its redeploy would also publish undeployed edits of the API.
    undeployed_changes: str = "ask"


class LocalWorkflow:
    """The stack's moving parts, created on the emulated account from the synthesized template.

    On the strict account each function runs as a session of its own role, whose policy is the one
    the template gives it (intrinsics resolved to this account's resources); the state machine
    invokes them as its role; the event rule has the template's pattern; each function has the
    template's timeout.
    """

    def __init__(self, account: EmulatedAccount, config: WorkflowConfig, region: str = "us-east-1") -> None:
        self.account = account
        self.region = region
        self.clients = account.clients
        self.config = config
        self.strict = account.strict
        self.template = synthesized_template(config.mode, slack=bool(config.slack_channel), organization=config.organization,
                                             hook=config.hook)
        self.spoke_template = spoke_template(config.mode, bool(config.slack_channel)) if config.organization else {}
        self.organization_id = LOCAL_ORGANIZATION_ID  # the local organization's own, once it exists
        account_id = account.account_id
        resolve = self.resolve = Resolver(account_id, region)
        iam = self.clients.client("iam", region)
        # Roles: their template names (the hub's, which the spokes trust), else named after their logical IDs (the
        # ARNs CloudTrail names as the session issuer).
        self.role_arns: dict[str, str] = {}
        for logical_id, role in of_type(self.template, "AWS::IAM::Role").items():
            name = role["Properties"].get("RoleName") or f"apigw-remediator-{logical_id}"[:64]
            self.role_arns[logical_id] = iam.create_role(
                RoleName=name, AssumeRolePolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": []}))["Role"]["Arn"]
            resolve.bind(logical_id, name, Arn=self.role_arns[logical_id])
        table = "apigw-remediator-audit"
        self.clients.client("dynamodb", region).create_table(
            TableName=table, BillingMode="PAY_PER_REQUEST",
            AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}, {"AttributeName": "sk", "AttributeType": "S"}],
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
        )
        for definition in of_type(self.template, "AWS::DynamoDB::Table").values():  # the template's TTL attribute
            ttl = definition["Properties"].get("TimeToLiveSpecification")
            if ttl and ttl.get("Enabled"):
                self.clients.client("dynamodb", region).update_time_to_live(
                    TableName=table, TimeToLiveSpecification={"AttributeName": ttl["AttributeName"], "Enabled": True})
        self.audit = AuditTable(self.clients, table, region)
        self._bind_one("AWS::DynamoDB::Table", table, Arn=f"arn:aws:dynamodb:{region}:{account_id}:table/{table}")
        kms, sns, sqs = (self.clients.client(s, region) for s in ("kms", "sns", "sqs"))
        key = kms.create_key(Description="Encrypts the remediator notification topic.")["KeyMetadata"]
        self._bind_one("AWS::KMS::Key", key["KeyId"], Arn=key["Arn"])
        topic_arn = sns.create_topic(Name="apigw-remediator", Attributes={"KmsMasterKeyId": key["Arn"]})["TopicArn"]
        self.topic_arn = topic_arn
        self._bind_one("AWS::SNS::Topic", topic_arn, TopicName="apigw-remediator")
        self._queue_url = sqs.create_queue(QueueName="apigw-remediator-inbox")["QueueUrl"]
        queue_arn = sqs.get_queue_attributes(QueueUrl=self._queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        sns.subscribe(TopicArn=topic_arn, Protocol="sqs", Endpoint=queue_arn, Attributes={"RawMessageDelivery": "true"})
        self.dlq_url = sqs.create_queue(QueueName="apigw-remediator-dlq")["QueueUrl"]
        self._bind_one("AWS::SQS::Queue", self.dlq_url, Arn=f"arn:aws:sqs:{region}:{account_id}:apigw-remediator-dlq",
                       QueueName="apigw-remediator-dlq")
        if config.security_hub:
            self.clients.client("securityhub", region).enable_security_hub(EnableDefaultStandards=False)
        parameter = "/apigw-remediator/trust"
        self.clients.client("ssm", region).put_parameter(Name=parameter, Type="String", Value=json.dumps(
            {"trusted_accounts": config.trusted_accounts, "trusted_org_ids": config.trusted_org_ids}))
        self._bind_one("AWS::SSM::Parameter", parameter)
        # Slack: the bot token and signing secret in Secrets Manager, the Web API and the callback on loopback.
        self.slack_token, self.signing_secret = "xoxb-local-" + secrets.token_hex(8), secrets.token_hex(16)
        sm = self.clients.client("secretsmanager", region)
        token_arn = sm.create_secret(Name="apigw-remediator/slack-bot-token", SecretString=self.slack_token)["ARN"]
        signing_arn = sm.create_secret(Name="apigw-remediator/slack-signing-secret", SecretString=self.signing_secret)["ARN"]
        for logical_id, secret in of_type(self.template, "AWS::SecretsManager::Secret").items():
            resolve.bind(logical_id, token_arn if "bot token" in secret["Properties"]["Description"] else signing_arn)
        # Functions: one per function of the template, named after its handler.
        lam = self.clients.client("lambda", region)
        functions = {}
        for logical_id, function in of_type(self.template, "AWS::Lambda::Function").items():
            handler = function_modules.name_of(function["Properties"]["Handler"])
            name = FUNCTION_PREFIX + handler
            role_id = function["Properties"]["Role"]["Fn::GetAtt"][0]
            arn = lam.create_function(FunctionName=name, Runtime="python3.12", Role=self.role_arns[role_id],
                                      Handler=function_modules.handler_path(handler), Code={"ZipFile": _placeholder_zip()})["FunctionArn"]
            resolve.bind(logical_id, name, Arn=arn)
            functions[handler] = (logical_id, function, name, role_id)
        for logical_id in of_type(self.template, "AWS::Logs::LogGroup"):
            owner = next((h for h, (_, f, _, _) in functions.items()
                          if f["Properties"].get("LoggingConfig", {}).get("LogGroup") == {"Ref": logical_id}), logical_id)
            group = f"/aws/lambda/{FUNCTION_PREFIX}{owner}" if owner in functions else f"/aws/vendedlogs/states/{logical_id}"
            resolve.bind(logical_id, group, Arn=f"arn:aws:logs:{region}:{account_id}:log-group:{group}:*")
        arns = {n: resolve.attrs[(functions[n.lower()][0], "Arn")] for n in workflow.FUNCTIONS}
        machines = of_type(self.template, "AWS::StepFunctions::StateMachine")
        (main_id, machine), = [(k, m) for k, m in machines.items() if "EvaluateFunctionArn" in m["Properties"].get("DefinitionSubstitutions", {})]
        machine_role = machine["Properties"]["RoleArn"]["Fn::GetAtt"][0]
        self.state_machine_arn = create_state_machine(
            self.clients, region, "apigw-remediator", workflow.render(arns), self.role_arns[machine_role])
        resolve.bind(main_id, self.state_machine_arn, Name="apigw-remediator")
        self.results_bucket = ""
        self.org_sweep_arn = ""
        self.hub_bus_arn = ""
        machine_roles = [machine_role]
        if config.organization:
            machine_roles.append(self._organization_resources(machines, functions))
        for cfn_type in ("AWS::Events::Rule", "AWS::CloudWatch::Alarm", "AWS::Lambda::Url", "AWS::Lambda::Permission",
                         "AWS::IAM::Policy", "AWS::SNS::TopicPolicy", "AWS::SQS::QueuePolicy", "AWS::S3::BucketPolicy",
                         "AWS::Events::EventBusPolicy", "AWS::CloudFormation::StackSet", "AWS::Lambda::EventInvokeConfig"):
            for logical_id in of_type(self.template, cfn_type):
                service = {"AWS::Events::Rule": "events", "AWS::CloudWatch::Alarm": "cloudwatch"}.get(cfn_type, "local")
                kind = "rule" if service == "events" else "alarm"
                resolve.bind(logical_id, logical_id, Arn=f"arn:aws:{service}:{region}:{account_id}:{kind}:{logical_id}",
                             FunctionUrl=f"http://127.0.0.1/{logical_id}/")
        # Each function's role session, with the role's policies from the template.
        policies = self._role_policies()
        with _routes_lock:
            for handler, (logical_id, function, name, role_id) in functions.items():
                principal = None
                if self.strict is not None:
                    principal = self.strict.register(Principal(
                        name=handler, arn=f"arn:aws:sts::{account_id}:assumed-role/{self.role_arns[role_id].rsplit('/', 1)[1]}/{name}",
                        access_key="ASIALOCAL" + hashlib.sha256(name.encode()).hexdigest()[:11].upper(),
                        policies=PolicySet(policies.get(role_id, []), principal=name), role_arn=self.role_arns[role_id],
                        scope=config.mode))
                group = function["Properties"].get("LoggingConfig", {}).get("LogGroup")
                _routes[name] = Route(function_modules.handler(handler), principal, float(function["Properties"].get("Timeout", 3)),
                                      resolve.attrs.get((group["Ref"], "Arn")) if group else None, self.strict)
            LambdaSimpleBackend.invoke = _invoke  # type: ignore[method-assign]
        if self.strict is not None:
            # The emulator's interpreter signs every state machine's calls with one key: the roles' policies together.
            documents = [d for role in machine_roles for d in policies.get(role, [])]
            self.strict.register(Principal("state-machine", f"arn:aws:sts::{account_id}:assumed-role/{self.role_arns[machine_role].rsplit('/', 1)[1]}/states",
                                           SFN_KEY, PolicySet(documents, principal="state machine"),
                                           role_arn=self.role_arns[machine_role], scope=config.mode))
            common.clients = functools.cache(_function_clients)  # type: ignore[assignment]
            secrets_adapter._cache = ContainerState()
        # The stack's rule, with the template's pattern, delivering to a queue the runner hands on to the
        # trigger function (the emulated EventBridge delivers to queues, not to functions).
        (rule,) = [r for r in of_type(self.template, "AWS::Events::Rule").values()
                   if "aws.apigateway" in r["Properties"].get("EventPattern", {}).get("source", [])]
        self.event_pattern = resolve(rule["Properties"]["EventPattern"])
        self.pending: list[dict[str, Any]] = []
        self._rule_queue_url = sqs.create_queue(QueueName="apigw-remediator-rule")["QueueUrl"]
        rule_queue_arn = sqs.get_queue_attributes(QueueUrl=self._rule_queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        events = self.clients.client("events", region)
        bus = {"EventBusName": resolve(rule["Properties"]["EventBusName"])} if "EventBusName" in rule["Properties"] else {}
        events.put_rule(Name="apigw-remediator-policy-changes", EventPattern=json.dumps(self.event_pattern), State="ENABLED", **bus)
        events.put_targets(Rule="apigw-remediator-policy-changes", Targets=[{"Id": "trigger", "Arn": rule_queue_arn}], **bus)
        self.slack = SlackStandIn(self.slack_token).start()
        self.callback: FunctionUrl | None = None
        if "slack_callback" in functions:  # approval mode only, as in the stack
            reserved = functions["slack_callback"][1]["Properties"].get("ReservedConcurrentExecutions")
            self.callback = FunctionUrl(_concurrency_limited(FUNCTION_PREFIX + "slack_callback", reserved)).start()
        trigger_env = functions["trigger"][1]["Properties"]["Environment"]["Variables"]
        self.environment = {
            "REMEDIATOR_MODE": config.mode,
            "TRUST_PARAMETER_NAME": parameter,
            "EXEMPT_TAG_KEY": config.exempt_tag_key,
            "EXEMPT_API_IDS": "",
            "REDEPLOY_STAGES": config.stages,
            "UNDEPLOYED_CHANGES": config.undeployed_changes,
            "REMOVE_WILDCARD_PRINCIPALS": "false",
            "AUDIT_TABLE_NAME": table,
            "TOPIC_ARN": topic_arn,
            "STATE_MACHINE_ARN": self.state_machine_arn,
            "AWS_ENDPOINT_URL": account.endpoint_url,
            "SLACK_CHANNEL": config.slack_channel,
            # The secrets' ARNs where the template has the secrets (Slack configured; the signing secret in approval mode).
            "SLACK_BOT_TOKEN_SECRET": token_arn if trigger_env.get("SLACK_BOT_TOKEN_SECRET") else "",
            "SLACK_SIGNING_SECRET_SECRET": signing_arn if trigger_env.get("SLACK_SIGNING_SECRET_SECRET") else "",
            "SLACK_API_URL": self.slack.api_url,
            "APPROVER_USER_IDS": ",".join(config.approvers),
            "APPROVAL_TIMEOUT_SECONDS": str(config.approval_timeout_seconds),
            "REMEDIATOR_ROLE_ARNS": resolve(trigger_env.get("REMEDIATOR_ROLE_ARNS", "")),
            "AWS_REGION": region,
            "AWS_DEFAULT_REGION": region,  # as in Lambda, where both are set
        }
        for key in ORGANIZATION_ENVIRONMENT:  # organization mode's settings, as the template gives them
            value = trigger_env.get(key)
            if value is None:
                os.environ.pop(key, None)
            else:
                self.environment[key] = str(resolve(value))
        hook_env = functions["hook"][1]["Properties"]["Environment"]["Variables"] if "hook" in functions else {}
        for key, source in (("SECURITY_HUB", trigger_env), ("HOOK_MODE", hook_env)):  # as the template sets them
            if key in source:
                self.environment[key] = str(source[key])
            else:
                os.environ.pop(key, None)
        os.environ.update(self.environment)
        common.clients.cache_clear()
        ssm.forget_cached()  # a new deployment: its functions start with empty containers
        security_hub.forget_cached()
        common.forget_sessions()
        self.organization: LocalOrganization | None = None
        if config.organization:
            self.organization = LocalOrganization(self, members=config.members, region=region)
            self.organization_id = self.organization.organization_id
            self.environment["ORGANIZATION_ID"] = os.environ["ORGANIZATION_ID"] = self.organization_id
            for bus_arn, policy in self._bus_policies.items():
                self.strict.bus_policies[bus_arn] = self.localize(policy) if self.strict is not None else policy
            self.clients.client("ssm", region).put_parameter(Name=parameter, Type="String", Overwrite=True, Value=json.dumps(
                {"trusted_accounts": config.trusted_accounts, "trusted_org_ids": config.trusted_org_ids,
                 "trust_organization": config.trust_organization, "trusted_ous": config.trusted_ous}))

    def _organization_resources(self, machines: dict[str, dict[str, Any]], functions: dict[str, Any]) -> str:
        """The hub's own: its bus (and the bus policy, registered once the organization exists), the results buckets,
        the organization sweep's state machine. Returns the sweep's role's logical ID."""
        region, resolve = self.region, self.resolve
        events, s3 = self.clients.client("events", region), self.clients.client("s3", region)
        for logical_id, bus in of_type(self.template, "AWS::Events::EventBus").items():
            name = bus["Properties"]["Name"]
            arn = events.create_event_bus(Name=name)["EventBusArn"]
            resolve.bind(logical_id, name, Arn=arn, Name=name)
            self.hub_bus_arn = arn
        self._bus_policies: dict[str, dict[str, Any]] = {}
        for policy in of_type(self.template, "AWS::Events::EventBusPolicy").values():
            statement = resolve(policy["Properties"]["Statement"])
            self._bus_policies[self.hub_bus_arn] = {"Version": "2012-10-17", "Statement": [statement]}
        for logical_id in of_type(self.template, "AWS::S3::Bucket"):
            name = f"apigw-remediator-{logical_id.lower()}"[:63]
            s3.create_bucket(Bucket=name)
            resolve.bind(logical_id, name, Arn=f"arn:aws:s3:::{name}", DomainName=f"{name}.s3.amazonaws.com")
            if "ResultsBucket" in logical_id:
                self.results_bucket = name
        (sweep_id, machine), = [(k, m) for k, m in machines.items() if "PlanFunctionArn" in m["Properties"].get("DefinitionSubstitutions", {})]
        arns = {n: resolve.attrs[(functions[n.lower()][0], "Arn")] for n in workflow.ORG_SWEEP_FUNCTIONS}
        role = machine["Properties"]["RoleArn"]["Fn::GetAtt"][0]
        name = resolve(machine["Properties"].get("StateMachineName")) or "apigw-remediator-org-sweep"
        self.org_sweep_arn = create_state_machine(self.clients, region, name, workflow.render(
            arns, "org_sweep.json", **{workflow.ORG_SWEEP_BUCKET: self.results_bucket}), self.role_arns[role])
        resolve.bind(sweep_id, self.org_sweep_arn, Name=name)
        return role

    def localize(self, document: Any) -> Any:
        """A template's document with the local organization's ID where the template names the placeholder one."""
        return json.loads(json.dumps(document).replace(LOCAL_ORGANIZATION_ID, self.organization_id))

    def spoke_parameters(self) -> dict[str, str]:
        """What the hub passes its StackSet (the spoke template's parameters)."""
        return {"HubAccountId": self.account.account_id, "HubBusArn": self.hub_bus_arn}

    def refresh_roster(self) -> dict[str, Any]:
        """The roster function, as its schedule or an account event runs it."""
        return self._invoke("Roster", {"source": "aws.events", "detail-type": "Scheduled Event", "detail": {}})

    def forward(self) -> dict[str, int]:
        """The member accounts' spoke rules hand what they matched to the hub bus (organization mode)."""
        assert self.organization is not None
        return self.organization.forward()

    def run_org_sweep(self, name: str | None = None, timeout: float = 600.0) -> ExecutionResult:
        """The organization sweep, as its schedule starts it; waits for it to end."""
        name = name or f"org-sweep-{secrets.token_hex(4)}"
        first = len(express.CHILDREN)
        self.clients.client("stepfunctions", self.region).start_execution(stateMachineArn=self.org_sweep_arn, name=name, input="{}")
        arn = execution_arn(self.org_sweep_arn, name)
        description = self._described_when_done(arn, timeout)
        output = json.loads(description["output"]) if description.get("output") else None
        return ExecutionResult(name, description["status"], states_entered(self.clients, arn), output,
                               description.get("error"), description.get("cause"), express.CHILDREN[first:])

    def _bind_one(self, cfn_type: str, ref: str, **attrs: str) -> None:
        for logical_id in of_type(self.template, cfn_type):
            self.resolve.bind(logical_id, ref, **attrs)

    def _role_policies(self) -> dict[str, list[dict[str, Any]]]:
        """The identity policies of each role of the template, resolved."""
        found: dict[str, list[dict[str, Any]]] = {}
        for policy in of_type(self.template, "AWS::IAM::Policy").values():
            for role in policy["Properties"]["Roles"]:
                found.setdefault(role["Ref"], []).append(self.resolve(policy["Properties"]["PolicyDocument"]))
        for logical_id, role in of_type(self.template, "AWS::IAM::Role").items():
            for inline in role["Properties"].get("Policies", []):
                found.setdefault(logical_id, []).append(self.resolve(inline["PolicyDocument"]))
        return found

    def later(self, seconds: float = 60.0) -> None:
        """Let time pass on the local clock (say, between a test's setup and the change it makes)."""
        if self.strict is not None:
            self.strict.clock.advance(seconds)

    def role_arn(self, handler: str) -> str:
        """The role ARN of a function (e.g. "apply"), as CloudTrail names the session issuer."""
        route = _routes[FUNCTION_PREFIX + handler]
        assert route.principal is not None and route.principal.role_arn is not None
        return route.principal.role_arn

    def close(self) -> None:
        """Stops what this flow left behind, so that nothing of it reaches the next flow of the process: its servers,
        its executions still running (an approval never answered, a run not waited for) and Lambda errors injected
        but never met."""
        self.slack.stop()
        if self.callback is not None:
            self.callback.stop()
        from moto.stepfunctions.parser.api import ExecutionStatus
        from moto.stepfunctions.parser.models import stepfunctions_parser_backends

        for execution in stepfunctions_parser_backends[self.account.account_id][self.region]._get_executions(ExecutionStatus.RUNNING):
            execution.stop(stop_date=datetime.datetime.now(datetime.timezone.utc), error="Closed", cause="the local flow was closed")
        clear_lambda_errors()

    def pending_approval(self) -> str:
        """The approval ID on the newest message that still has buttons."""
        for message in reversed(list(self.slack.messages.values())):
            for block in message.get("blocks", []):
                if block.get("type") == "actions":
                    return str(block["elements"][0]["value"])
        raise LookupError("no message with approval buttons")

    def press(self, approval_id: str, action: str, user_id: str = "U0APPROVER", *, timestamp: int | None = None,
              secret: str | None = None, body: str | None = None) -> tuple[int, str]:
        """Press a button as Slack would: a signed POST to the callback's Function URL."""
        body = body if body is not None else button_press_body(approval_id, action, user_id)
        return post(self.callback.url, body, signed_headers(body, secret or self.signing_secret, timestamp))

    def publish_event(self, event: dict[str, Any]) -> list[dict[str, Any]]:
        """Put an event on the emulated EventBridge bus; returns what the stack's rule delivered of it.

        Everything else the rule matched meanwhile (the CloudTrail events of API Gateway writes made
        since, by the harness or by the remediator itself) waits in `pending` until `pump()`.
        """
        events = self.clients.client("events", self.region)
        events.put_events(Entries=[{"Source": event.get("source", ""), "DetailType": event.get("detail-type", ""),
                                    "Detail": json.dumps(event.get("detail", {})), "Resources": event.get("resources", [])}])
        mine: list[dict[str, Any]] = []
        event_id = (event.get("detail") or {}).get("eventID")
        for delivered in self._drain(self._rule_queue_url):
            (mine if (delivered.get("detail") or {}).get("eventID") == event_id else self.pending).append(delivered)
        return mine

    def matched(self) -> list[dict[str, Any]]:
        """Every event the stack's rule matched so far and nobody delivered yet; they stay pending. In an
        organization, what the member accounts' spoke rules matched is forwarded to the hub bus first."""
        if self.organization is not None:
            self.organization.forward()
        self.pending.extend(self._drain(self._rule_queue_url))
        return list(self.pending)

    def discard_pending(self) -> int:
        """Forget the events matched so far (say, the CloudTrail events of a test's own setup)."""
        count = len(self.matched())
        self.pending.clear()
        return count

    def pump(self, rounds: int = 10) -> list[dict[str, Any]]:
        """Deliver what the rule matched to the trigger, as EventBridge would, until nothing new matches.

        Returns the trigger's answers. Each round waits for the executions it started, whose writes
        may be matched in turn; `rounds` bounds a loop that would otherwise never end.
        """
        answers: list[dict[str, Any]] = []
        for _ in range(rounds):
            batch = self.matched()
            self.pending.clear()
            if not batch:
                return answers
            for delivered in batch:
                answer = self.invoke_trigger(delivered)
                answers.append(answer)
                if answer.get("status") == "started":
                    self.wait(answer["execution_name"])
        raise RuntimeError(f"the rule kept matching new events after {rounds} rounds: a self-triggered loop")

    def deliver(self, event: dict[str, Any]) -> dict[str, Any]:
        """EventBridge's part: route the event by the stack's rule and invoke the trigger function with it."""
        delivered = self.publish_event(event)
        if not delivered:
            return {"status": "not-matched"}
        results = [self.invoke_trigger(item) for item in delivered]
        return results[0]

    def invoke_async(self, name: str, event: dict[str, Any]) -> dict[str, Any] | None:
        """An asynchronous invocation (EventBridge's): on failure, after Lambda's own retries, the event goes
        to the function's dead-letter queue, sent with the function's role as Lambda sends it."""
        function = FUNCTION_PREFIX + name.lower()
        try:
            return run_function(function, event)
        except Exception as error:  # noqa: BLE001 - any failure of the function ends in its DLQ
            route = _routes[function]
            queue_arn = self.resolve.attrs[(next(iter(of_type(self.template, "AWS::SQS::Queue"))), "Arn")]
            if route.strict is not None and route.principal is not None:
                denied = route.strict.authorize(route.principal, [Call("sqs:SendMessage", queue_arn)])
                if denied is not None:
                    raise RuntimeError(f"{function}: its failed event could not reach the DLQ: {denied.reason}") from error
            self.clients.client("sqs", self.region).send_message(
                QueueUrl=self.dlq_url, MessageBody=json.dumps(event),
                MessageAttributes={"ErrorMessage": {"DataType": "String", "StringValue": str(error)[:256]}})
            return None

    def invoke_hook(self, request: dict[str, Any]) -> dict[str, Any]:
        """CloudFormation Hooks' part (remediator:cloudFormationHook): invoke the hook's function with the hook's
        execution role, as the service does; on the strict account the Invoke is checked against that role's policy
        from the template. Returns the function's answer."""
        (hook,) = of_type(self.template, "AWS::CloudFormation::LambdaHook").values()
        role_id = hook["Properties"]["ExecutionRole"]["Fn::GetAtt"][0]
        function_arn = self.resolve(hook["Properties"]["LambdaFunction"])
        clients = self.clients
        if self.strict is not None:
            key = "ASIAHOOK" + hashlib.sha256(self.role_arns[role_id].encode()).hexdigest()[:12].upper()
            if key not in self.strict.principals:
                self.strict.register(Principal(
                    "cloudformation-hooks", f"arn:aws:sts::{self.account.account_id}:assumed-role/"
                    f"{self.role_arns[role_id].rsplit('/', 1)[1]}/hooks", key,
                    PolicySet(self._role_policies().get(role_id, []), principal="hook execution role"),
                    role_arn=self.role_arns[role_id], scope=self.config.mode))
            session = new_session(aws_access_key_id=key, aws_secret_access_key="local", region_name=self.region)
            clients = ClientFactory(endpoint_url=self.clients.endpoint_url, session=session)
        response = clients.client("lambda", self.region).invoke(FunctionName=function_arn, Payload=json.dumps(request))
        payload = json.loads(response["Payload"].read() or b"null")
        if response.get("FunctionError"):
            raise RuntimeError(f"the hook function failed: {payload}")
        return payload  # type: ignore[no-any-return]

    def dead_letters(self) -> list[dict[str, Any]]:
        return self._drain(self.dlq_url)

    def invoke_trigger(self, event: dict[str, Any]) -> dict[str, Any]:
        return self._invoke("Trigger", event)

    def run_sweep(self) -> dict[str, Any]:
        return self._invoke("Sweep", {"source": "aws.events", "detail-type": "Scheduled Event", "detail": {}})

    def _invoke(self, name: str, event: dict[str, Any]) -> dict[str, Any]:
        response = self.clients.client("lambda", self.region).invoke(FunctionName=FUNCTION_PREFIX + name.lower(), Payload=json.dumps(event))
        payload = json.loads(response["Payload"].read() or b"null")
        if response.get("FunctionError"):
            raise RuntimeError(f"{name} failed: {payload}")
        return payload

    def wait(self, execution_name: str, timeout: float = 60.0) -> ExecutionResult:
        arn = execution_arn(self.state_machine_arn, execution_name)
        description = self._described_when_done(arn, timeout)
        output = json.loads(description["output"]) if description.get("output") else None
        return ExecutionResult(execution_name, description["status"], states_entered(self.clients, arn), output,
                               description.get("error"), description.get("cause"))

    def _described_when_done(self, arn: str, timeout: float) -> dict[str, Any]:
        """DescribeExecution once the execution has ended. Until then the harness looks at the server's own record of
        it, in this process: a DescribeExecution every few milliseconds would be most of the server's work, and would
        compete with the execution it waits for."""
        from moto.stepfunctions.parser.api import ExecutionStatus
        from moto.stepfunctions.parser.models import stepfunctions_parser_backends

        backend = stepfunctions_parser_backends[arn.split(":")[4]][arn.split(":")[3]]
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if backend.describe_execution(arn).exec_status != ExecutionStatus.RUNNING:
                    break
            except Exception:  # noqa: BLE001 - not started yet, or not this server's: DescribeExecution tells
                break
            time.sleep(0.02)
        return wait_for_execution(self.clients, arn, max(deadline - time.monotonic(), 0.0))

    def notifications(self) -> list[dict[str, Any]]:
        """Messages published to the topic since the last call, as a subscriber receives them."""
        return self._drain(self._queue_url)

    def _drain(self, queue_url: str) -> list[dict[str, Any]]:
        return self._drain_queue(self.clients, queue_url)

    def _drain_queue(self, clients: ClientFactory, queue_url: str) -> list[dict[str, Any]]:
        """Every message waiting in a queue, removed from it, in order."""
        sqs = clients.client("sqs", self.region)
        messages: list[dict[str, Any]] = []
        while True:
            batch = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=0).get("Messages", [])
            if not batch:
                return messages
            for message in batch:
                messages.append(json.loads(message["Body"]))
                sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])

    def audit_records(self) -> list[AuditRecord]:
        return list(self.audit.records())


def _concurrency_limited(function: str, reserved: int | None) -> Callable[..., dict[str, Any]]:
    """A Function URL in front of a function with reserved concurrency: past it, Lambda answers 429."""
    slots = threading.BoundedSemaphore(reserved) if reserved else None

    def invoke(event: dict[str, Any], context: Any = None) -> dict[str, Any]:
        if slots is not None and not slots.acquire(blocking=False):
            return {"statusCode": 429, "headers": {"Content-Type": "application/json", "x-amzn-ErrorType": "TooManyRequestsException"},
                    "body": '{"Message":"Rate Exceeded."}'}
        try:
            return run_function(function, event)
        finally:
            if slots is not None:
                slots.release()

    return invoke


class ContainerState(dict):  # type: ignore[type-arg]
    """A module-level cache, kept per function as Lambda keeps it per container.

    In-process, every function shares the package's module state; in AWS each function has containers
    of its own, so one function's cached secret never spares another its GetSecretValue (and its grant).
    """

    def __init__(self) -> None:
        super().__init__()
        self._stores: dict[str, dict[Any, Any]] = collections.defaultdict(dict)

    def _store(self) -> dict[Any, Any]:
        running = current_invocation()
        return self._stores[running.function if running else ""]

    def get(self, key: Any, default: Any = None) -> Any:
        return self._store().get(key, default)

    def __getitem__(self, key: Any) -> Any:
        return self._store()[key]

    def __setitem__(self, key: Any, value: Any) -> None:
        self._store()[key] = value

    def __contains__(self, key: object) -> bool:
        return key in self._store()

    def clear(self) -> None:
        self._stores.clear()


def _function_clients() -> ClientFactory:
    """The handlers' clients on the strict account: each call signed with the running function's role session."""
    core = botocore.session.Session()
    core.get_component("credential_provider").insert_before("env", _InvocationProvider())
    return ClientFactory(session=new_session(core))


class _InvocationProvider(CredentialProvider):
    METHOD = "local-invocation"
    CANONICAL_NAME = "LocalInvocation"

    def load(self) -> InvocationCredentials:
        return InvocationCredentials()


def _placeholder_zip() -> bytes:
    """The emulator needs a code package; the handlers themselves run in this process."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("README.txt", "handlers run in-process; see remediator/local/runner.py\n")
    return buffer.getvalue()
