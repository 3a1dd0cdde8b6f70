"""structlog set up once: JSON lines in Lambda, readable lines in a terminal, quiet in the CLI by default."""

from __future__ import annotations

import importlib
import logging
import os
import sys
import types
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any


class _AsyncioOnFirstUse(types.ModuleType):
    """What structlog's modules hold as `asyncio` until they first use it (never, in the functions)."""

    def __getattr__(self, name: str) -> Any:
        if sys.modules.get("asyncio") is self:
            del sys.modules["asyncio"]
        return getattr(importlib.import_module("asyncio"), name)


@contextmanager
def _asyncio_on_first_use() -> Iterator[None]:
    """structlog imports asyncio at its top (structlog._native, structlog.stdlib) for its async logging methods
    alone, which the functions never call, and asyncio is about 8 ms of a function's cold start
    (docs/figures/performance.md). While structlog is first imported, `asyncio` is a stand-in that imports the
    real module on its first attribute access; afterwards `import asyncio` anywhere gets the real module."""
    if "structlog" in sys.modules or "asyncio" in sys.modules:
        yield
        return
    stand_in = _AsyncioOnFirstUse("asyncio")
    # structlog.stdlib makes a LogRecord at import, which asks asyncio for the current task's name (Python 3.12+,
    # logging.logAsyncioTasks: https://docs.python.org/3/library/logging.html#logging.logAsyncioTasks). Outside
    # an event loop that name is None either way: the record is told so rather than importing asyncio to learn it.
    task_names = getattr(logging, "logAsyncioTasks", None)
    sys.modules["asyncio"] = stand_in
    if task_names is not None:
        logging.logAsyncioTasks = False
    try:
        yield
    finally:
        if task_names is not None:
            logging.logAsyncioTasks = task_names
        if sys.modules.get("asyncio") is stand_in:
            del sys.modules["asyncio"]


with _asyncio_on_first_use():
    import structlog

_configured = False


def configure(json_output: bool | None = None, level: int | str | None = None) -> None:
    """JSON when running in Lambda (or asked for); the level from REMEDIATOR_LOG_LEVEL, else INFO."""
    global _configured
    if json_output is None:
        json_output = "AWS_LAMBDA_FUNCTION_NAME" in os.environ
    if level is None:
        level = os.environ.get("REMEDIATOR_LOG_LEVEL", "INFO")
    numeric = logging.getLevelName(level.upper()) if isinstance(level, str) else level
    renderer: Any = structlog.processors.JSONRenderer() if json_output else structlog.dev.ConsoleRenderer(colors=False)
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(numeric),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=False,
    )
    _configured = True


def get_logger(name: str) -> Any:
    if not _configured:
        configure()
    return structlog.get_logger(name)


def bind(**values: Any) -> None:
    """Add values (event ID, execution name) to every following log line of this invocation."""
    structlog.contextvars.clear_contextvars()
    structlog.contextvars.bind_contextvars(**values)
