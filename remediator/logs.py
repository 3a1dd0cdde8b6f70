"""structlog set up once: JSON lines in Lambda, readable lines in a terminal, quiet in the CLI by default."""

from __future__ import annotations

import logging
import os
import sys
from typing import Any

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
