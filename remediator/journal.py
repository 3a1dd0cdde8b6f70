"""The intent journal: every change is written down as `pending` before the policy is touched, and
closed once it is deployed (`applied`), undone (`restored`), or found not to have happened.

Two stores, one shape: DynamoDB for the workflow (`remediator.adapters.dynamodb.DynamoJournal`) and a
JSON Lines file for the CLI (`JsonLinesJournal`, the same file as its audit log). The open intent of an
API is also the claim on it: while one is open and its holder alive, nobody else changes that API.
"""

from __future__ import annotations

import fcntl
import math
import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated, Any, Literal, Protocol

import msgspec

from remediator import clock, safe_files, stored
from remediator.codec import Record
from remediator.audit import AuditRecord, JsonLinesAuditLog, cut_off, parse_line, utc_now

PENDING = "pending"
# How an intent ends: deployed | the policy put back before any stage served it | nothing written | someone else
# changed the policy | the guard refused the write
CLOSED_STATES = ("applied", "restored", "failed", "abandoned", "superseded", "refused")  # refused: the guard would not write it


class JournalError(ValueError):
    """The journal cannot be read or written: nothing may change."""


class IntentConflict(Exception):
    """Another open intent holds the API (a concurrent fix): wait for it, never change the API twice."""


class PlannedStage(Record):
    """A stage the change deploys, and the deployment it served before: what an undo puts back."""

    codec_error = JournalError
    codec_where = "planned stage"

    name: stored.StageName
    deployment_id: stored.DeploymentId | None


class Intent(Record):
    """One change, written down before it is made. As stored (a journal line, a DynamoDB item, the workflow's
    state) it is decoded strictly by remediator.codec: an intent steers writes, so anything but what the bot
    writes raises JournalError naming the source and what is wrong."""

    codec_error = JournalError
    codec_where = "intent"

    intent_id: stored.IntentId
    account: stored.Account
    region: stored.Region
    api_id: stored.RestApiId
    api_name: stored.Name
    action: stored.Action  # remediate | rollback
    policy_before: stored.Policy  # exactly as API Gateway returned it
    policy_after: stored.Policy  # exactly as it is written
    patch_operations: stored.PatchDicts
    stages: Annotated[list[PlannedStage], msgspec.Meta(max_length=stored.STAGES_LIMIT)]
    triggered_by: stored.Text
    holder: stored.Text  # who carries it out: an execution, or a CLI process
    expires_at: stored.Seconds = 0.0  # the holder's claim on the API lapses then (it renews it at each step)
    created_at: stored.Timestamp = msgspec.field(default_factory=utc_now)
    # PENDING and CLOSED_STATES
    state: Literal["pending", "applied", "restored", "failed", "abandoned", "superseded", "refused"] = PENDING
    deployment_id: stored.DeploymentId | None = None  # set as soon as CreateDeployment answered
    missing_stages: stored.StageNames = msgspec.field(default_factory=list)
    findings: stored.FindingDicts = msgspec.field(default_factory=list)
    reason: stored.Text = ""
    trust: stored.TrustDict | None = None  # the trust settings the fix was computed under
    undoing: bool = False  # the undo began: once the policy is `before` again, the change closes as restored
    # The claim's fencing token (remediator.adapters.dynamodb.DynamoJournal): raised by each takeover; every write of
    # the intent requires the token its writer holds, so a holder that was taken over can write nothing more.
    fence: Annotated[int, msgspec.Meta(ge=0, le=1_000_000)] = 0
    # left split: which stage serves which deployment now
    serving: Annotated[dict[stored.StageName, stored.DeploymentId], msgspec.Meta(max_length=stored.STAGES_LIMIT)] = \
        msgspec.field(default_factory=dict)
    # Edits of the API its stages did not serve yet that the redeploy publishes with the fix, as the plan allowed them
    # (remediator.core.undeployed.UndeployedChange); right before CreateDeployment, any other stops it.
    undeployed: stored.UndeployedDicts = msgspec.field(default_factory=list)

    @property
    def key(self) -> str:
        return f"{self.account}#{self.region}#{self.api_id}"

    @property
    def is_open(self) -> bool:
        return self.state == PENDING

    def record(self, outcome: str, stages: list[str], deployment_id: str | None) -> AuditRecord:
        """The change's one audit record, keyed by this intent."""
        return AuditRecord(
            account=self.account, region=self.region, api_id=self.api_id, api_name=self.api_name, action=self.action,
            policy_before=self.policy_before, policy_after=self.policy_after, patch_operations=self.patch_operations,
            stages_redeployed=list(stages), deployment_id=deployment_id, triggered_by=self.triggered_by,
            findings=self.findings, change_id=self.intent_id, outcome=outcome, trust=self.trust,
            undeployed=list(self.undeployed) if outcome == "applied" else [],
        )


