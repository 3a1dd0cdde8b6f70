"""Lambda handlers: parse the input, call the core and the adapters, return plain JSON.

`trigger` and `sweep` start the workflow; the others are its states. Every state gets
{"input": <state>, "execution": <name>, "kind"?: ...} from the definition's Parameters.
"""

from __future__ import annotations

import base64
import os
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from remediator.adapters.apigateway import ApiGatewayAdapter, ApiNotFound, RedeployFailed, RestApi
from remediator.adapters.clients import ClientFactory
from remediator.adapters.dynamodb import ApprovalConflict, ApprovalStore, AuditTable, FailureLedger
from remediator.adapters.secrets import secret_value
from remediator.adapters.slack import SlackChannel, SlackUnavailable
from remediator.adapters.sns import publish
from remediator.adapters.ssm import trust_lists
from remediator.adapters.stepfunctions import TaskGone, answer_task, start_execution
from remediator.approvals import ApprovalRequest, CallbackRejected, message, new_approval_id, read_button_press, verify_request
from remediator.adapters.sts import caller_identity
from remediator.core import TrustConfig
from remediator.events import ApiChange, Caller, EventError, Ignored, parse_event
from remediator.logs import bind, get_logger
from remediator.audit import AuditRecord
from remediator.workflow import MODES, errors
from remediator.workflow.state import Applied, Evaluation, Redeployed, StateError, WorkflowState
from remediator.workflow.errors import RemediationFailed
from remediator.remediation import (
    DEFAULT_EXEMPT_TAG_KEY,
    Patched,
    Remediator,
    StageSelection,
    SweepSettings,
    Verdict,
    assess,
    policy_digest,
)

log = get_logger("remediator.handlers")



@cache
def clients() -> ClientFactory:
    """One client factory per Lambda container (AWS_ENDPOINT_URL points it at an emulator locally)."""
    return ClientFactory()


@dataclass(frozen=True)
class Settings:
    """What the stack configures through the environment."""

    mode: str
    trust_parameter: str
    exempt_tag_key: str
    exempt_api_ids: frozenset[str]
    stages: str
    remove_wildcards: bool
    audit_table: str
    topic_arn: str
    state_machine_arn: str
    slack_channel: str = ""
    slack_token_secret: str = ""
    slack_signing_secret: str = ""
    slack_api_url: str | None = None
    approvers: frozenset[str] = frozenset()
    approval_timeout_seconds: int = 24 * 3600
    own_roles: frozenset[str] = frozenset()

    @classmethod
    def from_environment(cls) -> Settings:
        env = os.environ
        mode = env.get("REMEDIATOR_MODE", "dry-run")
        if mode not in MODES:
            raise RemediationFailed(f"REMEDIATOR_MODE {mode!r} is not one of {', '.join(MODES)}")
        return cls(
            mode=mode,
            trust_parameter=env.get("TRUST_PARAMETER_NAME", ""),
            exempt_tag_key=env.get("EXEMPT_TAG_KEY", DEFAULT_EXEMPT_TAG_KEY),
            exempt_api_ids=frozenset(i.strip() for i in env.get("EXEMPT_API_IDS", "").split(",") if i.strip()),
            stages=env.get("REDEPLOY_STAGES", "all"),
            remove_wildcards=env.get("REMOVE_WILDCARD_PRINCIPALS", "false").lower() == "true",
            audit_table=env.get("AUDIT_TABLE_NAME", ""),
            topic_arn=env.get("TOPIC_ARN", ""),
            state_machine_arn=env.get("STATE_MACHINE_ARN", ""),
            slack_channel=env.get("SLACK_CHANNEL", ""),
            slack_token_secret=env.get("SLACK_BOT_TOKEN_SECRET", ""),
            slack_signing_secret=env.get("SLACK_SIGNING_SECRET_SECRET", ""),
            slack_api_url=env.get("SLACK_API_URL") or None,
            approvers=frozenset(u.strip() for u in env.get("APPROVER_USER_IDS", "").split(",") if u.strip()),
            approval_timeout_seconds=int(env.get("APPROVAL_TIMEOUT_SECONDS", str(24 * 3600))),
            own_roles=frozenset(r.strip() for r in env.get("REMEDIATOR_ROLE_ARNS", "").split(",") if r.strip()),
        )

    @property
    def slack_enabled(self) -> bool:
        return bool(self.slack_channel and self.slack_token_secret)

    def slack(self, timeout: int = 5, retry: bool = True) -> SlackChannel:
        token = secret_value(clients(), self.slack_token_secret)
        return SlackChannel(token, self.slack_channel, self.slack_api_url, timeout=timeout, retry=retry)

    def sweep_settings(self, account: str, region: str, read_trust_lists: bool = True) -> SweepSettings:
        """The trusted lists are read at run time (so they change without a redeploy), by the states that judge."""
        read = read_trust_lists and self.trust_parameter
        accounts, orgs = trust_lists(clients(), self.trust_parameter) if read else (frozenset(), frozenset())
        trust = TrustConfig(
            owner_account=account,
            trusted_accounts=accounts,
            trusted_org_ids=orgs,
            partition=partition_of(region),
            remove_wildcard_principals=self.remove_wildcards,
        )
        return SweepSettings(trust, self.exempt_tag_key, self.exempt_api_ids, StageSelection(self.stages))


