"""The one workflow definition, used unchanged by the CDK stack and the local runner."""

from __future__ import annotations

import json
import re
from importlib import resources
from typing import Any

FUNCTIONS = ("Evaluate", "Approval", "Apply", "Redeploy", "Restore", "Record", "Notify")
# The modes the workflow runs in (ChooseMode), one list for the stack's settings and the runtime.
MODES = ("auto", "dry-run", "approval")
_PLACEHOLDER = re.compile(r"\$\{(\w+)\}")


def definition_text() -> str:
    """The Amazon States Language document with ${<Name>FunctionArn} placeholders."""
    return resources.files(__package__).joinpath("definition.json").read_text(encoding="utf-8")


def placeholders() -> set[str]:
    return set(_PLACEHOLDER.findall(definition_text()))


def render(function_arns: dict[str, str]) -> str:
    """The definition with each placeholder replaced, as Step Functions' definition substitutions do."""
    substitutions = {f"{name}FunctionArn": arn for name, arn in function_arns.items()}
    missing = placeholders() - substitutions.keys()
    if missing:
        raise KeyError(f"no ARN for {', '.join(sorted(missing))}")
    return _PLACEHOLDER.sub(lambda m: substitutions[m.group(1)], definition_text())


def definition(function_arns: dict[str, str]) -> dict[str, Any]:
    return json.loads(render(function_arns))
