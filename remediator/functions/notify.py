"""The notifying states: a proposal, findings for review, the result of a fix, or a failure."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from botocore.exceptions import ClientError

from remediator import clock
from remediator.adapters.dynamodb import ApprovalStore, FailureLedger, NoticeLedger
from remediator.adapters.slack import SlackUnavailable
from remediator.adapters.sns import publish
from remediator.approvals import message
from remediator.events import ApiChange
from remediator.functions import coldstart, common, decision, security_hub
from remediator.functions.common import Settings, aws_call, ledger, read_state, request_from_state
from remediator.functions.needs import Needs
from remediator.logs import get_logger
from remediator.guard import policy_digest
from remediator.transaction.planning import Verdict, how_to_proceed
from remediator.workflow.state import Evaluation, Redeployed, WorkflowState

log = get_logger("remediator.functions.notify")


def needs(mode: str, slack: bool) -> Needs | None:
    """With a channel it looks for the execution's approval and posts or updates the message (bot token);
    in approval mode it records the outcome on the approval; a failed fix adds to the API's count. It imports the API's
    finding into Security Hub (remediator.functions.security_hub)."""
    slack = slack or mode == "approval"
    return Needs(
        publish=True,
        approvals=(("dynamodb:GetItem",) if slack else ()) + (("dynamodb:UpdateItem",) if mode == "approval" else ()),
        failures=("dynamodb:UpdateItem",) if mode in ("auto", "approval") else (),
        notices=("dynamodb:GetItem", "dynamodb:PutItem"),  # findings (and a dry run's proposals) are told once
        slack_token=slack,
        import_findings=True,
    )


# What is told once per set of findings: findings for a person's review, and a dry run's proposal (nothing
# changes in dry-run mode, so the same proposal would come back every day).
TOLD_ONCE = ("findings", "proposal")


def handler(event: dict[str, Any], context: Any = None) -> dict[str, Any]:
    """Publish a proposal, findings for review, the result of a fix, or a failure."""
    state, change, settings = read_state(event, context)
    kind = event.get("kind", "notice")
    evaluation = state.evaluation or Evaluation("", settings.mode)
    name = evaluation.name or change.api_id
    subjects = {
        "proposal": f"Proposed fix for API {name} ({change.region})",
        "findings": f"Findings to review on API {name} ({change.region})",
        "result": f"Fixed API {name} ({change.region})",
        "failure": f"Remediation FAILED for API {name} ({change.region})",
        "rejected": f"Fix rejected for API {name} ({change.region}): nothing changed",
        "timeout": f"Approval timed out for API {name} ({change.region}): nothing changed",
    }
    body = {
        "kind": kind,
        "mode": settings.mode,
        "account": change.account,
        "region": change.region,
        "api_id": change.api_id,
        "api_name": evaluation.name or None,
        "changed_by": change.caller.describe(),
        "event": f"{change.event_name} {change.event_id}",
        "execution": event.get("execution"),
        "findings": evaluation.findings,
        # who can actually call (remediator.core.access): the grade, and per finding the methods it reaches
        **({"severity": evaluation.severity, "access": evaluation.access} if evaluation.severity else {}),
        "patch_operations": (state.applied.patch_operations if state.applied else []) or evaluation.patch_operations,
    }
    if evaluation.error:  # a policy that cannot be read: no findings to show, so say why
        body["reason"] = evaluation.error
    if kind == "findings":
        _blocked(body, subjects, evaluation, settings, f"{name} ({change.region})")
    if evaluation.lost_update:  # who changed the policy, when, and what they wrote, before the bot's write replaced it
        body["lost_update"] = evaluation.lost_update
        subjects["findings"] = f"A change to API {name} ({change.region}) was written over by the remediator"
    if kind == "result":
        deployed = state.redeploy or Redeployed()
        body["stages_redeployed"] = deployed.stages
        body["deployment_id"] = deployed.deployment_id
        # what the redeploy published besides the fix (undeployed_changes publish, or approved), as the change planned it
        body["undeployed_changes_published"] = list(((state.applied.intent if state.applied else None) or {}).get("undeployed") or [])
    if kind == "failure":
        body["error"] = state.get("error")
        body["restore"] = (state.get("restore") or {}).get("result")
        if state.evaluation is not None and evaluation.verdict == Verdict.FIX.value and settings.mode != "dry-run":
            failures = aws_call(lambda: ledger(settings).add(change.region, change.api_id, policy_digest(evaluation.policy)))
            body["consecutive_failures"] = failures
            if failures >= FailureLedger.LIMIT:
                body["needs_person"] = (f"the fix failed {failures} times in a row on this policy; it is not attempted "
                                        "again automatically until the policy changes")
                subjects["failure"] = f"Remediation FAILED {failures} times, needs a person: API {name} ({change.region})"
    if kind in ("rejected", "timeout"):
        body["decision"] = state.get("decision") or state.get("approval")
    # Security Hub first: a retry of this state (throttling) must not publish the notice twice.
    _to_security_hub(kind, state, change, settings)
    notices = NoticeLedger(common.clients(), settings.audit_table)
    place = settings.notice_place(change.account, change.region)
    # The trigger compares with the same digest before it starts an execution (decision.notice_fingerprint, one formula).
    fingerprint = decision.notice_fingerprint(evaluation) if kind in TOLD_ONCE else None
    if fingerprint is not None and aws_call(lambda: notices.fingerprint(place, change.api_id)) == fingerprint:
        log.info("not_told_again", kind=kind, fingerprint=fingerprint)  # the same findings as last time: nobody is told twice
        return {"kind": kind, "message_id": None, "slack": None, "unchanged": True}
    message_id = aws_call(lambda: publish(common.clients(), settings.topic_arn, subjects.get(kind, f"API {name}"), body))
    if fingerprint is not None:
        told_at = datetime.fromtimestamp(clock.now(), UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        aws_call(lambda: notices.remember(place, change.api_id, fingerprint, name, evaluation.verdict, told_at))
    log.info("notified", kind=kind, message_id=message_id)
    slack = tell_slack(kind, state, change, settings, event.get("execution") or "", body) if settings.slack_enabled else None
    return {"kind": kind, "message_id": message_id, "slack": slack}


def _blocked(body: dict[str, Any], subjects: dict[str, str], evaluation: Evaluation, settings: Settings, api: str) -> None:
    """A fix not made because its redeploy would publish others' undeployed edits: the fix it needs (patch_operations)
    and what stands in its way."""
    if evaluation.verdict != Verdict.BLOCKED.value:
        return
    body["blocked_by_undeployed_changes"] = evaluation.undeployed_changes
    body["how_to_proceed"] = how_to_proceed(settings.undeployed_changes)
    subjects["findings"] = f"Fix of API {api} not applied: undeployed edits would be published with it"


def _to_security_hub(kind: str, state: WorkflowState, change: ApiChange, settings: Settings) -> None:
    """The API's finding as this outcome leaves it: open (FAILED) with a note saying why, or PASSED once a fix left
    nothing untrusted (Security Hub then resolves it). Told once where auto finds Security Hub not enabled."""
    evaluation = state.evaluation
    if evaluation is None or kind not in security_hub.NOTES:
        return
    findings = list(evaluation.findings)
    if kind == "result":  # what the fix removed is gone; what is reported only is still there
        findings = [f for f in findings if f.get("remediation") != "remove"]
    compliant = not findings if kind == "result" else evaluation.compliant
    note = None if compliant else security_hub.NOTES[kind]
    security_hub.send(settings, change.region, [security_hub.finding(
        change.account, change.region, change.api_id, evaluation.name, findings, compliant, evaluation.exempt, note)])
    security_hub.tell_off_once(settings, change.account, change.region)


def tell_slack(kind: str, state: WorkflowState, change: ApiChange, settings: Settings, execution: str,
                body: dict[str, Any]) -> str | None:
    """Update the approval message in place, or post proposals and results as messages without buttons.

    Slack is a courtesy here: the SNS notification above is the record, so a Slack failure is logged, not raised.
    """
    store = ApprovalStore(common.clients(), settings.audit_table)
    try:
        request = store.for_execution(execution)
        if request is not None:
            request.status = {"result": "applied", "rejected": "rejected", "timeout": "timed-out", "failure": "failed"}.get(kind, request.status)
            if kind == "result":
                request.stages = list(body.get("stages_redeployed") or [])
                request.detail = f"Redeployed stages: {', '.join(request.stages) or 'none'} (deployment {body.get('deployment_id')})"
            elif kind == "timeout":
                request.detail = f"No decision within {settings.approval_timeout_seconds} s; nothing was changed."
            store.save(request)
            if request.channel and request.ts:
                text, blocks = message(request, request.status, buttons=False)
                settings.slack().update(request.channel, request.ts, text, blocks)
            return "updated"
        if kind not in ("proposal", "result"):
            return None
        request = request_from_state(state, change, execution, "", 0)
        text, blocks = message(request, kind, buttons=False)
        settings.slack().post(text, blocks)
        return "posted"
    except (SlackUnavailable, ClientError, LookupError) as error:
        log.warning("slack_not_told", kind=kind, error=str(error))
        return "failed"


coldstart.loaded()  # last: this function's modules are loaded (remediator/functions/coldstart.py)
