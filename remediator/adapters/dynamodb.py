"""DynamoDB: one table for the audit records, the intent journal, the deployment lease, pending approvals,
failure counts and what people were told, each under its own key prefix."""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Iterator
from email.utils import parsedate_to_datetime
from typing import Annotated, Any, TypeVar

import msgspec

from remediator import clock, stored
from remediator.adapters.clients import ClientFactory
from remediator.organization import Roster
from remediator.approvals import APPROVAL_ID, ApprovalRequest
from remediator.audit import AuditRecord, parse_line, utc_now
from remediator.journal import DEPLOYMENT_INTERVAL, Intent, IntentConflict, JournalError, Turn


# --- Time to Live ---------------------------------------------------------------------------------------------
# The table's TTL attribute (infra/stack.py): DynamoDB deletes an item once this epoch second has passed, at a
# moment of its own, "typically within a few days" (DynamoDB developer guide, "Time to Live (TTL)"). It is
# written only on what is finished (a closed intent, a settled approval and its execution pointer), never on an
# open intent, the lease or a pending approval: their `expires_at` is a claim or a deadline the code compares,
# and an item TTL deleted there would be a change recovery can no longer find.
TTL = "ttl"
RETENTION_SECONDS = 90 * 86400  # how long a finished item is kept (a retried Record within it still finds it)


def _ttl() -> dict[str, str]:
    return {"N": str(int(clock.now()) + RETENTION_SECONDS)}


# --- items read back --------------------------------------------------------------------------------------
# Every item is decoded strictly before anything in it is used: a crafted item (someone who can write the
# table, a bug of an older version) raises StoredItemError, one line naming the table and the item's key.
# Attribute values are DynamoDB JSON ({"S": ...}, {"N": ...}), as the low-level client returns them.

class StoredItemError(stored.StoredError):
    """An item of the table is not what the bot writes: nothing is taken from it."""


class _S(msgspec.Struct, forbid_unknown_fields=True):
    S: Annotated[str, msgspec.Meta(max_length=400 * 1024)]  # DynamoDB's item size limit (400 KB)


# Numbers as DynamoDB returns them: at most 38 digits of precision (DynamoDB Developer Guide, "Supported data
# types and naming rules"); ours are counts and epoch seconds, never negative, never exponents.
_NUMBER = r"^[0-9]{1,38}(\.[0-9]{1,38})?\Z"


class _N(msgspec.Struct, forbid_unknown_fields=True):
    N: Annotated[str, msgspec.Meta(pattern=_NUMBER, max_length=40)]


class _Item(msgspec.Struct, forbid_unknown_fields=True):
    pk: _S
    sk: _S


class _Key(msgspec.Struct):
    """Only the key, to say which item is wrong (and which kind a scanned item is)."""

    pk: _S
    sk: _S


class _AuditItem(_Item):
    account: _S
    region: _S
    api_id: _S
    action: _S
    recorded_at: _S
    record: _S


class _OpenIntentItem(_Item):
    intent_id: _S
    holder: _S
    expires_at: _N
    record: _S
    fence: _N | msgspec.UnsetType = msgspec.UNSET  # the claim's fencing token (DynamoJournal): +1 at each takeover


class ServerClock:
    """DynamoDB's own time, from the `Date` header of its answers (HTTP's Date: the time the origin server made
    the response, RFC 9110 §6.6.1; whole seconds): every claim and deployment turn is decided on one clock, the
    service's, so that callers whose clocks disagree by minutes neither stall nor collide. Until the first answer
    it is the caller's own clock."""

    RESOLUTION = 1.0  # Date has whole seconds: a time is taken as late as it can have been

    def __init__(self) -> None:
        self.offset = 0.0  # the service's time minus this machine's, from the latest answer

    def observe(self, http_response: Any = None, **_: Any) -> None:
        date = getattr(http_response, "headers", {}).get("Date") or getattr(http_response, "headers", {}).get("date")
        if not date:
            return
        try:
            served = parsedate_to_datetime(date).timestamp()
        except (TypeError, ValueError, IndexError):
            return  # no usable Date: the previous offset stands
        self.offset = served + self.RESOLUTION / 2 - clock.now()

    def now(self) -> float:
        return clock.now() + self.offset


def _fence_condition(known: int) -> str:
    """The open intent still carries the fencing token its writer holds (an intent written before tokens existed
    has none: token 0)."""
    return "(fence = :fence OR attribute_not_exists(fence))" if known == 0 else "fence = :fence"


_server_clocks: dict[int, ServerClock] = {}


def server_clock(client: Any) -> ServerClock:
    """The one ServerClock of a DynamoDB client, fed by every answer the client gets."""
    found = _server_clocks.get(id(client))
    if found is None:
        found = _server_clocks[id(client)] = ServerClock()
        events = getattr(getattr(client, "meta", None), "events", None)
        if events is not None:  # a botocore client (a stand-in without events keeps the caller's clock)
            events.register("after-call.dynamodb", found.observe)
    return found


class _ApprovalItem(_Item):
    status: _S
    expires_at: _N
    record: _S
    channel: _S | msgspec.UnsetType = msgspec.UNSET
    ts: _S | msgspec.UnsetType = msgspec.UNSET
    ttl: _N | msgspec.UnsetType = msgspec.UNSET  # once settled


