"""Everything the bot reads back is untrusted input: journal lines, audit records, approval items, DynamoDB
items, the deployment-turn file, events and settings. Each reader decodes strictly (remediator.stored) and
refuses what the bot never wrote with one line naming the source and the item, never a traceback and never
a partial use; the CLI's state files are never followed through a symbolic link nor read when others may
write them."""

from __future__ import annotations

import copy
import io
import json
import os
import typing
from pathlib import Path
from typing import Any, Callable

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from remediator import approvals, journal, safe_files, stored
from remediator.adapters.dynamodb import (ApprovalStore, AuditTable, DynamoJournal, DynamoLease, FailureLedger, NoticeLedger,
                                          StoredItemError)
from remediator.approvals import ApprovalRequest
from remediator.audit import AuditRecord, JsonLinesAuditLog
from remediator.events import EventError, parse_event, parse_member_event
from remediator.journal import FileLease, Intent, JournalError, JsonLinesJournal, PlannedStage
from remediator.local.cloudtrail import api_call_event
from tests.conftest import OWNER

INTENT_ID = "0123456789abcdef0123456789abcdef"
POLICY = json.dumps({"Version": "2012-10-17", "Statement": [
    {"Effect": "Allow", "Principal": {"AWS": [OWNER]}, "Action": "execute-api:Invoke", "Resource": "execute-api:/*"}]})
FINDING = {"kind": "untrusted-account", "statement_index": 0, "sid": None, "principal": "999999999999",
           "account": "999999999999", "remediation": "remove", "detail": "account 999999999999 is not trusted"}
TRUST = {"owner_account": OWNER, "trusted_accounts": ["444455556666"], "trusted_org_ids": ["o-a1b2c3d4e5"],
         "partition": "aws", "remove_wildcard_principals": False}
# An edit of the API a stage does not serve yet (remediator.core.undeployed.UndeployedChange.to_dict()).
UNDEPLOYED = {"stage": "prod", "path": "/orders", "http_method": "POST", "kind": "method-added", "deployed": None, "now": "NONE"}
INTENT = {
    "intent_id": INTENT_ID, "account": OWNER, "region": "us-gov-west-1", "api_id": "a1b2c3d4e5", "api_name": "orders",
    "action": "remediate", "policy_before": POLICY, "policy_after": POLICY,
    "patch_operations": [{"op": "replace", "path": "/policy", "value": POLICY}],
    "stages": [{"name": "prod", "deployment_id": "abc123"}, {"name": "v2_beta-1", "deployment_id": None}],
    "triggered_by": "cli:alice", "holder": "cli:1234", "expires_at": 1700000000.5, "created_at": "2024-01-02T03:04:05Z",
    "state": "pending", "deployment_id": None, "missing_stages": ["gone"], "findings": [FINDING], "reason": "",
    "trust": TRUST, "undoing": False, "serving": {"prod": "abc123"}, "fence": 2, "undeployed": [UNDEPLOYED],
}
RECORD = {
    "account": OWNER, "region": "cn-north-1", "api_id": "a1b2c3d4e5", "api_name": "orders", "action": "remediate",
    "policy_before": POLICY, "policy_after": POLICY, "patch_operations": [{"op": "remove", "path": "/policy"}],
    "stages_redeployed": ["prod"], "deployment_id": "x7y8z9", "triggered_by": "t", "findings": [FINDING],
    "timestamp": "2024-01-02T03:04:05Z", "change_id": INTENT_ID, "outcome": "applied", "trust": TRUST,
    "undeployed": [UNDEPLOYED],
}
APPROVAL = {
    "approval_id": "Zx9_-abcdefghijklmnopqrs", "execution": "UpdateRestApi-1234", "task_token": "AQB8token",
    "account": OWNER, "region": "eu-west-1", "api_id": "a1b2c3d4e5", "api_name": "orders", "changed_by": "alice",
    "findings": [FINDING], "patch_operations": [{"op": "replace", "path": "/policy", "value": POLICY}],
    "policy_before": POLICY, "expires_at": 1700000000, "status": "pending", "channel": None, "ts": None, "decision": None,
    "decided_by": None, "decided_at": None, "detail": "", "stages": ["prod"], "undeployed": [UNDEPLOYED],
}


def one_line(error: BaseException, *names: str) -> str:
    text = str(error)
    assert "\n" not in text and "Traceback" not in text and len(text) < 1000, text
    for name in names:
        assert name in text, (name, text)
    return text


# --- hand-written adversarial items ---------------------------------------------------------------------------

def _set(path: str, value: Any) -> Callable[[dict], dict]:
    def mutate(data: dict) -> dict:
        data = copy.deepcopy(data)
        *parents, last = path.split(".")
        node: Any = data
        for part in parents:
            node = node[int(part)] if isinstance(node, list) else node[part]
        if isinstance(node, list):
            node[int(last)] = value
        else:
            node[last] = value
        return data
    return mutate


