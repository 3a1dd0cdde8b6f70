"""What every step of a change shares: the account's adapter, the settings, the journal of intents, the
account's deployment turn (the lease) and who holds the change. The steps live one module each (writing,
deploying, recovery, rollback); `remediator.transaction.remediator.Remediator` composes them.
"""

from __future__ import annotations

import os
import socket
import uuid
from contextlib import nullcontext
from typing import Any

from remediator.adapters.apigateway import ApiGatewayAdapter
from remediator.journal import Journal, Lease
from remediator.transaction.planning import SweepSettings


class TransactionBase:
    """What the steps of a change share (each step is a class of its own module; `Remediator` composes them)."""

    CLAIM_SECONDS = 600.0  # a holder that stops renewing its claim for this long is taken for dead
    POLL_SECONDS = 10  # how long a duplicate waits before it looks again
    RETRIES = 4  # the CLI's deploy: throttling or a transient error past botocore's retries is tried again, not undone

    def __init__(self, adapter: ApiGatewayAdapter, settings: SweepSettings, journal: Journal, lease: Lease,
                 account: str, triggered_by: str, holder: str | None = None) -> None:
        self.adapter = adapter
        self.settings = settings
        self.journal = journal
        self.lease = lease
        self.account = account
        self.triggered_by = triggered_by
        self.holder = holder or f"cli:{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"

    def _exclusive(self) -> Any:
        exclusive = getattr(self.journal, "exclusive", None)
        return exclusive() if exclusive is not None else nullcontext()
