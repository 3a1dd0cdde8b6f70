"""The one workflow definition, used unchanged by the CDK stack and the local runner.

Holds the definitions (definition.json, org_sweep.json), the typed state the states pass (`state`) and the error
names they retry on and catch (`errors`). A room of records and values: may import the core, the codec and the
other records (events); the functions, the adapters, the command line and infra import it.
"""

from __future__ import annotations

import json
import re
from importlib import resources
from typing import Any

FUNCTIONS = ("Evaluate", "Approval", "Apply", "Redeploy", "Restore", "Record", "Notify")
# The organization sweep (org_sweep.json, organization mode only): its tasks, and its other placeholder.
ORG_SWEEP_FUNCTIONS = ("Plan", "Sweep", "Summarize")
ORG_SWEEP_BUCKET = "ResultsBucket"
# The modes the workflow runs in (ChooseMode), one list for the stack's settings and the runtime.
MODES = ("auto", "dry-run", "approval")
_PLACEHOLDER = re.compile(r"\$\{(\w+)\}")


def definition_text(name: str = "definition.json") -> str:
    """The Amazon States Language document with ${<Name>FunctionArn} placeholders (the remediation workflow,
    or "org_sweep.json", the organization sweep)."""
    return resources.files(__package__).joinpath(name).read_text(encoding="utf-8")


def placeholders(name: str = "definition.json") -> set[str]:
    return set(_PLACEHOLDER.findall(definition_text(name)))


def render(function_arns: dict[str, str], name: str = "definition.json", **values: str) -> str:
    """The definition with each placeholder replaced, as Step Functions' definition substitutions do."""
    substitutions = {**{f"{key}FunctionArn": arn for key, arn in function_arns.items()}, **values}
    missing = placeholders(name) - substitutions.keys()
    if missing:
        raise KeyError(f"no value for {', '.join(sorted(missing))}")
    return _PLACEHOLDER.sub(lambda m: substitutions[m.group(1)], definition_text(name))


def definition(function_arns: dict[str, str]) -> dict[str, Any]:
    return json.loads(render(function_arns))