def _drop(name: str) -> Callable[[dict], dict]:
    return lambda data: {k: v for k, v in data.items() if k != name}


COMMON_BAD: list[tuple[str, Any, str]] = [
    ("account", 111122223333, "account"),  # a numeric ID
    ("account", "11112222333", "account"),
    ("account", "١١١١٢٢٢٢٣٣٣٣", "account"),  # other scripts' digits
    ("account", "111122223333\n", "account"),  # `$` would take a trailing newline
    ("region", "moon-1", "region"),
    ("region", "EU-WEST-1", "region"),
    ("region", ["eu-west-1"], "region"),
    ("api_id", "A1B2C3D4E5", "api_id"),
    ("api_id", "a1b2c3d4e5f", "api_id"),
    ("api_id", None, "api_id"),
    ("policy_before", "x" * (stored.POLICY_LIMIT + 1), "policy_before"),
    ("policy_after", {"Statement": []}, "policy_after"),
    ("patch_operations", "replace everything", "patch_operations"),
    ("patch_operations", [{"op": "delete", "path": "/policy"}], "patch_operations[0].op"),
    ("patch_operations", [{"op": "replace", "path": "/policy", "value": 1}], "patch_operations[0].value"),
    ("patch_operations", [{"op": "replace", "path": "/policy", "extra": "x"}], "extra"),
    ("patch_operations", [{"op": "replace", "path": "/policy"}] * (stored.PATCH_LIMIT + 1), "patch_operations"),
    ("findings", [{**FINDING, "kind": "friendly-account"}], "findings[0].kind"),
    ("findings", [{**FINDING, "statement_index": True}], "findings[0].statement_index"),
    ("findings", [{**FINDING, "statement_index": "0"}], "findings[0].statement_index"),
    ("findings", [[["nested", {"junk": [1, 2]}]]], "findings[0]"),
    ("trust", {"owner": OWNER}, "trust"),
    ("trust", {**TRUST, "trusted_accounts": [999999999999]}, "trust.trusted_accounts[0]"),
    ("trust", {**TRUST, "remove_wildcard_principals": 1}, "trust.remove_wildcard_principals"),
    ("trust", {**TRUST, "partition": "mars"}, "trust.partition"),
    ("action", "grant", "action"),
    ("api_name", "n" * 5000, "api_name"),
    ("smuggled", "x", "smuggled"),  # an extra field
]

INTENT_BAD = COMMON_BAD + [
    ("undeployed", [{**UNDEPLOYED, "kind": "anything-goes"}], "undeployed[0].kind"),
    ("undeployed", [{**UNDEPLOYED, "http_method": "FETCH"}], "undeployed[0].http_method"),
    ("undeployed", [{**UNDEPLOYED, "stage": "bad name"}], "undeployed[0].stage"),
    ("undeployed", [{**UNDEPLOYED, "smuggled": 1}], "smuggled"),
    ("intent_id", "not-a-uuid", "intent_id"),
    ("intent_id", INTENT_ID.upper(), "intent_id"),
    ("state", "granted", "state"),
    ("state", None, "state"),
    ("expires_at", True, "expires_at"),
    ("expires_at", "1700000000", "expires_at"),
    ("expires_at", float("inf"), "expires_at"),
    ("expires_at", -1, "expires_at"),
    ("stages", [{"name": "prod stage", "deployment_id": "abc"}], "stages[0].name"),
    ("stages", [{"name": "p" * 129, "deployment_id": "abc"}], "stages[0].name"),
    ("stages", [{"name": "prod", "deployment_id": "ABC-123"}], "stages[0].deployment_id"),
    ("stages", [{"name": "prod", "deployment_id": 123}], "stages[0].deployment_id"),
    ("stages", [{"name": "prod"}], "deployment_id"),
    ("stages", [{"name": f"s{i}", "deployment_id": None} for i in range(stored.STAGES_LIMIT + 1)], "stages"),
    ("deployment_id", "d" * 33, "deployment_id"),
    ("missing_stages", ["ok", 7], "missing_stages[1]"),
    ("created_at", "yesterday", "created_at"),
    ("holder", ["cli"], "holder"),
    ("kind", "record", "kind"),
]


@pytest.mark.parametrize("field, value, named", INTENT_BAD, ids=lambda v: str(v)[:40])
def test_a_malformed_intent_is_refused_with_one_line(field: str, value: Any, named: str) -> None:
    with pytest.raises(JournalError) as raised:
        Intent.from_dict(_set(field, value)(INTENT), "journal.jsonl:7")
    one_line(raised.value, "journal.jsonl:7", named)


