"""The seeded soak (issue M): hundreds of events, CLI runs beside the executions, people writing inside the bot's
windows, faults at random points, clocks ten minutes apart and TTL deletions, on the strict local account; then each
change has one record, no stage is left split, no person's write is lost unnoticed, and nothing widens access.
SOAK_SEED varies the schedule (tests/soak.py); the figures are printed at the end, and kept in the README and in
docs/figures/reliability.md."""

from __future__ import annotations

import os
from typing import Any

import pytest

from remediator.adapters.dynamodb import AuditTable, DynamoJournal
from remediator.journal import IntentConflict
from tests.conftest import OWNER
from tests.soak import Soak, quiet_logs
from tests.test_clock_skew import REGION, intent_of

SEED = int(os.environ.get("SOAK_SEED", "20240611"))


def test_the_soak_keeps_every_promise(make_flow, tmp_path, monkeypatch, record_property) -> None:
    flow = make_flow(mode="auto")
    with quiet_logs():
        figures = Soak(flow, SEED, tmp_path, monkeypatch).run()
    record_property("figures", figures.line(SEED))  # printed in the terminal summary (tests/conftest.py)
    assert figures.events >= 300 and figures.executions > 0 and figures.cli_runs > 0 and figures.window_writes > 0
    assert not figures.violations, "\n".join(figures.violations[:20])
    handled = {"Lambda.Unknown", "Lambda.ServiceException", "Lambda.TooManyRequestsException", "Lambda.AWSLambdaException",
               "Lambda.SdkClientException", "States.Timeout"}
    assert handled <= set(figures.faults), f"error names never reached: {handled - set(figures.faults)}"
    assert {"apigateway TooManyRequestsException", "apigateway ServiceUnavailableException"} <= set(figures.faults)


@pytest.fixture
def table(account) -> str:
    """A table of the stack's key schema, of this test's own."""
    import uuid

    name = f"soak-{uuid.uuid4().hex[:8]}"
    account.clients.client("dynamodb", REGION).create_table(
        TableName=name, BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}, {"AttributeName": "sk", "AttributeType": "S"}],
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}])
    return name


def test_a_change_another_holder_closed_is_not_closed_again_as_this_ones(account, table: str) -> None:
    """Found by the soak: a CLI run whose claim lapsed mid-deploy (its clock paused) while an execution reconciled its
    change as superseded, then closed it as applied: the close found the closed intent and took it for its own retry,
    so the CLI logged an applied record the table never held. Now only a close in the same state is a retry."""
    mine = DynamoJournal(account.clients, table, REGION)
    mine.open_intents()
    intent = intent_of("cli:paused", mine.now() + 600)
    mine.begin(intent)
    other = DynamoJournal(account.clients, table, REGION)
    theirs = other.open_intent(OWNER, REGION, "a1b2c3d4e5")
    assert theirs is not None
    theirs.state = "superseded"
    other.close(theirs, None)
    intent.state = "applied"
    with pytest.raises(IntentConflict, match="closed by another holder"):
        mine.close(intent, intent.record("applied", ["prod"], "d1"))
    assert list(AuditTable(account.clients, table, REGION).records()) == [], "no record of an outcome that is not the change's"
    other.close(theirs, None)  # the superseded close retried: nothing twice, no error


