"""The seeded soak (issue M, "How it is checked"): hundreds of events on the strict local account, interleaved with
`fix --apply --lease-table` runs, operators' writes landing inside the bot's windows, faults at random points (every
error name the workflow handles), clocks skewed by up to ten minutes between the CLI and the workflow, and DynamoDB's
TTL deleting at arbitrary moments; then the four promises checked on what the account holds.

Everything random comes from one `random.Random(seed)` (tests/test_soak.py: SOAK_SEED, default fixed). The emulator
runs executions in threads, so interleavings vary a little between runs; the schedule does not.

The ground truth is not the product's word: every UpdateRestApi the emulator applied is captured in its backend,
under one lock, with the policy it replaced and who made it (the CloudTrail identity the strict layer gives it).
"""

from __future__ import annotations

import collections
import itertools
import json
import random
import re
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from botocore.exceptions import ClientError

from remediator import clock
from remediator.adapters.apigateway import ApiGatewayAdapter, DeploymentPacer
from remediator.adapters.dynamodb import RETENTION_SECONDS, DynamoJournal
from remediator.adapters.stepfunctions import execution_arn, states_entered, wait_for_execution
from remediator.audit import AuditRecord, JsonLinesAuditLog
from remediator.core import TrustConfig, evaluate_policy, parse_policy
from remediator.core.narrowing import widenings
from remediator.journal import Intent
from remediator.local import cloudtrail, runner
from remediator.local.runner import LocalWorkflow
from remediator.local.strict import Principal, local_clock
from remediator.transaction.planning import same_policy
from remediator.transaction.remediator import Remediator
from tests.conftest import OWNER, PARTNER, STRANGER
from tests.faults.injection import Fault

REGION = "eu-west-1"
UNTRUSTED = (STRANGER, "210987654321", "123456789012")
PRINCIPALS = (f"arn:aws:iam::{PARTNER}:role/r", PARTNER, *UNTRUSTED)
OPERATOR = f"arn:aws:iam::{OWNER}:user/local-admin"  # the harness: a person at the console
CLI_USER = f"arn:aws:iam::{OWNER}:user/ops-cli"  # the operator's CLI runs, with credentials of their own
CLI_KEY = "AKIASOAKOPSCLI000001"
EVENT_NAMES = ("CreateRestApi", "UpdateRestApi", "PutRestApi", "ImportRestApi")
FUNCTIONS = ("evaluate", "apply", "redeploy", "record", "notify", "restore")
LAMBDA_CODES = {"Lambda.ServiceException": "ServiceException", "Lambda.TooManyRequestsException": "TooManyRequestsException",
                "Lambda.AWSLambdaException": "InternalFailure", "Lambda.SdkClientException": None}
# AWS errors that outlive the SDK's retries, by service: (operations, throttling code, transient code, HTTP status)
# (remediator/workflow/errors.py TABLE: the workflow retries Throttled and Transient).
AWS_FAULTS = {
    "apigateway": (("GetRestApi", "UpdateRestApi", "CreateDeployment", "UpdateStage", "GetStages", "GetDeployment"),
                   "TooManyRequestsException", "ServiceUnavailableException"),
    "dynamodb": (("GetItem", "PutItem", "TransactWriteItems", "UpdateItem", "Query"),
                 "ProvisionedThroughputExceededException", "InternalServerError"),
    "sns": (("Publish",), "Throttled", "InternalError"),
}


@dataclass
class Write:
    """One UpdateRestApi the emulator applied: its place in the order, the policy it replaced and left, and who."""

    seq: int
    api_id: str
    before: str | None
    after: str | None
    who: str
    event_id: str = ""
    window: str = ""  # an operator's write made inside one of the bot's windows: which


@dataclass
class Figures:
    events: int = 0
    faults: collections.Counter = field(default_factory=collections.Counter)
    executions: int = 0
    cli_runs: int = 0
    operator_writes: int = 0
    window_writes: int = 0
    ttl_deletions: int = 0
    records: int = 0
    told_by_failure: int = 0
    cli_taken_over: int = 0
    violations: list[str] = field(default_factory=list)
    seconds: float = 0.0  # wall time, seeding to the last check
    told_lost: int = 0

    def line(self, seed: int) -> str:
        faults = ", ".join(f"{name} {count}" for name, count in sorted(self.faults.items()))
        return (f"soak (seed {seed}): {self.events} events, {sum(self.faults.values())} faults ({faults}), "
                f"{self.executions} executions, {self.cli_runs} CLI runs, {self.operator_writes} operator writes "
                f"({self.window_writes} inside the bot's windows), {self.ttl_deletions} TTL deletions, {self.records} records, "
                f"{self.told_by_failure} lost writes told by a failure notice, {self.cli_taken_over} CLI runs taken over, "
                f"violations: {len(self.violations)}, in {self.seconds:.0f} s")


