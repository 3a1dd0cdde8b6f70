"""The cost bench (bench/bench_cost.py) on a small organization: its JSON's shape, and counts that come from the local
runner (the real definitions on the strict account), not from constants."""

from __future__ import annotations

import json

import pytest

from bench import bench_cost
from remediator.local import express


@pytest.fixture(scope="module")
def measured() -> dict:
    return bench_cost.measure(members=1)


def test_the_json_has_the_months_and_the_counts(measured, capsys) -> None:
    figures = bench_cost.model(measured)
    text = json.dumps(figures, default=str)
    again = json.loads(text)
    assert set(again["month_usd"]) == {"0.5", "2", "10"}
    assert all(isinstance(v, float) and v > 0 for v in again["month_usd"].values())
    assert again["month_usd"]["0.5"] < again["month_usd"]["2"] < again["month_usd"]["10"]
    for key in ("compliant_event_transitions", "fix_transitions", "sweep_children_per_account"):
        assert isinstance(again[key], (int, float)), key
    assert all({"usd", "unit", "source"} <= set(p) for p in again["prices"].values())


def test_the_counts_are_the_runners(measured) -> None:
    sweep = measured["sweep_details"]
    # The parent: Plan, the Map, Summarize; each child an Express execution of its own, one per batch of accounts
    # (ItemBatcher): the hub and one member are one batch.
    assert sweep["parent_states"] == ["Plan", "SweepEachAccount", "Summarize"]
    assert measured["accounts_swept"] == 2 and sweep["children"] == 1 and sweep["items_per_child"] == [2]
    figures = bench_cost.model(measured)
    assert figures["sweep_children_per_account"] == 0.5 and figures["sweep_accounts_per_child"] == 2
    assert measured["sweep"].transitions == len(sweep["parent_states"]) + sweep["children"]
    assert measured["sweep"].express_requests == sweep["children"]
    # The fix: an execution whose states the runner counted; its writes, reads and publish were counted too.
    fix = measured["fix"]
    assert measured["fix_answers"][0] == "started" and fix.transitions >= 5
    assert fix.sns_publishes == 1 and fix.wru > 0 and fix.lambda_invocations >= 2
    assert fix.api_calls.get("apigateway:UpdateRestApi") == 1
    # The compliant event: whatever the trigger did, counted (no execution: no transitions).
    compliant = measured["compliant"]
    started = measured["compliant_answers"].count("started")
    assert (compliant.transitions == 0) == (started == 0)
    assert compliant.lambda_invocations >= 1 and compliant.forwarded >= 1


def test_a_child_run_twice_is_counted_twice(monkeypatch) -> None:
    """Express runs at least once: with each child run twice, the bench counts each batch's child twice."""
    monkeypatch.setattr(express, "REPEATS", 2)
    figures = bench_cost.model(bench_cost.measure(members=1))
    assert figures["sweep_children_per_account"] == 1 and figures["sweep_parent_transitions"] == 3 + 2