def test_a_change_half_deployed_then_superseded_is_finished_on_every_stage_not_left_split(account, tmp_path) -> None:
    """Found by the soak: a change whose CreateDeployment went out for its first stage, then its holder died, and a
    person wrote the policy before recovery. Recovery closed it as superseded, its deployment on one stage and the old
    one on the others, split for good with nothing open to say so. Now every planned stage is pointed at that same
    deployment of the change (no new deployment: that would publish the person's write) and the change is recorded."""
    import json

    from remediator.audit import JsonLinesAuditLog
    from remediator.local.emulator import seed_rest_api
    from remediator.transaction.deploying import deployment_marker
    from tests.conftest import PARTNER, STRANGER
    from tests.test_guard import allow, doc, remediator_on
    from tests.test_sweep import stage_deployments

    client = account.clients.client("apigateway", REGION)
    api_id = seed_rest_api(account.clients, REGION, "half", json.dumps(doc(allow(OWNER, STRANGER))), stages=("prod",))
    client.create_stage(restApiId=api_id, stageName="dev", deploymentId=stage_deployments(account.clients, REGION, api_id)["prod"])
    audit = tmp_path / "audit.jsonl"
    first = remediator_on(account, audit)
    patched = first.begin(REGION, api_id)
    assert patched.action == "patched" and patched.intent is not None
    intent = patched.intent
    ours = first.adapter.create_deployment(REGION, api_id, intent.stages[0].name, deployment_marker(intent))  # then it died
    client.update_rest_api(restApiId=api_id, patchOperations=[
        {"op": "replace", "path": "/policy", "value": json.dumps(doc(allow(OWNER, PARTNER)))}])  # a person, meanwhile
    (done,) = remediator_on(account, audit).recover([REGION])
    assert "applied" in done, done
    assert set(stage_deployments(account.clients, REGION, api_id).values()) == {ours}, "every stage on the change's own"
    (record,) = JsonLinesAuditLog(audit).records()
    assert record.outcome == "applied" and record.deployment_id == ours and record.change_id == intent.intent_id


def test_a_persons_write_is_found_lost_after_later_changes_of_the_api_closed(make_flow) -> None:
    """Found by the soak: a person's write in the instant before the bot's write was lost, and their CloudTrail event
    arrived after a later change of the same API had closed: only the last change's window was kept, so nothing was
    recorded or told. The API's recent windows are kept (and a change still in flight counts), so it is found."""
    import json

    from remediator.core import parse_policy
    from tests.conftest import PARTNER, STRANGER
    from tests.test_guard import allow, doc, person_writes_in_the_bots_window
    from tests.test_workflow import run, seed

    flow = make_flow(mode="auto")
    api_id = seed(flow, doc(allow(OWNER, STRANGER)))
    flow.discard_pending()
    person = doc(allow(OWNER, PARTNER, STRANGER))
    wrote = person_writes_in_the_bots_window(flow, api_id, person)
    _, first = run(flow, api_id)
    assert first.status == "SUCCEEDED" and wrote
    lost_event = flow.matched()  # the person's call, not delivered yet
    flow.pending.clear()
    flow.clients.client("apigateway", REGION).update_rest_api(restApiId=api_id, patchOperations=[
        {"op": "replace", "path": "/policy", "value": json.dumps(doc(allow(OWNER, "210987654321")))}])
    flow.later()
    assert [a["status"] for a in flow.pump()] == ["started"], "a second change of the API, closed"
    assert len([r for r in flow.audit_records() if r.outcome == "applied"]) == 2
    flow.notifications()
    (event,) = lost_event
    started = flow.invoke_trigger(event)
    assert flow.wait(started["execution_name"]).status == "SUCCEEDED"
    (lost,) = [r for r in flow.audit_records() if r.outcome == "lost-update"]
    assert parse_policy(lost.policy_before) == person
    (notice,) = [n for n in flow.notifications() if n.get("lost_update")]
    assert notice["lost_update"]["written_over_by"] == first.output["applied"]["intent"]["intent_id"]