@pytest.mark.parametrize("field", ["intent_id", "account", "region", "api_id", "policy_before", "stages", "holder"])
def test_an_intent_missing_a_field_is_refused(field: str) -> None:
    with pytest.raises(JournalError) as raised:
        Intent.from_dict(_drop(field)(INTENT), "here")
    one_line(raised.value, "here", field)


@pytest.mark.parametrize("value", [None, [], "intent", 7, [INTENT]])
def test_an_intent_that_is_no_object_is_refused(value: Any) -> None:
    with pytest.raises(JournalError) as raised:
        Intent.from_dict(value, "here")
    one_line(raised.value, "here")


def test_a_planned_stage_is_decoded_strictly() -> None:
    assert PlannedStage.from_dict({"name": "prod", "deployment_id": "abc123"}) == PlannedStage("prod", "abc123")
    for bad in ({"name": "prod", "deployment_id": "abc", "x": 1}, {"name": 5, "deployment_id": None}, {"name": "prod"}):
        with pytest.raises(JournalError):
            PlannedStage.from_dict(bad)


RECORD_BAD = COMMON_BAD + [
    ("undeployed", [{**UNDEPLOYED, "path": "orders"}], "undeployed[0].path"),
    ("outcome", "granted", "outcome"),
    ("change_id", "../../etc", "change_id"),
    ("stages_redeployed", None, "stages_redeployed"),
    ("stages_redeployed", ["prod", "bad name"], "stages_redeployed[1]"),
    ("timestamp", 1700000000, "timestamp"),
    ("kind", "intent-ish", "kind"),
]


@pytest.mark.parametrize("field, value, named", RECORD_BAD, ids=lambda v: str(v)[:40])
def test_a_malformed_audit_record_is_refused_with_one_line(field: str, value: Any, named: str) -> None:
    with pytest.raises(ValueError) as raised:
        AuditRecord.from_dict(_set(field, value)(RECORD), "audit.jsonl:3")
    one_line(raised.value, "audit.jsonl:3", named)


APPROVAL_BAD = COMMON_BAD[:-1] + [
    ("approval_id", "short", "approval_id"),
    ("status", "approved-by-mallory", "status"),
    ("decision", "maybe", "decision"),
    ("expires_at", 1.5, "expires_at"),
    ("expires_at", True, "expires_at"),
    ("decided_at", "now", "decided_at"),
    ("task_token", "", "task_token"),
    ("task_token", "t" * 1025, "task_token"),
    ("execution", "e" * 81, "execution"),
    ("stages", "prod", "stages"),
    ("smuggled", 1, "smuggled"),
]


@pytest.mark.parametrize("field, value, named", [b for b in APPROVAL_BAD if b[0] in APPROVAL or b[0] == "smuggled"],
                         ids=lambda v: str(v)[:40])
def test_a_malformed_approval_request_is_refused_with_one_line(field: str, value: Any, named: str) -> None:
    with pytest.raises(stored.StoredError) as raised:
        ApprovalRequest.from_dict(_set(field, value)(APPROVAL), "approval item")
    one_line(raised.value, "approval item", named)


def test_good_items_round_trip() -> None:
    intent = Intent.from_dict(INTENT)
    assert intent.to_dict() == INTENT and isinstance(intent.stages[0], PlannedStage)
    with pytest.raises(JournalError, match="unknown field `kind`"):  # a journal line's kind is the line's, not the intent's
        Intent.from_dict({**INTENT, "kind": "intent"})
    assert AuditRecord.from_dict(RECORD).to_dict() == RECORD
    assert ApprovalRequest.from_dict(APPROVAL).to_dict() == APPROVAL
    older = {k: v for k, v in RECORD.items() if k not in ("trust", "change_id", "outcome", "findings", "timestamp")}
    assert AuditRecord.from_dict(older).trust is None, "an older record (no trust settings) still reads"


def test_the_schemas_know_every_state_the_code_has() -> None:
    """Each stored shape is its one decoder (remediator.codec); its states are the code's."""
    states = typing.get_args(typing.get_type_hints(Intent, include_extras=False)["state"])
    assert set(states) == {journal.PENDING, *journal.CLOSED_STATES}
    assert typing.get_args(stored.ApprovalStatus) == approvals.APPROVAL_STATUSES


# --- hypothesis: whatever is stored, a reader decodes it or refuses it with one line ---------------------------

JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-2**70, 2**70) | st.floats(allow_nan=True) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(base=st.sampled_from(["intent", "record", "approval"]), field=st.text(max_size=20) | st.sampled_from(list(INTENT)),
       value=JSON, drop=st.booleans())