class AwsFault:
    """An AWS error past the SDK's retries, once, at the next call of an operation by any function: raised before the
    call (it never happened) or after it (it happened and the answer was lost)."""

    def __init__(self, service: str, operation: str, when: str, code: str, status: int) -> None:
        self.service, self.operation, self.when, self.code, self.status = service, operation, when, code, status
        self.fired = 0
        self.armed = True

    def install_on(self, clients: Any, region: str) -> None:
        event = f"{'before' if self.when == 'before' else 'after'}-call.{self.service}.{self.operation}"
        for client in {id(c): c for c in (clients.client(self.service, region), clients.client(self.service))}.values():
            client.meta.events.register(event, self._fire)

    def _fire(self, **_: Any) -> None:
        if not self.armed:
            return
        self.armed = False
        self.fired += 1
        raise ClientError({"Error": {"Code": self.code, "Message": f"soak: {self.code}"},
                           "ResponseMetadata": {"HTTPStatusCode": self.status}}, self.operation)


class Soak:
    """One seeded run on a LocalWorkflow in auto mode (make_flow(mode="auto"))."""

    def __init__(self, flow: LocalWorkflow, seed: int, tmp_path: Path, monkeypatch: Any, apis: int = 16,
                 events: int = 300) -> None:
        self.flow, self.seed, self.rng = flow, seed, random.Random(seed)
        self.size, self.target = apis, events
        self.monkeypatch = monkeypatch
        self.figures = Figures()
        self.trust = TrustConfig(owner_account=OWNER, trusted_accounts=frozenset({PARTNER}))
        self.apis: list[str] = []
        self.writes: list[Write] = []
        self.seeds: dict[str, str] = {}
        self.intents: dict[str, Intent] = {}
        self.closes: dict[str, list[tuple[str, str | None]]] = collections.defaultdict(list)
        self.notices: list[dict[str, Any]] = []
        self.executions: list[str] = []
        self.delivered: list[dict[str, Any]] = []
        self.answers: dict[str, str] = {}
        self.execution_of: dict[str, str] = {}
        self.results: dict[str, Any] = {}
        self.delivered_at: dict[str, int] = {}
        self.written_at: dict[str, int] = {}
        self.waited: set[str] = set()
        self.audit_log = tmp_path / "ops-audit.jsonl"
        self.cli_thread: threading.Thread | None = None
        self.cli_results: list[tuple[int, str]] = []
        self.faults: list[Any] = []
        self.slow: list[dict[str, Any]] = []
        self.lambda_injected: dict[str, list[str]] = {}
        self.required = [*LAMBDA_CODES, "Lambda.Unknown", "States.Timeout", "throttling", "transient"]
        self.armed = {"UpdateRestApi": 0, "CreateDeployment": 0}
        self.window_of: dict[int, str] = {}
        self._lock = threading.Lock()
        self._operator = threading.Lock()
        self._serial = itertools.count(1)
        self._skew = threading.local()
        self._captured = threading.local()
        self._install(tmp_path)

    # --- what is watched ---------------------------------------------------------------------------------------

    def _install(self, tmp_path: Path) -> None:
        from moto.apigateway.models import APIGatewayBackend

        from remediator.local.strict import apigateway as strict_apigateway

        soak, mp = self, self.monkeypatch
        real_update, real_trail = APIGatewayBackend.update_rest_api, strict_apigateway.cloudtrail_record
        order = itertools.count(1)

        def update_rest_api(backend: Any, function_id: str, patch_operations: list[dict[str, Any]]) -> Any:
            with soak._lock:
                api = backend.apis.get(function_id)
                before = api.policy if api is not None else None
                result = real_update(backend, function_id, patch_operations)
                soak._captured.write = (next(order), function_id, before, backend.apis[function_id].policy)
            return result

        def cloudtrail_record(request: Any, identity: dict[str, Any], account: str, response: bytes) -> dict[str, Any]:
            detail = real_trail(request, identity, account, response)
            captured = getattr(soak._captured, "write", None)
            if request.operation == "UpdateRestApi" and captured is not None:
                soak._captured.write = None
                with soak._lock:
                    soak.writes.append(Write(*captured, who=str(identity.get("arn")), event_id=str(detail.get("eventID"))))
                    soak.written_at[str(detail.get("eventID"))] = soak.figures.events
            return detail

        mp.setattr(APIGatewayBackend, "update_rest_api", update_rest_api)
        mp.setattr(strict_apigateway, "cloudtrail_record", cloudtrail_record)  # the strict layer records through it

        real_begin, real_close = DynamoJournal.begin, DynamoJournal.close

        def begin(journal: DynamoJournal, intent: Intent) -> None:
            real_begin(journal, intent)
            with soak._lock:
                soak.intents[intent.intent_id] = Intent.from_dict(intent.to_dict())

        def close(journal: DynamoJournal, intent: Intent, record: AuditRecord | None, wrote: bool = False,
                  late: bool = False) -> None:
            try:
                real_close(journal, intent, record, wrote=wrote, late=late)
            except Exception:
                closed = soak._closed_state(intent.intent_id)  # its answer lost after it went through?
                if closed is not None:
                    with soak._lock:
                        soak.closes[intent.intent_id].append((closed, closed if record is not None else None))
                raise
            with soak._lock:
                soak.closes[intent.intent_id].append((intent.state, record.outcome if record else None))

        mp.setattr(DynamoJournal, "begin", begin)
        mp.setattr(DynamoJournal, "close", close)

        # The CLI's clock runs up to ten minutes off the workflow's: a per-thread offset on the product's clock.
        base = clock._now
        mp.setattr(clock, "_now", lambda: base() + getattr(soak._skew, "seconds", 0.0))
        # The CLI runs as a person of its own (not the harness), from a profile, so its writes are told apart.
        assert self.flow.strict is not None
        self.flow.strict.register(Principal("ops-cli", CLI_USER, CLI_KEY, None))
        credentials = tmp_path / "credentials"
        credentials.write_text(f"[soak-cli]\naws_access_key_id = {CLI_KEY}\naws_secret_access_key = local\n")
        mp.setenv("AWS_SHARED_CREDENTIALS_FILE", str(credentials))
        mp.setenv("AWS_CONFIG_FILE", str(tmp_path / "config"))

        import remediator.cli.aws

        def cli_adapter(clients: Any) -> ApiGatewayAdapter:
            soak._windows(clients)  # the person's writes land inside the CLI's windows too
            return ApiGatewayAdapter(clients, DeploymentPacer(clock=local_clock().monotonic, sleep=local_clock().sleep))

        mp.setattr(remediator.cli.aws, "ApiGatewayAdapter", cli_adapter)
        from remediator.functions import common

        self._windows(common.clients())

    def _windows(self, clients: Any) -> None:
        """A person's UpdateRestApi, when armed, between the bot's re-read and its write (before its UpdateRestApi)
        and between its write and its deployment (before its CreateDeployment)."""
        for operation in self.armed:
            for client in {id(c): c for c in (clients.client("apigateway", REGION), clients.client("apigateway"))}.values():
                client.meta.events.register(f"before-send.apigateway.{operation}", self._window_hook(operation))

    def _window_hook(self, operation: str) -> Callable[..., None]:
        def hook(request: Any = None, **_: Any) -> None:
            with self._lock:
                if not self.armed[operation]:
                    return
                self.armed[operation] -= 1
            found = re.search(r"/restapis/([^/?]+)", request.url)
            if found:
                self.operator_write(found.group(1), window=operation)
        return hook

    # --- the estate and the people -----------------------------------------------------------------------------

    def policy(self) -> dict[str, Any]:
        """A person's policy: the owner, some trusted and untrusted principals, sometimes a Deny or a wildcard;
        its Sid makes each one unique, so that every write can be told apart."""
        rng, serial = self.rng, next(self._serial)
        named = [OWNER, *rng.sample(PRINCIPALS, rng.randint(0, 3))]
        statements: list[dict[str, Any]] = [{"Sid": f"op{serial}", "Effect": "Allow", "Principal": {"AWS": named},
                                             "Action": "execute-api:Invoke", "Resource": "execute-api:/*"}]
        if rng.random() < 0.2:
            statements.append({"Effect": "Deny", "Principal": "*", "Action": "execute-api:Invoke", "Resource": "execute-api:/*",
                               "Condition": {"NotIpAddress": {"aws:SourceIp": "203.0.113.0/24"}}})
        if rng.random() < 0.04:
            statements.append({"Effect": "Allow", "Principal": "*", "Action": "execute-api:Invoke", "Resource": "execute-api:/*"})
        return {"Version": "2012-10-17", "Statement": statements}

    def seed_estate(self) -> None:
        """A few dozen APIs, each with one to three stages that serve one deployment."""
        client = self.flow.clients.client("apigateway", REGION)
        for index in range(self.size):
            text = json.dumps(self.policy())
            tags = {"remediator:exempt": "true"} if self.rng.random() < 0.05 else {}
            api_id = client.create_rest_api(name=f"soak-{index:02d}", policy=text, tags=tags)["id"]
            root = client.get_resources(restApiId=api_id)["items"][0]["id"]
            client.put_method(restApiId=api_id, resourceId=root, httpMethod="GET", authorizationType="NONE")
            client.put_integration(restApiId=api_id, resourceId=root, httpMethod="GET", type="MOCK")
            deployment = client.create_deployment(restApiId=api_id, stageName="prod")["id"]
            for stage in ("dev", "test")[: self.rng.randint(0, 2)]:
                client.create_stage(restApiId=api_id, stageName=stage, deploymentId=deployment)
            self.apis.append(api_id)
            self.seeds[api_id] = text
        self.flow.later(300)
        self.flow.discard_pending()

    def operator_write(self, api_id: str, window: str = "") -> None:
        """A person's UpdateRestApi (the harness's credentials: CloudTrail names user/local-admin)."""
        text = json.dumps(self.policy())
        with self._operator:
            self.flow.clients.client("apigateway", REGION).update_rest_api(
                restApiId=api_id, patchOperations=[{"op": "replace", "path": "/policy", "value": text}])
            with self._lock:
                mine = [w for w in self.writes if w.who == OPERATOR and w.api_id == api_id and same_policy(w.after, text)]
                if window and mine:
                    mine[-1].window = window
        self.figures.operator_writes += 1
        self.figures.window_writes += bool(window)

    # --- the steps ---------------------------------------------------------------------------------------------

    def deliver(self, event: dict[str, Any]) -> None:
        """EventBridge's part: the trigger, retried as EventBridge retries a failed asynchronous invocation."""
        for _ in range(3):
            try:
                answer = self.flow.invoke_trigger(event)
            except RuntimeError:
                continue
            self.figures.events += 1
            self.delivered.append(event)
            event_id = str(event["detail"].get("eventID"))
            self.delivered_at.setdefault(event_id, self.figures.events)
            self.answers.setdefault(event_id, answer.get("status", ""))
            if answer.get("status") == "started":
                self.executions.append(answer["execution_name"])
                self.execution_of[event_id] = answer["execution_name"]
            return
        raise AssertionError(f"the trigger failed three times on {event['detail'].get('eventID')}")

    def synthetic_event(self) -> None:
        api_id = self.rng.choice(self.apis)
        name = self.rng.choice(EVENT_NAMES)
        identity = cloudtrail.caller(OWNER, self.rng.choice(("alice", "bob")))
        self.deliver(cloudtrail.api_call_event(name, api_id, REGION, OWNER, identity))

    def redeliver(self) -> None:
        """EventBridge delivers at least once: an event already delivered comes again (it starts nothing twice)."""
        if self.delivered:
            self.deliver(self.rng.choice(self.delivered))

    def delivered_trail(self) -> None:
        """What the rule matched of the account's own CloudTrail (people's writes, the CLI's, the bot's own)."""
        batch = self.flow.matched()
        self.flow.pending.clear()
        for event in batch:
            self.deliver(event)

    def fault(self) -> None:
        from remediator.functions import common

        rng = self.rng
        kind = rng.choice(("lambda", "lambda", "unknown", "timeout", "aws", "aws", "aws", "crash"))
        required = self.required.pop(0) if self.required else None  # each error name the workflow handles, first
        if required in LAMBDA_CODES or (required is None and kind == "lambda"):
            name = required or rng.choice(list(LAMBDA_CODES))
            function = rng.choice(FUNCTIONS[:4] if required else FUNCTIONS)  # first: functions every fix runs
            times = rng.randint(1, 2)
            runner.inject_lambda_error(function, LAMBDA_CODES[name], times=times)
            self.lambda_injected.setdefault(function, []).extend([name] * times)
            return
        if required == "Lambda.Unknown":
            kind = "unknown"
        elif required == "States.Timeout":
            kind = "timeout"
        elif required is not None:
            kind = "aws"
        elif kind in ("unknown", "crash"):
            service = rng.choice(("apigateway", "dynamodb"))
            operation = rng.choice(AWS_FAULTS[service][0])
            how = "crash" if kind == "crash" else rng.choice(("oom", "oom", "timeout"))
            fault = Fault(service, operation, rng.choice(("before", "after")), how)
            fault.install_on(common.clients(), REGION)
            self.faults.append(("Lambda.Unknown" if kind == "unknown" else "InjectedCrash", fault))
        elif kind == "timeout":
            self._slow(rng.choice(("evaluate", "apply", "redeploy", "record")))
        else:
            service = rng.choice(list(AWS_FAULTS)) if required is None else "apigateway"
            operations, throttling, transient = AWS_FAULTS[service]
            code = {"throttling": throttling, "transient": transient}.get(required or "", rng.choice((throttling, transient)))
            status = 429 if service == "apigateway" and code == throttling else (400 if code == throttling else 503)
            operation = "GetRestApi" if required else rng.choice(operations)  # first: a call every execution makes
            fault = AwsFault(service, operation, rng.choice(("before", "after")), code, status)
            fault.install_on(common.clients(), REGION)
            self.faults.append((f"{service} {code}", fault))

    def _slow(self, function: str) -> None:
        """States.Timeout: the next invocation outlives the Task's TimeoutSeconds (45 s) though within a function
        timeout raised for it (as tests/test_lambda_errors.py does), and still does its work."""
        route = runner._routes[runner.FUNCTION_PREFIX + function]
        if any(s["route"] is route for s in self.slow):
            return
        saved = {"route": route, "handler": route.handler, "timeout": route.timeout, "fired": 0}
        real = route.handler

        def slow(event: dict[str, Any], context: Any) -> Any:
            if saved["fired"]:
                route.handler, route.timeout = real, saved["timeout"]
                return real(event, context)
            saved["fired"] = 1
            local_clock().sleep(50)
            return real(event, context)

        route.timeout, route.handler = 100.0, slow
        self.slow.append(saved)
        self.faults.append(("States.Timeout", saved))

    def cli_run(self) -> None:
        """`fix --apply --lease-table` beside the executions, its clock up to ten minutes off."""
        from tests.test_sweep import run_cli

        if self.cli_thread is not None and self.cli_thread.is_alive():
            return
        skew = self.rng.uniform(-600.0, 600.0)
        args = ("fix", "--regions", REGION, "--trusted-accounts", PARTNER, "--endpoint-url", self.flow.account.endpoint_url,
                "--profile", "soak-cli", "--format", "json", "--apply", "--audit-log", str(self.audit_log),
                "--lease-table", self.flow.audit.table_name)

        def run() -> None:
            self._skew.seconds = skew
            status, _, err = run_cli(*args)
            self.cli_results.append((status, err))

        self.cli_thread = threading.Thread(target=run, name="soak-cli")
        self.cli_thread.start()
        self.figures.cli_runs += 1

    def ttl(self) -> None:
        """Time passes (sometimes past the closed items' retention) and TTL deletes a share of what expired."""
        self.flow.later(self.rng.choice((60.0, 700.0, 3600.0, 86400.0, RETENTION_SECONDS + 60.0)))
        assert self.flow.strict is not None
        self.figures.ttl_deletions += len(self.flow.strict.reap_expired(share=self.rng.choice((0.3, 1.0))))

    def arm_window(self) -> None:
        with self._lock:
            self.armed[self.rng.choice(list(self.armed))] += 1

    def wait_all(self) -> None:
        """Every execution started so far ends. One that waits for a claim a dead holder left (WaitForApi, ten minutes
        on the service's clock) is not waited for in real time: after half a second of it, two minutes pass."""
        for name in self.executions:
            if name in self.waited:
                continue
            arn = execution_arn(self.flow.state_machine_arn, name)
            for _ in range(300):
                try:
                    self.results[name] = wait_for_execution(self.flow.clients, arn, 0.5)
                    break
                except TimeoutError:
                    self.flow.later(120.0)
            else:
                raise AssertionError(f"execution {name} never ended")
            self.waited.add(name)
        self.notices.extend(self.flow.notifications())

    # --- the run -----------------------------------------------------------------------------------------------

    def run(self) -> Figures:
        import time
        started = time.monotonic()
        self.seed_estate()
        self.timings = {"seed": time.monotonic() - started}
        assert self.flow.strict is not None
        before_reaped = self.flow.strict.ttl_share
        steps = 0
        while self.figures.events < self.target:
            steps += 1
            roll = self.rng.random()
            if roll < 0.18:
                self.synthetic_event()
            elif roll < 0.55:
                self.redeliver()
            elif roll < 0.60:
                self.operator_write(self.rng.choice(self.apis))
            elif roll < 0.66:
                self.arm_window()
            elif roll < 0.78:
                self.fault()
            elif roll < 0.792:
                self.cli_run()
            elif roll < 0.832:
                self.ttl()
            elif roll < 0.892:
                self.flow.later(self.rng.uniform(1.0, 700.0))
            else:
                self.delivered_trail()
            if steps % 40 == 0:
                mark = time.monotonic()
                self.checkpoint()
                self.timings["checkpoints"] = self.timings.get("checkpoints", 0.0) + time.monotonic() - mark
        self.timings["loop"] = time.monotonic() - started
        self.settle()
        self.timings["settle"] = time.monotonic() - started
        self.flow.strict.ttl_share = before_reaped
        self.check()
        self.timings["check"] = time.monotonic() - started
        self.figures.seconds = self.timings["check"]
        return self.figures

    def checkpoint(self) -> None:
        """All executions ended: a stage split is only ever one an open intent accounts for."""
        self.wait_all()
        if self.cli_thread is not None and self.cli_thread.is_alive():
            return
        self.check_splits(final=False)

    def disarm(self) -> None:
        for _, fault in self.faults:
            if isinstance(fault, AwsFault):
                fault.armed = False
            elif isinstance(fault, Fault):
                fault.times = fault.fired
        for slow in self.slow:
            slow["route"].handler, slow["route"].timeout = slow["handler"], slow["timeout"]
        runner._lambda_faults.clear()
        with self._lock:
            self.armed = {key: 0 for key in self.armed}

    def count_faults(self) -> None:
        for name, fault in self.faults:
            fired = fault["fired"] if isinstance(fault, dict) else fault.fired
            if fired:
                self.figures.faults[name] += 1

    def settle(self) -> None:
        """The faults stop; every execution ends; what people wrote is delivered; then, past every claim, the sweep
        and the events it causes leave nothing open."""
        for function, names in self.lambda_injected.items():  # Step Functions takes them in order: the first ones fired
            left = len(runner._lambda_faults.get(runner.FUNCTION_PREFIX + function, ()))
            self.figures.faults.update(names[: len(names) - left])
        self.count_faults()
        self.disarm()
        if self.cli_thread is not None:
            self.cli_thread.join(300)
            assert not self.cli_thread.is_alive(), "the CLI never finished"
        for _ in range(6):
            self.wait_all()
            self.delivered_trail()
            self.wait_all()
            self.flow.later(Remediator.CLAIM_SECONDS + 1)
            self.flow.run_sweep()
            known = set(self.executions)
            listed = self.flow.clients.client("stepfunctions", REGION).list_executions(
                stateMachineArn=self.flow.state_machine_arn, maxResults=1000)["executions"]
            self.executions.extend(e["name"] for e in listed if e["name"] not in known)
            self.wait_all()
            if not self.flow.matched() and not self.open_intents():
                break
        self.figures.executions = len(self.executions)

    # --- the promises ------------------------------------------------------------------------------------------

    def open_intents(self) -> list[Intent]:
        return DynamoJournal(self.flow.clients, self.flow.audit.table_name, REGION).open_intents()

    def violation(self, text: str) -> None:
        self.figures.violations.append(text)

    def check_splits(self, final: bool) -> None:
        """Every API's stages serve one deployment, or an open intent of it says which stage is on which."""
        adapter = ApiGatewayAdapter(self.flow.clients)
        open_by_api = {i.api_id: i for i in self.open_intents()}
        for api_id in self.apis:
            stages = {s.name: s.deployment_id for s in adapter.list_stages(REGION, api_id)}
            if len(set(stages.values())) <= 1:
                continue
            intent = open_by_api.get(api_id)
            if final or intent is None:
                served = {d: (adapter.get_deployment(REGION, api_id, d) or None) for d in set(stages.values()) if d}
                made_by = {d: (info.description if info else "?") for d, info in served.items()}
                closed = {i.intent_id[:8]: self.closes.get(i.intent_id) for i in self.intents.values() if i.api_id == api_id}
                self.violation((f"{api_id}: stages split {stages} with no open intent" if intent is None
                                else f"{api_id}: stages still split {stages} after recovery")
                               + f" (deployments: {made_by}; its changes closed: {closed})")
            elif intent.serving and intent.serving != stages:
                self.violation(f"{api_id}: its open intent says {intent.serving}, the stages are {stages}")

    def check(self) -> None:
        flow = self.flow
        records = flow.audit_records()
        self.figures.records = len(records)
        self.check_records(records)
        self.check_splits(final=True)
        self.check_operator_writes(records)
        self.check_widening(records)
        for status, err in self.cli_results:
            if status == 2 and ("closed by another holder" in err or "no longer this one's" in err):
                self.figures.cli_taken_over += 1  # its claim lapsed mid-change and an execution settled it: exit 2
            elif status not in (0, 1):
                self.violation(f"a CLI run ended {status}: {err.strip()[-300:]}")

    def check_records(self, records: list[AuditRecord]) -> None:
        """Each change has exactly one audit record, in the table and (the CLI's) in its log; nothing is left open."""
        for intent in self.open_intents():
            self.violation(f"{intent.api_id}: change {intent.intent_id} still open after recovery (held by {intent.holder}, "
                           f"deployment {intent.deployment_id}, undoing {intent.undoing}, serving {intent.serving}, "
                           f"reason {intent.reason[:300]!r})")
        by_change = collections.Counter(r.change_id for r in records)
        for change_id, count in by_change.items():
            if count > 1:
                self.violation(f"change {change_id} has {count} audit records")
        recorded = {r.change_id: r for r in records}
        for intent_id, intent in self.intents.items():
            closes = self.closes.get(intent_id, [])
            if not closes and intent_id in recorded:
                # Its close went through and the function died (a timeout, out of memory) before the harness saw it return: the change's record is
                # written only in its close's transaction (DynamoJournal.close), so the record says how it closed (its
                # closed intent may be gone already: TTL).
                outcome = recorded[intent_id].outcome
                closes = [(self._closed_state(intent_id) or outcome, outcome)]
            outcomes = {outcome for _, outcome in closes if outcome}
            if intent_id in recorded:
                if recorded[intent_id].outcome not in outcomes:
                    self.violation(f"change {intent_id}: record {recorded[intent_id].outcome} but closed with {closes}")
            elif outcomes:
                self.violation(f"change {intent_id}: closed with a record ({closes}) that the table does not hold")
            elif not closes and self._closed_state(intent_id) is None:
                # (a close whose answer was lost is closed all the same: the table's closed intent says so)
                self.violation(f"change {intent_id} of {intent.api_id} was never closed")
        for record in records:
            if record.outcome in ("applied", "restored") and record.change_id not in self.intents:
                self.violation(f"record {record.change_id} ({record.outcome}) of no change that was begun")
        if self.audit_log.exists():
            logged = [r for r in JsonLinesAuditLog(self.audit_log).records() if r.change_id]
            for change_id, count in collections.Counter(r.change_id for r in logged).items():
                if count > 1:
                    self.violation(f"the CLI's log holds {count} records of change {change_id}")
            for record in logged:
                if record.change_id not in recorded or recorded[record.change_id].outcome != record.outcome:
                    self.violation(f"the CLI's log records change {record.change_id} ({record.outcome}); the table does not")

    def _closed_state(self, intent_id: str) -> str | None:
        item = self.flow.clients.client("dynamodb", REGION).get_item(
            TableName=self.flow.audit.table_name, Key={"pk": {"S": f"intent#{intent_id}"}, "sk": {"S": "intent"}},
            ConsistentRead=True).get("Item")
        return item["state"]["S"] if item else None

    def _ordered(self) -> dict[str, list[Write]]:
        by_api: dict[str, list[Write]] = collections.defaultdict(list)
        for write in sorted(self.writes, key=lambda w: w.seq):
            by_api[write.api_id].append(write)
        return by_api

    def check_operator_writes(self, records: list[AuditRecord]) -> None:
        """No operator's write is lost without a notice: it is the live policy, or the bot planned from it, or a
        person replaced it, or it has a lost-update record and a notice saying so."""
        adapter = ApiGatewayAdapter(self.flow.clients)
        for api_id, writes in self._ordered().items():
            live = adapter.get_rest_api(REGION, api_id).policy
            for index, write in enumerate(writes):
                if write.who != OPERATOR:
                    continue
                following = writes[index + 1] if index + 1 < len(writes) else None
                if following is None:
                    if not same_policy(live, write.after):
                        self.violation(f"{api_id}: the last write, a person's, is not the live policy")
                    continue
                if following.who == OPERATOR:
                    continue  # a person replaced it
                if any(i.api_id == api_id and same_policy(i.policy_before, write.after) for i in self.intents.values()):
                    continue  # the bot read it and planned from it
                recorded, told = self._told_lost(api_id, write, records)
                if not (recorded and told):
                    if self._failure_told(write):
                        self.figures.told_by_failure += 1  # its execution failed (a fault past the retries): told so
                        continue
                    execution = self.execution_of.get(write.event_id, "")
                    ended = self.results.get(execution, {})
                    self.violation(f"{api_id}: a person's write{' (' + write.window + ' window)' if write.window else ''} "
                                   f"was replaced by {following.who.rsplit('/', 1)[-1]} with "
                                   f"{'no lost-update record' if not recorded else 'no notice'} (its event: "
                                   f"{self.answers.get(write.event_id, 'never delivered')}, {execution or '-'} "
                                   f"{ended.get('status', '')} {ended.get('error') or ''}; later writes "
                                   f"{[(w.seq - write.seq, w.who.rsplit('/', 1)[-1][:12]) for w in writes[index + 1:index + 5]]}; "
                                   f"delivered at event {self.delivered_at.get(write.event_id)}, written at {self.written_at.get(write.event_id)}; "
                                   f"states {states_entered(self.flow.clients, execution_arn(self.flow.state_machine_arn, execution)) if execution else []}; "
                                   f"output {json.loads(ended.get('output') or '{}').get('evaluation', {}).get('verdict') if ended else None}; "
                                   f"{self._changes_of(api_id, write)})")

    def _changes_of(self, api_id: str, write: Write) -> str:
        """What a violation's reader needs: the bot's changes of the API (when each began, whether it planned from the
        person's policy, how it closed) and the windows the table keeps for it."""
        changes = [(i.intent_id[:8], i.holder.split(":")[0], i.created_at, same_policy(i.policy_before, write.after),
                    self.closes.get(i.intent_id)) for i in self.intents.values() if i.api_id == api_id]
        try:
            windows = [(w.intent_id[:8], w.read_at, w.closed_at, w.late) for w in
                       DynamoJournal(self.flow.clients, self.flow.audit.table_name, REGION).recent_writes(OWNER, REGION, api_id)]
        except Exception as error:  # noqa: BLE001 - a diagnostic only
            windows = [f"unreadable: {error}"]
        return f"changes {changes}; windows {windows}"

    def _told_lost(self, api_id: str, write: Write, records: list[AuditRecord]) -> tuple[bool, bool]:
        """Whether the person's write has its lost-update record, and a notice naming the policy they wrote."""
        recorded = any(r.outcome == "lost-update" and r.api_id == api_id and same_policy(r.policy_before, write.after)
                       for r in records)
        told = any(isinstance(n.get("lost_update"), dict) and same_policy(n["lost_update"].get("policy"), write.after)
                   for n in self.notices)
        return recorded, told

    def _failure_told(self, write: Write) -> bool:
        """The execution of the person's own event failed before it could look (a crash, retries exhausted): the
        failure notice names their event, so a person is told to look at that change."""
        return any(n.get("kind") == "failure" and write.event_id and write.event_id in str(n.get("event")) for n in self.notices)

    def check_widening(self, records: list[AuditRecord]) -> None:
        """Nothing widens access: every policy the bot wrote grants nothing the policy it replaced did not (the undo of
        its own change excepted: the pre-image it read back), and no final policy grants an untrusted account what the
        person who wrote last did not."""
        adapter = ApiGatewayAdapter(self.flow.clients)
        for api_id, writes in self._ordered().items():
            for write in writes:
                if write.who == OPERATOR:
                    continue
                mine = [i for i in self.intents.values() if i.api_id == api_id]
                if any(same_policy(write.after, i.policy_before) for i in mine):
                    continue  # the undo of the bot's own change, to the policy it read (UndoOf), or a rollback
                # A fix is judged against the policy it was planned from, which the guard re-read just before the write:
                # a person's write in the instant between is a lost update (recorded and told: check_operator_writes).
                planned = [i.policy_before for i in mine if same_policy(write.after, i.policy_after)] or [write.before]
                try:
                    wider = [widenings(parse_policy(p) if p else None, parse_policy(write.after) if write.after else None,
                                       OWNER) for p in planned]
                except ValueError as error:
                    self.violation(f"{api_id}: a bot write that cannot be read back: {error}")
                    continue
                if all(wider):
                    self.violation(f"{api_id}: {write.who.rsplit('/', 1)[-1]} widened access: {wider[0][0]}")
        for api_id in self.apis:
            live = adapter.get_rest_api(REGION, api_id).policy
            people = [w for w in self._ordered().get(api_id, []) if w.who == OPERATOR]
            last = people[-1].after if people else self.seeds[api_id]
            extra = self._untrusted(live) - self._untrusted(last)
            if extra and people and all(self._told_lost(api_id, people[-1], records)):
                # API Gateway has no conditional update: a person's write in the instant between the guard's re-read and
                # the bot's write is lost, and what the bot wrote stands until someone looks; they are told, with
                # their policy (docs/runbooks/lost-update.md).
                self.figures.told_lost += 1
            elif extra:
                self.violation(f"{api_id}: the final policy grants {sorted(extra)}, which the last person's write did not")

    def _untrusted(self, policy: str | None) -> set[str]:
        if not policy:
            return set()
        return {f.principal for f in evaluate_policy(policy, self.trust).findings}


@contextmanager
def quiet_logs() -> Iterator[None]:
    """The functions log every step; thousands of lines would only slow the soak down."""
    import logging

    from remediator.logs import configure

    configure(json_output=False, level="CRITICAL")
    previous = logging.root.level
    logging.root.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        logging.root.setLevel(previous)