def test_a_lost_update_found_by_an_execution_that_then_has_nothing_to_do_is_told(make_flow) -> None:
    """Found by the soak: a person's write was lost to a change whose holder then died; their event's execution found
    the lost update (recorded) while recovering, recovery closed the change (the policy had changed again) and Apply
    had nothing left to do: WasPatched went to Done, and nobody was told. Now it goes to ReportFindings."""
    import json

    from remediator.transaction.remediator import Remediator

    flow, api_id, person, lost_event = _written_over_then_died(make_flow)
    flow.discard_pending()
    flow.notifications()
    flow.later(Remediator.CLAIM_SECONDS + 1)
    result = flow.wait(flow.invoke_trigger(lost_event)["execution_name"])
    assert result.status == "SUCCEEDED" and result.output["evaluation"]["verdict"] == "recover"
    assert result.states[-2:] == ["ReportFindings", "Done"], result.states
    assert [r.outcome for r in flow.audit_records()] == ["lost-update"]
    (notice,) = flow.notifications()
    assert notice["kind"] == "findings" and json.loads(notice["lost_update"]["policy"]) == person


def test_a_cli_run_whose_change_was_taken_over_mid_deploy_says_busy_for_that_api(account, table: str, tmp_path) -> None:
    """Found by the soak: `fix --lease-table` paused past its claim while waiting for its deployment turn; an execution
    took the change over; the run's next write to it raised IntentConflict, which ended the whole run with a traceback.
    Now that API's outcome is busy (the holder that took it over finishes it) and the run goes on."""
    import json

    from remediator.adapters.dynamodb import DynamoLease
    from remediator.audit import JsonLinesAuditLog
    from remediator.journal import JsonLinesJournal
    from remediator.local.emulator import seed_rest_api
    from remediator.local.strict import local_clock
    from remediator.shared_journal import SharedJournal
    from tests.conftest import STRANGER
    from tests.test_guard import allow, doc, remediator_on

    api_id = seed_rest_api(account.clients, REGION, "paused", json.dumps(doc(allow(OWNER, STRANGER))), stages=("prod",))
    audit = tmp_path / "audit.jsonl"
    cli = remediator_on(account, audit)
    cli.journal = SharedJournal(JsonLinesJournal(JsonLinesAuditLog(audit)), DynamoJournal(account.clients, table, REGION))
    cli.lease = DynamoLease(account.clients, table, OWNER, REGION)
    real_acquire = cli.lease.acquire

    def paused_then_taken_over(holder: str, now: float, ticket: int | None = None):  # type: ignore[no-untyped-def]
        local_clock().advance(cli.CLAIM_SECONDS + 1)  # the run is paused past its claim
        execution = DynamoJournal(account.clients, table, REGION)
        theirs = execution.open_intent(OWNER, REGION, api_id)
        assert theirs is not None
        previous, theirs.holder, theirs.expires_at = theirs.holder, "execution:recovering", execution.now() + 600
        execution.update(theirs, previous_holder=previous)
        return real_acquire(holder, now, ticket)

    cli.lease.acquire = paused_then_taken_over  # type: ignore[method-assign]
    outcome = cli.apply(REGION, api_id)
    assert outcome.action == "busy" and "taken over" in outcome.detail
    assert list(AuditTable(account.clients, table, REGION).records()) == [] and not list(JsonLinesAuditLog(audit).records())


def _shared_remediator(account, table: str, audit, api_id: str):  # type: ignore[no-untyped-def]
    """A holder whose intents are in the table (`fix --apply --lease-table`), as the soak's CLI runs are."""
    from remediator.adapters.dynamodb import DynamoLease
    from remediator.audit import JsonLinesAuditLog
    from remediator.journal import JsonLinesJournal
    from remediator.shared_journal import SharedJournal
    from tests.test_guard import remediator_on

    holder = remediator_on(account, audit)
    holder.journal = SharedJournal(JsonLinesJournal(JsonLinesAuditLog(audit)), DynamoJournal(account.clients, table, REGION))
    holder.lease = DynamoLease(account.clients, table, OWNER, REGION)
    return holder