def test_any_tampered_item_decodes_or_is_refused_with_one_line(base: str, field: str, value: Any, drop: bool) -> None:
    good, decoder = {"intent": (INTENT, Intent.from_dict), "record": (RECORD, AuditRecord.from_dict),
                     "approval": (APPROVAL, ApprovalRequest.from_dict)}[base]
    data = {k: v for k, v in good.items() if k != field} if drop else {**good, field: value}
    try:
        decoded = decoder(data, "src:1")
    except ValueError as error:
        one_line(error, "src:1")
        return
    again = decoded.to_dict()
    assert decoder(again, "again") .to_dict() == again, "what decodes, round-trips"


@settings(max_examples=200, deadline=None)
@given(value=JSON)
def test_any_json_value_as_a_whole_item_is_refused_with_one_line(value: Any) -> None:
    for decoder in (Intent.from_dict, AuditRecord.from_dict, ApprovalRequest.from_dict):
        with pytest.raises(ValueError) as raised:
            decoder(value, "src:2")
        one_line(raised.value, "src:2")


# --- the journal file -----------------------------------------------------------------------------------------

def _journal(tmp_path: Path, *lines: str) -> tuple[Path, JsonLinesJournal]:
    path = tmp_path / "audit.jsonl"
    path.write_text("".join(line + "\n" for line in lines))
    return path, JsonLinesJournal(JsonLinesAuditLog(path))


def test_a_crafted_intent_line_is_refused_naming_the_file_and_line(tmp_path: Path) -> None:
    good = json.dumps({"kind": "intent", **INTENT})
    crafted = json.dumps({"kind": "intent", **INTENT, "intent_id": "f" * 32, "policy_before": 7})
    path, opened = _journal(tmp_path, good, crafted)
    with pytest.raises(JournalError) as raised:
        opened.open_intents()
    one_line(raised.value, f"{path}:2", "policy_before")
    assert opened._intents == {}, "nothing of the file is used, not even its good lines"


@pytest.mark.parametrize("line, named", [
    ("garbage", "not JSON"),
    ("[1, 2]", "not an object"),
    ('{"kind": "intent"}', "intent_id"),
    (json.dumps({**RECORD, "change_id": "nope"}), "change_id"),  # a record that would close another intent
    (json.dumps({"change_id": INTENT_ID}), "not an audit record"),
    ('{"kind": "intent", "intent_id": NaN}', "not JSON"),
])
def test_every_line_the_journal_did_not_write_is_refused(tmp_path: Path, line: str, named: str) -> None:
    path, opened = _journal(tmp_path, json.dumps({"kind": "intent", **INTENT}), line, json.dumps(RECORD))
    with pytest.raises(JournalError) as raised:
        opened.open_intents()
    one_line(raised.value, f"{path}:2", named)


def test_a_line_cut_off_by_a_crash_is_skipped_and_good_lines_still_read(tmp_path: Path) -> None:
    path, opened = _journal(tmp_path, json.dumps({"kind": "intent", **INTENT}), '{"kind":"intent","intent_id":"01', "")
    (intent,) = opened.open_intents()
    assert intent.to_dict() == INTENT and opened.log.skipped and f"{path}:2" in opened.log.skipped[0]
    with path.open("a") as handle:
        handle.write(json.dumps(RECORD) + "\n")
    assert opened.open_intents() == [], "closed by its record"


# --- local files: no links, no loose modes, new ones private ---------------------------------------------------

def _writers(tmp_path: Path) -> dict[str, Callable[[], Any]]:
    log = JsonLinesAuditLog(tmp_path / "audit.jsonl")
    opened = JsonLinesJournal(log)
    lease = FileLease(opened)
    return {
        "audit.jsonl": lambda: list(log.records()),
        "audit.jsonl ": lambda: log.append_line({"x": 1}),
        "audit.jsonl.lock": opened.check_writable,
        "audit.jsonl.next-deployment": lambda: lease.acquire("me", 0.0),
    }


@pytest.mark.parametrize("name", ["audit.jsonl", "audit.jsonl ", "audit.jsonl.lock", "audit.jsonl.next-deployment"])
def test_a_symlinked_state_file_is_refused(tmp_path: Path, name: str) -> None:
    victim = tmp_path / "victim"
    victim.write_text("1\n")
    for other in ("audit.jsonl", "audit.jsonl.lock"):
        if other != name.strip():
            (tmp_path / other).write_text("")
    (tmp_path / name.strip()).symlink_to(victim)
    with pytest.raises(ValueError) as raised:
        _writers(tmp_path)[name]()
    one_line(raised.value, name.strip(), "symbolic link")
    assert victim.read_text() == "1\n", "never written through the link"


@pytest.mark.parametrize("name", ["audit.jsonl", "audit.jsonl ", "audit.jsonl.lock", "audit.jsonl.next-deployment"])
@pytest.mark.parametrize("mode", [0o664, 0o646, 0o666])
def test_a_group_or_world_writable_state_file_is_refused(tmp_path: Path, name: str, mode: int) -> None:
    for other in ("audit.jsonl", "audit.jsonl.lock"):
        (tmp_path / other).write_text("")
    path = tmp_path / name.strip()
    path.write_text("1700000000.0\n" if "next" in name else "")
    path.chmod(mode)
    with pytest.raises(ValueError) as raised:
        _writers(tmp_path)[name]()
    one_line(raised.value, name.strip(), "writable by group or others")


