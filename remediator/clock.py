"""Wall-clock time for leases and claims, replaceable as a whole: the strict local account runs the
product on its own virtual clock, so a lease that expires in 60 s expires in 60 local seconds."""

from __future__ import annotations

import time
from collections.abc import Callable

_now: Callable[[], float] = time.time
_sleep: Callable[[float], None] = time.sleep


def now() -> float:
    """Seconds since the epoch."""
    return _now()


def sleep(seconds: float) -> None:
    _sleep(max(0.0, seconds))


def install(now_fn: Callable[[], float], sleep_fn: Callable[[float], None]) -> None:
    """Run on another clock (the strict local account's)."""
    global _now, _sleep
    _now, _sleep = now_fn, sleep_fn