class _ExecutionApprovalItem(_Item):
    approval_id: _S
    expires_at: _N
    ttl: _N | msgspec.UnsetType = msgspec.UNSET  # once its approval is settled


class _FailureItem(_Item):
    failures: _N
    digest: _S


class _NoticeItem(_Item):
    fingerprint: _S
    name: _S
    verdict: _S
    told_at: _S


stored_time = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z")  # utc_now()'s form


class _LastWriteItem(_Item):
    intent_id: _S
    read_at: _S
    closed_at: _S
    before_digest: _S
    windows: _S | msgspec.UnsetType = msgspec.UNSET  # the recent windows, newest first (JSON), WINDOWS_KEPT at most


class _Window(msgspec.Struct, forbid_unknown_fields=True):
    intent_id: str
    read_at: str
    closed_at: str
    before_digest: str
    after_digest: str = ""  # "" in windows an earlier version of the bot kept
    late: bool = False


# How many of an API's recent write windows are kept: a person's CloudTrail event can arrive after later changes of
# the same API closed (found by the seeded soak), and only the window their write fell into tells it was lost.
WINDOWS_KEPT = 8


class LastWrite(msgspec.Struct, frozen=True):
    """The bot's last change of an API that wrote its policy (applied or restored, or still in flight): when it read
    the policy it planned from, when the change closed, and a digest of what it read. A person's write inside that
    window was written over."""

    intent_id: str
    read_at: str
    closed_at: str
    before_digest: str
    after_digest: str = ""  # what it wrote ("" where not known)
    # Closed by another holder before its write went out (Journal.close, `late`): it may still land after the
    # close, so the window is open-ended, and only a live policy that is this change's own write says it did.
    late: bool = False


class _LeaseItem(_Item):
    next_ticket: _N | msgspec.UnsetType = msgspec.UNSET
    version: _N | msgspec.UnsetType = msgspec.UNSET
    serving: _N | msgspec.UnsetType = msgspec.UNSET
    next_at: _N | msgspec.UnsetType = msgspec.UNSET
    holder: _S | msgspec.UnsetType = msgspec.UNSET
    held_until: _N | msgspec.UnsetType = msgspec.UNSET


_I = TypeVar("_I")


def _where(table: str, item: Any) -> str:
    try:
        key = msgspec.convert(item, _Key, strict=True)
        return f"table {table} item {key.pk.S[:120]!r}/{key.sk.S[:120]!r}"
    except msgspec.ValidationError:
        return f"table {table} item without a well-formed key"


def _decode_item(item: Any, schema: type[_I], table: str) -> _I:
    return stored.decode(item, schema, _where(table, item), StoredItemError)


def _json_attribute(text: str, where: str) -> Any:
    try:
        return parse_line(text)
    except ValueError as error:
        raise StoredItemError(f"{where}: record: not JSON ({stored.problem(error)})") from None


def _whole(number: _N | msgspec.UnsetType, where: str, name: str, default: int = 0) -> int:
    if number is msgspec.UNSET:
        return default
    if "." in number.N or len(number.N) > 15:
        raise StoredItemError(f"{where}: {name}: {number.N[:40]} is not a whole number")
    return int(number.N)


def _seconds(number: _N | msgspec.UnsetType, where: str, name: str, default: float = 0.0) -> float:
    if number is msgspec.UNSET:
        return default
    value = float(number.N)
    if value > 1e11:
        raise StoredItemError(f"{where}: {name}: {number.N[:40]} is not a time")
    return value


def _audit_record(item: Any, table: str) -> tuple[str, str, AuditRecord]:
    """(recorded_at, sort key, the record) of an audit item, its indexed attributes matching its record."""
    where = _where(table, item)
    decoded = _decode_item(item, _AuditItem, table)
    try:
        record = AuditRecord.from_dict(_json_attribute(decoded.record.S, where), f"{where}: record")
    except stored.StoredError as error:
        raise StoredItemError(str(error)) from None
    if (decoded.pk.S != f"api#{record.region}#{record.api_id}" or decoded.account.S != record.account
            or decoded.region.S != record.region or decoded.api_id.S != record.api_id or decoded.action.S != record.action
            or (record.change_id and decoded.sk.S != f"audit#change#{record.change_id}")):
        raise StoredItemError(f"{where}: its key and attributes do not match its record")
    return decoded.recorded_at.S, decoded.sk.S, record


class AuditTable:
    """Reads the AuditRecords the workflow stores (DynamoJournal.close writes each with its change's intent),
    the same records the CLI writes to JSON Lines."""

    def __init__(self, clients: ClientFactory, table_name: str, region: str | None = None) -> None:
        self._client = clients.client("dynamodb", region)
        self.table_name = table_name

    def records(self) -> Iterator[AuditRecord]:
        kwargs: dict[str, Any] = {"TableName": self.table_name}
        found: list[tuple[str, str, AuditRecord]] = []
        while True:
            page = self._client.scan(**kwargs)
            for item in page.get("Items", []):
                key = _decode_item(item, _Key, self.table_name)  # every item has a well-formed key, or none is used
                if key.sk.S.startswith("audit#"):
                    found.append(_audit_record(item, self.table_name))
            if "LastEvaluatedKey" not in page:
                break
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]
        for _, _, record in sorted(found, key=lambda entry: (entry[0], entry[1])):
            yield record


