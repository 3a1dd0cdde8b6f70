"""The local clock the strict account runs on, and what is routed through it (botocore's retry sleeps, Step
Functions' Wait states and Retry intervals, the product's own clock and the redeploy pacer).
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Iterator
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from remediator.local.strict.invocation import Invocation


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

# The running invocation, per context rather than per thread: a handler's own threads (the organization sweep's child
# sweeps its regions on threads, each run in a copy of the handler's context) call with its role and on its time.
_running: ContextVar[Invocation | None] = ContextVar("local_invocation", default=None)


def current_invocation() -> Invocation | None:
    return _running.get()


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
    # The pacer's defaults (interval, clock, sleep): its clock and sleep become the local clock's.
    interval, _, _ = apigateway.DeploymentPacer.__init__.__defaults__  # type: ignore[misc]
    apigateway.DeploymentPacer.__init__.__defaults__ = (interval, clock.monotonic, clock.sleep)


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
