"""Run the real workflow on the emulated account: the same state-machine definition, the same handlers.

The emulator executes the definition; its Lambda invocations are routed to the handler
functions in this process (no Docker), exactly as AWS would call them.
"""

from __future__ import annotations

import io
import json
import os
import secrets
import threading
import traceback
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

from moto.awslambda_simple.models import LambdaSimpleBackend

from remediator import handlers, workflow
from remediator.adapters.dynamodb import AuditTable
from remediator.adapters.stepfunctions import create_state_machine, execution_arn, states_entered, wait_for_execution
from remediator.audit import AuditRecord
from remediator.events import EVENT_PATTERN
from remediator.local.emulator import EmulatedAccount
from remediator.local.slack import FunctionUrl, SlackStandIn, button_press_body, post, signed_headers

FUNCTION_PREFIX = "apigw-remediator-"
HANDLERS: dict[str, Callable[[dict[str, Any], Any], Any]] = {
    "Evaluate": handlers.evaluate,
    "Approval": handlers.approval,
    "Apply": handlers.apply,
    "Redeploy": handlers.redeploy,
    "Restore": handlers.restore,
    "Record": handlers.record,
    "Notify": handlers.notify,
    "Trigger": handlers.trigger,
    "Sweep": handlers.sweep,
}
_routes: dict[str, Callable[[dict[str, Any], Any], Any]] = {}
_routes_lock = threading.Lock()


def _invoke(self: Any, function_name: str, qualifier: Any, body: Any, headers: Any, response_headers: dict[str, str]) -> bytes:
    """The emulator's Lambda invoke, routed to a handler in this process."""
    name = function_name.split(":function:")[-1].split(":")[0]
    handler = _routes[name]
    event = json.loads(body) if body else {}
    arn = f"arn:aws:lambda:{os.environ.get('AWS_DEFAULT_REGION', 'us-east-1')}:{os.environ.get('MOTO_ACCOUNT_ID')}:function:{name}"
    context = SimpleNamespace(invoked_function_arn=arn, function_name=name, aws_request_id="local")
    try:
        return json.dumps(handler(event, context)).encode()
    except Exception as error:  # a handler's exception is a Lambda error, named after its class, as in AWS
        response_headers["x-amz-function-error"] = "Unhandled"
        return json.dumps({"errorType": type(error).__name__, "errorMessage": str(error),
                           "stackTrace": traceback.format_exception(error)[-3:]}).encode()


@dataclass
class ExecutionResult:
    name: str
    status: str
    states: list[str]
    output: dict[str, Any] | None
    error: str | None
    cause: str | None

    @property
    def transitions(self) -> int:
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