def test_new_state_files_are_private_and_the_lease_round_trips(tmp_path: Path) -> None:
    log = JsonLinesAuditLog(tmp_path / "audit.jsonl")
    opened = JsonLinesJournal(log)
    opened.check_writable()
    lease = FileLease(opened)
    lease.release("me", 1700000000.25)
    assert lease.acquire("me", 1700000003.0).seconds == pytest.approx(2.25)
    for name in ("audit.jsonl", "audit.jsonl.lock", "audit.jsonl.next-deployment"):
        assert (tmp_path / name).stat().st_mode & 0o777 == 0o600, name
    assert sorted(p.name for p in tmp_path.iterdir()) == ["audit.jsonl", "audit.jsonl.lock", "audit.jsonl.next-deployment"]


@pytest.mark.parametrize("content", ["", "soon\n", "1e400\n", "nan\n", "-5\n", "1700000000\n1700000000\n",
                                     "99999999999999\n", " 1700000000\n", "1700000000.5 # comment\n"])
def test_a_crafted_next_deployment_file_is_refused(tmp_path: Path, content: str) -> None:
    lease = FileLease(JsonLinesJournal(JsonLinesAuditLog(tmp_path / "audit.jsonl")))
    lease.path.write_text(content)
    with pytest.raises(JournalError) as raised:
        lease.acquire("me", 0.0)
    one_line(raised.value, "next-deployment")


def test_the_next_deployment_file_never_makes_a_run_wait_more_than_one_interval(tmp_path: Path) -> None:
    lease = FileLease(JsonLinesJournal(JsonLinesAuditLog(tmp_path / "audit.jsonl")))
    lease.path.write_text("99999999999\n")
    assert lease.acquire("me", 1700000000.0).seconds == journal.DEPLOYMENT_INTERVAL


def test_safe_files_refuses_what_is_no_regular_file(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "fifo", 0o600)
    fd = os.open(tmp_path / "fifo", os.O_RDONLY | os.O_NONBLOCK)
    try:
        with pytest.raises(safe_files.UnsafeFile):
            safe_files.check_fd(fd, tmp_path / "fifo")
    finally:
        os.close(fd)
    with pytest.raises(IsADirectoryError):
        safe_files.read_bytes(tmp_path)


# --- DynamoDB items ---------------------------------------------------------------------------------------------

class FakeDynamo:
    """The few calls the readers make, answering with crafted items (no AWS, no emulator)."""

    class exceptions:
        class ConditionalCheckFailedException(Exception):
            pass

        class TransactionCanceledException(Exception):
            pass

    def __init__(self, items: list[dict[str, Any]], attributes: dict[str, Any] | None = None) -> None:
        self.items, self.attributes, self.writes = items, attributes or {}, []

    def get_item(self, **kwargs: Any) -> dict[str, Any]:
        return {"Item": self.items[0]} if self.items else {}

    def query(self, **kwargs: Any) -> dict[str, Any]:
        return {"Items": self.items}

    def scan(self, **kwargs: Any) -> dict[str, Any]:
        return {"Items": self.items}

    def update_item(self, **kwargs: Any) -> dict[str, Any]:
        self.writes.append(kwargs)
        return {"Attributes": self.attributes}


class FakeClients:
    def __init__(self, client: FakeDynamo) -> None:
        self._client = client

    def client(self, service: str, region: str | None = None) -> FakeDynamo:
        return self._client


def S(value: str) -> dict[str, str]:
    return {"S": value}


def N(value: str) -> dict[str, str]:
    return {"N": value}


def intent_item(**changes: Any) -> dict[str, Any]:
    intent = Intent.from_dict(INTENT)
    item = {"pk": S("intent#open"), "sk": S(intent.key), "intent_id": S(intent.intent_id), "holder": S(intent.holder),
            "expires_at": N("1700000000.5"), "record": S(json.dumps(intent.to_dict()))}
    item.update(changes)
    return {k: v for k, v in item.items() if v is not None}


def audit_item(**changes: Any) -> dict[str, Any]:
    item = {"pk": S(f"api#{RECORD['region']}#{RECORD['api_id']}"), "sk": S(f"audit#change#{INTENT_ID}"), "account": S(OWNER),
            "region": S(RECORD["region"]), "api_id": S(RECORD["api_id"]), "action": S("remediate"),
            "recorded_at": S(RECORD["timestamp"]), "record": S(json.dumps(RECORD))}
    item.update(changes)
    return {k: v for k, v in item.items() if v is not None}


