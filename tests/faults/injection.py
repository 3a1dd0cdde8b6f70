"""Faults, injected into the botocore clients the product uses: before a call (it never reaches AWS) or
after it (AWS did it, and the caller sees an error or dies), once or every time."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from botocore.awsrequest import AWSResponse
from botocore.exceptions import ClientError

# An AWS error each service answers when it throttles, with its HTTP status.
THROTTLING = {"apigateway": ("TooManyRequestsException", 429), "dynamodb": ("ProvisionedThroughputExceededException", 400)}
REFUSED = {"apigateway": ("BadRequestException", 400), "dynamodb": ("ValidationException", 400)}


class InjectedCrash(RuntimeError):
    """A handler that fails unexpectedly (a bug): Lambda reports the error under its class name, "InjectedCrash",
    and Step Functions fails the task with that name (never retried: caught, the change is put back)."""


# The error name Step Functions gives the task for each kind of fault in a function (Step Functions developer
# guide, "Handle Lambda service exceptions": a function timeout or out-of-memory is Lambda.Unknown).
TASK_ERRORS = {"crash": InjectedCrash.__name__, "timeout": "Lambda.Unknown", "oom": "Lambda.Unknown"}


class Killed(BaseException):
    """The process dies here (SIGKILL): nothing after this point runs, no handler catches it."""


@dataclass
class Fault:
    service: str
    operation: str
    when: str  # before | after
    # throttle | refuse: AWS answers an error; crash: the handler raises (InjectedCrash); timeout: it runs past
    # its timeout (Sandbox.Timedout); oom: its runtime dies (Runtime.OutOfMemory); kill: the process dies.
    kind: str
    times: int = 1
    fired: int = 0

    def __str__(self) -> str:
        return f"{self.kind} {self.when} {self.operation}" + (" (every time)" if self.times > 1 else "")

    def install_on(self, clients: Any, region: str) -> Fault:
        """On the service's clients of a ClientFactory: the region's and the default one (the functions use both)."""
        for client in {id(c): c for c in (clients.client(self.service, region), clients.client(self.service))}.values():
            self.install(client)
        return self

    def install(self, client: Any) -> None:
        if self.when == "before":
            client.meta.events.register(f"before-send.{self.service}.{self.operation}", self._before)
        else:
            client.meta.events.register(f"after-call.{self.service}.{self.operation}", self._after)

    def _due(self) -> bool:
        if self.fired >= self.times:
            return False
        self.fired += 1
        return True

    def _before(self, request: Any, **_: Any) -> AWSResponse | None:
        if not self._due():
            return None
        if self.kind in ("throttle", "refuse"):
            code, status = (THROTTLING if self.kind == "throttle" else REFUSED)[self.service]
            body = json.dumps({"__type": code, "message": f"injected {code}"}).encode()

            class Raw:
                def stream(self, **_: Any) -> Any:
                    yield body

            return AWSResponse(request.url, status, {"x-amzn-ErrorType": code, "Content-Type": "application/x-amz-json-1.0"}, Raw())
        self._die()
        return None

    def _after(self, **_: Any) -> None:
        if not self._due():
            return
        if self.kind in ("throttle", "refuse"):
            # The call went through, but its answer was lost: the caller sees the error.
            code, status = (THROTTLING if self.kind == "throttle" else REFUSED)[self.service]
            raise ClientError({"Error": {"Code": code, "Message": f"injected {code} after the call"},
                               "ResponseMetadata": {"HTTPStatusCode": status}}, self.operation)
        self._die()

    def _die(self) -> None:
        if self.kind == "crash":
            raise InjectedCrash(f"injected crash at {self}")
        if self.kind == "timeout":
            from remediator.local.strict import local_clock

            local_clock().sleep(10_000)  # inside a Lambda invocation: past its timeout, Lambda ends it
            raise AssertionError("a timeout was injected outside a Lambda invocation")
        if self.kind == "oom":
            from remediator.local.strict import LambdaRuntimeExited, current_invocation

            running = current_invocation()
            if running is None:
                raise AssertionError("out of memory was injected outside a Lambda invocation")
            raise LambdaRuntimeExited(running.function, "Runtime.OutOfMemory")
        if self.kind == "kill":
            raise Killed(f"killed at {self}")
        raise ValueError(self.kind)


@contextmanager
def crashing(*names: str) -> Iterator[None]:
    """While inside, these local functions (by handler name: "redeploy", "restore", ...) crash with InjectedCrash."""
    from remediator.local import runner

    routes = [runner._routes[runner.FUNCTION_PREFIX + name] for name in names]
    saved = [route.handler for route in routes]

    def crash(event: dict[str, Any], context: object) -> dict[str, Any]:
        raise InjectedCrash("injected crash")

    for route in routes:
        route.handler = crash
    try:
        yield
    finally:
        for route, handler in zip(routes, saved):
            route.handler = handler