class Journal(Protocol):
    def check_writable(self) -> None: ...

    def now(self) -> float: ...

    def open_intent(self, account: str, region: str, api_id: str) -> Intent | None: ...

    def open_intents(self) -> list[Intent]: ...

    def held_by_other(self, intent: Intent, holder: str, now: float) -> bool: ...

    def begin(self, intent: Intent) -> None: ...

    def update(self, intent: Intent, previous_holder: str | None = None) -> None: ...

    def close(self, intent: Intent, record: AuditRecord | None, wrote: bool = False, late: bool = False) -> None:
        """Close the change (with its record, if it has one). `wrote`: it closes without a record after a write of
        its own may have gone out (superseded): its write window is kept all the same, as an applied or restored
        change's is, so a person's write it replaced is found as lost. `late`: closed by another holder before its
        write went out (abandoned), while its own holder, past its fence check, may still send it: its window is kept
        for a write that lands after the close."""

    def note(self, record: AuditRecord) -> None: ...


class Turn(msgspec.Struct):
    """The answer to asking for the deployment turn: granted (deploy in `seconds`, a short wait well inside
    a Lambda's timeout) or not yet (ask again in `seconds`, with the same `ticket`: the place in the queue)."""

    granted: bool
    seconds: float
    ticket: int | None = None


class Lease(Protocol):
    """The account's turn to deploy: CreateDeployment allows one call per 5 s per account, unraisable."""

    def acquire(self, holder: str, now: float, ticket: int | None = None) -> Turn: ...

    def release(self, holder: str, deployed_at: float | None) -> None: ...


DEPLOYMENT_INTERVAL = 5.0  # seconds between two CreateDeployment calls of one account