def _take_over(account, table: str, api_id: str) -> None:  # type: ignore[no-untyped-def]
    """Past the claim on the service's clock, an execution takes the change over (as recovery does: its fence raised)."""
    from remediator.local.strict import local_clock
    from remediator.transaction.base import TransactionBase

    local_clock().advance(TransactionBase.CLAIM_SECONDS + 1)
    execution = DynamoJournal(account.clients, table, REGION)
    theirs = execution.open_intent(OWNER, REGION, api_id)
    assert theirs is not None and not execution.held_by_other(theirs, "execution:recovering", 0.0)
    previous, theirs.holder, theirs.expires_at = theirs.holder, "execution:recovering", execution.now() + 600
    execution.update(theirs, previous_holder=previous)


def test_a_holder_whose_claim_lapsed_before_its_create_deployment_makes_none(account, table: str, tmp_path) -> None:
    """Found by the soak: a holder paused past its claim while waiting for its deployment turn made its CreateDeployment
    anyway (only its next journal write failed), so a stage served a deployment of a change another holder closed. Now
    the claim is renewed through the fenced journal write right before the call: taken over, no call is made."""
    import json

    from remediator.local.emulator import seed_rest_api
    from tests.conftest import STRANGER
    from tests.test_guard import allow, deployments, doc

    api_id = seed_rest_api(account.clients, REGION, "paused", json.dumps(doc(allow(OWNER, STRANGER))), stages=("prod",))
    holder = _shared_remediator(account, table, tmp_path / "audit.jsonl", api_id)
    before = deployments(account, api_id)
    real_acquire = holder.lease.acquire

    def paused_then_taken_over(who: str, now: float, ticket: int | None = None):  # type: ignore[no-untyped-def]
        _take_over(account, table, api_id)
        return real_acquire(who, now, ticket)

    holder.lease.acquire = paused_then_taken_over  # type: ignore[method-assign]
    outcome = holder.apply(REGION, api_id)
    assert outcome.action == "busy", outcome.detail
    assert deployments(account, api_id) == before, "no CreateDeployment by a holder that was taken over"


def test_a_holder_whose_claim_lapsed_before_its_policy_write_makes_none(account, table: str, tmp_path) -> None:
    """Found by the soak: a holder paused past its claim between the guard's re-read and its UpdateRestApi made the
    write anyway, over whatever the holder that took over had settled, and no window held it. Now the claim is renewed
    right before the write (after the re-read): taken over, the policy is not written."""
    import json

    from remediator.local.emulator import seed_rest_api
    from remediator.transaction.planning import same_policy
    from tests.conftest import STRANGER
    from tests.test_guard import allow, doc

    policy = json.dumps(doc(allow(OWNER, STRANGER)))
    api_id = seed_rest_api(account.clients, REGION, "paused", policy, stages=("prod",))
    holder = _shared_remediator(account, table, tmp_path / "audit.jsonl", api_id)
    real_read = holder.adapter.get_rest_api
    table_journal = DynamoJournal(account.clients, table, REGION)

    def read_then_paused(region: str, api: str):  # type: ignore[no-untyped-def]
        found = real_read(region, api)
        if table_journal.open_intent(OWNER, REGION, api_id) is not None:  # the guard's re-read, the intent written
            _take_over(account, table, api_id)
        return found

    holder.adapter.get_rest_api = read_then_paused  # type: ignore[method-assign]
    patched = holder.begin(REGION, api_id)
    assert patched.action == "busy" and "taken over" in patched.detail, patched.detail
    assert same_policy(real_read(REGION, api_id).policy, policy), "no UpdateRestApi by a holder that was taken over"
    theirs = table_journal.open_intent(OWNER, REGION, api_id)
    assert theirs is not None and theirs.holder == "execution:recovering", "the holder that took over keeps it"