def partition_of(region: str) -> str:
    if region.startswith("us-gov-"):
        return "aws-us-gov"
    if region.startswith("cn-"):
        return "aws-cn"
    if region.startswith("us-isob-"):
        return "aws-iso-b"
    if region.startswith("us-iso-"):
        return "aws-iso"
    return "aws"


# --- starting the workflow ----------------------------------------------------------------------

def trigger(event: dict[str, Any], context: Any = None) -> dict[str, Any]:
    """EventBridge rule target: one execution per CloudTrail event, named after its event ID.

    The owner is this function's own account, never the event's: an event naming another account is
    refused. The remediator's own writes are ignored here too (the rule already filters them out).
    """
    settings = Settings.from_environment()
    try:
        change = parse_event(event, owner_account=_account(context), own_roles=settings.own_roles)
    except EventError as error:
        bind(event_id=event.get("id") if isinstance(event, dict) else None)
        log.error("event_rejected", error=str(error))
        return {"status": "rejected", "error": str(error)}
    if isinstance(change, Ignored):
        bind(event_id=change.event_id)
        log.info("event_ignored", reason=change.reason)
        return {"status": "ignored", "reason": change.reason}
    bind(event_id=change.event_id, execution=change.execution_name, api_id=change.api_id)
    status = start_execution(clients(), settings.state_machine_arn, change.execution_name, {"change": change.to_dict(), "source": "event"})
    log.info("execution_" + status, event_name=change.event_name)
    return {"status": status, "execution_name": change.execution_name}


def sweep(event: dict[str, Any], context: Any = None) -> dict[str, Any]:
    """Schedule target: every API of this region that needs attention goes through the same workflow."""
    settings = Settings.from_environment()
    region = os.environ.get("AWS_REGION") or clients().default_region
    account = _account(context)
    sweep_settings = settings.sweep_settings(account, region)
    hour = datetime.now(UTC).strftime("%Y%m%dT%H")
    bind(sweep=hour, region=region)
    counts = {"apis": 0, "started": 0, "duplicate": 0}
    for api in ApiGatewayAdapter(clients()).list_rest_apis(region):
        counts["apis"] += 1
        if not assess(api, sweep_settings).verdict().needs_attention:
            continue
        change = ApiChange(api.api_id, region, account, f"{hour}-{api.api_id}", "ScheduledSweep",
                           Caller("Scheduler", None, None, "events.amazonaws.com", None))
        status = start_execution(clients(), settings.state_machine_arn, change.execution_name, {"change": change.to_dict(), "source": "sweep"})
        counts[status] += 1
    log.info("sweep_done", **counts)
    return counts


