"""Faults at every step of `fix --apply`, on the strict local account: the process killed (SIGKILL) or
interrupted (SIGINT) before and after each write to API Gateway and to the journal, an answer lost after
the write went through, a write refused every time, and two runs at once.

Whatever happens, every API ends fixed and deployed on every stage, or untouched; a re-run finishes
what a killed run left half-done; and each change has exactly one audit record.
"""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest

from remediator.adapters.apigateway import ApiGatewayAdapter, DeploymentPacer
from remediator.audit import JsonLinesAuditLog
from remediator.core import parse_policy
from remediator.journal import JsonLinesJournal
from remediator.local.emulator import seed_rest_api
from tests.conftest import OWNER, PARTNER, STRANGER
from tests.faults.injection import Fault, Killed
from tests.test_sweep import run_cli, stage_deployments

REGION = "eu-west-1"
UNTRUSTED = {"Version": "2012-10-17", "Statement": [
    {"Effect": "Allow", "Principal": {"AWS": [OWNER, STRANGER]}, "Action": "execute-api:Invoke", "Resource": "execute-api:/*"}]}
FIXED = {"Version": "2012-10-17", "Statement": [
    {"Effect": "Allow", "Principal": {"AWS": [OWNER]}, "Action": "execute-api:Invoke", "Resource": "execute-api:/*"}]}

WRITES = ("UpdateRestApi", "CreateDeployment", "UpdateStage")
CASES = [Fault("apigateway", operation, when, kind) for operation in WRITES
         for when in ("before", "after") for kind in ("kill", "interrupt", "throttle")]
CASES += [Fault("apigateway", operation, "before", "refuse", times=99) for operation in WRITES]


def seed(account) -> dict[str, dict]:
    """Two APIs to fix (three stages each) and one compliant; api_id -> the stages' deployments before."""
    apis = {}
    for name, document in (("first", UNTRUSTED), ("second", UNTRUSTED), ("fine", FIXED)):
        api_id = seed_rest_api(account.clients, REGION, name, json.dumps(document), stages=("prod", "dev", "test"))
        apis[api_id] = {"name": name, "policy": document, "stages": stage_deployments(account.clients, REGION, api_id)}
    return apis


@pytest.fixture
def inject(monkeypatch):
    """Faults for the CLI's own clients; its pacer and its turn to deploy sleep on the local clock."""
    import remediator.cli.aws
    from remediator.local.strict import local_clock

    faults: list[Fault] = []

    def adapter(clients):
        for fault in faults:
            fault.install_on(clients, REGION)
        return ApiGatewayAdapter(clients, DeploymentPacer(sleep=local_clock().sleep))

    monkeypatch.setattr(remediator.cli.aws, "ApiGatewayAdapter", adapter)
    return faults


def fix(account, audit: Path) -> tuple[int, list[dict], str]:
    return run_cli("fix", "--regions", REGION, "--trusted-accounts", PARTNER, "--endpoint-url", account.endpoint_url,
                   "--format", "json", "--apply", "--audit-log", str(audit))


def fixed_or_untouched(account, apis: dict[str, dict], audit: Path | None = None) -> dict[str, str]:
    """Each API fixed on every stage, or untouched. With `audit` (a fault that refuses every stage update,
    the undo's too), a fix may be left part-deployed, its intent open for the next run."""
    states = {}
    for api_id, info in apis.items():
        policy = parse_policy(ApiGatewayAdapter(account.clients).get_rest_api(REGION, api_id).policy)
        stages = stage_deployments(account.clients, REGION, api_id)
        if audit is not None and info["policy"] != FIXED and policy == FIXED and len(set(stages.values())) > 1:
            assert api_id in [i.api_id for i in JsonLinesJournal(JsonLinesAuditLog(audit)).open_intents()]
            states[info["name"]] = "pending"
        elif policy == FIXED and info["policy"] != FIXED:
            (deployment,) = set(stages.values())
            assert deployment not in info["stages"].values(), f"{info['name']}: the fix is not deployed"
            states[info["name"]] = "fixed"
        else:
            assert policy == info["policy"] and stages == info["stages"], f"{info['name']} is half-changed"
            states[info["name"]] = "untouched"
    return states