def _audit_item(record: AuditRecord) -> dict[str, Any]:
    key = f"audit#change#{record.change_id}" if record.change_id else f"audit#{record.timestamp}#{record.action}#{uuid.uuid4().hex[:12]}"
    return {
        "pk": {"S": f"api#{record.region}#{record.api_id}"},
        "sk": {"S": key},
        "account": {"S": record.account},
        "region": {"S": record.region},
        "api_id": {"S": record.api_id},
        "action": {"S": record.action},
        "recorded_at": {"S": record.timestamp},
        "record": {"S": json.dumps(record.to_dict(), separators=(",", ":"))},
    }


class ApprovalConflict(Exception):
    """The approval is not pending any more (decided, or expired): the press changes nothing."""


class ApprovalStore:
    """Pending approvals, each with its task token, under a random ID; DynamoDB's TTL reaps settled ones (a
    pending approval has no TTL attribute: its `expires_at` is the deadline `decide` compares)."""

    def __init__(self, clients: ClientFactory, table_name: str, region: str | None = None) -> None:
        self._client = clients.client("dynamodb", region)
        self.table_name = table_name

    def put(self, request: ApprovalRequest) -> None:
        self._client.transact_write_items(TransactItems=[
            {"Put": {"TableName": self.table_name, "ConditionExpression": "attribute_not_exists(pk)", "Item": {
                "pk": {"S": f"approval#{request.approval_id}"}, "sk": {"S": "approval"},
                "status": {"S": request.status}, "expires_at": {"N": str(request.expires_at)},
                "record": {"S": json.dumps(request.to_dict(), separators=(",", ":"))},
            }}},
            {"Put": {"TableName": self.table_name, "Item": {
                "pk": {"S": f"execution#{request.execution}"}, "sk": {"S": "approval"},
                "approval_id": {"S": request.approval_id}, "expires_at": {"N": str(request.expires_at + 86400)},
            }}},
        ])

    def get(self, approval_id: str) -> ApprovalRequest | None:
        if not isinstance(approval_id, str) or not APPROVAL_ID.fullmatch(approval_id):
            raise StoredItemError(f"table {self.table_name}: {approval_id!r:.80} is not an approval ID")
        item = self._client.get_item(TableName=self.table_name, Key=_approval_key(approval_id), ConsistentRead=True).get("Item")
        if not item:
            return None
        where = _where(self.table_name, item)
        decoded = _decode_item(item, _ApprovalItem, self.table_name)
        try:
            request = ApprovalRequest.from_dict(_json_attribute(decoded.record.S, where), f"{where}: record")
        except stored.StoredError as error:
            raise StoredItemError(str(error)) from None
        if request.approval_id != approval_id:
            raise StoredItemError(f"{where}: its record is of approval {request.approval_id}")
        request.status = stored.decode(decoded.status.S, stored.ApprovalStatus, f"{where}: status", StoredItemError)
        if (decoded.channel is msgspec.UNSET) != (decoded.ts is msgspec.UNSET):
            raise StoredItemError(f"{where}: channel and ts come together")
        if decoded.channel is not msgspec.UNSET and decoded.ts is not msgspec.UNSET:
            # written by place(), beside the record, so that it never overwrites a decision
            request.channel = stored.decode(decoded.channel.S, stored.Name, f"{where}: channel", StoredItemError)
            request.ts = stored.decode(decoded.ts.S, stored.Name, f"{where}: ts", StoredItemError)
        return request

    def for_execution(self, execution: str) -> ApprovalRequest | None:
        key = {"pk": {"S": f"execution#{execution}"}, "sk": {"S": "approval"}}
        item = self._client.get_item(TableName=self.table_name, Key=key, ConsistentRead=True).get("Item")
        if not item:
            return None
        decoded = _decode_item(item, _ExecutionApprovalItem, self.table_name)
        if not APPROVAL_ID.fullmatch(decoded.approval_id.S):
            raise StoredItemError(f"{_where(self.table_name, item)}: approval_id is not an approval ID")
        return self.get(decoded.approval_id.S)

    def decide(self, approval_id: str, status: str, user_id: str, now: int) -> ApprovalRequest:
        """Pending -> approved/rejected exactly once, and only before it expires."""
        request = self.get(approval_id)
        if request is None:
            raise LookupError(approval_id)
        request.status, request.decision, request.decided_by, request.decided_at = status, status, user_id, now
        try:
            self._client.update_item(
                TableName=self.table_name,
                Key=_approval_key(approval_id),
                UpdateExpression="SET #s = :status, #r = :record, #ttl = :ttl",
                ConditionExpression="#s = :pending AND expires_at > :now",
                ExpressionAttributeNames={"#s": "status", "#r": "record", "#ttl": TTL},
                ExpressionAttributeValues={
                    ":status": {"S": status}, ":pending": {"S": "pending"}, ":now": {"N": str(now)},
                    ":record": {"S": json.dumps(request.to_dict(), separators=(",", ":"))}, ":ttl": _ttl(),
                },
            )
        except self._client.exceptions.ConditionalCheckFailedException:
            raise ApprovalConflict(approval_id) from None
        return request

    def place(self, approval_id: str, channel: str, ts: str) -> None:
        """Where the message was posted; touches nothing else, so a click that came first keeps its decision."""
        self._client.update_item(
            TableName=self.table_name,
            Key=_approval_key(approval_id),
            UpdateExpression="SET channel = :channel, ts = :ts",
            ExpressionAttributeValues={":channel": {"S": channel}, ":ts": {"S": ts}},
        )

    def reopen(self, pending: ApprovalRequest, decided: str) -> bool:
        """Undo a decision the workflow never heard of (SendTask* failed), so that the person can click again."""
        try:
            self._client.update_item(
                TableName=self.table_name,
                Key=_approval_key(pending.approval_id),
                UpdateExpression="SET #s = :pending, #r = :record REMOVE #ttl",  # pending again: no TTL
                ConditionExpression="#s = :decided",
                ExpressionAttributeNames={"#s": "status", "#r": "record", "#ttl": TTL},
                ExpressionAttributeValues={":pending": {"S": "pending"}, ":decided": {"S": decided},
                                           ":record": {"S": json.dumps(pending.to_dict(), separators=(",", ":"))}},
            )
        except self._client.exceptions.ConditionalCheckFailedException:
            return False
        return True

    def save(self, request: ApprovalRequest) -> None:
        """Record a later state (applied, timed out) and where the message is. A settled approval, and the
        pointer of its execution, get the TTL attribute; a pending one never does."""
        settled = request.status != "pending"
        self._client.update_item(
            TableName=self.table_name,
            Key=_approval_key(request.approval_id),
            UpdateExpression="SET #s = :status, #r = :record" + (", #ttl = :ttl" if settled else " REMOVE #ttl"),
            ExpressionAttributeNames={"#s": "status", "#r": "record", "#ttl": TTL},
            ExpressionAttributeValues={":status": {"S": request.status},
                                       ":record": {"S": json.dumps(request.to_dict(), separators=(",", ":"))},
                                       **({":ttl": _ttl()} if settled else {})},
        )
        if settled and request.execution:
            try:
                self._client.update_item(
                    TableName=self.table_name, Key={"pk": {"S": f"execution#{request.execution}"}, "sk": {"S": "approval"}},
                    UpdateExpression="SET #ttl = :ttl", ConditionExpression="attribute_exists(pk)",
                    ExpressionAttributeNames={"#ttl": TTL}, ExpressionAttributeValues={":ttl": _ttl()},
                )
            except self._client.exceptions.ConditionalCheckFailedException:
                pass  # no pointer (gone already): nothing to expire


