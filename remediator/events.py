"""Read which REST API a CloudTrail event is about. Pure: no AWS calls.

The event only says which API to look at. Its copy of the policy is never used: the
workflow re-reads the policy from API Gateway, because an event can be stale or forged.
"""

from __future__ import annotations

import re
from typing import Annotated, Any

import msgspec

from remediator.codec import Record

WATCHED_EVENTS = ("CreateRestApi", "UpdateRestApi", "PutRestApi", "ImportRestApi")
_ID_IN_REQUEST = {"UpdateRestApi", "PutRestApi"}
EVENT_SOURCE = "apigateway.amazonaws.com"
# HTTP and WebSocket APIs (v2) share the event source; their API-level calls have names of their own,
# and their requests and answers a shape of their own (apiId, protocolType, apiEndpoint, no restApiId).
V2_EVENTS = frozenset({
    "CreateApi", "UpdateApi", "DeleteApi", "ImportApi", "ReimportApi", "ExportApi",
    "CreateApiMapping", "UpdateApiMapping", "DeleteApiMapping",
    "CreateRoute", "UpdateRoute", "DeleteRoute", "CreateRouteResponse", "UpdateRouteResponse", "DeleteRouteResponse",
})
V2_SHAPE = frozenset({"apiId", "protocolType", "apiEndpoint", "routeKey", "routeSelectionExpression"})
DETAIL_TYPE = "AWS API Call via CloudTrail"
REST_API_ID = re.compile(r"[a-z0-9]{10}")
EVENT_TIME = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z")  # CloudTrail's eventTime (UTC, seconds)
POLICY_LIMIT = 64 * 1024  # as remediator.stored.POLICY_LIMIT: the largest policy the bot reads back
REGION = re.compile(r"[a-z]{2}(-[a-z]+)+-[0-9]")
ACCOUNT = re.compile(r"[0-9]{12}")
_NAME_UNSAFE = re.compile(r"[^0-9A-Za-z_-]")

# Where UpdateRestApi's CloudTrail record has its patch: requestParameters.updateRestApiInput.patchOperations, a list of
# {op, path, value, from} (the corpus's events 08 and 09, and the local account's records; API Gateway API Reference,
# "PatchOperation", https://docs.aws.amazon.com/apigateway/latest/api/API_PatchOperation.html: the resource policy's
# path is /policy, and `from` is the source of a copy, or of a move, which the operation's enum also lists).
PATCH_OPERATIONS = ("requestParameters", "updateRestApiInput", "patchOperations")
POLICY_PATH = "/policy"
# Which UpdateRestApi calls can change the policy, as EventBridge can tell ("Content filtering in Amazon EventBridge
# event patterns", https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-event-patterns-content-based-filtering.html,
# and "Arrays in Amazon EventBridge event patterns": "If the value in the event is an array, then the event pattern
# matches if the intersection of the pattern value array and the event array is non-empty"; an array of objects is
# matched on each field over all its elements): a patch with any operation whose path (or source) starts with /policy,
# in any case. And, never to miss a change, any UpdateRestApi whose record has no patch paths at all: CloudTrail's
# requestParameters is optional ("CloudTrail record contents", Optional: True) and its shape for UpdateRestApi is not
# documented, so a record without them, or with them somewhere else, or as a string, is let through (the trigger then
# reads the API, as it does for every event). The other calls never have an updateRestApiInput: they match by the
# same `exists: false`. A name, description or tag change (or a TagResource call) starts nothing.
POLICY_PATCH: dict[str, Any] = {"$or": [
    {"path": [{"prefix": {"equals-ignore-case": POLICY_PATH}}]},
    {"from": [{"prefix": {"equals-ignore-case": POLICY_PATH}}]},
    {"path": [{"exists": False}]},
]}

# The EventBridge rule's pattern without the exclusion of the stack's own roles (event_pattern adds it).
# Failed calls changed nothing, so they never match (errorCode is set only on a failed call).
EVENT_PATTERN: dict[str, Any] = {
    "source": ["aws.apigateway"],
    "detail-type": [DETAIL_TYPE],
    "detail": {"eventSource": [EVENT_SOURCE], "eventName": list(WATCHED_EVENTS), "errorCode": [{"exists": False}],
               **{PATCH_OPERATIONS[0]: {PATCH_OPERATIONS[1]: {PATCH_OPERATIONS[2]: POLICY_PATCH}}}},
}