def _account(context: Any) -> str:
    arn = getattr(context, "invoked_function_arn", "") or ""
    parts = arn.split(":")
    return parts[4] if len(parts) > 4 and parts[4] else caller_identity(clients()).account


# --- the workflow's states ----------------------------------------------------------------------

def _state(event: dict[str, Any], context: Any) -> tuple[WorkflowState, ApiChange, Settings]:
    try:
        state = WorkflowState.from_dict(event["input"] if isinstance(event, dict) else None)
    except (KeyError, StateError) as error:
        raise RemediationFailed(f"state input is not a workflow state: {error}") from None
    change = state.change
    bind(event_id=change.event_id, execution=event.get("execution"), api_id=change.api_id, region=change.region)
    owner = _account(context)
    if change.account != owner:
        raise RemediationFailed(f"the change names account {change.account}, not this remediator's account {owner}; nothing changed")
    return state, change, Settings.from_environment()


def _remediator(change: ApiChange, settings: Settings, execution: str | None, judges: bool = True) -> Remediator:
    """`judges`: whether this state evaluates policies (and so needs the trusted lists)."""
    sweep_settings = settings.sweep_settings(change.account, change.region, read_trust_lists=judges)
    audit = AuditTable(clients(), settings.audit_table)
    triggered_by = f"{change.event_name} {change.event_id} by {change.caller.describe()} (execution {execution})"
    return Remediator(ApiGatewayAdapter(clients()), sweep_settings, audit, change.account, triggered_by)


def _aws_call(action: Any) -> Any:
    """An AWS error that outlived botocore's retries becomes the workflow's error for it: `Throttled` and
    `Transient` are retried by the state machine, anything else (`RemediationFailed`) is caught."""
    try:
        return action()
    except ClientError as error:
        raise errors.from_aws(error.response.get("Error", {}).get("Code"), str(error)) from None
    except RedeployFailed as error:
        code = error.cause.response.get("Error", {}).get("Code") if isinstance(error.cause, ClientError) else None
        raise errors.from_aws(code, str(error)) from None


def evaluate(event: dict[str, Any], context: Any = None) -> dict[str, Any]:
    """Read the API's policy as it is now (never the event's copy) and decide what to do."""
    _, change, settings = _state(event, context)
    remediator = _remediator(change, settings, event.get("execution"))
    try:
        api = _aws_call(lambda: remediator.adapter.get_rest_api(change.region, change.api_id))
    except ApiNotFound:
        log.info("api_gone")
        return Evaluation(Verdict.GONE.value, settings.mode).to_dict()
    report = assess(api, remediator.settings)
    failures = 0
    if report.verdict() is Verdict.FIX and settings.mode != "dry-run":
        # A fix that failed LIMIT times on this very policy waits for a person (or a policy change).
        failures = _aws_call(lambda: _ledger(settings).count(change.region, change.api_id, policy_digest(api.policy)))
    verdict = report.verdict(failures, FailureLedger.LIMIT).value
    log.info("evaluated", verdict=verdict, failures=failures,
             findings=len(report.evaluation.findings) if report.evaluation else None)
    return Evaluation.from_dict({"verdict": verdict, "mode": settings.mode, "policy": api.policy, "failures": failures,
                                 "approval_timeout_seconds": settings.approval_timeout_seconds, **report.to_dict()}).to_dict()


def _ledger(settings: Settings) -> FailureLedger:
    return FailureLedger(clients(), settings.audit_table)