def approval_item(**changes: Any) -> dict[str, Any]:
    item = {"pk": S(f"approval#{APPROVAL['approval_id']}"), "sk": S("approval"), "status": S("pending"),
            "expires_at": N("1700000000"), "record": S(json.dumps(APPROVAL))}
    item.update(changes)
    return {k: v for k, v in item.items() if v is not None}


READERS: dict[str, Callable[[FakeClients], Any]] = {
    "open intent": lambda c: DynamoJournal(c, "tbl").open_intent(OWNER, "us-gov-west-1", "a1b2c3d4e5"),
    "open intents": lambda c: DynamoJournal(c, "tbl").open_intents(),
    "audit": lambda c: list(AuditTable(c, "tbl").records()),
    "approval": lambda c: ApprovalStore(c, "tbl").get(APPROVAL["approval_id"]),
    "failures": lambda c: FailureLedger(c, "tbl").count("eu-west-1", "a1b2c3d4e5", "d"),
    "notice": lambda c: NoticeLedger(c, "tbl").fingerprint("eu-west-1", "a1b2c3d4e5"),
    "notices": lambda c: NoticeLedger(c, "tbl").standing("eu-west-1"),
    "lease": lambda c: DynamoLease(c, "tbl", OWNER).acquire("me", 1700000000.0, ticket=0),
}

BAD_ITEMS: list[tuple[str, dict[str, Any], str]] = [
    ("open intent", intent_item(record=S(json.dumps({**INTENT, "state": "applied"}))), "do not match"),
    ("open intent", intent_item(record=S(json.dumps({**INTENT, "api_id": "zzzzzzzzzz"}))), "do not match"),
    ("open intent", intent_item(holder=S("execution:someone-else")), "do not match"),
    ("open intent", intent_item(record=S(json.dumps({**INTENT, "policy_after": ["x"]}))), "policy_after"),
    ("open intent", intent_item(record=S("not json")), "not JSON"),
    ("open intent", intent_item(record=N("1")), "record"),
    ("open intent", intent_item(expires_at=S("soon")), "expires_at"),
    ("open intent", intent_item(extra=S("x")), "extra"),
    ("open intents", intent_item(record=None), "record"),
    ("open intents", {"pk": S("intent#open")}, "without a well-formed key"),
    ("audit", audit_item(record=S(json.dumps({**RECORD, "outcome": "granted"}))), "outcome"),
    ("audit", audit_item(account=S("444455556666")), "do not match"),
    ("audit", audit_item(sk=S("audit#change#ffffffffffffffffffffffffffffffff")), "do not match"),
    ("audit", audit_item(recorded_at=N("5")), "recorded_at"),
    ("audit", {"pk": {"S": ["x"]}, "sk": S("audit#1")}, "without a well-formed key"),
    ("approval", approval_item(status=S("approved-by-mallory")), "status"),
    ("approval", approval_item(record=S(json.dumps({**APPROVAL, "task_token": 5}))), "task_token"),
    ("approval", approval_item(record=S(json.dumps({**APPROVAL, "approval_id": "Q" * 24}))), "of approval"),
    ("approval", approval_item(channel=S("C1")), "channel and ts"),
    ("failures", {"pk": S("failures#eu-west-1#a1b2c3d4e5"), "sk": S("failures"), "failures": N("1.5"), "digest": S("d")}, "failures"),
    ("failures", {"pk": S("failures#eu-west-1#a1b2c3d4e5"), "sk": S("failures"), "failures": S("3"), "digest": S("d")}, "failures"),
    ("notice", {"pk": S("notice#eu-west-1"), "sk": S("a1b2c3d4e5"), "fingerprint": S("x" * 5000), "name": S("n"),
                "verdict": S("v"), "told_at": S("t")}, "fingerprint"),
    ("notices", {"pk": S("notice#eu-west-1"), "sk": S("../../x"), "fingerprint": S("0" * 32), "name": S("n"),
                 "verdict": S("v"), "told_at": S("t")}, "sk"),
    ("lease", {"pk": S("lease#deployments"), "sk": S(OWNER), "version": N("1e5")}, "version"),
    ("lease", {"pk": S("lease#deployments"), "sk": S(OWNER), "next_at": N("99999999999999")}, "next_at"),
    ("lease", {"pk": S("lease#deployments"), "sk": S(OWNER), "holder": N("5")}, "holder"),
    ("lease", {"pk": S("lease#deployments"), "sk": S(OWNER), "serving": N("1.5")}, "serving"),
]