def event_pattern(own_role_arns: list[Any]) -> dict[str, Any]:
    """The rule's pattern: the watched calls, not failed, and not made by the remediator's own roles.

    The bot's own writes (Apply, RestorePolicy, Redeploy) are CloudTrail events too; matching them
    would start a new execution for every write, which can loop. `anything-but` alone would also drop
    every caller without a session issuer (IAM users, the root user), since EventBridge matches no
    filter but `exists: false` on a missing field; hence the `$or`. The CDK stack and the local runner
    both use this function (the ARNs are CloudFormation references in the stack).
    """
    pattern = {**EVENT_PATTERN, "detail": dict(EVENT_PATTERN["detail"])}
    if own_role_arns:
        issuer = ("userIdentity", "sessionContext", "sessionIssuer", "arn")
        pattern["detail"]["$or"] = [_nested(issuer, [{"exists": False}]), _nested(issuer, [{"anything-but": list(own_role_arns)}])]
    return pattern


def _nested(keys: tuple[str, ...], leaf: Any) -> dict[str, Any]:
    node: Any = leaf
    for key in reversed(keys):
        node = {key: node}
    return node


class EventError(ValueError):
    """An event this product does not handle; nothing is changed. The message is one line."""


def _matching(pattern: re.Pattern[str]) -> msgspec.Meta:
    """The whole string matches `pattern` (msgspec searches; `\\Z`, unlike `$`, refuses a trailing newline)."""
    return msgspec.Meta(pattern=f"^(?:{pattern.pattern})\\Z")


_Text = Annotated[str, msgspec.Meta(max_length=2048)]  # TEXT_LIMIT


class Caller(Record, frozen=True):
    """Who made the call, as CloudTrail's userIdentity says."""

    codec_error = EventError
    codec_where = "caller"

    type: _Text
    arn: _Text | None
    principal_id: _Text | None
    invoked_by: _Text | None
    session_issuer_arn: _Text | None

    def describe(self) -> str:
        who = self.session_issuer_arn or self.arn or self.principal_id or self.type
        return f"{who} via {self.invoked_by}" if self.invoked_by else who


class ApiChange(Record, frozen=True):
    """A change to a REST API that may have changed its resource policy. As the workflow carries it
    (remediator.codec): exactly these fields, each a string in its format (the caller's may be null)."""

    codec_error = EventError
    codec_where = "change"

    api_id: Annotated[str, _matching(REST_API_ID)]
    region: Annotated[str, _matching(REGION)]
    account: Annotated[str, _matching(ACCOUNT)]
    event_id: _Text
    event_name: _Text
    caller: Caller
    # When the call was made, and the policy it wrote as CloudTrail recorded it (UpdateRestApi's patch on /policy;
    # "" for a removal; None when the call does not say): how a person's write that the bot's own write landed on
    # is found and told (remediator.functions.evaluate).
    event_time: Annotated[str, _matching(EVENT_TIME)] | None = None
    written_policy: Annotated[str, msgspec.Meta(max_length=POLICY_LIMIT)] | None = None

    @property
    def execution_name(self) -> str:
        """Step Functions execution name: the same event delivered twice starts one execution."""
        return _NAME_UNSAFE.sub("-", f"{self.event_name}-{self.event_id}")[:80]


class Ignored(msgspec.Struct, frozen=True):
    """An event that is recognised but needs nothing from us (an HTTP API change, a failed call)."""

    reason: str
    event_id: str | None = None


def parse_event(event: Any, *, owner_account: str | None = None, own_roles: frozenset[str] = frozenset()) -> ApiChange | Ignored:
    """An EventBridge "AWS API Call via CloudTrail" event or a bare CloudTrail record.

    `owner_account`: the account the remediator runs in (never taken from the event). An event that
    names any other account is refused: trusting it would make the owner's own principals
    "untrusted". `own_roles`: the remediator's role ARNs; their writes are ignored, not remediated.
    """
    if not isinstance(event, dict):
        raise EventError(f"event is not a JSON object (got {type(event).__name__})")
    if "detail-type" in event or "detail" in event:
        if event.get("source") != "aws.apigateway" or event.get("detail-type") != DETAIL_TYPE:
            raise EventError(f"not an API Gateway CloudTrail event (source {event.get('source')!r}, detail-type {event.get('detail-type')!r})")
        record = event.get("detail")
        if not isinstance(record, dict):
            raise EventError("event has no CloudTrail record in 'detail'")
        return _parse_record(record, event, owner_account, own_roles)
    if "eventSource" in event:
        return _parse_record(event, {}, owner_account, own_roles)
    if "Records" in event:
        raise EventError("a trail file holds several records: pass them one at a time (parse_records)")
    raise EventError("not a CloudTrail event: no 'detail' envelope and no 'eventSource'")