def apply(event: dict[str, Any], context: Any = None) -> dict[str, Any]:
    """Re-read, re-plan if the policy changed since Evaluate, and write the fix."""
    state, change, settings = _state(event, context)
    remediator = _remediator(change, settings, event.get("execution"))
    evaluation = state.evaluation
    expected = evaluation.policy if evaluation else None
    # In approval mode a person approved this exact patch of this exact policy; anything else is asked again.
    approved = (evaluation.patch_operations if evaluation else []) if settings.mode == "approval" else None
    patched: Patched = _aws_call(lambda: remediator.patch(change.region, change.api_id, expected, approved))
    if patched.action == "failed":
        raise RemediationFailed(patched.detail)
    if patched.action == "stale" or (approved is not None and patched.action in ("unchanged", "exempt")):
        log.warning("approved_plan_is_stale", outcome=patched.action)
        _supersede(settings, event.get("execution") or "")
        return Applied("stale", patched.detail, replanned=True).to_dict()
    log.info("applied", outcome=patched.action, replanned=patched.replanned)
    return Applied(patched.action, patched.detail, patched.replanned, patched.before, patched.written, patched.operations,
                   patched.report.to_dict() if patched.report.evaluation else None).to_dict()


def redeploy(event: dict[str, Any], context: Any = None) -> dict[str, Any]:
    """One CreateDeployment for the API, its other stages pointed at it."""
    state, change, settings = _state(event, context)
    remediator = _remediator(change, settings, event.get("execution"), judges=False)
    api = RestApi(change.region, change.api_id, state.evaluation.name if state.evaluation else "", None, {})
    try:
        stages, deployment_id, missing = _aws_call(lambda: remediator.redeploy(api))
    except ApiNotFound:
        raise RemediationFailed(f"{change.region}/{change.api_id}: API was deleted before its redeploy") from None
    log.info("redeployed", stages=stages, deployment_id=deployment_id)
    return Redeployed(stages, deployment_id, missing).to_dict()


def restore(event: dict[str, Any], context: Any = None) -> dict[str, Any]:
    """After a failed redeploy: put the previous policy back so the API is never left half-fixed."""
    state, change, settings = _state(event, context)
    remediator = _remediator(change, settings, event.get("execution"), judges=False)
    applied = state.applied
    if applied is None:
        raise RemediationFailed("RestorePolicy reached without $.applied: nothing was written, nothing to restore")
    try:
        result = _aws_call(lambda: remediator.restore(change.region, change.api_id, applied.before, applied.written))
    except ApiNotFound:
        result = "not restored: the API was deleted"
    log.warning("restore", result=result)
    return {"result": result}


def record(event: dict[str, Any], context: Any = None) -> dict[str, Any]:
    """Store the audit record of the change in DynamoDB."""
    state, change, settings = _state(event, context)
    remediator = _remediator(change, settings, event.get("execution"), judges=False)
    applied, deployed, evaluation = state.applied, state.redeploy or Redeployed(), state.evaluation
    if applied is None or applied.outcome != "patched":
        raise RemediationFailed("Record reached without a written fix in $.applied")
    findings = applied.findings if applied.findings is not None else (evaluation.findings if evaluation else [])
    audit = _aws_call(lambda: remediator.record_change(AuditRecord(
        account=change.account, region=change.region, api_id=change.api_id, api_name=evaluation.name if evaluation else "",
        action="remediate", policy_before=applied.before, policy_after=applied.written, patch_operations=applied.patch_operations,
        stages_redeployed=list(deployed.stages), deployment_id=deployed.deployment_id, triggered_by=remediator.triggered_by,
        findings=findings)))
    _aws_call(lambda: _ledger(settings).clear(change.region, change.api_id))  # the fix went through: the count starts over
    return audit.to_dict()