def test_a_holder_whose_claim_lapsed_makes_no_undo_write(account, table: str, tmp_path) -> None:
    """A holder taken over before its undo writes nothing: neither the journal nor the policy (the holder that took the
    change over settles it)."""
    import json

    from remediator.local.emulator import seed_rest_api
    from remediator.transaction.planning import same_policy
    from tests.conftest import STRANGER
    from tests.test_guard import allow, doc

    api_id = seed_rest_api(account.clients, REGION, "undo", json.dumps(doc(allow(OWNER, STRANGER))), stages=("prod",))
    holder = _shared_remediator(account, table, tmp_path / "audit.jsonl", api_id)
    patched = holder.begin(REGION, api_id)
    assert patched.action == "patched" and patched.intent is not None
    _take_over(account, table, api_id)
    result = holder.undo(patched.intent, "redeploy failed: test", patched.transaction)
    assert result.startswith("nothing undone") and "taken over" in result, result
    live = holder.adapter.get_rest_api(REGION, api_id).policy
    assert same_policy(live, patched.intent.policy_after), "the fix stays written: no UpdateRestApi by the taken-over holder"


def test_a_claim_renewed_after_a_taker_read_it_is_not_taken_over(account, table: str) -> None:
    """The takeover's condition: the claim lapsed on DynamoDB's clock. A holder that renewed it (right before a write)
    after another read it lapsed keeps it, so its write stays inside its claim."""
    from remediator.local.strict import local_clock

    mine = DynamoJournal(account.clients, table, REGION)
    mine.open_intents()
    intent = intent_of("execution:a", mine.now() + 600)
    mine.begin(intent)
    local_clock().advance(601)
    other = DynamoJournal(account.clients, table, REGION)
    theirs = other.open_intent(OWNER, REGION, "a1b2c3d4e5")
    assert theirs is not None and not other.held_by_other(theirs, "execution:b", 0.0)
    intent.expires_at = mine.now() + 600
    mine.update(intent)  # the holder comes back and renews first
    previous, theirs.holder, theirs.expires_at = theirs.holder, "execution:b", other.now() + 600
    with pytest.raises(IntentConflict):
        other.update(theirs, previous_holder=previous)
    assert other.open_intent(OWNER, REGION, "a1b2c3d4e5").holder == "execution:a"  # type: ignore[union-attr]


def test_a_change_closed_superseded_after_its_write_keeps_its_window(account, table: str) -> None:
    """Found by the soak: a change closed superseded kept no write window, so a person's write it replaced was never
    found as lost. A close that follows a write of its own keeps it; one that never wrote (the guard saw the policy
    change before the write) keeps none."""
    journal = DynamoJournal(account.clients, table, REGION)
    journal.open_intents()
    wrote = intent_of("execution:a", journal.now() + 600)
    journal.begin(wrote)
    wrote.state = "superseded"
    journal.close(wrote, None, wrote=True)
    (window,) = journal.recent_writes(OWNER, REGION, "a1b2c3d4e5")
    assert window.intent_id == wrote.intent_id and window.read_at == wrote.created_at and window.closed_at >= window.read_at
    never = intent_of("execution:b", journal.now() + 600)
    journal.begin(never)
    never.state = "superseded"
    journal.close(never, None)
    assert [w.intent_id for w in journal.recent_writes(OWNER, REGION, "a1b2c3d4e5")] == [wrote.intent_id]