@pytest.mark.parametrize("reader, item, named", BAD_ITEMS, ids=lambda v: v if isinstance(v, str) else "")
def test_a_crafted_dynamodb_item_is_refused_naming_the_table_and_key(reader: str, item: dict, named: str) -> None:
    client = FakeDynamo([item])
    with pytest.raises(StoredItemError) as raised:
        READERS[reader](FakeClients(client))
    one_line(raised.value, "table tbl", named)
    assert client.writes == [], "nothing written on what was refused"


def test_good_dynamodb_items_are_read() -> None:
    (intent,) = READERS["open intents"](FakeClients(FakeDynamo([intent_item()])))
    assert intent.to_dict() == INTENT
    assert READERS["audit"](FakeClients(FakeDynamo([audit_item(), {"pk": S("org#roster"), "sk": S("o-1")}])))[0].to_dict() == RECORD
    assert READERS["approval"](FakeClients(FakeDynamo([approval_item(channel=S("C1"), ts=S("1.2"))]))).ts == "1.2"
    failures = {"pk": S("failures#eu-west-1#a1b2c3d4e5"), "sk": S("failures"), "failures": N("2"), "digest": S("d")}
    assert READERS["failures"](FakeClients(FakeDynamo([failures]))) == 2
    notice = {"pk": S("notice#eu-west-1"), "sk": S("a1b2c3d4e5"), "fingerprint": S("0" * 32), "name": S("n"),
              "verdict": S("v"), "told_at": S("t")}
    assert READERS["notices"](FakeClients(FakeDynamo([notice]))) == {"a1b2c3d4e5": "0" * 32}
    lease = {"pk": S("lease#deployments"), "sk": S(OWNER), "version": N("3"), "serving": N("0"), "next_at": N("1699999990")}
    assert READERS["lease"](FakeClients(FakeDynamo([lease]))).granted


def test_a_crafted_ticket_answer_is_refused() -> None:
    client = FakeDynamo([], attributes={"next_ticket": {"N": "-1"}})
    with pytest.raises(StoredItemError) as raised:
        DynamoLease(FakeClients(client), "tbl", OWNER).acquire("me", 0.0)
    one_line(raised.value, "table tbl", "next_ticket")


# --- events and settings ----------------------------------------------------------------------------------------

EVENT = api_call_event("UpdateRestApi", "a1b2c3d4e5", "eu-west-1", OWNER)


@pytest.mark.parametrize("mutate, named", [
    (lambda e: e["detail"].__setitem__("eventName", ["UpdateRestApi"]), "eventName"),
    (lambda e: e["detail"].__setitem__("eventName", {"UpdateRestApi": 1}), "eventName"),
    (lambda e: e["detail"].__setitem__("recipientAccountId", int(OWNER)), "recipientAccountId"),
    (lambda e: e.__setitem__("account", int(OWNER)), "account"),
    (lambda e: e["detail"].__setitem__("eventID", 12), "eventID"),
    (lambda e: e["detail"].__setitem__("errorCode", ["x"]), "errorCode"),
    (lambda e: e["detail"].__setitem__("awsRegion", "x" * 5000), "awsRegion"),
    (lambda e: e["detail"]["userIdentity"].__setitem__("arn", ["arn:aws:iam::1:role/x"]), "userIdentity.arn"),
    (lambda e: e["detail"]["userIdentity"].__setitem__("sessionContext", {"sessionIssuer": {"arn": {"x": 1}}}),
     "sessionIssuer.arn"),
    (lambda e: e["detail"].__setitem__("resources", [{"accountId": int(OWNER)}]), "account"),
])
def test_an_event_field_of_the_wrong_type_is_one_event_error(mutate: Callable[[dict], Any], named: str) -> None:
    event = copy.deepcopy(EVENT)
    mutate(event)
    with pytest.raises(EventError) as raised:
        parse_event(event, owner_account=OWNER)
    one_line(raised.value, named)


def test_a_numeric_recipient_is_refused_in_organization_mode() -> None:
    event = copy.deepcopy(EVENT)
    event["detail"]["recipientAccountId"] = int(OWNER)
    with pytest.raises(EventError) as raised:
        parse_member_event(event, spoke_role_name="spoke")
    one_line(raised.value, "refused")


@settings(max_examples=200, deadline=None)
@given(field=st.sampled_from(["eventName", "eventID", "eventSource", "awsRegion", "recipientAccountId", "userIdentity",
                              "requestParameters", "responseElements", "resources", "errorCode"]), value=JSON)
def test_any_event_field_is_parsed_or_refused_with_one_line(field: str, value: Any) -> None:
    event = copy.deepcopy(EVENT)
    event["detail"][field] = value
    try:
        parse_event(event, owner_account=OWNER)
    except EventError as error:
        one_line(error)