def notify(event: dict[str, Any], context: Any = None) -> dict[str, Any]:
    """Publish a proposal, findings for review, the result of a fix, or a failure."""
    state, change, settings = _state(event, context)
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
        "patch_operations": (state.applied.patch_operations if state.applied else []) or evaluation.patch_operations,
    }
    if kind == "result":
        deployed = state.redeploy or Redeployed()
        body["stages_redeployed"] = deployed.stages
        body["deployment_id"] = deployed.deployment_id
    if kind == "failure":
        body["error"] = state.get("error")
        body["restore"] = (state.get("restore") or {}).get("result")
        if state.evaluation is not None and evaluation.verdict == Verdict.FIX.value and settings.mode != "dry-run":
            failures = _aws_call(lambda: _ledger(settings).add(change.region, change.api_id, policy_digest(evaluation.policy)))
            body["consecutive_failures"] = failures
            if failures >= FailureLedger.LIMIT:
                body["needs_person"] = (f"the fix failed {failures} times in a row on this policy; it is not attempted "
                                        "again automatically until the policy changes")
                subjects["failure"] = f"Remediation FAILED {failures} times, needs a person: API {name} ({change.region})"
    if kind in ("rejected", "timeout"):
        body["decision"] = state.get("decision") or state.get("approval")
    message_id = _aws_call(lambda: publish(clients(), settings.topic_arn, subjects.get(kind, f"API {name}"), body))
    log.info("notified", kind=kind, message_id=message_id)
    slack = _tell_slack(kind, state, change, settings, event.get("execution") or "", body) if settings.slack_enabled else None
    return {"kind": kind, "message_id": message_id, "slack": slack}


def _tell_slack(kind: str, state: WorkflowState, change: ApiChange, settings: Settings, execution: str,
                body: dict[str, Any]) -> str | None:
    """Update the approval message in place, or post proposals and results as messages without buttons.

    Slack is a courtesy here: the SNS notification above is the record, so a Slack failure is logged, not raised.
    """
    store = ApprovalStore(clients(), settings.audit_table)
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
        request = _request_from_state(state, change, execution, "", 0)
        text, blocks = message(request, kind, buttons=False)
        settings.slack().post(text, blocks)
        return "posted"
    except (SlackUnavailable, ClientError, LookupError) as error:
        log.warning("slack_not_told", kind=kind, error=str(error))
        return "failed"


def _request_body(event: dict[str, Any]) -> str:
    """The raw body exactly as Slack signed it; a body that is not UTF-8 text is refused, not crashed on."""
    raw = event.get("body") or ""
    if not isinstance(raw, str):
        raise CallbackRejected(400, "request body is not text")
    if not event.get("isBase64Encoded"):
        return raw
    try:
        return base64.b64decode(raw, validate=True).decode("utf-8")
    except (ValueError, UnicodeDecodeError):
        raise CallbackRejected(400, "request body is not base64-encoded UTF-8 text") from None


def _supersede(settings: Settings, execution: str) -> None:
    """Say on the approved message that it no longer applies: a new proposal follows."""
    if not settings.slack_enabled:
        return
    store = ApprovalStore(clients(), settings.audit_table)
    try:
        request = store.for_execution(execution)
        if request is None:
            return
        request.status = "superseded"
        request.detail = "The policy changed after this proposal; nothing was applied. A new proposal follows."
        store.save(request)
        if request.channel and request.ts:
            settings.slack().update(request.channel, request.ts, *message(request, "superseded", buttons=False))
    except (SlackUnavailable, ClientError, LookupError) as error:
        log.warning("slack_not_told", kind="superseded", error=str(error))


def _request_from_state(state: WorkflowState, change: ApiChange, execution: str, token: str, expires_at: int) -> ApprovalRequest:
    evaluation = state.evaluation or Evaluation("", "")
    return ApprovalRequest(
        approval_id=new_approval_id(),
        execution=execution,
        task_token=token,
        account=change.account,
        region=change.region,
        api_id=change.api_id,
        api_name=evaluation.name or change.api_id,
        changed_by=change.caller.describe(),
        findings=evaluation.findings,
        patch_operations=evaluation.patch_operations,
        policy_before=evaluation.policy or "",
        expires_at=expires_at,
    )


# --- approval through Slack ---------------------------------------------------------------------