def _approval_key(approval_id: str) -> dict[str, Any]:
    return {"pk": {"S": f"approval#{approval_id}"}, "sk": {"S": "approval"}}


class FailureLedger:
    """Consecutive failed remediations of each API, for the policy they failed on.

    A fix that keeps failing (a redeploy API Gateway always refuses, say) is retried by the schedule,
    never by its own events; after LIMIT failures on the same policy it waits for a person, and a
    changed policy starts the count again. Items live under "failures#<region>#<api_id>".
    """

    LIMIT = 3

    def __init__(self, clients: ClientFactory, table_name: str, region: str | None = None) -> None:
        self._client = clients.client("dynamodb", region)
        self.table_name = table_name

    def count(self, region: str, api_id: str, policy_digest: str) -> int:
        """Failures so far on this policy (0 when the last failures were on another policy)."""
        item = self._client.get_item(TableName=self.table_name, Key=_failure_key(region, api_id), ConsistentRead=True).get("Item")
        if not item:
            return 0
        decoded = _decode_item(item, _FailureItem, self.table_name)
        failures = _whole(decoded.failures, _where(self.table_name, item), "failures")
        return failures if decoded.digest.S == policy_digest else 0

    def add(self, region: str, api_id: str, policy_digest: str) -> int:
        """One more failure on this policy; returns the new count."""
        values = {":d": {"S": policy_digest}, ":one": {"N": "1"}, ":zero": {"N": "0"}}
        # ALL_NEW, not UPDATED_NEW: the count is read back even when the update left it as it was (a first failure on a
        # new policy after one on another: 1 again), which UPDATED_NEW may leave out (found by the seeded soak: the
        # failure notice itself failed). UpdateItem, ReturnValues: "ALL_NEW - Returns all of the attributes of the item,
        # as they appear after the UpdateItem operation" (DynamoDB API Reference, "UpdateItem",
        # https://docs.aws.amazon.com/amazondynamodb/latest/APIReference/API_UpdateItem.html).
        try:
            response = self._client.update_item(
                TableName=self.table_name, Key=_failure_key(region, api_id),
                UpdateExpression="SET failures = if_not_exists(failures, :zero) + :one, digest = :d",
                ConditionExpression="attribute_not_exists(pk) OR digest = :d",
                ExpressionAttributeValues=values, ReturnValues="ALL_NEW",
            )
        except self._client.exceptions.ConditionalCheckFailedException:
            # The earlier failures were on another policy: this one starts a new count.
            response = self._client.update_item(
                TableName=self.table_name, Key=_failure_key(region, api_id),
                UpdateExpression="SET failures = :one, digest = :d",
                ExpressionAttributeValues={":d": values[":d"], ":one": values[":one"]}, ReturnValues="ALL_NEW",
            )
        failures = stored.decode(response.get("Attributes", {}).get("failures"), _N,
                                 f"table {self.table_name} failures of {region}/{api_id}", StoredItemError)
        return _whole(failures, f"table {self.table_name} failures of {region}/{api_id}", "failures")

    def clear(self, region: str, api_id: str) -> None:
        self._client.delete_item(TableName=self.table_name, Key=_failure_key(region, api_id))