class JsonLinesJournal:
    """The CLI's journal: intent lines (`"kind": "intent"`) in the audit log itself, each fsync'd before
    the change it announces. An intent is closed by its audit record (same `change_id`) or by a later line
    of it in a closed state. A lock file beside the log makes concurrent runs take turns, one API at a time.
    """

    def __init__(self, log: JsonLinesAuditLog) -> None:
        self.log = log
        self.lock_path = log.path.with_name(log.path.name + ".lock")
        self._intents: dict[str, Intent] = {}
        self._recorded: set[str] = set()
        self._offset = 0
        self._lines = 0  # complete lines read so far: where the next one is, for errors
        self._handle: Any = None

    def check_writable(self) -> None:
        self.log.check_writable()
        try:
            safe_files.touch(self.lock_path)
        except OSError as error:
            raise JournalError(f"lock file {self.lock_path} cannot be written: {error.strerror or error}") from None

    @contextmanager
    def exclusive(self) -> Iterator[None]:
        """Hold the log's lock: another run waits here, then re-reads what this one wrote."""
        if self._handle is not None:
            yield
            return
        with safe_files.open_file(self.lock_path, "a+") as handle:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
            self._handle = handle
            try:
                yield
            finally:
                self._handle = None
                fcntl.flock(handle.fileno(), fcntl.LOCK_UN)

    def _refresh(self) -> None:
        """Read what was appended since the last look (by this run or another)."""
        try:
            handle = safe_files.open_file(self.log.path, "rb")
        except FileNotFoundError:
            return
        with handle:
            handle.seek(self._offset)
            data = handle.read()
        end = data.rfind(b"\n")
        if end < 0:
            return  # nothing complete yet (or a truncated last line: the next append starts after it)
        lines = data[: end + 1].split(b"\n")[:-1]
        taken = [self._take(line, self._lines + index + 1) for index, line in enumerate(lines)]
        # Only once every new line decoded: a refused line leaves the journal as it was (and refuses again).
        for kind, value in taken:
            if kind == "intent":
                self._intents[value.intent_id] = value
            elif kind == "record":
                self._recorded.add(value)
        self._offset += end + 1
        self._lines += len(lines)

    def _take(self, line: bytes, number: int) -> tuple[str, Any]:
        """One complete line: ("intent", Intent), ("record", its change ID), or ("", None) for a blank line or
        one cut off by a crash. Anything else is refused (JournalError naming the file and line): a line the bot
        never wrote must not open, close or steer a change."""
        where = f"{self.log.path}:{number}"
        text = line.decode("utf-8", "surrogateescape")
        if not text.strip():
            return "", None
        try:
            data = parse_line(text)
        except ValueError as error:
            if cut_off(text):  # a write cut off by a crash (later appends start on a new line)
                self.log.skipped.append(f"{where}: truncated line skipped ({len(line)} bytes)")
                return "", None
            raise JournalError(f"{where}: not a journal line: not JSON ({stored.problem(error)})") from None
        if not isinstance(data, dict):
            raise JournalError(f"{where}: not a journal line: a JSON {type(data).__name__}, not an object")
        if data.get("kind") == "intent":  # the line's kind, not the intent's: what the line holds
            return "intent", Intent.from_dict({k: v for k, v in data.items() if k != "kind"}, f"{where}: not an intent")
        try:
            record = AuditRecord.from_dict(data, f"{where}: not an audit record")
        except ValueError as error:
            raise JournalError(str(error)) from None
        return ("record", record.change_id) if record.change_id else ("", None)

    def open_intents(self) -> list[Intent]:
        self._refresh()
        return [i for i in self._intents.values() if i.is_open and i.intent_id not in self._recorded]

    def open_intent(self, account: str, region: str, api_id: str) -> Intent | None:
        key = f"{account}#{region}#{api_id}"
        return next((i for i in self.open_intents() if i.key == key), None)

    def now(self) -> float:
        """One machine, one clock: the runs that share this file share this machine's time."""
        return clock.now()

    def held_by_other(self, intent: Intent, holder: str, now: float) -> bool:
        # Runs take turns under the lock, so an open intent of another run is one that run left behind.
        return False

    def begin(self, intent: Intent) -> None:
        if self.open_intent(intent.account, intent.region, intent.api_id) is not None:
            raise IntentConflict(intent.key)
        self._write(intent)

    def update(self, intent: Intent, previous_holder: str | None = None) -> None:
        self._write(intent)

    def close(self, intent: Intent, record: AuditRecord | None, wrote: bool = False, late: bool = False) -> None:
        # (`wrote`, `late`: the CLI's log keeps no write windows; lost updates are found from CloudTrail by the workflow)
        self._refresh()
        if record is not None:
            if intent.intent_id not in self._recorded:  # one record per change, however often it is closed
                self.log.append(record)
                self._recorded.add(intent.intent_id)
        else:
            self._write(intent)

    def note(self, record: AuditRecord) -> None:
        """A record of its own beside the changes' (a refused write): it closes no intent."""
        self.log.append(record)

    def _write(self, intent: Intent) -> None:
        # Decoded before it is written: a line this journal could not read back would block every later run.
        copy = Intent.from_dict(intent.to_dict(), f"intent {intent.intent_id} to be written to {self.log.path}")
        self.log.append_line({"kind": "intent", **intent.to_dict()})
        self._intents[intent.intent_id] = copy


class FileLease:
    """The deployment turn between CLI runs on one machine: the time of the next allowed CreateDeployment,
    kept beside the journal's lock file and read and written only while the run holds that lock."""

    def __init__(self, journal: JsonLinesJournal) -> None:
        self.path = journal.log.path.with_name(journal.log.path.name + ".next-deployment")

    def _next_at(self) -> float:
        """The time the file names, written by `release` alone: a number of epoch seconds on one line. Anything
        else is refused (JournalError naming the file); a missing file means no deployment is due."""
        try:
            data = safe_files.read_bytes(self.path)
        except OSError as error:
            raise JournalError(f"deployment turn file {self.path} cannot be read: {error.strerror or error}") from None
        if data is None:
            return 0.0
        text = data.decode("ascii", "replace")
        if not NEXT_AT.fullmatch(text):
            raise JournalError(f"deployment turn file {self.path}: not a time ({text[:40]!r}); delete it if no run is under way")
        value = float(text)
        if not math.isfinite(value) or value > 1e11:
            raise JournalError(f"deployment turn file {self.path}: {text.strip()[:40]} is not a time")
        return value

    def acquire(self, holder: str, now: float, ticket: int | None = None) -> Turn:
        # The file only ever names a time one interval after a deployment: never wait longer than that.
        return Turn(True, min(DEPLOYMENT_INTERVAL, max(0.0, self._next_at() - now)))

    def release(self, holder: str, deployed_at: float | None) -> None:
        if deployed_at is None:
            return
        safe_files.replace_text(self.path, f"{deployed_at + DEPLOYMENT_INTERVAL!r}\n")


NEXT_AT = re.compile(r"[0-9]{1,12}(\.[0-9]{1,20})?\n?")