def approval(event: dict[str, Any], context: Any = None) -> dict[str, Any]:
    """The AwaitApproval task: store the token under a random ID, post the proposal with buttons.

    The state machine now waits for the callback (or its timeout); if Slack cannot be reached
    this raises, and the execution fails with a notification: nothing is applied.
    """
    state, change, settings = _state(event, context)
    token = event.get("task_token")
    if not isinstance(token, str) or not token:
        raise RemediationFailed("AwaitApproval was invoked without a task token")
    if not settings.slack_enabled:
        raise RemediationFailed("approval mode needs SLACK_CHANNEL and the Slack bot token secret")
    execution = event.get("execution") or ""
    request = _request_from_state(state, change, execution, token, int(time.time()) + settings.approval_timeout_seconds)
    store = ApprovalStore(clients(), settings.audit_table)
    store.put(request)
    text, blocks = message(request, "pending", buttons=True)
    try:
        request.channel, request.ts = settings.slack().post(text, blocks)
    except SlackUnavailable as error:
        request.status = "failed"
        store.save(request)
        raise RemediationFailed(str(error)) from None
    store.place(request.approval_id, request.channel, request.ts)
    log.info("approval_requested", approval_id=request.approval_id, channel=request.channel)
    return {"approval_id": request.approval_id}


def slack_callback(event: dict[str, Any], context: Any = None) -> dict[str, Any]:
    """Function URL for Slack's interactive payloads. The Slack signature is the authentication.

    Order matters: signature and age first (nothing else is read from a forged request), then
    the allow-list, then the approval's state, claimed atomically so a replay finds it decided.
    """
    now = int(time.time())
    bind(request="slack-callback")
    try:
        settings = Settings.from_environment()
        headers = {str(k): str(v) for k, v in (event.get("headers") or {}).items()}
        body = _request_body(event)
        method = ((event.get("requestContext") or {}).get("http") or {}).get("method", "POST")
        if method != "POST":
            raise CallbackRejected(405, f"method {method} not allowed")
        verify_request(headers, body, secret_value(clients(), settings.slack_signing_secret), now)
        press = read_button_press(body, settings.approvers)
        bind(approval_id=press.approval_id, user=press.user_id)
        store = ApprovalStore(clients(), settings.audit_table)
        pending = store.get(press.approval_id)
        if pending is None:
            raise CallbackRejected(404, "unknown approval ID")
        if pending.status != "pending":
            raise CallbackRejected(409, f"approval already {pending.status}")
        if pending.expires_at <= now:
            raise CallbackRejected(410, "approval expired")
        decision = "approved" if press.action == "approve" else "rejected"
        try:
            request = store.decide(press.approval_id, decision, press.user_id, now)
        except ApprovalConflict:
            raise CallbackRejected(409, "approval already decided or expired") from None
        output = {"decision": decision, "approval_id": request.approval_id, "approver": press.user_id, "decided_at": now}
        try:
            answer_task(clients(), request.task_token, decision == "approved", output)
        except TaskGone as gone:
            raise CallbackRejected(410, f"the workflow no longer waits for this approval ({gone})") from None
        except (ClientError, BotoCoreError) as error:
            # The workflow did not hear the decision: undo it, so that a second click is not refused as a replay.
            reopened = store.reopen(pending, decision)
            log.error("task_not_answered", error=str(error), reopened=reopened)
            raise CallbackRejected(503, "the workflow could not be told; nothing was decided, try again") from None
    except CallbackRejected as rejected:
        log.warning("callback_rejected", status=rejected.status, reason=rejected.reason)
        return {"statusCode": rejected.status, "headers": {"Content-Type": "text/plain"}, "body": rejected.reason}
    log.info("callback_accepted", decision=decision)
    try:
        text, blocks = message(request, decision, buttons=False)
        if request.channel and request.ts:
            # Slack wants the answer within 3 s; if the update does not make it, notify updates the message later.
            settings.slack(timeout=2, retry=False).update(request.channel, request.ts, text, blocks)
    except (SlackUnavailable, LookupError, ClientError) as error:
        log.warning("slack_not_updated", error=str(error))
    return {"statusCode": 200, "headers": {"Content-Type": "text/plain"}, "body": f"{decision} by <@{press.user_id}>"}
