"""One claim per API for the CLI and the workflow: `fix --apply --lease-table TABLE` keeps its intents in the deployed
stack's table (remediator.adapters.dynamodb.DynamoJournal: conditional writes, DynamoDB's clock, fencing tokens), so
that a CLI run and an execution never change the same API at once, and each recovers what the other left half-done.
The CLI's audit log keeps its own copy of each intent line and record, as without the table."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from remediator.adapters.dynamodb import DynamoJournal
from remediator.audit import AuditRecord
from remediator.journal import Intent, JsonLinesJournal


class SharedJournal:
    """The table decides (who holds an API, which intents are open); the local log mirrors every line."""

    def __init__(self, local: JsonLinesJournal, table: DynamoJournal) -> None:
        self.local = local
        self.table = table

    def check_writable(self) -> None:
        self.local.check_writable()

    @contextmanager
    def exclusive(self) -> Iterator[None]:
        """Runs on this machine still take turns through the log's lock (its appends stay whole)."""
        with self.local.exclusive():
            yield

    def now(self) -> float:
        return self.table.now()

    def open_intents(self) -> list[Intent]:
        return self.table.open_intents()

    def open_intent(self, account: str, region: str, api_id: str) -> Intent | None:
        return self.table.open_intent(account, region, api_id)

    def held_by_other(self, intent: Intent, holder: str, now: float) -> bool:
        return self.table.held_by_other(intent, holder, now)

    def begin(self, intent: Intent) -> None:
        self.table.begin(intent)  # the claim: IntentConflict while an execution (or another run) holds the API
        self.local.update(intent)  # the log's copy: written down before the change, as the log always is

    def update(self, intent: Intent, previous_holder: str | None = None) -> None:
        self.table.update(intent, previous_holder)
        self.local.update(intent)

    def close(self, intent: Intent, record: AuditRecord | None, wrote: bool = False, late: bool = False) -> None:
        self.table.close(intent, record, wrote=wrote, late=late)  # the change's record, and its write window, where the stack keeps its own
        self.local.close(intent, record)

    def note(self, record: AuditRecord) -> None:
        self.table.note(record)
        self.local.note(record)
