"""Claims and deployment turns on DynamoDB's clock, with fencing tokens (issue M): callers whose clocks disagree by
ten minutes neither take a live claim over, nor stall, nor collide on the CreateDeployment quota; a holder that
was taken over can write nothing more. On the strict local account, whose answers carry its time in `Date`."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest

from remediator import clock
from remediator.adapters.dynamodb import DynamoJournal, DynamoLease
from remediator.journal import DEPLOYMENT_INTERVAL, Intent, IntentConflict, PlannedStage
from tests.conftest import OWNER

REGION = "eu-west-1"
TEN_MINUTES = 600.0


@pytest.fixture
def table(account: Any) -> str:
    name = f"skew-{uuid.uuid4().hex[:8]}"
    account.clients.client("dynamodb", REGION).create_table(
        TableName=name, BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}, {"AttributeName": "sk", "AttributeType": "S"}],
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}])
    return name


@contextmanager
def skewed(seconds: float) -> Iterator[None]:
    """This caller's clock runs `seconds` ahead (or behind) the service's."""
    real = clock._now
    clock._now = lambda: real() + seconds  # type: ignore[assignment]
    try:
        yield
    finally:
        clock._now = real  # type: ignore[assignment]


def intent_of(holder: str, expires_at: float) -> Intent:
    return Intent(intent_id=uuid.uuid4().hex, account=OWNER, region=REGION, api_id="a1b2c3d4e5", api_name="api",
                  action="remediate", policy_before="{}", policy_after="{}", patch_operations=[],
                  stages=[PlannedStage("prod", None)], triggered_by="test", holder=holder, expires_at=expires_at)


def test_a_live_claim_is_never_taken_over_by_a_caller_whose_clock_is_ahead(account: Any, table: str) -> None:
    with skewed(-TEN_MINUTES):  # the holder's clock is ten minutes behind
        holder = DynamoJournal(account.clients, table, REGION)
        holder.open_intents()  # an answer: its clock is DynamoDB's from now on
        intent = intent_of("execution:a", holder.now() + 600)
        holder.begin(intent)
    with skewed(+TEN_MINUTES):  # the other's ten minutes ahead: by their own clocks the claim lapsed long ago
        other = DynamoJournal(account.clients, table, REGION)
        seen = other.open_intent(OWNER, REGION, "a1b2c3d4e5")
        assert seen is not None and other.held_by_other(seen, "execution:b", clock.now())
        assert abs(other.now() - holder.now()) <= 2.0, "both read DynamoDB's time"


def test_a_holder_that_was_taken_over_can_write_nothing_more(account: Any, table: str) -> None:
    from remediator.local.strict import local_clock

    first = DynamoJournal(account.clients, table, REGION)
    first.open_intents()
    mine = intent_of("execution:a", first.now() + 600)
    first.begin(mine)
    local_clock().advance(601)  # the claim lapses on the service's clock
    second = DynamoJournal(account.clients, table, REGION)
    theirs = second.open_intent(OWNER, REGION, "a1b2c3d4e5")
    assert theirs is not None and not second.held_by_other(theirs, "execution:b", 0.0)
    previous, theirs.holder, theirs.expires_at = theirs.holder, "execution:b", second.now() + 600
    second.update(theirs, previous_holder=previous)
    assert theirs.fence == mine.fence + 1
    with pytest.raises(IntentConflict):  # the first holder comes back (a paused Lambda) and renews
        first.update(mine)
    with pytest.raises(IntentConflict):  # or closes the change as its own
        first.close(mine, None)
    second.close(theirs, None)
    assert second.open_intent(OWNER, REGION, "a1b2c3d4e5") is None


def test_deployment_turns_neither_stall_nor_collide_with_clocks_ten_minutes_apart(account: Any, table: str) -> None:
    with skewed(-TEN_MINUTES):
        early = DynamoLease(account.clients, table, OWNER, REGION)
        turn = early.acquire("execution:a", clock.now())
        assert turn.granted and turn.seconds <= 1.0
        early.release("execution:a", clock.now())  # it deployed just now
    with skewed(+TEN_MINUTES):
        late = DynamoLease(account.clients, table, OWNER, REGION)
        wait = late.acquire("execution:b", clock.now())
        # Not granted at once (a collision on the quota) and not told to wait ten minutes (a stall): one interval.
        assert not wait.granted and DEPLOYMENT_INTERVAL - 2 <= wait.seconds <= DEPLOYMENT_INTERVAL + 2, wait
