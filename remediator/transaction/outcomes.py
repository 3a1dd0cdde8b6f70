"""What each step of a change tells its caller: `Patched` (the write), `Deployment` (the deploy) and
`FixOutcome` (one API from start to end: the CLI's fix and rollback), and the report of an API known only by
its ID or from its intent.
"""

from __future__ import annotations

from typing import Any

import msgspec

from remediator.adapters.apigateway import RestApi
from remediator.guard import UndoOf
from remediator.audit import AuditRecord
from remediator.journal import Intent
from remediator.transaction.planning import ApiReport


class FixOutcome(msgspec.Struct):
    """What a fix, a dry run or a rollback did to one API."""

    report: ApiReport
    # proposed | applied | unchanged | exempt | report-only | skipped | failed | refused | rolled-back | blocked
    action: str
    detail: str = ""
    stages_redeployed: list[str] = msgspec.field(default_factory=list)
    deployment_id: str | None = None
    audit: AuditRecord | None = None
    replanned: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {
            **self.report.to_dict(),
            "action": self.action,
            "detail": self.detail,
            "stages_redeployed": self.stages_redeployed,
            "deployment_id": self.deployment_id,
        }


class Patched(msgspec.Struct):
    """The first step of a change: its intent written and the policy patched (or why nothing was written)."""

    report: ApiReport
    action: str  # patched | busy | unchanged | exempt | skipped | failed | stale | refused | blocked
    detail: str
    intent: Intent | None = None
    # The intent as this run wrote it (its pre-image read live, its write made here): the only authority
    # an undo has to restore a wider policy. None when the change was taken over from storage.
    transaction: UndoOf | None = None
    replanned: bool = False
    wait_seconds: float = 0.0  # busy: another change of this API is in flight; look again after this
    recovered: list[str] = msgspec.field(default_factory=list)  # what reconciling a change left half-done did
    error_code: str | None = None  # failed: the AWS error code (the workflow retries throttling)

    def outcome(self) -> FixOutcome:
        return FixOutcome(self.report, self.action, self.detail, replanned=self.replanned)


class Deployment(msgspec.Struct):
    """The second step: the stages that serve the change now, or how long to wait for the account's turn."""

    stages: list[str] = msgspec.field(default_factory=list)
    deployment_id: str | None = None
    missing: list[str] = msgspec.field(default_factory=list)
    wait_seconds: float = 0.0
    ticket: int | None = None  # waiting: the place in the account's deployment queue, for the next try


def gone_report(region: str, api_id: str) -> ApiReport:
    return ApiReport(RestApi(region, api_id, "", None, {}), False, None, "API no longer exists")


def intent_report(intent: Intent) -> ApiReport:
    """What to report of an API known only from its intent."""
    return ApiReport(RestApi(intent.region, intent.api_id, intent.api_name, intent.policy_after, {}), False, None)


def gone(region: str, api_id: str) -> FixOutcome:
    return FixOutcome(gone_report(region, api_id), "skipped", f"{region}/{api_id}: API was deleted; skipped")
