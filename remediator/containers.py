"""Which Lambda function's container the code runs in, for what a container keeps between invocations.

In Lambda each function has its own containers, so a cached value (the trusted lists, a secret) is
never shared between functions. The local runner runs every function in one process: it names the
function around each invocation, and the caches key by it. Outside the runner there is one container.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Hashable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Generic, TypeVar

T = TypeVar("T")

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


class Kept(Generic[T]):
    """Values a container keeps for `seconds` (per function, see above); a load that raises keeps nothing."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self._values: dict[tuple[str | None, Hashable], tuple[float, T]] = {}

    def get(self, key: Hashable, load: Callable[[], T], clock: Callable[[], float] = time.monotonic, fresh: bool = False) -> T:
        """The kept value, or a new one from `load` when there is none, it is older than `seconds`, or `fresh`."""
        now = clock()
        slot = (current(), key)
        kept = self._values.get(slot)
        if kept is not None and not fresh and now - kept[0] < self.seconds:
            return kept[1]
        value = load()
        self._values[slot] = (now, value)
        return value

    def clear(self) -> None:
        self._values.clear()