class NoticeLedger:
    """What people were last told about each API that needs a person (report-only findings, a dry run's
    proposal): a fingerprint of its findings, so that the next sweep or event tells them again only when
    the findings change. Items live under "notice#<region>" (in an organization's hub "notice#<region>#<account>",
    see Settings.notice_place), one per API (sort key: its ID)."""

    def __init__(self, clients: ClientFactory, table_name: str, region: str | None = None) -> None:
        self._client = clients.client("dynamodb", region)
        self.table_name = table_name

    def fingerprint(self, region: str, api_id: str) -> str | None:
        item = self._client.get_item(TableName=self.table_name, Key=_notice_key(region, api_id), ConsistentRead=True).get("Item")
        return _notice(item, self.table_name)[1] if item else None

    def remember(self, region: str, api_id: str, fingerprint: str, name: str, verdict: str, told_at: str) -> None:
        self._client.put_item(TableName=self.table_name, Item={
            **_notice_key(region, api_id), "fingerprint": {"S": fingerprint}, "name": {"S": name or api_id},
            "verdict": {"S": verdict}, "told_at": {"S": told_at}})

    def standing(self, region: str) -> dict[str, str]:
        """API ID -> fingerprint of what people were last told, for every API of the region."""
        found: dict[str, str] = {}
        kwargs: dict[str, Any] = {"TableName": self.table_name, "KeyConditionExpression": "pk = :pk",
                                  "ExpressionAttributeValues": {":pk": {"S": f"notice#{region}"}}, "ConsistentRead": True}
        while True:
            page = self._client.query(**kwargs)
            found.update(_notice(item, self.table_name) for item in page.get("Items", []))
            if "LastEvaluatedKey" not in page:
                return found
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def forget(self, region: str, api_id: str) -> None:
        """The API needs nobody any more (compliant, exempt or gone): its next findings are news again."""
        self._client.delete_item(TableName=self.table_name, Key=_notice_key(region, api_id))


FINGERPRINT = r"^[0-9a-f]{32}\Z"  # remediator.transaction.planning.findings_fingerprint


def _notice(item: Any, table: str) -> tuple[str, str]:
    """(API ID, fingerprint) of a notice item."""
    where = _where(table, item)
    decoded = _decode_item(item, _NoticeItem, table)
    api_id = stored.decode(decoded.sk.S, stored.RestApiId, f"{where}: sk", StoredItemError)
    fingerprint = stored.decode(decoded.fingerprint.S, Annotated[str, msgspec.Meta(pattern=FINGERPRINT)],
                                f"{where}: fingerprint", StoredItemError)
    return api_id, fingerprint


def _notice_key(region: str, api_id: str) -> dict[str, Any]:
    return {"pk": {"S": f"notice#{region}"}, "sk": {"S": api_id}}


def _failure_key(region: str, api_id: str) -> dict[str, Any]:
    return {"pk": {"S": f"failures#{region}#{api_id}"}, "sk": {"S": "failures"}}