def parse_member_event(event: Any, *, spoke_role_name: str, own_roles: frozenset[str] = frozenset()) -> ApiChange | Ignored:
    """Organization mode: an event a member account's spoke rule forwarded to the hub bus.

    Whose API it is comes from the envelope's `account`, which EventBridge sets to the sending account (a
    sender cannot set it); the CloudTrail record's recipientAccountId must be the same account, as must every
    account the event names. The spoke role's own writes in that account are ignored.
    """
    if not isinstance(event, dict) or "detail" not in event:
        raise EventError("organization mode takes only EventBridge events forwarded by a member account's spoke rule")
    account = event.get("account")
    if not isinstance(account, str) or not ACCOUNT.fullmatch(account):
        raise EventError(f"event account {account!r:.40} is not a 12-digit account ID")
    detail = event.get("detail")
    recipient = detail.get("recipientAccountId") if isinstance(detail, dict) else None
    if recipient != account:
        event_id = detail.get("eventID") if isinstance(detail, dict) else None
        raise EventError(f"event {str(event_id)[:60]} came from account {account} but its CloudTrail record names account "
                         f"{recipient!r:.40}; refused")
    spoke_roles = {f"arn:{partition}:iam::{account}:role/{spoke_role_name}" for partition in ("aws", "aws-us-gov", "aws-cn")}
    return parse_event(event, owner_account=account, own_roles=own_roles | spoke_roles)


def parse_records(trail_file: Any) -> list[ApiChange | Ignored]:
    """Every record of a CloudTrail log file ({"Records": [...]}); calls we do not watch are ignored there."""
    if not isinstance(trail_file, dict) or not isinstance(trail_file.get("Records"), list):
        raise EventError("not a CloudTrail log file: no 'Records' list")
    results: list[ApiChange | Ignored] = []
    for record in trail_file["Records"]:
        name = record.get("eventName") if isinstance(record, dict) else None
        if isinstance(name, str) and name not in WATCHED_EVENTS and record.get("eventSource") == EVENT_SOURCE:
            results.append(Ignored(f"{name[:100]} does not change a resource policy", _text(record.get("eventID"), "eventID")))
        else:
            results.append(parse_event(record))
    return results


def _is_v2(name: Any, request: dict[str, Any], answer: dict[str, Any]) -> bool:
    """An HTTP or WebSocket API call: by its name, or by the shape of its request or answer."""
    if name in V2_EVENTS or ("apiId" in request and "restApiId" not in request):
        return True
    if "restApiId" in request or "restApiId" in answer or name in WATCHED_EVENTS and "id" in answer:
        return False
    return bool(V2_SHAPE & (request.keys() | answer.keys()))


TEXT_LIMIT = 2048  # the longest field we take from an event (an ARN is at most 2,048 characters, IAM User Guide)
# Fields that, when present, must be strings: a number or a list in their place is a forged event.
_STRING_FIELDS = ("eventSource", "eventName", "eventID", "awsRegion", "recipientAccountId", "errorCode")
_ENVELOPE_STRINGS = ("id", "account", "region")


def _text(value: Any, where: str, optional: bool = True) -> str | None:
    """Exactly a string (or absent, when `optional`), of bounded length: never a number, list or object."""
    if value is None and optional:
        return None
    if not isinstance(value, str) or len(value) > TEXT_LIMIT:
        shown = f"of type {type(value).__name__}" if not isinstance(value, str) else f"{len(value)} characters long"
        raise EventError(f"event field {where} is {shown}, not a string of at most {TEXT_LIMIT} characters")
    return value


def _parse_record(record: dict[str, Any], envelope: dict[str, Any], owner_account: str | None = None,
                  own_roles: frozenset[str] = frozenset()) -> ApiChange | Ignored:
    for field in _STRING_FIELDS:
        _text(record.get(field), field)
    for field in _ENVELOPE_STRINGS:
        _text(envelope.get(field), field)
    source = record.get("eventSource")
    name = record.get("eventName")
    event_id = record.get("eventID") or envelope.get("id")
    if source != EVENT_SOURCE:
        raise EventError(f"event source {source!r} is not {EVENT_SOURCE}")
    if not isinstance(event_id, str) or not event_id:
        raise EventError(f"{name} event has no eventID")
    request = record.get("requestParameters") if isinstance(record.get("requestParameters"), dict) else {}
    answer = record.get("responseElements") if isinstance(record.get("responseElements"), dict) else {}
    if _is_v2(name, request, answer):
        return Ignored(f"{name} is an HTTP or WebSocket API (v2) event; only REST APIs have resource policies", event_id)
    if name not in WATCHED_EVENTS:
        raise EventError(f"event {name!r} is not one of {', '.join(WATCHED_EVENTS)}")
    if record.get("errorCode"):
        return Ignored(f"{name} failed ({record['errorCode']}); nothing changed", event_id)
    if name in _ID_IN_REQUEST:
        api_id = request.get("restApiId")
        where = "requestParameters.restApiId"
    else:
        response = record.get("responseElements") if isinstance(record.get("responseElements"), dict) else {}
        api_id = response.get("id")
        where = "responseElements.id"
    region = record.get("awsRegion") or envelope.get("region")
    account = record.get("recipientAccountId") or envelope.get("account") or _get(record, "userIdentity", "accountId")
    if owner_account is not None:
        for named in _accounts_named(record, envelope):
            if named != owner_account:
                raise EventError(f"{name} event {event_id} names account {named!r}, not this remediator's account {owner_account}; refused")
        account = owner_account
    _check_ids(api_id, region, account, where)
    caller = _caller(record.get("userIdentity"))
    if caller.session_issuer_arn is not None and caller.session_issuer_arn in own_roles:
        return Ignored(f"{name} was made by the remediator's own role {caller.session_issuer_arn}", event_id)
    written = _policy_written(request) if name == "UpdateRestApi" else None
    return ApiChange(api_id, region, account, event_id, name, caller,  # type: ignore[arg-type]
                     _event_time(record.get("eventTime")), written)