def settled(account, apis: dict[str, dict], audit: Path) -> None:
    """Both APIs fixed and deployed, one applied record each, nothing left open in the journal."""
    assert fixed_or_untouched(account, apis) == {"first": "fixed", "second": "fixed", "fine": "untouched"}
    records = list(JsonLinesAuditLog(audit).records())
    applied = [r for r in records if r.outcome == "applied"]
    assert sorted(r.api_name for r in applied) == ["first", "second"]
    for record in applied:
        assert record.deployment_id == set(stage_deployments(account.clients, REGION, record.api_id).values()).pop()
    assert all(r.outcome == "restored" for r in records if r not in applied)
    assert len({r.change_id for r in records}) == len(records), "one record per change"
    assert JsonLinesJournal(JsonLinesAuditLog(audit)).open_intents() == []


@pytest.mark.parametrize("fault", CASES, ids=str)
def test_a_fault_at_any_step_is_settled_by_the_next_run(account, tmp_path: Path, inject, fault: Fault) -> None:
    apis = seed(account)
    audit = tmp_path / "audit.jsonl"
    if fault.kind == "interrupt":
        fault.kind = "kill"
        fault._die = lambda: (_ for _ in ()).throw(KeyboardInterrupt())  # type: ignore[method-assign]
    inject.append(fault)
    try:
        status, _, err = fix(account, audit)
    except Killed:
        status, err = None, "killed"
    assert fault.fired, f"{fault} was never reached"
    if status is not None and fault.kind != "kill":
        stuck = fault.operation == "UpdateStage" and fault.times > 1
        fixed_or_untouched(account, apis, audit if stuck else None)  # a run that ends by itself leaves nothing half-changed
        assert status == (2 if fault.kind == "refuse" else 0), err
    if status == 130:
        assert "interrupted" in err

    fault.times = fault.fired  # the fault is gone: the next run finishes what was left
    status, outcomes, err = fix(account, audit)
    assert status == 0, err
    settled(account, apis, audit)
    # and a third run finds nothing to do
    status, outcomes, err = fix(account, audit)
    assert status == 0 and not [o for o in outcomes if o["action"] == "applied"] and "recovered" not in err


@pytest.mark.parametrize("write", [1, 2, 3])
@pytest.mark.parametrize("when", ["before", "after"])
def test_killed_around_each_journal_write(account, tmp_path: Path, inject, monkeypatch, write: int, when: str) -> None:
    """Killed just before or just after the 1st (intent), 2nd (its deployment) or 3rd (the record) line."""
    apis = seed(account)
    audit = tmp_path / "audit.jsonl"
    real = JsonLinesAuditLog.append_line
    calls = []

    def append_line(self, data: dict) -> None:
        calls.append(data)
        if len(calls) == write and when == "before":
            raise Killed("killed before the journal write")
        real(self, data)
        if len(calls) == write and when == "after":
            raise Killed("killed after the journal write")

    monkeypatch.setattr(JsonLinesAuditLog, "append_line", append_line)
    with pytest.raises(Killed):
        fix(account, audit)
    monkeypatch.setattr(JsonLinesAuditLog, "append_line", real)
    status, _, err = fix(account, audit)
    assert status == 0, err
    left_open = (when == "after" and write < 3) or (when == "before" and write > 1)
    assert ("recovered:" in err) == left_open, "an intent left open is settled first, and only then"
    settled(account, apis, audit)


def test_two_runs_at_once_change_each_api_once(account, tmp_path: Path, inject) -> None:
    apis = seed(account)
    audit = tmp_path / "audit.jsonl"
    account.server.counts.clear()
    results: list[tuple[int, list[dict], str]] = []
    runs = [threading.Thread(target=lambda: results.append(fix(account, audit))) for _ in range(2)]
    for run in runs:
        run.start()
    for run in runs:
        run.join(120)
    assert [r[0] for r in results] == [0, 0]
    applied = [o for r in results for o in r[1] if o["action"] == "applied"]
    assert sorted(o["name"] for o in applied) == ["first", "second"], "each API changed by one run only"
    counts = account.server.aws_requests()
    assert counts[("apigateway", "UpdateRestApi")] == 2 and counts[("apigateway", "CreateDeployment")] == 2
    settled(account, apis, audit)


