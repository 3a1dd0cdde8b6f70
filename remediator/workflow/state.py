"""The execution's state, typed: what each state of the definition reads and writes.

Step Functions passes the whole state as JSON (`$`), each task adding its result under its
ResultPath: `$.evaluation` (Evaluate), `$.applied` (Apply), `$.redeploy` (Redeploy), `$.restore`
(RestorePolicy), `$.audit` (Record), `$.approval` / `$.decision` (AwaitApproval), `$.error` (any Catch).
Each handler reads the parts it needs through these types instead of digging in dicts.
"""

from __future__ import annotations

from typing import Any

import msgspec

from remediator.codec import Passed, decode
from remediator.events import ApiChange, EventError


class StateError(ValueError):
    """The input is not a workflow state; one line."""


class _Part(Passed):
    """A part one task wrote under its ResultPath, read by the next (see remediator.codec.Passed for why a key
    this version does not know is ignored)."""

    codec_error = StateError


class Evaluation(_Part):
    """$.evaluation: what Evaluate read and decided."""

    codec_where = "$.evaluation"
    codec_omit_none = frozenset({"error", "lost_update", "severity"})

    verdict: str
    mode: str
    policy: str | None = None
    failures: int = 0
    approval_timeout_seconds: int = 24 * 3600
    region: str = ""
    api_id: str = ""
    name: str = ""
    compliant: bool = False
    exempt: bool = False
    findings: list[dict[str, Any]] = msgspec.field(default_factory=list)
    patch_operations: list[dict[str, str]] = msgspec.field(default_factory=list)
    error: str | None = None
    # A person's change the bot's own write landed on: who, when, their policy (remediator.functions.evaluate).
    lost_update: dict[str, Any] | None = None
    # Who can actually call (remediator.core.access): the API's grade, and per finding its reachability, grade and
    # the methods it reaches (ApiReport.to_dict). None and empty where there is no finding.
    severity: str | None = None
    access: list[dict[str, Any]] = msgspec.field(default_factory=list)
    # What the fix's redeploy would publish besides the fix: edits of the API its stages do not serve yet
    # (remediator.core.undeployed; ApiReport.to_dict). Blocked: what stands in the way; approval: what approving publishes.
    undeployed_changes: list[dict[str, Any]] = msgspec.field(default_factory=list)


class Applied(_Part):
    """$.applied: what Apply wrote (or why it wrote nothing)."""

    codec_where = "$.applied"
    codec_omit_none = frozenset({"report", "intent"})

    outcome: str  # patched | busy | unchanged | exempt | skipped | stale
    detail: str = ""
    replanned: bool = False
    before: str = ""
    written: str = ""
    patch_operations: list[dict[str, str]] = msgspec.field(default_factory=list)
    report: dict[str, Any] | None = None  # the re-plan's report, when the policy changed since Evaluate
    intent: dict[str, Any] | None = None  # patched: the change's intent (remediator.journal.Intent), as written
    wait_seconds: int = 0  # busy: another change of the API is in flight; WaitForApi waits this long
    # patched: whether this execution's Apply read `before` live and wrote `written` itself. Only then may
    # RestorePolicy restore a wider policy (remediator.guard.UndoOf); a change taken over from the journal may not.
    wrote: bool = False

    @property
    def findings(self) -> list[dict[str, Any]] | None:
        return list((self.report or {}).get("findings", [])) if self.report else None


class Redeployed(_Part):
    """$.redeploy: the deployment Redeploy created and the stages now serving it, or how long to wait
    for the account's turn to deploy (WaitForDeployment)."""

    codec_where = "$.redeploy"

    outcome: str = "deployed"  # deployed | wait
    stages: list[str] = msgspec.field(default_factory=list)
    deployment_id: str | None = None
    missing_stages: list[str] = msgspec.field(default_factory=list)
    wait_seconds: int = 0
    ticket: int | None = None  # wait: the place in the account's deployment queue (remediator.adapters.dynamodb.DynamoLease)


class WorkflowState(_Part):
    """$: the change the execution is about, and what each state added so far. Besides the typed parts, `$` holds
    what the definition's other ResultPaths add ($.restore, $.error, $.approval, $.decision, ...): kept in `raw`."""

    codec_where = "the state"

    change: ApiChange
    source: str = "event"
    evaluation: Evaluation | None = None
    applied: Applied | None = None
    redeploy: Redeployed | None = None
    raw: dict[str, Any] = msgspec.field(default_factory=dict)  # the whole state as read

    @classmethod
    def from_dict(cls, data: Any, where: str | None = None) -> WorkflowState:
        """More than a decode: the change is checked first, for a message that says so, and the whole state is
        kept (`raw`) for the parts no type covers."""
        if not isinstance(data, dict):
            raise StateError(f"the state is not an object (got {type(data).__name__})")
        try:
            ApiChange.from_dict(data.get("change"), "$.change")
        except EventError as error:
            raise StateError(f"the state has no valid change: {error}") from None
        state = decode({k: v for k, v in data.items() if k != "raw"}, cls, where or cls.codec_where, StateError)
        state.raw = data
        return state

    def get(self, key: str) -> Any:
        """A part no type covers yet ($.restore, $.error, $.approval, $.decision)."""
        return self.raw.get(key)