class DynamoJournal:
    """The workflow's intent journal (remediator.journal), with conditional writes.

    The open intent of an API is one item in one partition, `intent#open` / `<account>#<region>#<api_id>`,
    so that putting it is the claim on the API (it exists at most once) and a sweep finds every open
    intent with one Query. Closing deletes it and, in the same transaction, keeps the closed intent under
    `intent#<id>` and puts the change's audit record under the intent's ID: both exactly once.
    """

    OPEN = "intent#open"
    LAST = "intent#last"  # per API, the window of the last change that wrote (LastWrite): one item, overwritten

    def __init__(self, clients: ClientFactory, table_name: str, region: str | None = None) -> None:
        self._client = clients.client("dynamodb", region)
        self.table_name = table_name
        self.clock = server_clock(self._client)

    def check_writable(self) -> None:
        """The table is checked by the first conditional write; nothing is changed before it."""

    def now(self) -> float:
        """The time claims are written and compared in: DynamoDB's (ServerClock), never this machine's alone."""
        return self.clock.now()

    def _item(self, intent: Intent) -> dict[str, Any]:
        return {
            "pk": {"S": self.OPEN}, "sk": {"S": intent.key},
            "intent_id": {"S": intent.intent_id}, "holder": {"S": intent.holder},
            "expires_at": {"N": repr(float(intent.expires_at))}, "fence": {"N": str(intent.fence)},
            "record": {"S": json.dumps(intent.to_dict(), separators=(",", ":"))},
        }

    def open_intent(self, account: str, region: str, api_id: str) -> Intent | None:
        key = {"pk": {"S": self.OPEN}, "sk": {"S": f"{account}#{region}#{api_id}"}}
        item = self._client.get_item(TableName=self.table_name, Key=key, ConsistentRead=True).get("Item")
        return self._intent(item) if item else None

    def _intent(self, item: Any) -> Intent:
        """An open intent's item: its record decoded strictly, and its key, ID and holder those of the record
        (the conditional writes test the attributes, the code uses the record: they must be one)."""
        where = _where(self.table_name, item)
        decoded = _decode_item(item, _OpenIntentItem, self.table_name)
        try:
            intent = Intent.from_dict(_json_attribute(decoded.record.S, where), f"{where}: record")
        except JournalError as error:
            raise StoredItemError(str(error)) from None
        if (decoded.pk.S != self.OPEN or decoded.sk.S != intent.key or decoded.intent_id.S != intent.intent_id
                or decoded.holder.S != intent.holder or not intent.is_open):
            raise StoredItemError(f"{where}: its key and attributes do not match its record")
        if decoded.fence is not msgspec.UNSET and _whole(decoded.fence, where, "fence") != intent.fence:
            raise StoredItemError(f"{where}: its fence and its record's do not match")
        return intent

    def open_intents(self) -> list[Intent]:
        kwargs: dict[str, Any] = {"TableName": self.table_name, "ConsistentRead": True, "KeyConditionExpression": "pk = :open",
                                  "ExpressionAttributeValues": {":open": {"S": self.OPEN}}}
        found: list[Intent] = []
        while True:
            page = self._client.query(**kwargs)
            found.extend(self._intent(item) for item in page.get("Items", []))
            if "LastEvaluatedKey" not in page:
                return found
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def held_by_other(self, intent: Intent, holder: str, now: float) -> bool:
        """Whether another holder's claim is alive, on DynamoDB's clock (the caller's `now` is not used: the claim's
        expiry was written on the same clock, so no two machines' clocks are ever compared)."""
        return intent.holder != holder and intent.expires_at > self.now()

    def begin(self, intent: Intent) -> None:
        intent.fence = 1
        try:
            self._client.put_item(TableName=self.table_name, Item=self._item(intent), ConditionExpression="attribute_not_exists(pk)")
        except self._client.exceptions.ConditionalCheckFailedException:
            raise IntentConflict(intent.key) from None

    def update(self, intent: Intent, previous_holder: str | None = None) -> None:
        """Rewrite the open intent, only if it is still this one, held by whom the caller read, with the fencing
        token the caller read. Taking it over from another holder raises the token: whatever that holder still
        tries to write after this fails (IntentConflict), however late its clock says it is."""
        known = intent.fence
        condition = "intent_id = :id AND holder = :holder AND " + _fence_condition(known)
        values = {":id": {"S": intent.intent_id}, ":holder": {"S": previous_holder or intent.holder}, ":fence": {"N": str(known)}}
        if previous_holder is not None and previous_holder != intent.holder:
            intent.fence = known + 1
            # A takeover only of a claim that lapsed on DynamoDB's clock: a holder that renewed its claim (right before
            # an AWS write: TransactionBase._hold) after the taker read it keeps it, so its write is inside its claim.
            condition += " AND expires_at < :now"
            values[":now"] = {"N": repr(float(self.now()))}
        try:
            self._client.put_item(TableName=self.table_name, Item=self._item(intent), ConditionExpression=condition,
                                  ExpressionAttributeValues=values)
        except self._client.exceptions.ConditionalCheckFailedException:
            intent.fence = known
            raise IntentConflict(intent.key) from None

    def close(self, intent: Intent, record: AuditRecord | None, wrote: bool = False, late: bool = False) -> None:
        fenced = {"ConditionExpression": "intent_id = :id AND " + _fence_condition(intent.fence),
                  "ExpressionAttributeValues": {":id": {"S": intent.intent_id}, ":fence": {"N": str(intent.fence)}}}
        items: list[dict[str, Any]] = [
            {"Delete": {"TableName": self.table_name, "Key": {"pk": {"S": self.OPEN}, "sk": {"S": intent.key}}, **fenced}},
            {"Put": {"TableName": self.table_name, "ConditionExpression": "attribute_not_exists(pk)",
                     "ReturnValuesOnConditionCheckFailure": "ALL_OLD", "Item": {  # who closed it first, and how
                "pk": {"S": f"intent#{intent.intent_id}"}, "sk": {"S": "intent"}, "state": {"S": intent.state},
                "record": {"S": json.dumps(intent.to_dict(), separators=(",", ":"))}, TTL: _ttl()}}},  # closed: TTL may go
        ]
        if record is not None:
            items.append({"Put": {"TableName": self.table_name, "ConditionExpression": "attribute_not_exists(pk)",
                                  "Item": _audit_item(record)}})
        # A change's window is kept once it wrote the policy: applied, or restored (its undo wrote the pre-image back,
        # and a person's write either write landed on is lost all the same: found by the seeded soak), or closed
        # without a record after its write may have gone out (`wrote`: superseded; it kept none, found by the soak).
        # And a change taken over before its write went out (`late`): its first holder may still send it.
        if wrote or late or (record is not None and record.outcome in ("applied", "restored")):
            from remediator.core.policy import policy_digest  # the policy parser: only where a write is noted

            closed_at = record.timestamp if record is not None else utc_now()
            window = LastWrite(intent.intent_id, intent.created_at, closed_at, policy_digest(intent.policy_before),
                               policy_digest(intent.policy_after), late=late and not wrote)
            try:
                earlier = self._windows(intent.key)
            except StoredItemError:
                earlier = []  # an item the bot never wrote keeps no history; the change still closes, with its own window
            kept = [window] + [w for w in earlier if w.intent_id != intent.intent_id][: WINDOWS_KEPT - 1]
            items.append({"Put": {"TableName": self.table_name, "Item": {
                "pk": {"S": self.LAST}, "sk": {"S": intent.key}, "intent_id": {"S": intent.intent_id},
                "read_at": {"S": intent.created_at}, "closed_at": {"S": closed_at},
                "before_digest": {"S": window.before_digest},
                "windows": {"S": json.dumps([msgspec.structs.asdict(w) for w in kept], separators=(",", ":"))}}}})
        try:
            self._client.transact_write_items(TransactItems=items)
        except self._client.exceptions.TransactionCanceledException as error:
            cancelled = error.response.get("CancellationReasons", [])
            reasons = [r.get("Code") for r in cancelled]
            if len(reasons) >= 2 and reasons[1] == "ConditionalCheckFailed":
                # The closed intent exists already. Closed in this same state, it is this close retried (a Record or
                # Restore whose answer was lost): nothing twice. Closed otherwise, another holder settled the change
                # (a lapsed claim reconciled as superseded, say): this holder's outcome and record are not written.
                # TransactWriteItems, ReturnValuesOnConditionCheckFailure ALL_OLD: the failed item's attributes come
                # back in CancellationReasons (DynamoDB API Reference, "TransactWriteItems" and "CancellationReason",
                # https://docs.aws.amazon.com/amazondynamodb/latest/APIReference/API_CancellationReason.html).
                closed = (cancelled[1].get("Item") or {}).get("state", {})
                if isinstance(closed, dict) and closed.get("S") == intent.state:
                    return
                raise IntentConflict(f"{intent.key}: change {intent.intent_id} was closed by another holder; "
                                     f"not closed again as {intent.state}") from None
            if reasons and reasons[0] == "ConditionalCheckFailed":  # another holder took the claim over (its fence)
                raise IntentConflict(f"{intent.key}: change {intent.intent_id} was taken over; not closed by this holder") from None
            raise

    def recent_writes(self, account: str, region: str, api_id: str) -> list[LastWrite]:
        """The API's recent changes that wrote its policy, newest first: the one in flight if its intent is open (it
        has written already: its window runs until now, and a person's event often arrives before it closes), then
        the last WINDOWS_KEPT that wrote (applied, restored, or superseded after their write). Empty if the bot never changed it. Decoded strictly."""
        found: list[LastWrite] = []
        open_intent = self.open_intent(account, region, api_id)
        # Undoing too: its fix went out, and its undo may write the pre-image over a person's write made in the instant
        # before it (found by the seeded soak: the person's event, evaluated while the undo was in flight, found none).
        if open_intent is not None:
            from remediator.core.policy import policy_digest

            found.append(LastWrite(open_intent.intent_id, open_intent.created_at, utc_now(),
                                   policy_digest(open_intent.policy_before), policy_digest(open_intent.policy_after)))
        return found + self._windows(f"{account}#{region}#{api_id}")

    def _windows(self, key: str) -> list[LastWrite]:
        """The windows the API's last-write item keeps, newest first (an item written before it kept several: its one)."""
        item = self._client.get_item(TableName=self.table_name, Key={"pk": {"S": self.LAST}, "sk": {"S": key}},
                                     ConsistentRead=True).get("Item")
        if not item:
            return []
        where = _where(self.table_name, item)
        decoded = _decode_item(item, _LastWriteItem, self.table_name)
        if decoded.windows is msgspec.UNSET:
            listed = [_Window(decoded.intent_id.S, decoded.read_at.S, decoded.closed_at.S, decoded.before_digest.S)]
        else:
            listed = stored.decode(_json_attribute(decoded.windows.S, where), list[_Window], f"{where}: windows",
                                   StoredItemError)
        if not listed or len(listed) > WINDOWS_KEPT or listed[0].intent_id != decoded.intent_id.S:
            raise StoredItemError(f"{where}: not a last-write item the bot writes")
        for window in listed:
            if (not stored_time.fullmatch(window.read_at) or not stored_time.fullmatch(window.closed_at)
                    or not re.fullmatch(r"[0-9a-f]{32}", window.intent_id) or not re.fullmatch(r"[0-9a-f]{64}|none", window.before_digest)
                    or not re.fullmatch(r"[0-9a-f]{64}|none|", window.after_digest)):
                raise StoredItemError(f"{where}: not a last-write item the bot writes")
        return [LastWrite(w.intent_id, w.read_at, w.closed_at, w.before_digest, w.after_digest, w.late) for w in listed]

    def note(self, record: AuditRecord) -> None:
        """A record of its own beside the changes' (a refused write, a lost update), put once under its own ID: a
        retried step that notes it again writes nothing."""
        try:
            self._client.put_item(TableName=self.table_name, Item=_audit_item(record), ConditionExpression="attribute_not_exists(pk)")
        except self._client.exceptions.ConditionalCheckFailedException:
            pass


