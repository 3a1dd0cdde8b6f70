"""One module per Lambda function: each has `handler(event, context)` and `needs(mode, slack)`.

`trigger` and `sweep` start the workflow; the others are its states. Every state gets
{"input": <state>, "execution": <name>, "kind"?: ...} from the definition's Parameters.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

from remediator.functions.needs import Needs

# Every function of the stack, named as its module (the workflow's tasks, lower-cased, among them).
NAMES = ("trigger", "sweep", "evaluate", "approval", "apply", "redeploy", "restore", "record", "notify", "slack_callback")


def handler_path(name: str) -> str:
    """The Lambda handler setting of a function."""
    return f"remediator.functions.{name}.handler"


def name_of(handler: str) -> str:
    """The function a Lambda handler setting names ("remediator.functions.apply.handler" -> "apply")."""
    return handler.split(".")[-2]


def handler(name: str) -> Callable[[dict[str, Any], Any], Any]:
    return importlib.import_module(f"remediator.functions.{name}").handler  # type: ignore[no-any-return]


def needs(name: str, mode: str, slack: bool) -> Needs | None:
    """What the function needs in a stack of this mode (with or without a Slack channel); None if unreachable."""
    return importlib.import_module(f"remediator.functions.{name}").needs(mode, slack)  # type: ignore[no-any-return]
