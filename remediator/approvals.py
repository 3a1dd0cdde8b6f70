"""Approval by a person in Slack: the message, and the checks a button press must pass.

The task token never leaves AWS: Slack only ever sees a short random approval ID. A press
counts only if its signature is valid, it is recent, the person is on the allow-list, and
the approval is known, pending and unexpired; anything else is refused and changes nothing.
"""

from __future__ import annotations

import json
import re
import secrets
from typing import Annotated, Any, Literal
from urllib.parse import parse_qs

import msgspec

from remediator import stored
from remediator.codec import Record
from remediator.core.undeployed import UndeployedChange

MAX_AGE_SECONDS = 5 * 60
APPROVAL_ID = re.compile(r"[A-Za-z0-9_-]{20,64}")
ACTIONS = {"approve": "approved", "reject": "rejected"}
# Every status a stored request can have (remediator.stored.ApprovalStatus decodes exactly these).
APPROVAL_STATUSES = ("pending", "approved", "rejected", "timed-out", "applied", "failed", "superseded")


def new_approval_id() -> str:
    return secrets.token_urlsafe(18)


class ApprovalRequest(Record):
    """A pending change waiting for a person; stored server-side with the task token. As stored, decoded strictly
    by remediator.codec: its task token and patch decide what an approval resumes, so anything the bot never
    writes raises StoredError naming the source."""

    codec_where = "approval request"

    approval_id: stored.ApprovalId
    # A Step Functions execution name: 1 to 80 characters (Step Functions API Reference, StartExecution.name).
    execution: Annotated[str, msgspec.Meta(min_length=1, max_length=80)]
    # Step Functions task tokens are up to 1024 characters (SendTaskSuccess.taskToken).
    task_token: Annotated[str, msgspec.Meta(min_length=1, max_length=1024)]
    account: stored.Account
    region: stored.Region
    api_id: stored.RestApiId
    api_name: stored.Name
    changed_by: stored.Text
    findings: stored.FindingDicts
    patch_operations: stored.PatchDicts
    policy_before: stored.Policy
    expires_at: stored.WholeSeconds
    status: stored.ApprovalStatus = "pending"  # APPROVAL_STATUSES
    channel: stored.Name | None = None
    ts: stored.Name | None = None
    decision: Literal["approved", "rejected"] | None = None  # kept when the status moves on
    decided_by: stored.Name | None = None
    decided_at: stored.WholeSeconds | None = None
    detail: stored.Text = ""
    stages: stored.StageNames = msgspec.field(default_factory=list)
    # Edits of the API its stages do not serve yet, which the fix's redeploy publishes too: approving publishes them.
    undeployed: stored.UndeployedDicts = msgspec.field(default_factory=list)


class CallbackRejected(Exception):
    """A Slack request that must not change anything; `status` is the HTTP status to answer with."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


class ButtonPress(msgspec.Struct, frozen=True):
    approval_id: str
    action: str  # approve | reject
    user_id: str
    user_name: str


def verify_request(headers: dict[str, str], body: str, signing_secret: str, now: int) -> None:
    """Slack's signature over v0:{timestamp}:{raw body}, compared in constant time, at most 5 minutes old."""
    normalized = {k.lower(): v for k, v in headers.items()}
    timestamp = normalized.get("x-slack-request-timestamp", "")
    signature = normalized.get("x-slack-signature", "")
    if not (isinstance(timestamp, str) and timestamp.isascii() and timestamp.isdigit() and len(timestamp) <= 12):
        raise CallbackRejected(401, "missing or malformed Slack signature headers")
    # A signature is "v0=" and hex digits; anything else (non-ASCII, which makes compare_digest raise) is refused.
    if not isinstance(signature, str) or not signature.isascii() or not signature.startswith("v0=") or len(signature) > 200:
        raise CallbackRejected(401, "missing or malformed Slack signature headers")
    if abs(now - int(timestamp)) > MAX_AGE_SECONDS:
        raise CallbackRejected(401, f"request timestamp is {abs(now - int(timestamp))} s from now (more than {MAX_AGE_SECONDS} s)")
    from slack_sdk.signature import SignatureVerifier  # only the callback verifies: others never import it

    verifier = SignatureVerifier(signing_secret, clock=_FixedClock(now))
    if not verifier.is_valid(body=body, timestamp=timestamp, signature=signature):
        raise CallbackRejected(401, "invalid Slack signature")


class _FixedClock:
    def __init__(self, now: int) -> None:
        self._now = now

    def now(self) -> float:
        return float(self._now)


def read_button_press(body: str, allowed_users: frozenset[str]) -> ButtonPress:
    """The approve/reject press in an interactive payload, from a person on the allow-list."""
    try:
        form = parse_qs(body, strict_parsing=True)
        payload = json.loads(form["payload"][0])
        action = payload["actions"][0]
        user = payload["user"]
        action_id, approval_id, user_id = action["action_id"], action["value"], user["id"]
    except (ValueError, KeyError, IndexError, TypeError) as error:
        raise CallbackRejected(400, f"malformed interactive payload ({type(error).__name__})") from None
    if payload.get("type") != "block_actions" or not isinstance(action_id, str) or action_id not in ACTIONS:
        raise CallbackRejected(400, f"unexpected interaction {payload.get('type')}/{action_id}")
    if not isinstance(approval_id, str) or not APPROVAL_ID.fullmatch(approval_id):
        raise CallbackRejected(400, "malformed approval ID")
    if not isinstance(user_id, str) or user_id not in allowed_users:
        raise CallbackRejected(403, f"Slack user {user_id} is not an approver")
    return ButtonPress(approval_id, action_id, str(user_id), str(user.get("username") or user.get("name") or user_id))


# --- the message --------------------------------------------------------------------------------