def _policy_written(request: dict[str, Any]) -> str | None:
    """The policy an UpdateRestApi call left, as its patch says: the last operation on /policy wins (API Gateway
    applies them in order); "" when it removed the policy; None when it did not touch it or the shape is unknown."""
    update = request.get("updateRestApiInput")
    operations = update.get("patchOperations") if isinstance(update, dict) else None
    if not isinstance(operations, list):
        return None
    written: str | None = None
    for operation in operations:
        if not isinstance(operation, dict) or operation.get("path") != "/policy":
            continue
        if operation.get("op") == "remove":
            written = ""
        elif operation.get("op") in ("add", "replace") and isinstance(operation.get("value"), str):
            written = _written(operation["value"])
        else:
            return None  # a patch we cannot follow: nothing is inferred from it
    return written


def _event_time(value: Any) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not EVENT_TIME.fullmatch(value):
        raise EventError(f"event field eventTime {value!r:.40} is not a CloudTrail time (YYYY-MM-DDThh:mm:ssZ)")
    return value


def _written(value: Any) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or len(value) > POLICY_LIMIT:
        shown = type(value).__name__ if not isinstance(value, str) else f"{len(value)} characters"
        raise EventError(f"the policy the event says was written is {shown}, not a policy of at most {POLICY_LIMIT} characters")
    return value


def _accounts_named(record: dict[str, Any], envelope: dict[str, Any]) -> list[str]:
    """Every account the event says the change happened in: its recipient, its envelope, its resources' ARNs."""
    named: list[Any] = [record.get("recipientAccountId"), envelope.get("account")]
    for where in (envelope.get("resources"), record.get("resources")):
        if where is None:
            continue
        if not isinstance(where, list):
            raise EventError(f"event resources {where!r:.60} are not a list")
        for resource in where:
            if isinstance(resource, dict):
                named.append(resource.get("accountId"))
                resource = resource.get("ARN")
            if isinstance(resource, str) and resource.count(":") >= 5:
                named.append(resource.split(":")[4])
            elif resource is not None:
                raise EventError(f"event resource {resource!r:.60} is not an ARN")
    for account in named:
        if account is not None and not isinstance(account, str):  # a number is never an account ID here
            raise EventError(f"event names account {account!r:.40} as a {type(account).__name__}, not a string")
    return [a for a in named if a not in (None, "")]


def _check_ids(api_id: Any, region: Any, account: Any, where: str = "api_id") -> None:
    if not isinstance(api_id, str) or not REST_API_ID.fullmatch(api_id):
        raise EventError(f"{where} {api_id!r:.60} is not a REST API ID")
    if not isinstance(region, str) or not REGION.fullmatch(region):
        raise EventError(f"region {region!r:.60} is not an AWS region")
    if not isinstance(account, str) or not ACCOUNT.fullmatch(account):
        raise EventError(f"account {account!r:.60} is not a 12-digit account ID")


def _caller(identity: Any) -> Caller:
    if not isinstance(identity, dict):
        return Caller("Unknown", None, None, None, None)
    return Caller(
        type=_text(identity.get("type", "Unknown"), "userIdentity.type", optional=False),  # type: ignore[arg-type]
        arn=_text(identity.get("arn"), "userIdentity.arn"),
        principal_id=_text(identity.get("principalId"), "userIdentity.principalId"),
        invoked_by=_text(identity.get("invokedBy"), "userIdentity.invokedBy"),
        session_issuer_arn=_text(_get(identity, "sessionContext", "sessionIssuer", "arn"),
                                 "userIdentity.sessionContext.sessionIssuer.arn"),
    )


def _get(data: Any, *keys: str) -> Any:
    for key in keys:
        if not isinstance(data, dict):
            return None
        data = data.get(key)
    return data