def test_a_persons_write_replaced_by_a_change_later_closed_superseded_is_found_lost(make_flow) -> None:
    """Found by the soak: a person's write in the instant before the bot's write was lost; the change's holder died
    before its deployment, someone wrote again, and recovery closed the change superseded: it kept no window, so when
    the first person's event arrived nothing was recorded or told. Now it is found, recorded and told."""
    import json

    from remediator.core import parse_policy
    from remediator.transaction.remediator import Remediator

    flow, api_id, person, lost_event = _written_over_then_died(make_flow)
    flow.later(Remediator.CLAIM_SECONDS + 1)
    (again,) = flow.matched()
    flow.pending.clear()
    assert flow.wait(flow.invoke_trigger(again)["execution_name"]).status == "SUCCEEDED"
    journal = DynamoJournal(flow.clients, flow.audit.table_name, REGION)
    assert journal.open_intent(OWNER, REGION, api_id) is None
    (window, *_) = journal.recent_writes(OWNER, REGION, api_id)
    closed = flow.clients.client("dynamodb", REGION).get_item(TableName=flow.audit.table_name, Key={
        "pk": {"S": f"intent#{window.intent_id}"}, "sk": {"S": "intent"}}, ConsistentRead=True)["Item"]
    assert closed["state"]["S"] == "superseded", "recovery closed the change superseded, and kept its window"
    assert not [r for r in flow.audit_records() if r.outcome == "lost-update"], "not found yet: the change was open"
    flow.notifications()
    result = flow.wait(flow.invoke_trigger(lost_event)["execution_name"])
    assert result.status == "SUCCEEDED", result
    (lost,) = [r for r in flow.audit_records() if r.outcome == "lost-update"]
    assert parse_policy(lost.policy_before) == person
    (notice,) = [n for n in flow.notifications() if n.get("lost_update")]
    assert json.loads(notice["lost_update"]["policy"]) == person


def test_a_fresh_claim_outlasts_every_write_of_the_workflow() -> None:
    """The lease discipline's bound (TransactionBase._hold): a claim renewed less than FRESH_SECONDS ago has at least
    CLAIM_SECONDS - FRESH_SECONDS left, and FRESH_SECONDS is longer than any function that writes runs (its Lambda
    timeout in the synthesized template; the Task's TimeoutSeconds in the workflow definition), so a write made in a
    fresh claim ends inside it (AWS Lambda Developer Guide, "Configure Lambda function timeout")."""
    import json
    from pathlib import Path

    from remediator.transaction.base import TransactionBase

    root = Path(__file__).resolve().parent.parent
    template = json.loads((root / "remediator/local/templates/auto.json").read_text())
    functions = {name: resource["Properties"]["Timeout"] for name, resource in template["Resources"].items()
                 if resource["Type"] == "AWS::Lambda::Function"}
    writers = {name: seconds for name, seconds in functions.items()
               if name.startswith(("ApplyFunction", "RedeployFunction", "RestoreFunction", "RecordFunction"))}
    assert len(writers) == 4, functions
    states = json.loads((root / "remediator/workflow/definition.json").read_text())["States"]
    tasks = {name: states[name]["TimeoutSeconds"] for name in ("Apply", "Redeploy", "RestorePolicy", "Record")}
    bound = max([*writers.values(), *tasks.values()])
    assert bound < TransactionBase.FRESH_SECONDS < TransactionBase.CLAIM_SECONDS - bound, (writers, tasks)


def test_a_failure_on_a_new_policy_after_one_on_another_is_counted_and_told(account, table: str) -> None:
    """Found by the soak: an API whose fix failed once on one policy, then once on another, made the failure notice
    itself fail (the count read back from UpdateItem was missing: it was 1 before and after), so nobody was told, nor
    of the lost write it carried. The count is read back whole (ReturnValues ALL_NEW)."""
    from remediator.adapters.dynamodb import FailureLedger

    ledger = FailureLedger(account.clients, table, REGION)
    assert ledger.add(REGION, "a1b2c3d4e5", "1" * 64) == 1
    assert ledger.add(REGION, "a1b2c3d4e5", "2" * 64) == 1, "a new policy starts a new count"
    assert ledger.add(REGION, "a1b2c3d4e5", "2" * 64) == 2
    assert ledger.count(REGION, "a1b2c3d4e5", "2" * 64) == 2 and ledger.count(REGION, "a1b2c3d4e5", "1" * 64) == 0


