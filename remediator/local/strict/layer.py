"""The layer itself: WSGI middleware in front of the emulator that finds who is calling, authorizes the call,
applies the quotas and hands each service's own rules to its module (apigateway, dynamodb, sts, ...).
"""

from __future__ import annotations

import json
import random
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any

from remediator.local.deployments import DeploymentSnapshots
from remediator.local.iam import Call, Decision, IamError, PolicySet
from remediator.local.strict import (
    apigateway, dynamodb, eventbridge, organizations, s3, secretsmanager, securityhub, sns, stepfunctions, sts,
)
from remediator.local.strict.clock import LocalClock, _installed
from remediator.local.strict.invocation import HARNESS_KEY, Principal
from remediator.local.strict.protocol import CheckedCall, Request, access_denied, error_response
from remediator.local.strict.quotas import Quotas

OPERATION_KEY = "local.operation"  # the (service, operation) the server already worked out for a request


class StrictLayer:
    """WSGI middleware in front of the emulator: identity, IAM, quotas, CloudTrail, escaping."""

    def __init__(self, account: str, clock: LocalClock | None = None) -> None:
        self.account = account
        # One clock per process: botocore's sleeps are routed to it, and every layer must see them.
        self.clock = clock or (_installed[0] if _installed else LocalClock())
        self._quotas: dict[str, Quotas] = {}  # API Gateway's quotas are per account
        self.harness = Principal("harness", f"arn:aws:iam::{account}:user/local-admin", HARNESS_KEY, None, patient=True)
        self.principals: dict[str, Principal] = {HARNESS_KEY: self.harness}
        self.checked: list[CheckedCall] = []
        self.trail: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        # A local organization (remediator.local.organization): each role's identity policies, by role ARN, for
        # the sessions AssumeRole hands out; each event bus's resource policy, by bus ARN.
        self.role_policies: dict[str, PolicySet] = {}
        self.bus_policies: dict[str, dict[str, Any]] = {}
        # Seconds each of the product's requests takes before the emulator answers (the benchmarks model a region's
        # round trip with it; the emulator answers at once, in one process). 0: no delay.
        self.latency = 0.0
        # DynamoDB's TTL deletes expired items in the background, at moments of its own (see reap_expired): here a
        # seeded random share of them before each DynamoDB request, so a test sees some gone and some not yet.
        self.ttl_random = random.Random(0)
        self.ttl_share = 0.5
        # What each deployment publishes, taken at its CreateDeployment (remediator.local.deployments).
        self.deployments = DeploymentSnapshots()

    @property
    def quotas(self) -> Quotas:
        """The layer's own account's quotas (the hub's, in an organization)."""
        return self.quotas_of(self.account)

    @quotas.setter
    def quotas(self, value: Quotas) -> None:
        self._quotas[self.account] = value

    def quotas_of(self, account: str) -> Quotas:
        with self._lock:
            if account not in self._quotas:
                self._quotas[account] = Quotas(self.clock)
            return self._quotas[account]

    def account_of(self, principal: Principal) -> str:
        return principal.account or self.account

    def reap_expired(self, share: float = 1.0) -> list[tuple[str, str, str]]:
        """DynamoDB's Time to Live, now (see dynamodb.reap_expired): returns (table, pk, sk) of each deleted item."""
        return dynamodb.reap_expired(self, share)

    def reset(self) -> None:
        with self._lock:
            self.principals = {HARNESS_KEY: self.harness}
            self.trail.clear()
            self._quotas = {}
            self.role_policies.clear()
            self.bus_policies.clear()
        self.deployments.clear()

    def register(self, principal: Principal) -> Principal:
        with self._lock:
            self.principals[principal.access_key] = principal
        return principal

    # -- authorization --

    def authorize(self, principal: Principal, calls: Iterable[Call]) -> CheckedCall | None:
        """The first denied call, or None if every call is allowed (each one recorded in `checked`)."""
        if principal.policies is None:
            return None
        for call in calls:
            try:
                decision = principal.policies.decide(call)
            except IamError as unknown:  # an operation that is no IAM action: nothing can allow it
                decision = Decision(False, str(unknown), None)
            checked = CheckedCall(principal.name, call.action, call.resource, decision.allowed, decision.reason, principal.scope)
            with self._lock:
                self.checked.append(checked)
            if not decision.allowed:
                return checked
        return None

    def calls_for(self, request: Request, account: str | None = None) -> list[Call]:
        service, op = request.service, request.operation
        region, account = request.region, account or self.account
        if service in ("apigateway", "execute-api"):
            return apigateway.api_gateway_calls(request)
        if service == "dynamodb":
            return dynamodb.dynamodb_calls(request, account, lambda r, t: dynamodb.hash_key_of(account, r, t))
        if service == "sns":
            body = request.form()
            topic = body.get("TopicArn") or body.get("TargetArn") or ""
            calls = [Call(f"sns:{op}", topic or f"arn:aws:sns:{region}:{account}:*")]
            key = sns.topic_key(account, region, topic) if op == "Publish" else None
            if key:  # publishing to an encrypted topic: SNS uses the key as the caller
                calls += [Call("kms:GenerateDataKey", key), Call("kms:Decrypt", key)]
            return calls
        if service == "ssm":
            name = str(request.json().get("Name", ""))
            return [Call(f"ssm:{op}", f"arn:aws:ssm:{region}:{account}:parameter{name if name.startswith('/') else '/' + name}")]
        if service == "secretsmanager":
            return [Call(f"secretsmanager:{op}", secretsmanager.secret_arn(account, region, str(request.json().get("SecretId", ""))))]
        if service == "states":
            body = request.json()
            arn = body.get("stateMachineArn") or body.get("executionArn")
            if "taskToken" in body:
                arn = stepfunctions.state_machine_of_token(account, region, str(body["taskToken"]))
                if arn is None:
                    return []  # an unknown token: Step Functions answers InvalidToken / TaskTimedOut itself
            return [Call(f"states:{op}", str(arn or f"arn:aws:states:{region}:{account}:stateMachine:*"))]
        if service == "lambda" and op == "Invoke":
            name = request.path.split("/functions/")[1].split("/")[0]
            arn = name if name.startswith("arn:") else f"arn:aws:lambda:{region}:{account}:function:{name}"
            return [Call("lambda:InvokeFunction", arn)]
        if service == "sts" and op == "GetCallerIdentity":
            return []  # needs no permission
        if service == "sts" and op == "AssumeRole":
            return [sts.assume_role_call(request.form().get("RoleArn", ""), account)]
        if service == "organizations":
            return [Call(f"organizations:{op}", "*")]
        if service == "s3":
            return [s3.s3_call(request)]
        if service == "securityhub":  # the Service Authorization Reference's resource types: product, hub
            if op == "BatchImportFindings":
                products = sorted({str(f.get("ProductArn", "")) for f in request.json().get("Findings", []) if isinstance(f, dict)})
                return [Call("securityhub:BatchImportFindings", p) for p in products or [securityhub.default_product(region, account)]]
            return [Call(f"securityhub:{op}", f"arn:aws:securityhub:{region}:{account}:hub/default")]
        if service == "events" and op == "PutEvents":
            buses = {str(e.get("EventBusName") or "default") for e in request.json().get("Entries", []) if isinstance(e, dict)}
            return [Call("events:PutEvents", bus if bus.startswith("arn:") else f"arn:aws:events:{region}:{account}:event-bus/{bus}")
                    for bus in sorted(buses) or ["default"]]
        # Anything else the remediator's functions never call: a role calling it is checked on "*", and
        # denied with the action named, since no statement of theirs grants it.
        return [Call(f"{service}:{op}", "*")]

    # -- the WSGI wrapper --

    def wrap(self, app: Callable[..., Any], operation_of: Callable[[dict[str, Any]], tuple[str, str]]) -> Callable[..., Any]:
        def strict_app(environ: dict[str, Any], start_response: Any) -> Any:
            service, operation = environ.get(OPERATION_KEY) or operation_of(environ)
            if service == "emulator":
                return app(environ, start_response)
            request = Request(environ, service, operation)
            principal = self.principals.get(request.access_key, self.harness)
            environ["HTTP_X_MOTO_ACCOUNT_ID"] = self.account_of(principal)  # whose call it is, for the emulator
            if principal is self.harness or principal.looking_on:  # the test looking on is not the product's work
                return serve(request, principal, start_response)
            with self.clock.busy():
                if self.latency:
                    time.sleep(self.latency)
                return serve(request, principal, start_response)

        def serve(request: Request, principal: Principal, start_response: Any) -> Any:
            service, operation, environ = request.service, request.operation, request.environ
            account = self.account_of(principal)
            if service == "dynamodb" and self.ttl_share > 0:
                self.reap_expired(self.ttl_share)  # TTL works at moments of its own, between anyone's requests
            try:
                calls = self.calls_for(request, account)
            except NotImplementedError as error:
                return error_response(start_response, service, 400, "ValidationException", str(error))
            denied = self.authorize(principal, calls)
            if denied is not None:
                return access_denied(start_response, service, principal, denied)
            if service == "sts" and operation == "AssumeRole":
                return sts.assume_role(self, app, request, principal, start_response)
            if service == "securityhub" and operation == "BatchImportFindings":
                return securityhub.import_findings(request, account, start_response)
            if service == "events" and operation == "PutEvents" and eventbridge.cross_account(self, request, account):
                return eventbridge.put_events_across(self, request, principal, start_response)
            if service == "organizations" and not (principal is self.harness or principal.looking_on):
                refused = organizations.organization_reader(self, request, account)
                if refused:
                    return error_response(start_response, service, 400, "AccessDeniedException", refused)
            is_apigateway = service in ("apigateway", "execute-api")
            if is_apigateway and not self.quotas_of(account).admit(operation, principal.patient):
                return error_response(start_response, service, 429, "TooManyRequestsException", "Too Many Requests",
                              {"Retry-After": "5"})
            if is_apigateway and operation == "CreateDeployment":
                refused = apigateway.deployment_refused(account, request.region, request.path)
                if refused:
                    return error_response(start_response, service, 400, "BadRequestException", refused)
            captured: dict[str, Any] = {}

            def capture(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
                captured["status"], captured["headers"] = status, headers
                return lambda data: None

            body = b"".join(app(environ, capture))
            status = int(captured["status"].split()[0])
            if is_apigateway and 200 <= status < 300:
                body = self._deployment_snapshots(request, account, operation, body)
                body = apigateway.escape_policies(body)
                if request.method in ("POST", "PUT", "PATCH", "DELETE"):
                    self._record(request, principal, body)
            headers = [(k, v) for k, v in captured["headers"] if k.lower() != "content-length"]
            start_response(captured["status"], headers + [("Content-Length", str(len(body)))])
            return [body]

        return strict_app

    def _deployment_snapshots(self, request: Request, account: str, operation: str, body: bytes) -> bytes:
        """CreateDeployment: the API as it is now is what the deployment publishes; GetDeployment with
        embed=apisummary: that snapshot's summary (the emulator has none)."""
        match = apigateway.PATH_PARAMS.match(request.path)
        if match is None:
            return body
        if operation == "CreateDeployment":
            self.deployments.record(account, request.region, match.group("restApiId"), body)
        elif operation == "GetDeployment" and "apisummary" in request.query.get("embed", "").lower().split(","):
            body = self.deployments.embed(account, request.region, match.group("restApiId"),
                                          match.group("deploymentId") or "", body)
        return body

    # -- CloudTrail --

    def _record(self, request: Request, principal: Principal, response: bytes) -> None:
        account = self.account_of(principal)
        detail = apigateway.cloudtrail_record(request, principal.user_identity(account), account, response)
        with self._lock:
            self.trail.append(detail)
        from moto.events.models import events_backends

        events_backends[account][request.region].put_events([{
            "Source": "aws.apigateway", "DetailType": "AWS API Call via CloudTrail",
            "Detail": json.dumps(detail), "Resources": [],
        }])

    # -- what the trail shows --

    def events_by(self, role_arn: str) -> list[dict[str, Any]]:
        """The recorded CloudTrail events of calls made by sessions of this role."""
        return [e for e in self.trail if (e["userIdentity"].get("sessionContext") or {}).get("sessionIssuer", {}).get("arn") == role_arn]
