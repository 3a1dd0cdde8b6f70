"""The audit record of every change, independent of where it is stored (a local file, DynamoDB)."""

from __future__ import annotations

import json
import os
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

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> AuditRecord:
        known = {name: data[name] for name in cls.__dataclass_fields__ if name in data}
        return cls(**known)


class AuditSink(Protocol):
    def append(self, record: AuditRecord) -> None: ...

    def records(self) -> Iterator[AuditRecord]: ...


class JsonLinesAuditLog:
    """Appends one JSON object per line; each write is flushed and fsynced before the next change."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)

    def append(self, record: AuditRecord) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("a", encoding="utf-8") as handle:
            handle.write(json.dumps(record.to_dict(), separators=(",", ":")) + "\n")
            handle.flush()
            os.fsync(handle.fileno())

    def records(self) -> Iterator[AuditRecord]:
        if not self.path.exists():
            return
        with self.path.open(encoding="utf-8") as handle:
            for number, line in enumerate(handle, start=1):
                if not line.strip():
                    continue
                try:
                    yield AuditRecord.from_dict(json.loads(line))
                except (json.JSONDecodeError, TypeError) as error:
                    raise ValueError(f"{self.path}:{number}: not an audit record ({error})") from None


def last_change(sink: AuditSink, api_id: str, region: str | None = None) -> AuditRecord | None:
    """The most recent remediation of an API, which a rollback undoes."""
    found = None
    for record in sink.records():
        if record.api_id == api_id and record.action == "remediate" and (region is None or record.region == region):
            found = record
    return found