@pytest.mark.parametrize("signal_name", ["SIGKILL", "SIGINT"])
def test_a_real_signal_mid_run_is_settled_by_the_next_run(account, tmp_path: Path, inject, monkeypatch,
                                                          signal_name: str) -> None:
    """The CLI as its own process, sent a real signal once its first intent is on disk and its UpdateRestApi is at
    the account. The account holds that write until the process has ended (SIGKILL), or until the signal is sent
    (SIGINT, which waits for its threads' requests), then makes it: the write lands whether or not the CLI heard it."""
    import os
    import signal
    import subprocess
    import sys
    import time

    from moto.apigateway.models import APIGatewayBackend

    apis = seed(account)
    audit = tmp_path / "audit.jsonl"
    arrived, ended = threading.Event(), threading.Event()
    update = APIGatewayBackend.update_rest_api

    def held_update(self: APIGatewayBackend, function_id: str, *args: object, **kwargs: object) -> object:
        if function_id in apis and not arrived.is_set():  # this test's APIs only, whatever else the server serves
            arrived.set()
            assert ended.wait(timeout=60), "the CLI did not end"
        return update(self, function_id, *args, **kwargs)

    monkeypatch.setattr(APIGatewayBackend, "update_rest_api", held_update)
    env = {**os.environ, "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": REGION}
    # As from a terminal, where Ctrl-C interrupts: a shell starts a command it runs in the background (as CI runners
    # may run the suite) with SIGINT ignored, and Python then leaves it ignored, so the CLI takes it back first.
    as_in_a_terminal = ("import runpy, signal, sys; signal.signal(signal.SIGINT, signal.default_int_handler); "
                        "sys.argv[0] = 'apigw-remediator'; runpy.run_module('remediator', run_name='__main__')")
    process = subprocess.Popen(
        [sys.executable, "-c", as_in_a_terminal, "fix", "--regions", REGION, "--trusted-accounts", PARTNER,
         "--endpoint-url", account.endpoint_url, "--apply", "--audit-log", str(audit)],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        assert arrived.wait(timeout=60), "the CLI never sent its UpdateRestApi"
        assert '"kind":"intent"' in audit.read_text(encoding="utf-8", errors="replace"), "the intent comes first"
        time.sleep(0.05)  # the signal reaches a process waiting on the account's answer
        assert process.poll() is None, "the CLI ended while its UpdateRestApi was held"
        with open(f"/proc/{process.pid}/status", encoding="ascii") as status:  # how the process takes signals, if it fails
            dispositions = " ".join(line.strip() for line in status if line.startswith(("SigBlk", "SigIgn", "SigCgt")))
        process.send_signal(getattr(signal, signal_name))
        if signal_name == "SIGINT":  # interrupted, the CLI still waits for the requests its threads have in flight
            ended.set()
        out, err = process.communicate(timeout=60)
    finally:
        ended.set()
        process.kill()
    assert process.returncode == (-signal.SIGKILL if signal_name == "SIGKILL" else 130), (err, out[-500:], dispositions)
    status, _, err = fix(account, audit)
    assert status == 0, err
    settled(account, apis, audit)


def test_the_cli_and_the_stack_take_turns_to_deploy(make_flow, tmp_path: Path, inject) -> None:
    """`fix --apply --lease-table` queues for the account's deployment turns with the deployed stack's
    executions: while both fix APIs at once, the quota never has to hold a CreateDeployment back."""
    from remediator.local import cloudtrail

    flow = make_flow(mode="auto")
    ours = [seed_rest_api(flow.clients, REGION, f"cli-{i}", json.dumps(UNTRUSTED), stages=("prod",)) for i in range(3)]
    theirs = [seed_rest_api(flow.clients, REGION, f"stack-{i}", json.dumps(UNTRUSTED), stages=("prod",)) for i in range(3)]
    flow.later(300)
    flow.discard_pending()
    waited = flow.account.strict.quotas.held_back("CreateDeployment")
    audit = tmp_path / "audit.jsonl"
    results: list[tuple[int, list[dict], str]] = []
    cli = threading.Thread(target=lambda: results.append(run_cli(
        "fix", "--regions", REGION, "--trusted-accounts", PARTNER, "--endpoint-url", flow.account.endpoint_url, "--format", "json",
        "--apply", "--audit-log", str(audit), "--lease-table", flow.audit.table_name, "--exempt-api-ids", ",".join(theirs))))
    cli.start()
    names = [flow.deliver(cloudtrail.api_call_event("UpdateRestApi", api_id, REGION, OWNER))["execution_name"] for api_id in theirs]
    cli.join(120)
    assert {flow.wait(name, timeout=120).status for name in names} == {"SUCCEEDED"}
    (status, outcomes, err), = results
    assert status == 0, err
    assert sorted(o["api_id"] for o in outcomes if o["action"] == "applied") == sorted(ours)
    adapter = ApiGatewayAdapter(flow.clients)
    assert all(parse_policy(adapter.get_rest_api(REGION, api_id).policy) == FIXED for api_id in ours + theirs)
    assert flow.account.strict.quotas.held_back("CreateDeployment") == waited, "no deployment was refused by the quota"
    item = flow.clients.client("dynamodb", REGION).get_item(
        TableName=flow.audit.table_name, Key={"pk": {"S": "lease#deployments"}, "sk": {"S": OWNER}})["Item"]
    assert int(item["next_ticket"]["N"]) >= 6, "both took tickets from the same queue"


def test_the_cli_and_the_stack_share_one_claim_per_api(make_flow, tmp_path: Path) -> None:
    """With `--lease-table` the CLI's intents live in the stack's table: while an execution holds an API, the CLI
    leaves it alone (busy, nothing written); once it is free, the CLI's change is claimed, recorded in the table
    where the stack keeps its records, and in the CLI's own log."""
    from remediator.adapters.dynamodb import AuditTable, DynamoJournal
    from remediator.journal import Intent, PlannedStage

    flow = make_flow(mode="auto")
    api_id = seed_rest_api(flow.clients, REGION, "shared", json.dumps(UNTRUSTED), stages=("prod",))
    flow.discard_pending()
    table = DynamoJournal(flow.clients, flow.audit.table_name, REGION)
    table.open_intents()  # its clock: DynamoDB's
    theirs = Intent(intent_id="a" * 32, account=OWNER, region=REGION, api_id=api_id, api_name="shared", action="remediate",
                    policy_before=json.dumps(UNTRUSTED), policy_after=json.dumps(FIXED), patch_operations=[],
                    stages=[PlannedStage("prod", None)], triggered_by="an execution", holder="execution:in-flight",
                    expires_at=table.now() + 600)
    table.begin(theirs)  # an execution is changing the API right now
    audit = tmp_path / "audit.jsonl"
    args = ["fix", "--regions", REGION, "--trusted-accounts", PARTNER, "--endpoint-url", flow.account.endpoint_url,
            "--format", "json", "--apply", "--audit-log", str(audit), "--lease-table", flow.audit.table_name]
    status, outcomes, err = run_cli(*args)
    assert status == 1 and [o["action"] for o in outcomes] == ["busy"], (outcomes, err)
    assert parse_policy(ApiGatewayAdapter(flow.clients).get_rest_api(REGION, api_id).policy) == UNTRUSTED, "left alone"
    theirs.state = "abandoned"
    table.close(theirs, None)  # the execution is done with it
    status, outcomes, err = run_cli(*args)
    assert status == 0 and [o["action"] for o in outcomes] == ["applied"], (outcomes, err)
    assert parse_policy(ApiGatewayAdapter(flow.clients).get_rest_api(REGION, api_id).policy) == FIXED
    assert table.open_intents() == []
    in_table = [r for r in AuditTable(flow.clients, flow.audit.table_name, REGION).records() if r.api_id == api_id]
    in_log = list(JsonLinesAuditLog(audit).records())
    assert [r.outcome for r in in_table] == ["applied"] and [r.change_id for r in in_log] == [in_table[0].change_id]
