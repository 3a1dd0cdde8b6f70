"""The account sweep against an emulated account: through moto's threaded server (as a user with
--endpoint-url) and in-process."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pytest
from botocore.awsrequest import AWSResponse

from remediator.adapters.apigateway import ApiGatewayAdapter, DeploymentPacer
from remediator.adapters.clients import ClientFactory
from remediator.audit import JsonLinesAuditLog
from remediator.cli import main
from remediator.core import TrustConfig, parse_policy
from remediator.local.emulator import escaped, seed_rest_api
from remediator.local.strict import escape_policy
from remediator.transaction.planning import StageSelection, SweepSettings, scan
from remediator.transaction.remediator import Remediator
from tests.conftest import OWNER, PARTNER, STRANGER

REGIONS = ("us-east-1", "eu-west-1", "ap-southeast-2")


@pytest.fixture(autouse=True)
def paced_without_waiting(monkeypatch) -> list[float]:
    """The CLI's deployments are paced (its turn to deploy, and the adapter's pacer); here their waits are
    recorded, and slept on the local clock."""
    import remediator.clock
    import remediator.cli.aws
    from remediator.local.strict import local_clock

    waits: list[float] = []

    def sleep(seconds: float) -> None:
        if seconds > 0:
            waits.append(seconds)
        local_clock().sleep(seconds)

    monkeypatch.setattr(remediator.cli.aws, "ApiGatewayAdapter", lambda clients: ApiGatewayAdapter(clients, DeploymentPacer(sleep=sleep)))
    monkeypatch.setattr(remediator.clock, "_sleep", sleep)
    return waits


def allow(*principals: str, **extra: Any) -> dict:
    return {"Effect": "Allow", "Principal": {"AWS": list(principals)}, "Action": "execute-api:Invoke", "Resource": "execute-api:/*", **extra}


def policy(*statements: dict) -> dict:
    return {"Version": "2012-10-17", "Statement": list(statements)}


DENY_IP = {"Effect": "Deny", "Principal": "*", "Action": "execute-api:Invoke", "Resource": "execute-api:/*",
           "Condition": {"IpAddress": {"aws:SourceIp": "192.0.2.0/24"}}}


def seed_estate(clients: ClientFactory) -> dict[str, dict[str, Any]]:
    """Several regions, several kinds of API; returns api_id -> what was seeded."""
    estate: dict[str, dict[str, Any]] = {}

    def add(region: str, name: str, document: dict | None, form: str = "plain", tags: dict | None = None, stages=("prod",)) -> None:
        text = None if document is None else (escaped(document) if form == "escaped" else json.dumps(document))
        api_id = seed_rest_api(clients, region, name, text, tags, stages)
        estate[api_id] = {"region": region, "name": name, "policy": document, "stages": stages, "text": text}

    for region in REGIONS:
        add(region, f"compliant-{region}", policy(allow(OWNER, f"arn:aws:iam::{PARTNER}:role/caller")))
        add(region, f"untrusted-{region}", policy(allow(OWNER, STRANGER), DENY_IP), form="escaped", stages=("prod", "dev", "test"))
        add(region, f"no-policy-{region}", None)
    add("us-east-1", "only-stranger", policy(allow(f"arn:aws:iam::{STRANGER}:root")), stages=("v1",))
    add("us-east-1", "exempt-by-tag", policy(allow(STRANGER)), tags={"remediator:exempt": "true"})
    add("eu-west-1", "wildcard", policy({"Effect": "Allow", "Principal": "*", "Action": "execute-api:Invoke", "Resource": "execute-api:/*"}))
    add("eu-west-1", "no-stages", policy(allow(OWNER, "AROAEXAMPLEDELETEDROLE")), stages=())
    return estate


def run_cli(*argv: str, stderr: io.StringIO | None = None) -> tuple[int, list[dict[str, Any]], str]:
    out, err = io.StringIO(), stderr or io.StringIO()
    status = main(list(argv), out, err)
    lines = out.getvalue().splitlines()
    try:
        records = [json.loads(line) for line in lines]
    except json.JSONDecodeError:
        records = [{"text": line} for line in lines]
    return status, records, err.getvalue()


def sweep_args(account, *extra: str) -> list[str]:
    return ["--regions", ",".join(REGIONS), "--trusted-accounts", PARTNER, "--endpoint-url", account.endpoint_url, "--format", "json", *extra]


def current_policies(clients: ClientFactory, estate: dict[str, dict[str, Any]]) -> dict[str, Any]:
    adapter = ApiGatewayAdapter(clients)
    return {api_id: adapter.get_rest_api(info["region"], api_id).policy for api_id, info in estate.items()}


def stage_deployments(clients: ClientFactory, region: str, api_id: str) -> dict[str, str | None]:
    return {s.name: s.deployment_id for s in ApiGatewayAdapter(clients).list_stages(region, api_id)}


def by_name(records: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {r["name"]: r for r in records}


def test_scan_reports_every_api_in_every_region(account) -> None:
    estate = seed_estate(account.clients)
    account.server.counts.clear()
    status, records, err = run_cli("scan", *sweep_args(account, "--exempt-api-ids", "nonexist00"))
    assert status == 1 and err == ""
    assert len(records) == len(estate)
    assert all(list(r)[:7] == ["region", "api_id", "name", "compliant", "exempt", "findings", "patch_operations"] for r in records)
    names = by_name(records)
    assert names["compliant-eu-west-1"]["compliant"] is True and names["no-policy-us-east-1"]["compliant"] is True
    untrusted = names["untrusted-ap-southeast-2"]
    assert [f["account"] for f in untrusted["findings"]] == [STRANGER]
    assert "network-scoped by a Deny on aws:SourceIp" in untrusted["findings"][0]["detail"]
    assert json.loads(untrusted["patch_operations"][0]["value"]) == policy(allow(OWNER), DENY_IP)
    assert names["exempt-by-tag"]["exempt"] is True and names["exempt-by-tag"]["patch_operations"] == []
    assert names["wildcard"]["findings"][0]["remediation"] == "report-only"
    # The listing carries policy and tags: one page per region plus the caller identity, nothing per API.
    # The methods (who can actually call) are read only for the APIs with findings that are not exempt.
    with_findings = sum(1 for r in records if not r["compliant"] and not r["exempt"])
    assert account.server.aws_requests() == {("apigateway", "GetRestApis"): 3, ("sts", "GetCallerIdentity"): 1,
                                             ("apigateway", "GetResources"): with_findings}


def test_scan_exit_zero_when_only_exempt_apis_have_findings(account) -> None:
    seed_rest_api(account.clients, "us-east-1", "a", json.dumps(policy(allow(STRANGER))), {"team": "x"})
    api_id = seed_rest_api(account.clients, "us-east-1", "b", json.dumps(policy(allow(OWNER))))
    status, records, _ = run_cli("scan", "--regions", "us-east-1", "--endpoint-url", account.endpoint_url, "--format", "json",
                                 "--exempt-tag-key", "team")
    assert status == 1  # the tag value must be "true"
    seed_rest_api(account.clients, "us-east-1", "c", json.dumps(policy(allow(STRANGER))), {"team": "TRUE"})
    first = by_name(records)["a"]["api_id"]
    status, records, _ = run_cli("scan", "--regions", "us-east-1", "--endpoint-url", account.endpoint_url, "--format", "json",
                                 "--exempt-tag-key", "team", "--exempt-api-ids", first)
    assert status == 0 and by_name(records)["c"]["exempt"] is True and api_id in {r["api_id"] for r in records}


def test_dry_run_changes_nothing(account) -> None:
    estate = seed_estate(account.clients)
    before = current_policies(account.clients, estate)
    deployments = {i: stage_deployments(account.clients, e["region"], i) for i, e in estate.items()}
    account.server.counts.clear()
    status, records, _ = run_cli("fix", *sweep_args(account))
    assert status == 1
    actions = {r["name"]: r["action"] for r in records}
    assert actions["untrusted-us-east-1"] == "proposed" and actions["exempt-by-tag"] == "exempt"
    assert actions["wildcard"] == "report-only" and actions["compliant-us-east-1"] == "unchanged"
    assert current_policies(account.clients, estate) == before
    assert {i: stage_deployments(account.clients, e["region"], i) for i, e in estate.items()} == deployments
    writes = {op for (_, op) in account.server.aws_requests() if not op.startswith("Get")}
    assert writes == set(), f"a dry run wrote: {writes}"


def test_apply_fixes_exactly_the_findings_and_redeploys_every_stage(account, tmp_path: Path, paced_without_waiting: list[float]) -> None:
    estate = seed_estate(account.clients)
    audit = tmp_path / "audit.jsonl"
    account.server.counts.clear()
    account.strict.clock.advance(60)  # seeded a minute ago
    account.strict.quotas.waited.clear()
    status, records, _ = run_cli("fix", *sweep_args(account, "--apply", "--audit-log", str(audit)))
    assert status == 1, "the wildcard API still needs review"
    fixed = {r["name"]: r for r in records if r["action"] == "applied"}
    assert sorted(fixed) == sorted(["untrusted-us-east-1", "untrusted-eu-west-1", "untrusted-ap-southeast-2", "only-stranger", "no-stages"])
    now = current_policies(account.clients, estate)
    for api_id, info in estate.items():
        record = next(r for r in records if r["api_id"] == api_id)
        if record["action"] != "applied":
            returned = None if info["text"] is None else escape_policy(info["text"])  # as API Gateway returns it
            assert now[api_id] == returned, f"{info['name']} must be untouched"
            continue
        assert parse_policy(now[api_id]) == json.loads(record["patch_operations"][0]["value"])
        stages = stage_deployments(account.clients, info["region"], api_id)
        assert sorted(record["stages_redeployed"]) == sorted(info["stages"])
        if info["stages"]:
            assert set(stages.values()) == {record["deployment_id"]}, "every stage serves the new deployment"
    assert parse_policy(now[by_name(records)["untrusted-eu-west-1"]["api_id"]]) == policy(allow(OWNER), DENY_IP)
    assert parse_policy(now[by_name(records)["only-stranger"]["api_id"]]) == policy(
        {"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{OWNER}:root"}, "Action": "execute-api:Invoke", "Resource": "execute-api:/*"})
    counts = account.server.aws_requests()
    assert counts[("apigateway", "CreateDeployment")] == 4, "one deployment per API with stages, not per stage"
    # Paced by the CLI itself: the account's CreateDeployment quota never had to hold one back.
    assert len(paced_without_waiting) == 3 and all(0 < wait <= 5.0 for wait in paced_without_waiting), paced_without_waiting
    assert account.strict.quotas.waited["CreateDeployment"] == 0
    assert counts[("apigateway", "UpdateStage")] == 2 * 3, "the other stages are pointed at it"
    assert counts[("apigateway", "UpdateRestApi")] == 5
    lines = [json.loads(line) for line in audit.read_text().splitlines()]
    intents = [line for line in lines if line.get("kind") == "intent"]
    lines = [line for line in lines if line.get("kind") != "intent"]
    assert len(lines) == 5 and {line["outcome"] for line in lines} == {"applied"}
    for record in lines:  # each change was written down before it was made, and its record closes it
        first = next(i for i, line in enumerate(intents) if line["intent_id"] == record["change_id"])
        assert intents[first]["state"] == "pending" and intents[first]["policy_after"] == record["policy_after"]
    entry = next(line for line in lines if line["api_name"] == "untrusted-us-east-1")
    assert entry["account"] == OWNER and entry["region"] == "us-east-1" and entry["action"] == "remediate"
    assert entry["policy_before"] == escape_policy(estate[entry["api_id"]]["text"]), "the policy before is recorded exactly as read"
    assert entry["triggered_by"].startswith("cli:arn:aws:") and entry["deployment_id"] and entry["timestamp"].endswith("Z")

    # A second run changes nothing.
    account.server.counts.clear()
    status, records, _ = run_cli("fix", *sweep_args(account, "--apply", "--audit-log", str(audit)))
    assert not [r for r in records if r["action"] == "applied"]
    assert account.server.aws_requests().keys() == {("apigateway", "GetRestApis"), ("sts", "GetCallerIdentity")}
    assert len(audit.read_text().splitlines()) == 5 + len(intents), "nothing was left to recover, nothing written"


def test_rollback_restores_the_exact_previous_policy(account, tmp_path: Path) -> None:
    audit = tmp_path / "audit.jsonl"
    original = policy(allow(OWNER, STRANGER, Sid="Keep"), DENY_IP)
    api_id = seed_rest_api(account.clients, "eu-west-1", "api", escaped(original), stages=("prod", "dev"))
    assert run_cli("fix", *sweep_args(account, "--apply", "--audit-log", str(audit)))[0] == 0
    base = ["rollback", "--audit-log", str(audit), "--api-id", api_id, "--endpoint-url", account.endpoint_url, "--format", "json"]

    status, (record,), _ = run_cli(*base)
    assert status == 0 and record["action"] == "proposed"
    # The dry run says exactly what it would give back, and that the current trust settings call it untrusted.
    assert f"re-granting {STRANGER} in statement 0 (Keep)" in record["detail"] and "it takes --force" in record["detail"]
    assert parse_policy(ApiGatewayAdapter(account.clients).get_rest_api("eu-west-1", api_id).policy) == policy(allow(OWNER, Sid="Keep"), DENY_IP)

    status, records, err = run_cli(*base, "--apply")
    assert status == 2 and records == [] and f"would re-grant {STRANGER}, untrusted" in err
    status, (record,), _ = run_cli(*base, "--apply", "--force")
    assert status == 0 and record["action"] == "rolled-back" and sorted(record["stages_redeployed"]) == ["dev", "prod"]
    assert parse_policy(ApiGatewayAdapter(account.clients).get_rest_api("eu-west-1", api_id).policy) == original
    assert set(stage_deployments(account.clients, "eu-west-1", api_id).values()) == {record["deployment_id"]}
    assert [r.action for r in JsonLinesAuditLog(audit).records()] == ["remediate", "rollback"]


def test_rollback_refuses_when_the_policy_changed_since(account, tmp_path: Path) -> None:
    audit = tmp_path / "audit.jsonl"
    api_id = seed_rest_api(account.clients, "us-east-1", "api", json.dumps(policy(allow(OWNER, STRANGER))))
    run_cli("fix", *sweep_args(account, "--apply", "--audit-log", str(audit)))
    someone_elses = json.dumps(policy(allow(OWNER, PARTNER)))
    ApiGatewayAdapter(account.clients).update_policy("us-east-1", api_id, [{"op": "replace", "path": "/policy", "value": someone_elses}])
    base = ["rollback", "--audit-log", str(audit), "--api-id", api_id, "--endpoint-url", account.endpoint_url, "--apply"]
    status, records, err = run_cli(*base)
    assert status == 2 and records == [] and err.count("\n") == 1 and "someone changed it since" in err
    assert ApiGatewayAdapter(account.clients).get_rest_api("us-east-1", api_id).policy == escape_policy(someone_elses)
    status, _, _ = run_cli(*base, "--force")
    assert status == 0
    assert parse_policy(ApiGatewayAdapter(account.clients).get_rest_api("us-east-1", api_id).policy) == policy(allow(OWNER, STRANGER))


def test_rollback_without_a_record(account, tmp_path: Path) -> None:
    status, _, err = run_cli("rollback", "--audit-log", str(tmp_path / "none.jsonl"), "--api-id", "a1b2c3d4e5", "--endpoint-url", account.endpoint_url)
    assert status == 2 and "no remediation of a1b2c3d4e5 is recorded" in err


@pytest.mark.parametrize(("spec", "expected"), [("none", []), ("dev", ["dev"]), ("dev,missing", ["dev"])])
def test_stage_selection(account, tmp_path: Path, spec: str, expected: list[str]) -> None:
    api_id = seed_rest_api(account.clients, "us-east-1", "api", json.dumps(policy(allow(OWNER, STRANGER))), stages=("prod", "dev"))
    before = stage_deployments(account.clients, "us-east-1", api_id)
    status, (record,), _ = run_cli("fix", *sweep_args(account, "--apply", "--stages", spec, "--audit-log", str(tmp_path / "a.jsonl")))
    assert status == 0 and record["stages_redeployed"] == expected
    after = stage_deployments(account.clients, "us-east-1", api_id)
    assert after["prod"] == before["prod"]
    assert (after["dev"] != before["dev"]) == bool(expected)
    if spec == "dev,missing":
        assert "stages not found: missing" in record["detail"]


def settings(**kwargs: Any) -> SweepSettings:
    return SweepSettings(trust=TrustConfig(owner_account=OWNER, trusted_accounts=frozenset({PARTNER})), **kwargs)


class _Throttle:
    """A botocore before-send hook answering the first `times` calls with HTTP 429, as API Gateway throttles."""

    def __init__(self, times: int, status: int = 429, code: str = "TooManyRequestsException") -> None:
        self.times, self.status, self.code, self.calls = times, status, code, 0

    def __call__(self, request: Any, **_: Any) -> AWSResponse | None:
        self.calls += 1
        if self.calls > self.times:
            return None
        body = json.dumps({"message": "Too Many Requests"}).encode()

        class Raw:
            def stream(self, **_: Any):
                yield body

        return AWSResponse(request.url, self.status, {"x-amzn-ErrorType": self.code, "Content-Type": "application/json"}, Raw())


def test_throttled_create_deployment_is_retried_by_botocore(in_process: ClientFactory, tmp_path: Path) -> None:
    api_id = seed_rest_api(in_process, "us-east-1", "api", json.dumps(policy(allow(OWNER, STRANGER))), stages=("prod",))
    clients = ClientFactory(retry_mode="standard")
    throttle = _Throttle(times=2)
    clients.client("apigateway", "us-east-1").meta.events.register("before-send.apigateway.CreateDeployment", throttle)
    adapter = ApiGatewayAdapter(clients)
    remediator = Remediator.with_audit_log(adapter, settings(), JsonLinesAuditLog(tmp_path / "a.jsonl"), OWNER, "test")
    (report,) = scan(adapter, ["us-east-1"], settings())
    outcome = remediator.fix(report, apply=True)
    assert outcome.action == "applied" and throttle.calls == 3
    assert stage_deployments(in_process, "us-east-1", api_id)["prod"] == outcome.deployment_id


def test_a_redeploy_whose_answer_was_lost_is_finished_forward_never_put_back(in_process: ClientFactory, tmp_path: Path) -> None:
    original = json.dumps(policy(allow(OWNER, STRANGER)))
    api_id = seed_rest_api(in_process, "us-east-1", "api", original)
    before = stage_deployments(in_process, "us-east-1", api_id)
    clients = ClientFactory(retry_mode="standard", max_attempts=2)
    clients.client("apigateway", "us-east-1").meta.events.register(
        "before-send.apigateway.CreateDeployment", _Throttle(times=99, status=400, code="BadRequestException"))
    adapter = ApiGatewayAdapter(clients)
    audit = JsonLinesAuditLog(tmp_path / "a.jsonl")
    (report,) = scan(adapter, ["us-east-1"], settings())
    outcome = Remediator.with_audit_log(adapter, settings(), audit, OWNER, "test").fix(report, apply=True)
    # In-process, moto answers before the injected error does: the deployment went through, and the error
    # came after it. The stage serves the fix already; stages only move forward, so nothing is undone: the
    # change stays open (no record yet) and the next run deploys it anew and records it.
    assert outcome.action == "failed" and "stages prod already serve the fix" in outcome.detail
    assert parse_policy(adapter.get_rest_api("us-east-1", api_id).policy) == policy(allow(OWNER))
    assert stage_deployments(in_process, "us-east-1", api_id)["prod"] != before["prod"]
    assert list(audit.records()) == []
    rerun = Remediator.with_audit_log(ApiGatewayAdapter(in_process), settings(), JsonLinesAuditLog(tmp_path / "a.jsonl"), OWNER, "test")
    (done,) = rerun.recover(["us-east-1"])
    assert done.endswith("applied")
    (record,) = JsonLinesAuditLog(tmp_path / "a.jsonl").records()
    assert record.outcome == "applied" and stage_deployments(in_process, "us-east-1", api_id)["prod"] == record.deployment_id


def test_an_approved_patch_is_written_only_while_it_is_still_the_plan(in_process: ClientFactory, tmp_path: Path) -> None:
    original = json.dumps(policy(allow(OWNER, PARTNER, STRANGER)))
    api_id = seed_rest_api(in_process, "us-east-1", "api", original)
    adapter = ApiGatewayAdapter(in_process)
    remediator = Remediator.with_audit_log(adapter, settings(), JsonLinesAuditLog(tmp_path / "a.jsonl"), OWNER, "test")
    (report,) = scan(adapter, ["us-east-1"], settings())
    approved = report.evaluation.patch_operations
    newer = json.dumps(policy(allow(OWNER, STRANGER)))
    adapter.update_policy("us-east-1", api_id, [{"op": "replace", "path": "/policy", "value": newer}])
    stale = remediator.begin("us-east-1", api_id, original, approved)
    assert stale.action == "stale" and stale.report.evaluation.patch_operations != approved
    assert parse_policy(adapter.get_rest_api("us-east-1", api_id).policy) == json.loads(newer), "nothing was written"
    same_fix = json.dumps(policy(allow(OWNER, PARTNER, STRANGER, "123456789012")))
    adapter.update_policy("us-east-1", api_id, [{"op": "replace", "path": "/policy", "value": same_fix}])
    unseen = remediator.begin("us-east-1", api_id, original, approved)
    assert unseen.action == "stale", "the same resulting patch, but it would remove a principal nobody was shown"
    assert unseen.report.evaluation.patch_operations == approved
    adapter.update_policy("us-east-1", api_id, [{"op": "replace", "path": "/policy", "value": original}])
    written = remediator.begin("us-east-1", api_id, original, approved)
    assert written.action == "patched" and not written.replanned
    assert parse_policy(written.intent.policy_after) == policy(allow(OWNER, PARTNER))


def test_api_deleted_mid_run_is_skipped(in_process: ClientFactory, tmp_path: Path) -> None:
    doomed = seed_rest_api(in_process, "us-east-1", "doomed", json.dumps(policy(allow(STRANGER))))
    kept = seed_rest_api(in_process, "us-east-1", "kept", json.dumps(policy(allow(OWNER, STRANGER))))
    adapter = ApiGatewayAdapter(in_process)
    reports = list(scan(adapter, ["us-east-1"], settings()))
    in_process.client("apigateway", "us-east-1").delete_rest_api(restApiId=doomed)
    remediator = Remediator.with_audit_log(adapter, settings(), JsonLinesAuditLog(tmp_path / "a.jsonl"), OWNER, "test")
    outcomes = {o.report.api.api_id: o for o in (remediator.fix(r, apply=True) for r in reports)}
    assert outcomes[doomed].action == "skipped" and outcomes[doomed].detail == f"us-east-1/{doomed}: API was deleted; skipped"
    assert outcomes[kept].action == "applied"


def test_listing_follows_pages(in_process: ClientFactory) -> None:
    for n in range(1203):
        in_process.client("apigateway", "eu-west-1").create_rest_api(name=f"api-{n}")
    calls: list[dict] = []
    client = in_process.client("apigateway", "eu-west-1")
    client.meta.events.register("provide-client-params.apigateway.GetRestApis", lambda params, **_: calls.append(dict(params)))
    apis = list(ApiGatewayAdapter(in_process).list_rest_apis("eu-west-1"))
    assert len(apis) == 1203 and len({a.api_id for a in apis}) == 1203
    assert [c.get("limit") for c in calls] == [500, 500, 500] and "position" not in calls[0] and "position" in calls[2]


def test_regions_all_uses_the_enabled_regions(in_process: ClientFactory) -> None:
    from remediator.adapters.ec2 import enabled_regions

    regions = enabled_regions(in_process)
    assert "us-east-1" in regions and "eu-west-1" in regions and len(regions) > 10
    seed_rest_api(in_process, "sa-east-1", "far-away", json.dumps(policy(allow(STRANGER))))
    assert [r.api.name for r in scan(ApiGatewayAdapter(in_process), regions, settings())] == ["far-away"]


def test_pacer_spaces_create_deployment_with_an_injected_clock() -> None:
    now = [100.0]
    slept: list[float] = []

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        now[0] += seconds

    pacer = DeploymentPacer(interval=5.0, clock=lambda: now[0], sleep=sleep)
    stamps = []
    for gap in (0.0, 1.0, 7.0, 0.0):
        now[0] += gap
        pacer.wait_turn()
        stamps.append(now[0])
    assert slept == [4.0, 5.0]
    assert all(b - a >= 5.0 for a, b in zip(stamps, stamps[1:]))


def test_pacing_applies_across_apis_and_regions(in_process: ClientFactory, tmp_path: Path) -> None:
    for region in ("us-east-1", "eu-west-1"):
        for n in range(3):
            seed_rest_api(in_process, region, f"api-{n}", json.dumps(policy(allow(OWNER, STRANGER))), stages=("a", "b"))
    now = [0.0]
    sent: list[float] = []

    def sleep(seconds: float) -> None:
        now[0] += seconds

    adapter = ApiGatewayAdapter(in_process, DeploymentPacer(clock=lambda: now[0], sleep=sleep))
    for region in ("us-east-1", "eu-west-1"):
        in_process.client("apigateway", region).meta.events.register(
            "before-call.apigateway.CreateDeployment", lambda **_: sent.append(now[0]))
    remediator = Remediator.with_audit_log(adapter, settings(), JsonLinesAuditLog(tmp_path / "a.jsonl"), OWNER, "test")
    outcomes = [remediator.fix(r, apply=True) for r in scan(adapter, ["us-east-1", "eu-west-1"], settings())]
    assert [o.action for o in outcomes] == ["applied"] * 6
    assert sent == [0.0, 5.0, 10.0, 15.0, 20.0, 25.0], "one CreateDeployment per API, at the quota and no faster"


def test_stage_selection_parsing() -> None:
    assert StageSelection("all").pick(["a", "b"]) == (["a", "b"], [])
    assert StageSelection("none").pick(["a"]) == ([], [])
    assert StageSelection("b, c").pick(["a", "b"]) == (["b"], ["c"])
    with pytest.raises(ValueError, match="stages must be"):
        StageSelection(",")


def test_progress_bar_only_on_a_terminal(account) -> None:
    seed_estate(account.clients)

    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    terminal = Terminal()
    status, _, err = run_cli("scan", *sweep_args(account), stderr=terminal)
    assert "scanning" in err and "\r" in err
    status, _, err = run_cli("scan", *sweep_args(account))
    assert err == ""


def test_aws_errors_are_one_line(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")
    status, _, err = run_cli("scan", "--regions", "us-east-1", "--endpoint-url", "http://127.0.0.1:9", "--owner-account", OWNER)
    assert status == 2 and err.count("\n") == 1 and err.startswith("error: ")


def test_secrets_are_read_once_per_cache_period(in_process: ClientFactory) -> None:
    from remediator.adapters import secrets

    arn = in_process.client("secretsmanager", "us-east-1").create_secret(Name="slack-signing", SecretString="first")["ARN"]
    now = [1000.0]
    assert secrets.secret_value(in_process, arn, clock=lambda: now[0]) == "first"
    in_process.client("secretsmanager", "us-east-1").put_secret_value(SecretId=arn, SecretString="rotated")
    now[0] += secrets.CACHE_SECONDS - 1
    assert secrets.secret_value(in_process, arn, clock=lambda: now[0]) == "first"
    now[0] += 1
    assert secrets.secret_value(in_process, arn, clock=lambda: now[0]) == "rotated"


@pytest.mark.parametrize("command", ["scan", "fix"])
def test_an_owner_account_other_than_the_callers_is_refused(account, tmp_path: Path, command: str) -> None:
    """The owner is whoever's credentials these are; another account would make the owner's principals untrusted."""
    original = policy(allow(OWNER, STRANGER))
    api_id = seed_rest_api(account.clients, "eu-west-1", "api", json.dumps(original))
    extra = ["--apply", "--audit-log", str(tmp_path / "audit.jsonl")] if command == "fix" else []
    status, records, err = run_cli(command, *sweep_args(account, "--owner-account", STRANGER, *extra))
    assert status == 2 and records == [] and err.count("\n") == 1
    assert f"--owner-account {STRANGER} is not the account of these credentials ({OWNER})" in err
    assert parse_policy(ApiGatewayAdapter(account.clients).get_rest_api("eu-west-1", api_id).policy) == original
    # Naming the caller's own account is the same as naming none.
    assert run_cli(command, *sweep_args(account, "--owner-account", OWNER, *extra))[0] in (0, 1)


def test_rollback_of_another_accounts_record_is_refused(account, tmp_path: Path) -> None:
    audit = tmp_path / "audit.jsonl"
    api_id = seed_rest_api(account.clients, "eu-west-1", "api", json.dumps(policy(allow(OWNER, STRANGER))))
    assert run_cli("fix", *sweep_args(account, "--apply", "--audit-log", str(audit)))[0] == 0
    (record,) = JsonLinesAuditLog(audit).records()
    audit.write_text(json.dumps({**record.to_dict(), "account": STRANGER}) + "\n")
    status, _, err = run_cli("rollback", "--audit-log", str(audit), "--api-id", api_id, "--endpoint-url", account.endpoint_url, "--apply")
    assert status == 2 and f"the record is of account {STRANGER}" in err and err.count("\n") == 1
    assert parse_policy(ApiGatewayAdapter(account.clients).get_rest_api("eu-west-1", api_id).policy) == policy(allow(OWNER))


@pytest.mark.parametrize("where", ["a directory", "under a file", "no space"])
def test_an_audit_log_that_cannot_be_written_stops_fix_before_any_change(account, tmp_path: Path, where: str, monkeypatch) -> None:
    original = policy(allow(OWNER, STRANGER))
    api_id = seed_rest_api(account.clients, "eu-west-1", "api", json.dumps(original))
    if where == "a directory":
        audit = tmp_path / "audit.jsonl"
        audit.mkdir()
    elif where == "under a file":
        (tmp_path / "file").write_text("x")
        audit = tmp_path / "file" / "audit.jsonl"
    else:
        audit = tmp_path / "audit.jsonl"
        monkeypatch.setattr("shutil.disk_usage", lambda path: type("Usage", (), {"free": 1024})())
    account.server.counts.clear()
    status, records, err = run_cli("fix", *sweep_args(account, "--apply", "--audit-log", str(audit)))
    assert status == 2 and records == [] and err.count("\n") == 1 and "cannot be written" in err
    assert parse_policy(ApiGatewayAdapter(account.clients).get_rest_api("eu-west-1", api_id).policy) == original
    assert not any(op.startswith(("Update", "Create")) for (_, op) in account.server.aws_requests())


def test_a_truncated_last_line_is_skipped_and_the_next_record_starts_on_its_own_line(account, tmp_path: Path) -> None:
    audit = tmp_path / "audit.jsonl"
    api_id = seed_rest_api(account.clients, "eu-west-1", "api", json.dumps(policy(allow(OWNER, STRANGER))))
    assert run_cli("fix", *sweep_args(account, "--apply", "--audit-log", str(audit)))[0] == 0
    with audit.open("a") as handle:
        handle.write('{"account":"111122223333","region":"eu-we')  # a write cut off by a crash
    base = ["rollback", "--audit-log", str(audit), "--api-id", api_id, "--endpoint-url", account.endpoint_url]
    status, _, err = run_cli(*base, "--apply", "--force")
    assert status == 0 and "warning:" in err and "truncated last line skipped" in err
    lines = audit.read_text().split("\n")
    assert lines[-1] == "" and '{"account":"111122223333","region":"eu-we' in lines, "the fragment stays a line of its own"
    assert [json.loads(line)["action"] for line in lines if line.endswith("}") and '"kind":"intent"' not in line] == ["remediate", "rollback"]
    log = JsonLinesAuditLog(audit)
    assert [r.action for r in log.records()] == ["remediate", "rollback"], "records after the fragment stay readable"
    assert len(log.skipped) == 1 and "truncated line skipped" in log.skipped[0]
    # a corrupt line that is not the last is still refused
    audit.write_text("garbage\n" + audit.read_text())
    status, _, err = run_cli(*base)
    assert status == 2 and "not an audit record" in err
