"""The audit record of every change, independent of where it is stored (a local file, DynamoDB)."""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any, Literal, Protocol

import msgspec

from remediator import safe_files, stored
from remediator.codec import Record


def utc_now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


class AuditRecord(Record, frozen=True):
    """One change's record. As stored, decoded strictly by remediator.codec: formats, known actions and outcomes,
    bounded sizes, no field the bot never writes; anything else raises StoredError (a ValueError) naming the source
    and the field: a rollback is never steered by a record the bot did not write."""

    codec_where = "audit record"

    account: stored.Account
    region: stored.Region
    api_id: stored.RestApiId
    api_name: stored.Name
    action: stored.Action  # "remediate" or "rollback"
    policy_before: stored.Policy  # exactly as API Gateway returned it
    policy_after: stored.Policy  # exactly as written
    patch_operations: stored.PatchDicts
    stages_redeployed: stored.StageNames
    deployment_id: stored.DeploymentId | None
    triggered_by: stored.Text
    findings: stored.FindingDicts = msgspec.field(default_factory=list)
    timestamp: stored.Timestamp = msgspec.field(default_factory=utc_now)
    # the change's intent (remediator.journal): one record per change, however often retried; "" in older records
    change_id: Annotated[str, msgspec.Meta(pattern=r"^([0-9a-f]{32})?\Z")] = ""
    # applied (deployed) | restored (undone) | refused (the guard wrote nothing) | lost-update (a person's change one of
    # the bot's writes landed on)
    outcome: Literal["applied", "restored", "refused", "lost-update"] = "applied"
    trust: stored.TrustDict | None = None  # the trust settings the fix was computed under (checked by rollback)
    # applied: the edits of the API its stages did not serve yet, published with the fix (undeployed_changes publish,
    # or a person's approval); remediator.core.undeployed.UndeployedChange
    undeployed: stored.UndeployedDicts = msgspec.field(default_factory=list)

    @classmethod
    def from_dict(cls, data: Any, where: str | None = None) -> AuditRecord:
        """Refuses what is not an object in the words the audit log's readers have always used."""
        if not isinstance(data, dict):
            raise stored.StoredError(f"{where or cls.codec_where}: a record is an object, not {type(data).__name__}")
        return super().from_dict(data, where)


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def parse_line(text: str) -> Any:
    """One JSON Lines line, as strict as JSON itself (no NaN or Infinity, which json.loads would take)."""
    return json.loads(text, parse_constant=_reject_constant)


def cut_off(line: str) -> bool:
    """Whether a line that is not JSON looks like a write cut off by a crash: an object never closed."""
    return line.lstrip().startswith("{") and not line.rstrip().endswith("}")


class AuditSink(Protocol):
    def records(self) -> Iterator[AuditRecord]: ...


class AuditLogError(ValueError):
    """The audit log cannot be written (a directory, no such folder, no space): nothing may change."""


class JsonLinesAuditLog:
    """Appends one JSON object per line; each write is flushed and fsynced before the next change.

    A crash mid-write can leave a truncated last line: readers report and skip it (`skipped`), also once
    later records follow it, and the next append starts on a new line instead of being glued onto it.
    """

    MIN_FREE_BYTES = 1 << 20  # refuse to start changing APIs with less than 1 MiB left for their records

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self.skipped: list[str] = []

    def check_writable(self) -> None:
        """Prove, before the first change, that a record can be written: else nothing may change."""
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with safe_files.open_file(self.path, "a", encoding="utf-8") as handle:
                handle.flush()
                os.fsync(handle.fileno())
            free = shutil.disk_usage(self.path.parent).free
        except OSError as error:
            raise AuditLogError(f"audit log {self.path} cannot be written: {error.strerror or error}") from None
        if free < self.MIN_FREE_BYTES:
            raise AuditLogError(f"audit log {self.path} cannot be written: only {free} bytes free on its disk")

    def append(self, record: AuditRecord) -> None:
        self.append_line(record.to_dict())

    def append_line(self, data: dict[str, Any]) -> None:
        """One JSON object on a line of its own, on disk (fsync) before this returns."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        line = json.dumps(data, separators=(",", ":")) + "\n"
        with safe_files.open_file(self.path, "a+b") as handle:
            if handle.tell() > 0:
                handle.seek(-1, os.SEEK_END)
                if handle.read(1) != b"\n":  # a truncated last line: start the record on a line of its own
                    line = "\n" + line
            handle.write(line.encode("utf-8"))
            handle.flush()
            os.fsync(handle.fileno())

    def records(self) -> Iterator[AuditRecord]:
        """Every record, decoded strictly; a line that is neither a record nor an intent is refused (ValueError
        naming the file and line), except a write cut off by a crash, which is reported in `skipped`."""
        try:
            handle = safe_files.open_file(self.path, "r", encoding="utf-8", errors="surrogateescape")
        except FileNotFoundError:
            return
        with handle:
            lines = handle.read().split("\n")
        last = max((i for i, line in enumerate(lines) if line.strip()), default=-1)
        for index, line in enumerate(lines):
            if not line.strip():
                continue
            where = f"{self.path}:{index + 1}"
            try:
                data = parse_line(line)
            except ValueError as error:
                if index == last or cut_off(line):  # a write cut off by a crash (later appends start on a new line)
                    kind = "truncated last line" if index == last else "truncated line"
                    self.skipped.append(f"{where}: {kind} skipped ({len(line)} characters)")
                    continue
                raise ValueError(f"{where}: not an audit record ({stored.problem(error)})") from None
            if isinstance(data, dict) and data.get("kind") == "intent":
                continue  # the journal's intents share the file; the journal decodes them (remediator.journal)
            try:
                yield AuditRecord.from_dict(data, where)
            except ValueError as error:
                raise ValueError(f"{where}: not an audit record ({str(error).removeprefix(where + ': ')})") from None


def last_change(sink: AuditSink, api_id: str, region: str | None = None) -> AuditRecord | None:
    """The most recent remediation of an API that took effect (not one undone since), which a rollback undoes."""
    found = None
    for record in sink.records():
        if (record.api_id == api_id and record.action == "remediate" and record.outcome == "applied"
                and (region is None or record.region == region)):
            found = record
    return found