class LocalWorkflow:
    """The stack's moving parts, created on the emulated account from the same definition."""

    def __init__(self, account: EmulatedAccount, config: WorkflowConfig, region: str = "us-east-1") -> None:
        self.account = account
        self.region = region
        self.clients = account.clients
        self.config = config
        with _routes_lock:
            _routes.update({FUNCTION_PREFIX + name.lower(): fn for name, fn in HANDLERS.items()})
            LambdaSimpleBackend.invoke = _invoke  # type: ignore[method-assign]
        iam = self.clients.client("iam", region)
        role = iam.create_role(RoleName="apigw-remediator", AssumeRolePolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": []}))
        role_arn = role["Role"]["Arn"]
        lam = self.clients.client("lambda", region)
        arns = {}
        for name in HANDLERS:
            arns[name] = lam.create_function(
                FunctionName=FUNCTION_PREFIX + name.lower(), Runtime="python3.12", Role=role_arn,
                Handler=f"remediator.handlers.{name.lower()}", Code={"ZipFile": _placeholder_zip()},
            )["FunctionArn"]
        table = "apigw-remediator-audit"
        self.clients.client("dynamodb", region).create_table(
            TableName=table, BillingMode="PAY_PER_REQUEST",
            AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}, {"AttributeName": "sk", "AttributeType": "S"}],
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
        )
        self.audit = AuditTable(self.clients, table, region)
        sns, sqs = self.clients.client("sns", region), self.clients.client("sqs", region)
        topic_arn = sns.create_topic(Name="apigw-remediator")["TopicArn"]
        self._queue_url = sqs.create_queue(QueueName="apigw-remediator-inbox")["QueueUrl"]
        queue_arn = sqs.get_queue_attributes(QueueUrl=self._queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        sns.subscribe(TopicArn=topic_arn, Protocol="sqs", Endpoint=queue_arn, Attributes={"RawMessageDelivery": "true"})
        # The stack's rule, same pattern, delivering to a queue the runner hands on to the trigger function
        # (the emulated EventBridge delivers to queues, not to functions).
        self._rule_queue_url = sqs.create_queue(QueueName="apigw-remediator-rule")["QueueUrl"]
        rule_queue_arn = sqs.get_queue_attributes(QueueUrl=self._rule_queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        events = self.clients.client("events", region)
        events.put_rule(Name="apigw-remediator-policy-changes", EventPattern=json.dumps(EVENT_PATTERN), State="ENABLED")
        events.put_targets(Rule="apigw-remediator-policy-changes", Targets=[{"Id": "trigger", "Arn": rule_queue_arn}])
        parameter = "/apigw-remediator/trust"
        self.clients.client("ssm", region).put_parameter(Name=parameter, Type="String", Value=json.dumps(
            {"trusted_accounts": config.trusted_accounts, "trusted_org_ids": config.trusted_org_ids}))
        # Slack: the bot token and signing secret in Secrets Manager, the Web API and the callback on loopback.
        self.slack_token, self.signing_secret = "xoxb-local-" + secrets.token_hex(8), secrets.token_hex(16)
        sm = self.clients.client("secretsmanager", region)
        token_arn = sm.create_secret(Name="apigw-remediator/slack-bot-token", SecretString=self.slack_token)["ARN"]
        signing_arn = sm.create_secret(Name="apigw-remediator/slack-signing-secret", SecretString=self.signing_secret)["ARN"]
        self.slack = SlackStandIn(self.slack_token).start()
        self.callback = FunctionUrl(handlers.slack_callback).start()
        self.state_machine_arn = create_state_machine(
            self.clients, region, "apigw-remediator", workflow.render({n: arns[n] for n in workflow.FUNCTIONS}), role_arn)
        self.environment = {
            "REMEDIATOR_MODE": config.mode,
            "TRUST_PARAMETER_NAME": parameter,
            "EXEMPT_TAG_KEY": config.exempt_tag_key,
            "EXEMPT_API_IDS": "",
            "REDEPLOY_STAGES": config.stages,
            "REMOVE_WILDCARD_PRINCIPALS": "false",
            "AUDIT_TABLE_NAME": table,
            "TOPIC_ARN": topic_arn,
            "STATE_MACHINE_ARN": self.state_machine_arn,
            "AWS_ENDPOINT_URL": account.endpoint_url,
            "SLACK_CHANNEL": config.slack_channel,
            "SLACK_BOT_TOKEN_SECRET": token_arn,
            "SLACK_SIGNING_SECRET_SECRET": signing_arn,
            "SLACK_API_URL": self.slack.api_url,
            "APPROVER_USER_IDS": ",".join(config.approvers),
            "APPROVAL_TIMEOUT_SECONDS": str(config.approval_timeout_seconds),
            "AWS_REGION": region,
            "AWS_DEFAULT_REGION": region,  # as in Lambda, where both are set
        }
        os.environ.update(self.environment)
        handlers.clients.cache_clear()

    def close(self) -> None:
        self.slack.stop()
        self.callback.stop()

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

    def set_mode(self, mode: str) -> None:
        self.config.mode = mode
        os.environ["REMEDIATOR_MODE"] = mode

    def publish_event(self, event: dict[str, Any]) -> list[dict[str, Any]]:
        """Put an event on the emulated EventBridge bus; returns what the stack's rule delivered."""
        events = self.clients.client("events", self.region)
        events.put_events(Entries=[{"Source": event.get("source", ""), "DetailType": event.get("detail-type", ""),
                                    "Detail": json.dumps(event.get("detail", {})), "Resources": event.get("resources", [])}])
        return self._drain(self._rule_queue_url)

    def deliver(self, event: dict[str, Any]) -> dict[str, Any]:
        """EventBridge's part: route the event by the stack's rule and invoke the trigger function with it."""
        delivered = self.publish_event(event)
        if not delivered:
            return {"status": "not-matched"}
        results = [self.invoke_trigger(item) for item in delivered]
        return results[0]

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
        description = wait_for_execution(self.clients, arn, timeout)
        output = json.loads(description["output"]) if description.get("output") else None
        return ExecutionResult(execution_name, description["status"], states_entered(self.clients, arn), output,
                               description.get("error"), description.get("cause"))

    def notifications(self) -> list[dict[str, Any]]:
        """Messages published to the topic since the last call, as a subscriber receives them."""
        return self._drain(self._queue_url)

    def _drain(self, queue_url: str) -> list[dict[str, Any]]:
        """Every message waiting in a queue, removed from it, in order."""
        sqs = self.clients.client("sqs", self.region)
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


def _placeholder_zip() -> bytes:
    """The emulator needs a code package; the handlers themselves run in this process."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("README.txt", "handlers run in-process; see remediator/local/runner.py\n")
    return buffer.getvalue()
