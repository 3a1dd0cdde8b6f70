"""How `scan`, `fix` and `rollback` write: one account's output (held whole with --accounts), one line per
API for people (`--format text`), one JSON object per API or outcome (`--format json`).
"""

from __future__ import annotations

import io
import json
import threading
from typing import Any, TextIO

from remediator.cli import args as cli
from remediator.transaction.outcomes import FixOutcome


class Output:
    """One account's output. Without --accounts it goes straight out, as it always did; with --accounts it
    is held until the account is done (accounts run at once, and their lines must never interleave) and
    every JSON record gains `account`, every text line starts with it, every stderr line names it."""

    def __init__(self, out: TextIO, err: TextIO, account: str | None = None, stop: threading.Event | None = None) -> None:
        self.account = account
        self._final = (out, err)
        self._stop = stop
        self.out: TextIO = io.StringIO() if account else out
        self.err: TextIO = io.StringIO() if account else err

    def record(self, data: dict[str, Any]) -> None:
        cli.emit_json({"account": self.account, **data} if self.account else data, self.out)

    def text(self, line: str) -> None:
        print(f"{self.account} {line}" if self.account else line, file=self.out)

    def note(self, label: str, message: str) -> None:
        """`error: ...`, `warning: ...`, `recovered: ...`: one line on stderr, naming the account with --accounts."""
        where = f"account {self.account}: " if self.account else ""
        print(f"{label}: {where}{cli.one_line(message)}", file=self.err)

    @property
    def stopping(self) -> bool:
        """The run was interrupted: an account still running stops before its next API."""
        return self._stop is not None and self._stop.is_set()

    def flush(self, lock: threading.Lock) -> None:
        if self.account is None:
            return
        out, err = self._final
        with lock:
            for held, final in ((self.out, out), (self.err, err)):
                text = held.getvalue()  # type: ignore[attr-defined]
                if text:
                    final.write(text)
                    final.flush()


def emit_outcome(outcome: FixOutcome, fmt: str, output: Output) -> None:
    record = outcome.to_dict()
    if fmt == "json":
        output.record(record)
        return
    output.text(f"{report_line(record)} -> {record['action']}: {record['detail']}")
    if record["action"] == "proposed" and record["patch_operations"]:
        output.text("  patch: " + json.dumps(record["patch_operations"]))


def report_line(record: dict[str, Any]) -> str:
    where = f"{record['region']} {record['api_id']} ({record['name']})"
    if record.get("error"):
        return f"{where}: error: {record['error']}"
    if record["exempt"]:
        return f"{where}: exempt"
    if record["compliant"]:
        return f"{where}: compliant"
    if not record["findings"]:
        return where
    reach = {item.get("finding"): item for item in record.get("access") or []}
    findings = "; ".join(f"[{f['remediation']}] {f['kind']} {f['principal']}{_reach_text(reach.get(i))}"
                         for i, f in enumerate(record["findings"]))
    severity = f" [{record['severity']}]" if record.get("severity") else ""
    return f"{where}{severity}: {findings}"


def _reach_text(reach: dict[str, Any] | None) -> str:
    """Who can call, in a few words: the methods the finding's principal reaches and what stands in front."""
    if not reach:
        return ""
    status = reach.get("reachability")
    methods = reach.get("reachable_methods") or []
    listed = ", ".join(f"{m['http_method']} {m['path']} ({m['authorization_type']}"
                       + (", API key" if m.get("api_key_required") else "")
                       + (f", if {'; '.join(m['conditions'])}" if m.get("conditions") else "") + ")"
                       for m in methods[:5]) + (f" and {len(methods) - 5} more" if len(methods) > 5 else "")
    if status == "reachable":
        return f" -> {reach.get('severity')}, reaches {listed}"
    if status == "unreachable":
        return f" -> {reach.get('severity')}, no method reachable"
    return f" -> {status}: {reach.get('reason', '')}" + (f"; reaches at least {listed}" if methods else "")
