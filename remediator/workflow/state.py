"""The execution's state, typed: what each state of the definition reads and writes.

Step Functions passes the whole state as JSON (`$`), each task adding its result under its
ResultPath: `$.evaluation` (Evaluate), `$.applied` (Apply), `$.redeploy` (Redeploy), `$.restore`
(RestorePolicy), `$.audit` (Record), `$.approval` / `$.decision` (AwaitApproval), `$.error` (any Catch).
Each handler reads the parts it needs through these types instead of digging in dicts.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any

from remediator.events import ApiChange, EventError


class StateError(ValueError):
    """The input is not a workflow state; one line."""


def _known(cls: type, data: Any, where: str) -> dict[str, Any]:
    """The fields of `cls` present in `data` (extra keys are ignored: a newer writer may add some)."""
    if not isinstance(data, dict):
        raise StateError(f"{where} is not an object (got {type(data).__name__})")
    names = {f.name for f in fields(cls)}
    return {k: v for k, v in data.items() if k in names}


@dataclass
class Evaluation:
    """$.evaluation: what Evaluate read and decided."""

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
    findings: list[dict[str, Any]] = field(default_factory=list)
    patch_operations: list[dict[str, str]] = field(default_factory=list)
    error: str | None = None
    # A person's change the bot's own write landed on: who, when, their policy (remediator.functions.evaluate).
    lost_update: dict[str, Any] | None = None
    # Who can actually call (remediator.core.access): the API's grade, and per finding its reachability, grade and
    # the methods it reaches (ApiReport.to_dict). None and empty where there is no finding.
    severity: str | None = None
    access: list[dict[str, Any]] = field(default_factory=list)
    # What the fix's redeploy would publish besides the fix: edits of the API its stages do not serve yet
    # (remediator.core.undeployed; ApiReport.to_dict). Blocked: what stands in the way; approval: what approving publishes.
    undeployed_changes: list[dict[str, Any]] = field(default_factory=list)

    @classmethod
    def from_dict(cls, data: Any) -> Evaluation:
        known = _known(cls, data, "$.evaluation")
        if "verdict" not in known or "mode" not in known:
            raise StateError("$.evaluation has no verdict or mode")
        return cls(**known)

    def to_dict(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if not (k in ("error", "lost_update", "severity") and v is None)}


@dataclass
class Applied:
    """$.applied: what Apply wrote (or why it wrote nothing)."""

    outcome: str  # patched | busy | unchanged | exempt | skipped | stale
    detail: str = ""
    replanned: bool = False
    before: str = ""
    written: str = ""
    patch_operations: list[dict[str, str]] = field(default_factory=list)
    report: dict[str, Any] | None = None  # the re-plan's report, when the policy changed since Evaluate
    intent: dict[str, Any] | None = None  # patched: the change's intent (remediator.journal.Intent), as written
    wait_seconds: int = 0  # busy: another change of the API is in flight; WaitForApi waits this long
    # patched: whether this execution's Apply read `before` live and wrote `written` itself. Only then may
    # RestorePolicy restore a wider policy (remediator.guard.UndoOf); a change taken over from the journal may not.
    wrote: bool = False

    @classmethod
    def from_dict(cls, data: Any) -> Applied:
        known = _known(cls, data, "$.applied")
        if "outcome" not in known:
            raise StateError("$.applied has no outcome")
        return cls(**known)

    def to_dict(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if not (k in ("report", "intent") and v is None)}

    @property
    def findings(self) -> list[dict[str, Any]] | None:
        return list((self.report or {}).get("findings", [])) if self.report else None


@dataclass
class Redeployed:
    """$.redeploy: the deployment Redeploy created and the stages now serving it, or how long to wait
    for the account's turn to deploy (WaitForDeployment)."""

    outcome: str = "deployed"  # deployed | wait
    stages: list[str] = field(default_factory=list)
    deployment_id: str | None = None
    missing_stages: list[str] = field(default_factory=list)
    wait_seconds: int = 0
    ticket: int | None = None  # wait: the place in the account's deployment queue (remediator.adapters.dynamodb.DynamoLease)

    @classmethod
    def from_dict(cls, data: Any) -> Redeployed:
        return cls(**_known(cls, data, "$.redeploy"))

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class WorkflowState:
    """$: the change the execution is about, and what each state added so far."""

    change: ApiChange
    source: str = "event"
    evaluation: Evaluation | None = None
    applied: Applied | None = None
    redeploy: Redeployed | None = None
    raw: dict[str, Any] = field(default_factory=dict, repr=False)  # the rest ($.restore, $.error, $.approval, ...)

    @classmethod
    def from_dict(cls, data: Any) -> WorkflowState:
        if not isinstance(data, dict):
            raise StateError(f"the state is not an object (got {type(data).__name__})")
        try:
            change = ApiChange.from_dict(data["change"])
        except (KeyError, TypeError, EventError) as error:
            raise StateError(f"the state has no valid change: {error}") from None
        return cls(
            change=change,
            source=str(data.get("source", "event")),
            evaluation=Evaluation.from_dict(data["evaluation"]) if data.get("evaluation") else None,
            applied=Applied.from_dict(data["applied"]) if data.get("applied") else None,
            redeploy=Redeployed.from_dict(data["redeploy"]) if data.get("redeploy") else None,
            raw=data,
        )

    def get(self, key: str) -> Any:
        """A part no type covers yet ($.restore, $.error, $.approval, $.decision)."""
        return self.raw.get(key)
