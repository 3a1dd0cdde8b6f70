"""The intent journal: every change is written down as `pending` before the policy is touched, and
closed once it is deployed (`applied`), undone (`restored`), or found not to have happened.

Two stores, one shape: DynamoDB for the workflow (`remediator.adapters.dynamodb.DynamoJournal`) and a
JSON Lines file for the CLI (`JsonLinesJournal`, the same file as its audit log). The open intent of an
API is also the claim on it: while one is open and its holder alive, nobody else changes that API.
"""

from __future__ import annotations

import fcntl
import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol

from remediator.audit import AuditRecord, JsonLinesAuditLog, utc_now

PENDING = "pending"
# How an intent ends: deployed | put back (policy and stages) | nothing written | someone else changed the policy
CLOSED_STATES = ("applied", "restored", "failed", "abandoned", "superseded")


class JournalError(ValueError):
    """The journal cannot be read or written: nothing may change."""


class IntentConflict(Exception):
    """Another open intent holds the API (a concurrent fix): wait for it, never change the API twice."""


@dataclass
class PlannedStage:
    """A stage the change deploys, and the deployment it served before: what an undo puts back."""

    name: str
    deployment_id: str | None

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PlannedStage:
        return cls(str(data["name"]), data.get("deployment_id"))


@dataclass
class Intent:
    """One change, written down before it is made."""

    intent_id: str
    account: str
    region: str
    api_id: str
    api_name: str
    action: str  # remediate | rollback
    policy_before: str  # exactly as API Gateway returned it
    policy_after: str  # exactly as it is written
    patch_operations: list[dict[str, str]]
    stages: list[PlannedStage]
    triggered_by: str
    holder: str  # who carries it out: an execution, or a CLI process
    expires_at: float = 0.0  # the holder's claim on the API lapses then (it renews it at each step)
    created_at: str = field(default_factory=utc_now)
    state: str = PENDING
    deployment_id: str | None = None  # set as soon as CreateDeployment answered
    missing_stages: list[str] = field(default_factory=list)
    findings: list[dict[str, Any]] = field(default_factory=list)
    reason: str = ""
    trust: dict[str, Any] | None = None  # the trust settings the fix was computed under

    @property
    def key(self) -> str:
        return f"{self.account}#{self.region}#{self.api_id}"

    @property
    def is_open(self) -> bool:
        return self.state == PENDING

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Intent:
        known = {name: data[name] for name in cls.__dataclass_fields__ if name in data}
        known["stages"] = [PlannedStage.from_dict(s) for s in known.get("stages", [])]
        return cls(**known)

    def record(self, outcome: str, stages: list[str], deployment_id: str | None) -> AuditRecord:
        """The change's one audit record, keyed by this intent."""
        return AuditRecord(
            account=self.account, region=self.region, api_id=self.api_id, api_name=self.api_name, action=self.action,
            policy_before=self.policy_before, policy_after=self.policy_after, patch_operations=self.patch_operations,
            stages_redeployed=list(stages), deployment_id=deployment_id, triggered_by=self.triggered_by,
            findings=self.findings, change_id=self.intent_id, outcome=outcome, trust=self.trust,
        )


class Journal(Protocol):
    def check_writable(self) -> None: ...

    def open_intent(self, account: str, region: str, api_id: str) -> Intent | None: ...

    def open_intents(self) -> list[Intent]: ...

    def held_by_other(self, intent: Intent, holder: str, now: float) -> bool: ...

    def begin(self, intent: Intent) -> None: ...

    def update(self, intent: Intent, previous_holder: str | None = None) -> None: ...

    def close(self, intent: Intent, record: AuditRecord | None) -> None: ...


@dataclass
class Turn:
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
        self._handle: Any = None

    def check_writable(self) -> None:
        self.log.check_writable()
        try:
            self.lock_path.touch(exist_ok=True)
        except OSError as error:
            raise JournalError(f"lock file {self.lock_path} cannot be written: {error.strerror or error}") from None

    @contextmanager
    def exclusive(self) -> Iterator[None]:
        """Hold the log's lock: another run waits here, then re-reads what this one wrote."""
        if self._handle is not None:
            yield
            return
        with self.lock_path.open("a+") as handle:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
            self._handle = handle
            try:
                yield
            finally:
                self._handle = None
                fcntl.flock(handle.fileno(), fcntl.LOCK_UN)

    def _refresh(self) -> None:
        """Read what was appended since the last look (by this run or another)."""
        path = self.log.path
        if not path.exists():
            return
        with path.open("rb") as handle:
            handle.seek(self._offset)
            data = handle.read()
        end = data.rfind(b"\n")
        if end < 0:
            return  # nothing complete yet (or a truncated last line: the next append starts after it)
        for line in data[: end + 1].split(b"\n"):
            self._take(line)
        self._offset += end + 1

    def _take(self, line: bytes) -> None:
        if not line.strip():
            return
        try:
            data = json.loads(line.decode("utf-8", "surrogateescape"))
            if data.get("kind") == "intent":
                intent = Intent.from_dict(data)
                self._intents[intent.intent_id] = intent
            elif data.get("change_id"):
                self._recorded.add(str(data["change_id"]))
        except (ValueError, TypeError, KeyError, AttributeError):
            self.log.skipped.append(f"{self.log.path}: unreadable line skipped ({len(line)} bytes)")

    def open_intents(self) -> list[Intent]:
        self._refresh()
        return [i for i in self._intents.values() if i.is_open and i.intent_id not in self._recorded]

    def open_intent(self, account: str, region: str, api_id: str) -> Intent | None:
        key = f"{account}#{region}#{api_id}"
        return next((i for i in self.open_intents() if i.key == key), None)

    def held_by_other(self, intent: Intent, holder: str, now: float) -> bool:
        # Runs take turns under the lock, so an open intent of another run is one that run left behind.
        return False

    def begin(self, intent: Intent) -> None:
        if self.open_intent(intent.account, intent.region, intent.api_id) is not None:
            raise IntentConflict(intent.key)
        self._write(intent)

    def update(self, intent: Intent, previous_holder: str | None = None) -> None:
        self._write(intent)

    def close(self, intent: Intent, record: AuditRecord | None) -> None:
        self._refresh()
        if record is not None:
            if intent.intent_id not in self._recorded:  # one record per change, however often it is closed
                self.log.append(record)
                self._recorded.add(intent.intent_id)
        else:
            self._write(intent)

    def _write(self, intent: Intent) -> None:
        self.log.append_line({"kind": "intent", **intent.to_dict()})
        self._intents[intent.intent_id] = Intent.from_dict(intent.to_dict())


class FileLease:
    """The deployment turn between CLI runs on one machine: the time of the next allowed CreateDeployment,
    kept beside the journal's lock file and read and written only while the run holds that lock."""

    def __init__(self, journal: JsonLinesJournal) -> None:
        self.path = journal.log.path.with_name(journal.log.path.name + ".next-deployment")

    def _next_at(self) -> float:
        try:
            return float(self.path.read_text(encoding="utf-8").strip() or 0)
        except (OSError, ValueError):
            return 0.0

    def acquire(self, holder: str, now: float, ticket: int | None = None) -> Turn:
        return Turn(True, max(0.0, self._next_at() - now))

    def release(self, holder: str, deployed_at: float | None) -> None:
        if deployed_at is None:
            return
        temporary = self.path.with_name(self.path.name + f".{os.getpid()}")
        temporary.write_text(f"{deployed_at + DEPLOYMENT_INTERVAL}\n", encoding="utf-8")
        os.replace(temporary, self.path)
