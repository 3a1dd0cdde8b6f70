"""One module per Lambda function: each has `handler(event, context)` and `needs(mode, slack)`.

May import: the core, the records and values, the adapters and the transaction (with the guard); never the
command line, `iac`, `local` or the demos (the Lambda bundle does not hold them). infra imports this package
and `needs` only, for each function's grants.

`trigger` and `sweep` start the workflow; the others are its states. Every state gets
{"input": <state>, "execution": <name>, "kind"?: ...} from the definition's Parameters.
"""

from __future__ import annotations

from remediator.functions import coldstart  # noqa: F401 - first: in Lambda, the collector waits while modules load

import importlib
from collections.abc import Callable
from typing import Any

from msgspec.structs import replace

from remediator.functions.needs import Needs

# Every function of the stack, named as its module (the workflow's tasks, lower-cased, among them).
NAMES = ("trigger", "sweep", "evaluate", "approval", "apply", "redeploy", "restore", "record", "notify", "slack_callback")
# Organization mode only (docs/organization.md): the roster of the organization's accounts, and the
# organization sweep's first and last states (its middle one is `sweep`, once per account and region).
ORGANIZATION_NAMES = ("roster", "plan", "summarize")
# The functions that judge APIs by the exemptions (Settings.sweep_settings with the trusted lists): they read the
# settings parameter, where the exempt API IDs live (too many for Lambda's 4 KB environment). The trigger judges
# before it starts an execution.
READS_SETTINGS = ("trigger", "evaluate", "apply", "sweep")
# Only where remediator:cloudFormationHook is on: the CloudFormation Lambda Hook's function, which no workflow reaches.
HOOK_NAMES = ("hook",)


def handler_path(name: str) -> str:
    """The Lambda handler setting of a function."""
    return f"remediator.functions.{name}.handler"


def name_of(handler: str) -> str:
    """The function a Lambda handler setting names ("remediator.functions.apply.handler" -> "apply")."""
    return handler.split(".")[-2]


def handler(name: str) -> Callable[[dict[str, Any], Any], Any]:
    return importlib.import_module(f"remediator.functions.{name}").handler  # type: ignore[no-any-return]


def needs(name: str, mode: str, slack: bool, organization: bool = False) -> Needs | None:
    """What the function needs in a stack of this mode (with or without a Slack channel, in an organization's
    hub or a single account); None if unreachable. In the hub, API Gateway calls are the spoke role's
    (`Needs.in_organization`); a module's `organization_needs(found, mode)` adds what the hub needs besides."""
    module = importlib.import_module(f"remediator.functions.{name}")
    if name in ORGANIZATION_NAMES:
        return module.needs(mode, slack) if organization else None  # type: ignore[no-any-return]
    found: Needs | None = module.needs(mode, slack)
    if found is not None and name in READS_SETTINGS:
        found = replace(found, read_settings=True)
    if organization and found is not None:
        # BatchImportFindings takes findings of the caller's own account only: the hub imports nothing.
        found = replace(found.in_organization(), import_findings=False, read_findings=False)
        extra = getattr(module, "organization_needs", None)
        if extra is not None:
            found = extra(found, mode)
    return found