class DynamoLease:
    """The account's deployment turn, shared by every execution: item `lease#deployments` / `<account>`.

    A queue of tickets, as at a counter: an execution takes a ticket on its first try and is told how long
    to wait (in Step Functions, whole seconds) to come back just before its turn, so that fifty waiting
    executions wake once each, not fifty times. The turn is taken with a conditional write on the item's
    version, when nobody holds it (or the holder's hold expired), it is this ticket's turn (or the ticket
    being served is GRACE_SECONDS late: its execution is gone) and the account's next CreateDeployment may
    go within INLINE_SECONDS, which the holder waits out itself. Released with the time the next may go.
    """

    HOLD_SECONDS = 60.0  # longer than the Redeploy function's timeout: a holder that died lets go by then
    INLINE_SECONDS = 1.0  # the most a holder waits inside its Lambda (Step Functions waits in whole seconds)
    GRACE_SECONDS = 10.0  # a turn nobody takes for this long is skipped

    def __init__(self, clients: ClientFactory, table_name: str, account: str, region: str | None = None) -> None:
        self._client = clients.client("dynamodb", region)
        self.table_name = table_name
        self.key = {"pk": {"S": "lease#deployments"}, "sk": {"S": account}}
        self.clock = server_clock(self._client)  # turns are decided on DynamoDB's clock (ServerClock)

    def _read(self) -> dict[str, Any]:
        return self._client.get_item(TableName=self.table_name, Key=self.key, ConsistentRead=True).get("Item", {})

    def acquire(self, holder: str, now: float, ticket: int | None = None) -> Turn:
        if ticket is None:
            taken = self._client.update_item(TableName=self.table_name, Key=self.key, UpdateExpression="ADD next_ticket :one",
                                             ExpressionAttributeValues={":one": {"N": "1"}}, ReturnValues="UPDATED_NEW")
            where = f"{_where(self.table_name, self.key)} (next_ticket)"
            taken_ticket = stored.decode(taken.get("Attributes", {}).get("next_ticket"), _N, where, StoredItemError)
            ticket = _whole(taken_ticket, where, "next_ticket") - 1
        item = self._read()
        now = self.clock.now()  # DynamoDB's time, as its answer just said: the caller's own clock is never compared
        where = _where(self.table_name, item or self.key)
        lease = _decode_item(item or self.key, _LeaseItem, self.table_name)
        version, serving = _whole(lease.version, where, "version"), _whole(lease.serving, where, "serving")
        next_at = _seconds(lease.next_at, where, "next_at")
        held = (lease.holder is not msgspec.UNSET and lease.holder.S != holder
                and _seconds(lease.held_until, where, "held_until") >= now)
        turn = ticket <= serving or next_at <= now - self.GRACE_SECONDS
        if not held and turn and next_at <= now + self.INLINE_SECONDS:
            try:
                self._client.update_item(
                    TableName=self.table_name, Key=self.key,
                    UpdateExpression="SET holder = :me, held_until = :until, serving = :serving, version = :next",
                    ConditionExpression="attribute_not_exists(version) OR version = :version",
                    ExpressionAttributeValues={":me": {"S": holder}, ":until": {"N": repr(now + self.HOLD_SECONDS)},
                                               ":serving": {"N": str(max(serving, ticket))}, ":version": {"N": str(version)},
                                               ":next": {"N": str(version + 1)}},
                )
                return Turn(True, max(0.0, next_at - now), ticket)
            except self._client.exceptions.ConditionalCheckFailedException:
                return Turn(False, 1.0, ticket)  # someone took it between the read and the write: look again soon
        # Come back just before this ticket's turn: the tickets ahead each take one interval. A holder
        # serves ticket `serving` and deploys by next_at; else `serving` is the next ticket to go.
        first = max(next_at, now) + DEPLOYMENT_INTERVAL if held else next_at
        ahead = max(0, ticket - serving - (1 if held else 0))
        return Turn(False, max(1.0, first + ahead * DEPLOYMENT_INTERVAL - self.INLINE_SECONDS - now), ticket)

    def release(self, holder: str, deployed_at: float | None) -> None:
        """The turn is over: the next ticket's, not before one interval after this deployment."""
        update = "REMOVE holder, held_until SET serving = serving + :one, version = version + :one"
        values: dict[str, Any] = {":me": {"S": holder}, ":one": {"N": "1"}}
        if deployed_at is not None:  # on DynamoDB's clock: at least one interval after the deployment answered
            update += ", next_at = :next"
            values[":next"] = {"N": repr(self.clock.now() + DEPLOYMENT_INTERVAL + ServerClock.RESOLUTION)}
        try:
            self._client.update_item(TableName=self.table_name, Key=self.key, UpdateExpression=update,
                                     ConditionExpression="holder = :me", ExpressionAttributeValues=values)
        except self._client.exceptions.ConditionalCheckFailedException:
            pass  # the hold had expired and someone else took it: theirs now


class RosterStore:
    """The organization's roster (remediator.organization.Roster): item `org#roster` / <organization id>.

    Written only by the roster function; read (strongly consistent) by every state that must know whether an
    account is the organization's, so that an account that left is refused from the refresh on.
    """

    def __init__(self, clients: ClientFactory, table_name: str, organization_id: str, region: str | None = None) -> None:
        self._client = clients.client("dynamodb", region)
        self.table_name = table_name
        self.organization_id = organization_id
        self.key = {"pk": {"S": "org#roster"}, "sk": {"S": organization_id}}

    def read(self) -> Roster | None:
        """The stored roster; None before the first refresh. A malformed one raises RosterError (fail closed)."""
        item = self._client.get_item(TableName=self.table_name, Key=self.key, ConsistentRead=True).get("Item")
        if item is None:
            return None
        return Roster.from_json(item.get("roster", {}).get("S"), self.organization_id)

    def write(self, roster: Roster) -> None:
        self._client.put_item(TableName=self.table_name, Item={**self.key, "roster": {"S": roster.to_json()},
                                                               "refreshed_at": {"N": repr(roster.refreshed_at)}})
