"""DynamoDB's Time to Live deletes only what is finished (DynamoDB developer guide, "Time to Live (TTL)": expired
items are deleted in the background, typically within a few days, at a moment of DynamoDB's own). On the strict
local account a reaper deletes expired items by the table's TTL attribute on the local clock, at arbitrary moments
(a seeded share before each DynamoDB request) and all at once on `reap_expired()`. An open intent whose claim
lapsed is never its prey, so recovery finds it; a closed intent and a settled approval are, once kept long enough."""

from __future__ import annotations

from typing import Any

from remediator.adapters.dynamodb import RETENTION_SECONDS, TTL, DynamoJournal
from remediator.local.runner import LocalWorkflow
from remediator.transaction.remediator import Remediator
from tests.faults.injection import crashing
from tests.test_workflow import FIXED, REGION, UNTRUSTED, policy_of, run, seed, stages_of

TWO_DAYS = 2 * 86400


def items(flow: LocalWorkflow) -> dict[tuple[str, str], dict[str, Any]]:
    table = flow.audit.table_name
    found = flow.clients.client("dynamodb", REGION).scan(TableName=table, ConsistentRead=True)["Items"]
    return {(i["pk"]["S"], i["sk"]["S"]): i for i in found}


def test_the_local_table_has_the_stacks_ttl_attribute(make_flow) -> None:
    flow = make_flow(mode="auto")
    described = flow.clients.client("dynamodb", REGION).describe_time_to_live(TableName=flow.audit.table_name)
    assert described["TimeToLiveDescription"] == {"TimeToLiveStatus": "ENABLED", "AttributeName": TTL}


def test_an_open_intent_whose_claim_lapsed_survives_the_reaper_and_recovery_settles_it(make_flow) -> None:
    """Redeploy and RestorePolicy crash: the policy is patched, not deployed, its intent open. Days pass (its
    claim long lapsed) and TTL runs: the intent is still there, and the next event finishes the change."""
    flow = make_flow(mode="auto")
    api_id = seed(flow, UNTRUSTED)
    with crashing("redeploy", "restore"):
        _, first = run(flow, api_id)
    assert first.status == "FAILED"
    journal = DynamoJournal(flow.clients, flow.audit.table_name, REGION)
    (left,) = journal.open_intents()
    open_item = items(flow)[(DynamoJournal.OPEN, left.key)]
    assert TTL not in open_item, "an open intent never carries the TTL attribute"
    flow.later(Remediator.CLAIM_SECONDS + TWO_DAYS)
    assert flow.strict is not None
    flow.strict.reap_expired()
    assert [i.intent_id for i in journal.open_intents()] == [left.intent_id], "TTL never takes an open intent"
    _, second = run(flow, api_id)
    assert second.status == "SUCCEEDED" and second.output["evaluation"]["verdict"] == "recover"
    assert policy_of(flow, api_id) == FIXED and len(set(stages_of(flow, api_id).values())) == 1
    (record,) = flow.audit_records()
    assert record.change_id == left.intent_id and journal.open_intents() == []


def test_a_closed_intent_past_its_ttl_is_reaped_and_its_audit_record_kept(make_flow) -> None:
    flow = make_flow(mode="auto")
    api_id = seed(flow, UNTRUSTED)
    _, result = run(flow, api_id)
    assert result.status == "SUCCEEDED"
    (record,) = flow.audit_records()
    closed = (f"intent#{record.change_id}", "intent")
    assert TTL in items(flow)[closed]
    leases = [key for key in items(flow) if key[0].startswith("lease#")]
    assert leases and all(TTL not in items(flow)[key] for key in leases), "the lease never expires by TTL"
    flow.later(TWO_DAYS)
    assert flow.strict is not None
    assert flow.strict.reap_expired() == [] and closed in items(flow), "kept for its retention"
    flow.later(RETENTION_SECONDS)
    reaped = flow.strict.reap_expired()
    assert (flow.audit.table_name, *closed) in reaped and closed not in items(flow)
    assert flow.audit_records() == [record], "the audit trail has no TTL"


def test_a_settled_approval_is_reaped_and_a_pending_one_never(make_flow) -> None:
    from tests.test_approvals import start, wait_for_buttons

    flow = make_flow(mode="approval", approvers=["U0APPROVER"])
    _, name = start(flow)
    approval_id = wait_for_buttons(flow)
    approval, pointer = (f"approval#{approval_id}", "approval"), (f"execution#{name}", "approval")
    assert TTL not in items(flow)[approval] and TTL not in items(flow)[pointer], "pending: no TTL"
    assert flow.strict is not None
    flow.strict.reap_expired()
    assert approval in items(flow)
    assert flow.press(approval_id, "approve")[0] == 200
    assert flow.wait(name).status == "SUCCEEDED"
    settled = items(flow)
    assert TTL in settled[approval] and TTL in settled[pointer]
    flow.later(RETENTION_SECONDS + TWO_DAYS)
    flow.strict.reap_expired()
    left = items(flow)
    assert approval not in left and pointer not in left
    assert len(flow.audit_records()) == 1


def test_the_reaper_deletes_an_expired_item_at_a_moment_of_its_own(make_flow) -> None:
    """Before each DynamoDB request a seeded share of the expired items goes: some now, some later, as in AWS;
    an expiry more than five years past, or a TTL attribute that is not a Number, is never deleted."""
    flow = make_flow(mode="auto")
    assert flow.strict is not None
    dynamodb, table = flow.clients.client("dynamodb", REGION), flow.audit.table_name
    now = int(flow.strict.clock.time())
    flow.strict.ttl_share = 0.0  # no reaping while the items are put
    for index in range(20):
        dynamodb.put_item(TableName=table, Item={"pk": {"S": f"old#{index}"}, "sk": {"S": "x"}, TTL: {"N": str(now - 10)}})
    dynamodb.put_item(TableName=table, Item={"pk": {"S": "ancient"}, "sk": {"S": "x"}, TTL: {"N": str(now - 6 * 365 * 86400)}})
    dynamodb.put_item(TableName=table, Item={"pk": {"S": "text"}, "sk": {"S": "x"}, TTL: {"S": str(now - 10)}})
    dynamodb.put_item(TableName=table, Item={"pk": {"S": "future"}, "sk": {"S": "x"}, TTL: {"N": str(now + 3600)}})
    reaped = flow.strict.reap_expired(share=0.5)
    assert 0 < len(reaped) < 20
    flow.strict.ttl_share = 0.5
    dynamodb.get_item(TableName=table, Key={"pk": {"S": "future"}, "sk": {"S": "x"}})  # any request: some more go
    flow.strict.reap_expired()
    left = {pk for pk, _ in items(flow)}
    assert not any(pk.startswith("old#") for pk in left) and {"ancient", "text", "future"} <= left
