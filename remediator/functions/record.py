"""The Record state: the change's intent closes as applied, with its one audit record."""

from __future__ import annotations

from typing import Any

from remediator.functions import coldstart
from remediator.functions.common import aws_call, ledger, read_state, remediator_for
from remediator.functions.needs import Needs
from remediator.journal import Intent
from remediator.logs import get_logger
from remediator.transaction.outcomes import Deployment
from remediator.workflow.errors import RemediationFailed
from remediator.workflow.state import Redeployed

log = get_logger("remediator.functions.record")


def needs(mode: str, slack: bool) -> Needs | None:
    # Closing the intent and putting the record is one transaction (DeleteItem and PutItem of journal
    # items, PutItem of the record); it also clears the API's failure count (DeleteItem). The API's recent write
    # windows are read first (GetItem of its last-write item), to be kept with this one for lost-update detection.
    if mode not in ("auto", "approval"):
        return None
    return Needs(put_audit=True, journal=("dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:DeleteItem"),
                 failures=("dynamodb:DeleteItem",))


def handler(event: dict[str, Any], context: Any = None) -> dict[str, Any]:
    """Close the intent with the audit record; a retry after the first attempt went through writes nothing."""
    state, change, settings = read_state(event, context)
    remediator = remediator_for(change, settings, event.get("execution"), judges=False)
    applied, deployed = state.applied, state.redeploy or Redeployed()
    if applied is None or applied.outcome != "patched" or applied.intent is None:
        raise RemediationFailed("Record reached without a written fix in $.applied")
    intent = aws_call(lambda: Intent.from_dict(applied.intent, "the workflow state's $.applied.intent"))  # one line if malformed
    if applied.findings is not None:
        intent.findings = applied.findings
    audit = aws_call(lambda: remediator.complete(
        intent, Deployment(list(deployed.stages), deployed.deployment_id, list(deployed.missing_stages))))
    aws_call(lambda: ledger(settings).clear(change.region, change.api_id))  # the fix went through: the count starts over
    return audit.to_dict()


coldstart.loaded()  # last: this function's modules are loaded (remediator/functions/coldstart.py)