def test_two_lost_updates_of_one_api_in_one_second_are_both_told() -> None:
    """Found by the soak: two people's writes to one API, each lost to a change of the bot, in the same second: the
    second notice had the first's fingerprint (the findings, the policy and the second of the write) and was not told.
    Each lost update is news of its own: told through Notify, the second as well as the first."""
    import json

    from remediator.functions import decision
    from remediator.workflow.state import Evaluation
    from tests.conftest import PARTNER, STRANGER
    from tests.test_guard import allow, doc

    def lost(policy: dict, by: str) -> dict:  # type: ignore[type-arg]
        return {"who": "arn:aws:iam::111122223333:user/local-admin", "when": "2026-12-06T23:59:18Z",
                "policy": json.dumps(policy), "written_over_by": by}

    live = json.dumps(doc(allow(OWNER, STRANGER)))
    first = Evaluation("report-only", "auto", live, lost_update=lost(doc(allow(OWNER, PARTNER)), "a" * 32))
    second = Evaluation("report-only", "auto", live, lost_update=lost(doc(allow(OWNER, PARTNER, STRANGER)), "b" * 32))
    assert decision.notice_fingerprint(first) != decision.notice_fingerprint(second)
    assert decision.notice_fingerprint(first) == decision.notice_fingerprint(Evaluation.from_dict(first.to_dict()))


def test_recovery_leaves_a_change_taken_over_under_it_to_its_new_holder(account, tmp_path, monkeypatch) -> None:
    """Found by the soak (a thread's traceback): `fix --apply` recovering a half-done change whose claim another holder
    renewed between recovery's read and its fenced write ended the run with IntentConflict. Now that change is left to
    the holder that took it over, said in one line, and the run goes on."""
    import json

    from remediator.journal import IntentConflict
    from remediator.local.emulator import seed_rest_api
    from remediator.transaction.recovery import Recovery
    from tests.conftest import STRANGER
    from tests.test_guard import allow, doc, remediator_on

    api_id = seed_rest_api(account.clients, REGION, "taken", json.dumps(doc(allow(OWNER, STRANGER))), stages=("prod",))
    audit = tmp_path / "audit.jsonl"
    first = remediator_on(account, audit)
    assert first.begin(REGION, api_id).action == "patched"  # then it died, its claim left open

    def taken_over(self: object, intent: object) -> tuple[str, None]:
        raise IntentConflict("renewed by its holder just now")

    monkeypatch.setattr(Recovery, "reconcile", taken_over)
    (done,) = remediator_on(account, audit).recover([REGION])
    assert done.endswith("left to the holder that took it over just now"), done


def _written_over_then_died(make_flow: Any) -> tuple[Any, str, dict[str, Any], dict[str, Any]]:
    """A person writes in the instant between the guard's re-read and the bot's write; the change's holder then dies
    (patched, not deployed, its intent open); someone writes again, compliant. The flow, the API, the person's policy
    and the CloudTrail event of the write that was lost."""
    import json

    from tests.conftest import PARTNER, STRANGER
    from tests.faults.injection import crashing
    from tests.test_guard import allow, doc, person_writes_in_the_bots_window
    from tests.test_workflow import run, seed

    flow = make_flow(mode="auto")
    api_id = seed(flow, doc(allow(OWNER, STRANGER)))
    flow.discard_pending()
    person = doc(allow(OWNER, PARTNER, STRANGER))
    wrote = person_writes_in_the_bots_window(flow, api_id, person)
    with crashing("redeploy", "restore"):  # the change's holder dies: patched, not deployed, its intent open
        _, first = run(flow, api_id)
    assert first.status == "FAILED" and wrote
    (lost_event,) = flow.matched()
    flow.pending.clear()
    flow.clients.client("apigateway", REGION).update_rest_api(restApiId=api_id, patchOperations=[
        {"op": "replace", "path": "/policy", "value": json.dumps(doc(allow(OWNER, PARTNER)))}])  # and again, compliant
    return flow, api_id, person, lost_event