@pytest.mark.parametrize("name, value, named", [
    ("APPROVAL_TIMEOUT_SECONDS", "a day", "APPROVAL_TIMEOUT_SECONDS"),
    ("APPROVAL_TIMEOUT_SECONDS", "0", "APPROVAL_TIMEOUT_SECONDS"),
    ("REMOVE_WILDCARD_PRINCIPALS", "yes", "REMOVE_WILDCARD_PRINCIPALS"),
    ("EXEMPT_API_IDS", "a1b2c3d4e5,NOT-AN-ID", "EXEMPT_API_IDS"),
    ("REDEPLOY_STAGES", "prod,bad stage", "REDEPLOY_STAGES"),
    ("REMEDIATOR_MODE", "yolo", "REMEDIATOR_MODE"),
])
def test_a_malformed_setting_fails_closed_with_one_line(monkeypatch: pytest.MonkeyPatch, name: str, value: str,
                                                         named: str) -> None:
    from remediator.functions.common import Settings
    from remediator.workflow.errors import RemediationFailed

    monkeypatch.setenv(name, value)
    with pytest.raises(RemediationFailed) as raised:
        Settings.from_environment()
    one_line(raised.value, named)


def test_the_settings_the_stack_writes_still_read(monkeypatch: pytest.MonkeyPatch) -> None:
    from remediator.functions.common import Settings

    for name, value in {"APPROVAL_TIMEOUT_SECONDS": "86400", "REMOVE_WILDCARD_PRINCIPALS": "true",
                        "EXEMPT_API_IDS": "a1b2c3d4e5", "REDEPLOY_STAGES": "prod,dev"}.items():
        monkeypatch.setenv(name, value)
    found = Settings.from_environment()
    assert (found.approval_timeout_seconds, found.remove_wildcards, found.exempt_api_ids, found.stages) == (
        86400, True, frozenset({"a1b2c3d4e5"}), "prod,dev")


# --- the CLI ---------------------------------------------------------------------------------------------------

def test_the_cli_refuses_a_crafted_journal_line_and_changes_nothing(account, tmp_path: Path) -> None:
    """An intent line someone appended (an open "rollback" of an API to a wide-open policy) is refused: exit 2,
    one line naming the file and line, and no write to API Gateway, the log or anything beside it."""
    from remediator.adapters.apigateway import ApiGatewayAdapter
    from remediator.core import parse_policy
    from remediator.local.emulator import seed_rest_api
    from tests.test_sweep import allow, policy, run_cli

    untrusted = json.dumps(policy(allow(OWNER, "999999999999")))
    api_id = seed_rest_api(account.clients, "eu-west-1", "api", untrusted)
    audit = tmp_path / "audit.jsonl"
    wide_open = json.dumps({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": "*", "Action": "execute-api:Invoke", "Resource": "execute-api:/*"}]})
    crafted = {"kind": "intent", **INTENT, "account": OWNER, "region": "eu-west-1", "api_id": api_id, "action": "rollback",
               "policy_after": wide_open, "patch_operations": [{"op": "replace", "path": "/policy", "value": wide_open}],
               "stages": [{"name": "prod", "deployment_id": 1}]}  # one field off
    audit.write_text(json.dumps(crafted) + "\n")
    audit.chmod(0o600)
    before = sorted(p.name for p in tmp_path.iterdir()), audit.read_bytes()
    account.server.counts.clear()
    args = ["fix", "--regions", "eu-west-1", "--endpoint-url", account.endpoint_url, "--format", "json", "--apply",
            "--audit-log", str(audit)]
    status, records, err = run_cli(*args)
    assert status == 2 and records == [] and err.count("\n") == 1, err
    assert err.startswith("error: ") and f"{audit}:1" in err and "stages[0].deployment_id" in err
    assert parse_policy(ApiGatewayAdapter(account.clients).get_rest_api("eu-west-1", api_id).policy) == json.loads(untrusted)
    assert not any(op.startswith(("Update", "Create", "Put", "Delete")) for (_, op) in account.server.aws_requests())
    assert audit.read_bytes() == before[1]
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(set(before[0]) | {"audit.jsonl.lock"})


@pytest.mark.parametrize("what", ["symlink", "group-writable"])
def test_the_cli_refuses_an_unsafe_audit_log_with_one_line(tmp_path: Path, what: str) -> None:
    from remediator.cli import main

    audit = tmp_path / "audit.jsonl"
    elsewhere = tmp_path / "elsewhere.jsonl"
    elsewhere.write_text(json.dumps(RECORD) + "\n")
    if what == "symlink":
        audit.symlink_to(elsewhere)
    else:
        audit.write_text(json.dumps(RECORD) + "\n")
        audit.chmod(0o666)
    out, err = io.StringIO(), io.StringIO()
    assert main(["rollback", "--audit-log", str(audit), "--api-id", "a1b2c3d4e5"], out, err) == 2
    lines = err.getvalue().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and str(audit) in lines[0], lines
    assert ("symbolic link" if what == "symlink" else "writable by group or others") in lines[0]
