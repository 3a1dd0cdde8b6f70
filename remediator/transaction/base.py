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
from remediator.journal import Intent, IntentConflict, Journal, Lease
from remediator.transaction.planning import SweepSettings


class TransactionBase:
    """What the steps of a change share (each step is a class of its own module; `Remediator` composes them)."""

    CLAIM_SECONDS = 600.0  # a holder that stops renewing its claim for this long is taken for dead
    POLL_SECONDS = 10  # how long a duplicate waits before it looks again
    RETRIES = 4  # the CLI's deploy: throttling or a transient error past botocore's retries is tried again, not undone
    # A claim renewed less than this long ago is fresh enough for the next AWS write (it has CLAIM_SECONDS minus this
    # left): longer than any workflow function runs (its timeout; the Task's TimeoutSeconds, 45 s), so the write and
    # the re-read before it end inside the claim; and few extra journal writes (a step renews at most once in this
    # long). See `_hold`.
    FRESH_SECONDS = 120.0

    def __init__(self, adapter: ApiGatewayAdapter, settings: SweepSettings, journal: Journal, lease: Lease,
                 account: str, triggered_by: str, holder: str | None = None) -> None:
        self.adapter = adapter
        self.settings = settings
        self.journal = journal
        self.lease = lease
        self.account = account
        self.triggered_by = triggered_by
        self.holder = holder or f"cli:{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"

    def _hold(self, intent: Intent, changed: bool = False) -> None:
        """Right before each AWS write of a change (its UpdateRestApi, CreateDeployment, UpdateStage; an undo's
        UpdateRestApi): re-assert the claim, so the write is made inside a claim this holder renewed less than
        FRESH_SECONDS ago. Found by the seeded soak: a holder whose claim lapsed (a paused Lambda, a CLI run waiting)
        made its pending call anyway, and only its next journal write failed.

        Not fresh: renewed to CLAIM_SECONDS through the fenced conditional journal write, which raises IntentConflict
        if another holder took the change over or raised the fence (a takeover requires the claim to have lapsed on
        DynamoDB's clock, so a claim renewed in time is never taken). On IntentConflict the caller makes no AWS call
        and steps aside, as for any lost claim. `changed`: the caller changed the intent, so it is written (and the claim
        renewed with it) however fresh the claim is.

        What remains: API Gateway has no conditional update, so the claim cannot be a condition of the write itself.
        A single call (with the guard's re-read before it) that outlasts the rest of the claim, CLAIM_SECONDS -
        FRESH_SECONDS at least, can still land after another holder took over. It is bounded: in the workflow by the
        function's timeout (30 s; AWS Lambda Developer Guide, "Configure Lambda function timeout",
        https://docs.aws.amazon.com/lambda/latest/dg/configuration-timeout.html: the invocation is stopped), far
        inside; in the CLI by botocore's retries (remediator.adapters.clients: AWS_MAX_ATTEMPTS attempts, 10 unless set;
        each bounded by its connect and read timeouts, 60 s each by default: botocore reference, "Config",
        https://botocore.amazonaws.com/v1/documentation/api/latest/reference/config.html), which only a network that
        stalls attempt after attempt for their full timeouts would stretch past it. tests/test_soak.py pins the
        workflow's bounds against FRESH_SECONDS."""
        now = self.journal.now()
        previous = intent.holder
        if previous != self.holder:
            # Left by another holder (read back from the journal): written only once this holder took it over, which
            # needs that holder's claim to have lapsed (its fence raised: whatever it still tries fails).
            if self.journal.held_by_other(intent, self.holder, now):
                raise IntentConflict(f"{intent.key}: change {intent.intent_id} is held by {previous}")
        elif not changed and intent.expires_at - now >= self.CLAIM_SECONDS - self.FRESH_SECONDS:
            return
        intent.holder, intent.expires_at = self.holder, now + self.CLAIM_SECONDS
        self.journal.update(intent, previous_holder=previous)

    def _exclusive(self) -> Any:
        exclusive = getattr(self.journal, "exclusive", None)
        return exclusive() if exclusive is not None else nullcontext()
