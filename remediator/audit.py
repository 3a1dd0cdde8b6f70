"""The audit record of every change, independent of where it is stored (a local file, DynamoDB)."""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol


def utc_now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


@dataclass(frozen=True)
class AuditRecord:
    account: str
    region: str
    api_id: str
    api_name: str
    action: str  # "remediate" or "rollback"
    policy_before: str  # exactly as API Gateway returned it
    policy_after: str  # exactly as written
    patch_operations: list[dict[str, str]]
    stages_redeployed: list[str]
    deployment_id: str | None
    triggered_by: str
    findings: list[dict[str, Any]] = field(default_factory=list)
    timestamp: str = field(default_factory=utc_now)
    change_id: str = ""  # the change's intent (remediator.journal): one record per change, however often retried
    outcome: str = "applied"  # applied (deployed) | restored (undone: policy and stages put back)
    trust: dict[str, Any] | None = None  # the trust settings the fix was computed under (checked by rollback)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> AuditRecord:
        """A record as stored; a field of the wrong type is refused (TypeError naming it), never used."""
        if not isinstance(data, dict):
            raise TypeError(f"a record is an object, not {type(data).__name__}")
        known = {name: data[name] for name in cls.__dataclass_fields__ if name in data}
        missing = [name for name in _REQUIRED if name not in known]
        if missing:
            raise TypeError(f"missing field(s) {', '.join(missing)}")
        for name, value in known.items():
            if not _FIELD_TYPES[name](value):
                raise TypeError(f"field {name} has the wrong type ({type(value).__name__})")
        return cls(**known)


def _strings(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(v, str) for v in value)


_FIELD_TYPES: dict[str, Any] = {
    **{name: (lambda v: isinstance(v, str)) for name in (
        "account", "region", "api_id", "api_name", "action", "policy_before", "policy_after", "triggered_by",
        "timestamp", "change_id", "outcome")},
    "patch_operations": lambda v: isinstance(v, list) and all(isinstance(o, dict) and all(isinstance(x, str) for x in o.values()) for o in v),
    "stages_redeployed": _strings,
    "deployment_id": lambda v: v is None or isinstance(v, str),
    "findings": lambda v: isinstance(v, list) and all(isinstance(f, dict) for f in v),
    "trust": lambda v: v is None or isinstance(v, dict),
}
_REQUIRED = ("account", "region", "api_id", "action", "policy_before", "policy_after", "patch_operations", "stages_redeployed")


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
            with self.path.open("a", encoding="utf-8") as handle:
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
        with self.path.open("a+b") as handle:
            if handle.tell() > 0:
                handle.seek(-1, os.SEEK_END)
                if handle.read(1) != b"\n":  # a truncated last line: start the record on a line of its own
                    line = "\n" + line
            handle.write(line.encode("utf-8"))
            handle.flush()
            os.fsync(handle.fileno())

    def records(self) -> Iterator[AuditRecord]:
        if not self.path.exists():
            return
        with self.path.open(encoding="utf-8", errors="surrogateescape") as handle:
            lines = handle.read().split("\n")
        last = max((i for i, line in enumerate(lines) if line.strip()), default=-1)
        for index, line in enumerate(lines):
            if not line.strip():
                continue
            try:
                data = json.loads(line)
                if isinstance(data, dict) and data.get("kind") == "intent":
                    continue  # the journal's intents share the file (remediator.journal)
                yield AuditRecord.from_dict(data)
            except (json.JSONDecodeError, TypeError, AttributeError) as error:
                number = index + 1
                cut_off = line.lstrip().startswith("{") and not line.rstrip().endswith("}")
                if isinstance(error, json.JSONDecodeError) and (index == last or cut_off):
                    # a write cut off by a crash (later appends start on a new line)
                    kind = "truncated last line" if index == last else "truncated line"
                    self.skipped.append(f"{self.path}:{number}: {kind} skipped ({len(line)} characters)")
                    continue
                raise ValueError(f"{self.path}:{number}: not an audit record ({error})") from None


def last_change(sink: AuditSink, api_id: str, region: str | None = None) -> AuditRecord | None:
    """The most recent remediation of an API that took effect (not one undone since), which a rollback undoes."""
    found = None
    for record in sink.records():
        if (record.api_id == api_id and record.action == "remediate" and record.outcome == "applied"
                and (region is None or record.region == region)):
            found = record
    return found