def principal_diff(before: str, after_operations: list[dict[str, str]]) -> list[str]:
    """Readable lines: which AWS principals go, which stay."""
    from remediator.core.policy import PolicyError, aws_principals, parse_policy  # only the message reads policies

    try:
        old = aws_principals(parse_policy(before))
        new = aws_principals(parse_policy(after_operations[0]["value"])) if after_operations else old
    except (PolicyError, KeyError, IndexError):
        return ["(policy could not be read)"]
    lines = [f"- {p}" for p in old if p not in new] + [f"+ {p}" for p in new if p not in old]
    lines += [f"  {p}" for p in old if p in new]
    return lines


_HEADLINES = {
    "pending": ":warning: Approval needed: remove untrusted principals",
    "proposal": ":memo: Proposed fix (dry run: nothing changed)",
    "result": ":white_check_mark: Fixed",
    "approved": ":hourglass: Approved, applying",
    "applied": ":white_check_mark: Approved and applied",
    "rejected": ":no_entry: Rejected: nothing changed",
    "timed-out": ":clock3: Approval timed out: nothing changed",
    "failed": ":x: Remediation failed: see the notification topic",
    "superseded": ":arrows_counterclockwise: Superseded: the policy changed, nothing applied",
}


SECTION_LIMIT = 3000  # Block Kit: a section's text
FIELD_LIMIT = 2000  # Block Kit: each of a section's fields


def escape(text: Any) -> str:
    """Text someone else chose (an API name, a principal, a Sid, a caller), made inert in Slack mrkdwn:
    `&`, `<` and `>` would make mentions (`<!channel>`) and disguised links; a backtick would end a code span."""
    return str(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace("`", "'")


def _capped(title: str, items: list[str], separator: str, limit: int = SECTION_LIMIT, code: bool = False) -> str:
    """`title` and as many items as fit within Slack's limit, then how many more there are (the full list is in
    the audit record and the SNS notification)."""
    fence = "```" if code else ""
    room = limit - len(title) - 2 * len(fence) - 70  # 70: the "... and N more" line
    shown: list[str] = []
    used = 0
    for item in items:
        cost = len(item) + (len(separator) if shown else 0)
        if used + cost > room:
            break
        shown.append(item)
        used += cost
    if items and not shown:  # one item longer than the room: shown cut
        shown = [items[0][: max(0, room)]]
    omitted = len(items) - len(shown)
    text = title + fence + (separator.join(shown) or "(none)") + fence
    if omitted:
        text += f"\n… and {omitted} more (all of them in the audit record)"
    return text[:limit]


def message(request: ApprovalRequest, state: str, buttons: bool) -> tuple[str, list[dict[str, Any]]]:
    """(fallback text, Block Kit blocks) for a request in a given state; everything a user chose is escaped,
    and every section stays within Block Kit's limits."""
    headline = _HEADLINES.get(state, state)
    text = f"{headline} on API {escape(request.api_name)} ({request.api_id}) in {request.account}/{request.region}"
    findings = [f"• `{escape(f.get('kind'))}` `{escape(f.get('principal'))}` ({escape(f.get('remediation'))}): {escape(f.get('detail'))}"
                for f in request.findings]
    removed = [f"`{escape(f['principal'])}`" for f in request.findings if f.get("remediation") == "remove"]
    diff = [escape(line) for line in principal_diff(request.policy_before, request.patch_operations)]
    patch = [escape(line) for line in json.dumps(request.patch_operations, indent=1).splitlines()]
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": headline[:150], "emoji": True}},
        {"type": "section", "fields": [
            {"type": "mrkdwn", "text": f"*API*\n{escape(request.api_name)} (`{escape(request.api_id)}`)"[:FIELD_LIMIT]},
            {"type": "mrkdwn", "text": f"*Account / region*\n{escape(request.account)} / {escape(request.region)}"[:FIELD_LIMIT]},
            {"type": "mrkdwn", "text": f"*Changed by*\n{escape(request.changed_by)}"[:FIELD_LIMIT]},
            {"type": "mrkdwn", "text": f"*Execution*\n{escape(request.execution)}"[:FIELD_LIMIT]},
        ]},
        {"type": "section", "text": {"type": "mrkdwn", "text": _capped("*Findings*\n", findings, "\n")}},
        {"type": "section", "text": {"type": "mrkdwn", "text": _capped("*To be removed*\n", removed, ", ")}},
        {"type": "section", "text": {"type": "mrkdwn", "text": _capped("*Principals (before → after)*\n", diff, "\n", code=True)}},
        {"type": "section", "text": {"type": "mrkdwn", "text": _capped("*Patch operations*\n", patch, "\n", code=True)}},
    ]
    if request.undeployed:  # a redeploy publishes the whole API: what else goes live with the fix
        edits = [f"• {escape(UndeployedChange.from_dict(c).describe())}" for c in request.undeployed]
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": _capped(
            "*Also published by the redeploy (undeployed edits; approving publishes them)*\n", edits, "\n")}})
    if request.decided_by:
        blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text":
                      f"{(request.decision or 'decided').capitalize()} by <@{request.decided_by}> at <!date^{request.decided_at}^{{date_short_pretty}} {{time}}|{request.decided_at}>"}]})
    if request.detail:
        blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": escape(request.detail)[:2000]}]})
    if buttons:
        blocks.append({"type": "actions", "block_id": "decision", "elements": [
            {"type": "button", "action_id": "approve", "style": "primary", "value": request.approval_id,
             "text": {"type": "plain_text", "text": "Approve"}},
            {"type": "button", "action_id": "reject", "style": "danger", "value": request.approval_id,
             "text": {"type": "plain_text", "text": "Reject"}},
        ]})
    return text, blocks