def test_a_persons_write_replaced_by_a_write_sent_after_its_change_was_taken_over_is_found_lost(make_flow, tmp_path) -> None:
    """Found by the seeded soak in a clean-clone run: a holder past its fence check (its claim renewed, its UpdateRestApi
    not sent) was paused past its claim; another holder took the change over while the policy was still the one it read
    and closed it abandoned, keeping no window; a person then wrote, and the paused holder's write went out over theirs,
    found by nothing. API Gateway has no conditional write, so such a close now keeps a window for a late write: the
    person's event finds that the live policy is what the abandoned change would write, and records and tells it."""
    import json

    from remediator.core import parse_policy
    from tests.conftest import PARTNER, STRANGER
    from tests.test_guard import allow, doc
    from tests.test_workflow import seed

    flow = make_flow(mode="auto")
    api_id = seed(flow, doc(allow(OWNER, STRANGER)))
    flow.discard_pending()
    table = flow.audit.table_name
    person = doc(allow(OWNER, PARTNER, STRANGER))
    paused = _shared_remediator(flow.account, table, tmp_path / "paused.jsonl", api_id)
    taker = _shared_remediator(flow.account, table, tmp_path / "taker.jsonl", api_id)
    assert paused.holder != taker.holder
    send = paused.adapter.update_policy
    happened: list[str] = []

    def paused_before_sending(region: str, api: str, operations: list[dict[str, str]]) -> None:
        if not happened:  # past its fence check: the claim lapses, the change is taken over, then a person writes
            from remediator.local.strict import local_clock

            local_clock().advance(paused.CLAIM_SECONDS + 1)
            happened.extend(taker.recover([REGION]))
            flow.clients.client("apigateway", REGION).update_rest_api(restApiId=api_id, patchOperations=[
                {"op": "replace", "path": "/policy", "value": json.dumps(person)}])
        send(region, api, operations)  # and the paused holder's write goes out, over theirs

    paused.adapter.update_policy = paused_before_sending  # type: ignore[method-assign]
    patched = paused.begin(REGION, api_id)
    assert [line.split(" ", 1)[1].split(" of ", 1)[0] for line in happened] == [f"change {patched.intent.intent_id}"]
    assert "abandoned" in happened[0], happened
    live = paused.adapter.get_rest_api(REGION, api_id).policy
    assert parse_policy(live) != person, "the person's write was written over"
    (window, *_) = DynamoJournal(flow.clients, table, REGION).recent_writes(OWNER, REGION, api_id)
    assert window.intent_id == patched.intent.intent_id and window.late, window
    (person_event,) = [e for e in flow.matched() if PARTNER in json.dumps(e["detail"]["requestParameters"])]  # theirs alone names the partner
    flow.pending.clear()
    assert not [r for r in flow.audit_records() if r.outcome == "lost-update"]
    flow.notifications()
    result = flow.wait(flow.invoke_trigger(person_event)["execution_name"])
    assert result.status == "SUCCEEDED", result
    (lost,) = [r for r in flow.audit_records() if r.outcome == "lost-update"]
    assert parse_policy(lost.policy_before) == person and parse_policy(lost.policy_after) == parse_policy(live)
    (notice,) = [n for n in flow.notifications() if n.get("lost_update")]
    assert json.loads(notice["lost_update"]["policy"]) == person
    assert notice["lost_update"]["written_over_by"] == patched.intent.intent_id


def test_a_change_being_undone_keeps_its_window_while_in_flight(account, table: str) -> None:
    """Found by the seeded soak: a person wrote in the instant before an undo's UpdateRestApi, and their event was
    evaluated while the undo was still in flight; the window of a change being undone was left out, so nothing was
    found, and the undo's write had replaced theirs. A change in flight counts whether it is being undone or not."""
    journal = DynamoJournal(account.clients, table, REGION)
    journal.open_intents()
    undoing = intent_of("execution:a", journal.now() + 600)
    journal.begin(undoing)
    undoing.undoing = True
    journal.update(undoing)
    (window,) = journal.recent_writes(OWNER, REGION, "a1b2c3d4e5")
    assert window.intent_id == undoing.intent_id and window.read_at == undoing.created_at and not window.late
