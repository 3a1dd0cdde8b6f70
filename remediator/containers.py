"""Which Lambda function's container the code runs in, for what a container keeps between invocations.

In Lambda each function has its own containers, so a cached value (the trusted lists, a secret) is
never shared between functions. The local runner runs every function in one process: it names the
function around each invocation, and the caches key by it. Outside the runner there is one container.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

_current: ContextVar[str | None] = ContextVar("remediator_container", default=None)


def current() -> str | None:
    return _current.get()


@contextmanager
def running_as(function_name: str) -> Iterator[None]:
    token = _current.set(function_name)
    try:
        yield
    finally:
        _current.reset(token)
