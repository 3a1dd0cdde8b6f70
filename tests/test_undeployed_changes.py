"""Publish only the fix: a redeploy publishes the whole API, so edits its stages do not serve yet (a method added,
its authorization changed, a resource deleted) go live with the fix unless the undeployed_changes setting allows it.

The pure difference (remediator.core.undeployed); the strict account's deployment snapshots (what GetDeployment's
apiSummary says a deployment publishes); and, through the real workflow and the CLI on the strict account, what
each setting publishes, records and tells, including an edit that lands between the plan and CreateDeployment.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from remediator.adapters.apigateway import ApiGatewayAdapter
from remediator.adapters.clients import ClientFactory
from remediator.adapters.dynamodb import ApprovalStore
from remediator.audit import JsonLinesAuditLog
from remediator.core import TrustConfig, evaluate_policy, parse_policy
from remediator.core.access import Method
from remediator.core.undeployed import (SummaryError, UndeployedChange, summary_from_api, summary_of_methods, unaccepted,
                                        undeployed_changes)
from remediator.functions import common
from remediator.local import cloudtrail
from remediator.local.emulator import seed_rest_api
from remediator.local.runner import LocalWorkflow
from remediator.transaction.planning import ApiReport, SweepSettings, Verdict
from remediator.workflow.errors import RemediationFailed
from tests.conftest import OWNER, PARTNER, STRANGER
from tests.test_sweep import run_cli

REGION = "eu-west-1"


def allow(*principals: str) -> dict[str, Any]:
    return {"Effect": "Allow", "Principal": {"AWS": list(principals)}, "Action": "execute-api:Invoke", "Resource": "execute-api:/*"}


UNTRUSTED = {"Version": "2012-10-17", "Statement": [allow(OWNER, STRANGER)]}
FIXED = {"Version": "2012-10-17", "Statement": [allow(OWNER)]}


# --- the pure difference ----------------------------------------------------------------------------------

def test_the_difference_names_each_method_added_removed_or_whose_access_changed() -> None:
    deployed = summary_from_api({"/": {"GET": {"authorizationType": "NONE", "apiKeyRequired": False}},
                                 "/legacy": {"GET": {"authorizationType": "AWS_IAM", "apiKeyRequired": False}},
                                 "/keys": {"PUT": {"authorizationType": "NONE", "apiKeyRequired": True}}})
    now = summary_of_methods([Method("/", "GET", "AWS_IAM", False), Method("/orders", "POST", None, False),
                              Method("/keys", "PUT", "NONE", False)])
    changes = undeployed_changes("prod", deployed, now)
    assert [(c.path, c.http_method, c.kind, c.deployed, c.now) for c in changes] == [
        ("/", "GET", "authorization-changed", "NONE", "AWS_IAM"),
        ("/keys", "PUT", "api-key-changed", "true", "false"),
        ("/legacy", "GET", "method-removed", "AWS_IAM", None),
        ("/orders", "POST", "method-added", None, "NONE"),
    ]
    assert undeployed_changes("prod", now, now) == [], "the same API: nothing besides the fix"
    assert [UndeployedChange.from_dict(c.to_dict()) for c in changes] == changes
    assert unaccepted(changes, changes[:2]) == changes[2:]
    assert "POST /orders added" in changes[3].describe() and "NONE -> AWS_IAM" in changes[0].describe()


@pytest.mark.parametrize("summary", [
    [], {"orders": {}}, {"/": []}, {"/": {"FETCH": {}}}, {"/": {"GET": {"authorizationType": 3}}},
    {"/": {"GET": {"apiKeyRequired": "yes"}}}, {"/" + "x" * 2000: {}},
])
def test_a_summary_not_of_api_gateways_form_is_refused_in_one_line(summary: Any) -> None:
    with pytest.raises(SummaryError) as refused:
        summary_from_api(summary)
    assert "\n" not in str(refused.value)


def test_the_setting_fails_closed_and_the_one_ladder_decides() -> None:
    trust = TrustConfig(owner_account=OWNER)
    with pytest.raises(ValueError, match="undeployed_changes 'publsh' is not one of ask, publish, report"):
        SweepSettings(trust, undeployed="publsh")
    with pytest.raises(RemediationFailed, match="UNDEPLOYED_CHANGES 'yes'"):
        common._undeployed("yes")
    from remediator.adapters.apigateway import RestApi

    edit = UndeployedChange("prod", "/orders", "POST", "method-added", None, "NONE")
    report = ApiReport(RestApi(REGION, "a1b2c3d4e5", "api", json.dumps(UNTRUSTED), {}), False,
                       evaluate_policy(UNTRUSTED, trust), undeployed=(edit,))
    assert report.verdict(undeployed="publish") is Verdict.FIX
    assert report.verdict(undeployed="report", asks=True) is Verdict.BLOCKED
    assert report.verdict(undeployed="ask") is Verdict.BLOCKED, "nobody to ask: reported"
    assert report.verdict(undeployed="ask", asks=True) is Verdict.FIX, "the approval shows the edits"
    assert report.verdict(failures=3, failure_limit=3, undeployed="report") is Verdict.HELD
    assert Verdict.BLOCKED.needs_attention
    assert report.to_dict()["undeployed_changes"] == [edit.to_dict()]


# --- edits a person makes without deploying them ------------------------------------------------------------

def _root(client: Any, api_id: str) -> str:
    return next(r["id"] for r in client.get_resources(restApiId=api_id)["items"] if r["path"] == "/")


def add_method(clients: ClientFactory, api_id: str, path: str = "orders", verbs: tuple[str, ...] = ("POST",),
               authorization: str = "NONE") -> None:
    client = clients.client("apigateway", REGION)
    resource = client.create_resource(restApiId=api_id, parentId=_root(client, api_id), pathPart=path)["id"]
    for verb in verbs:
        client.put_method(restApiId=api_id, resourceId=resource, httpMethod=verb, authorizationType=authorization)
        client.put_integration(restApiId=api_id, resourceId=resource, httpMethod=verb, type="MOCK")


def change_authorization(clients: ClientFactory, api_id: str) -> None:
    """GET / from NONE to AWS_IAM (the emulator has no UpdateMethod: the method is put again with the new type)."""
    client = clients.client("apigateway", REGION)
    root = _root(client, api_id)
    client.delete_method(restApiId=api_id, resourceId=root, httpMethod="GET")
    client.put_method(restApiId=api_id, resourceId=root, httpMethod="GET", authorizationType="AWS_IAM")
    client.put_integration(restApiId=api_id, resourceId=root, httpMethod="GET", type="MOCK")


def delete_resource(clients: ClientFactory, api_id: str) -> None:
    client = clients.client("apigateway", REGION)
    legacy = next(r["id"] for r in client.get_resources(restApiId=api_id)["items"] if r["path"] == "/legacy")
    client.delete_resource(restApiId=api_id, resourceId=legacy)


EDITS: dict[str, tuple[Callable[[ClientFactory, str], None], set[tuple[str, str, str]]]] = {
    "method added": (add_method, {("/orders", "POST", "method-added")}),
    "authorization changed": (change_authorization, {("/", "GET", "authorization-changed")}),
    "resource deleted": (delete_resource, {("/legacy", "GET", "method-removed"), ("/legacy", "POST", "method-removed")}),
}


def seed(clients: ClientFactory, policy: dict = UNTRUSTED, stages: tuple[str, ...] = ("prod", "dev")) -> str:
    """An API built, then deployed on its stages (with a /legacy resource that the deletion removes)."""
    api_id = seed_rest_api(clients, REGION, "orders", json.dumps(policy), None, ())
    add_method(clients, api_id, "legacy", ("GET", "POST"), "AWS_IAM")
    client = clients.client("apigateway", REGION)
    for stage in stages:
        client.create_deployment(restApiId=api_id, stageName=stage)
    return api_id


def stages_of(clients: ClientFactory, api_id: str) -> dict[str, str | None]:
    return {s.name: s.deployment_id for s in ApiGatewayAdapter(clients).list_stages(REGION, api_id)}


def policy_of(clients: ClientFactory, api_id: str) -> dict:
    return parse_policy(ApiGatewayAdapter(clients).get_rest_api(REGION, api_id).policy)


def published(account: Any, api_id: str, deployment_id: str) -> dict[str, dict[str, Any]]:
    """What a deployment publishes, as the strict account snapshotted it at its CreateDeployment."""
    snapshot = account.strict.deployments.get(OWNER, REGION, api_id, deployment_id)
    assert snapshot is not None
    return snapshot.api_summary


def kinds(changes: list[dict[str, Any]]) -> set[tuple[str, str, str]]:
    return {(c["path"], c["http_method"], c["kind"]) for c in changes}


# --- the strict account's snapshots -----------------------------------------------------------------------

def test_a_deployments_summary_is_the_api_at_its_creation_not_later(account) -> None:
    api_id = seed(account.clients, stages=("prod",))
    first = stages_of(account.clients, api_id)["prod"]
    adapter = ApiGatewayAdapter(account.clients)
    at_first = adapter.deployed_summary(REGION, api_id, first)
    assert at_first == {"/": {"GET": ("NONE", False)}, "/legacy": {"GET": ("AWS_IAM", False), "POST": ("AWS_IAM", False)}}
    add_method(account.clients, api_id)
    change_authorization(account.clients, api_id)
    assert adapter.deployed_summary(REGION, api_id, first) == at_first, "a deployment does not follow later edits"
    second = account.clients.client("apigateway", REGION).create_deployment(restApiId=api_id, stageName="prod")["id"]
    assert adapter.deployed_summary(REGION, api_id, second)["/orders"] == {"POST": ("NONE", False)}
    assert adapter.deployed_summary(REGION, api_id, second)["/"] == {"GET": ("AWS_IAM", False)}
    plain = account.clients.client("apigateway", REGION).get_deployment(restApiId=api_id, deploymentId=first)
    assert "apiSummary" not in plain, "only with embed=apisummary"


# --- the workflow ------------------------------------------------------------------------------------------

def run(flow: LocalWorkflow, api_id: str) -> Any:
    started = flow.deliver(cloudtrail.api_call_event("UpdateRestApi", api_id, REGION, OWNER))
    assert started["status"] == "started", started
    return flow.wait(started["execution_name"])


FIX_PATH = ["Evaluate", "IsActionNeeded", "ChooseMode", "Apply", "WasPatched", "Redeploy", "IsDeployed", "Record", "Notify", "Done"]


@pytest.mark.parametrize("setting", ["ask", "report"])
@pytest.mark.parametrize("edit", sorted(EDITS))
def test_auto_mode_reports_an_api_whose_fix_would_publish_undeployed_edits(make_flow, edit: str, setting: str) -> None:
    flow = make_flow(mode="auto", undeployed_changes=setting)
    api_id = seed(flow.clients)
    before = stages_of(flow.clients, api_id)
    do, expected = EDITS[edit]
    do(flow.clients, api_id)
    flow.later()
    result = run(flow, api_id)
    assert result.status == "SUCCEEDED" and result.states == ["Evaluate", "IsActionNeeded", "ReportFindings", "Done"]
    assert result.output["evaluation"]["verdict"] == "blocked"
    assert policy_of(flow.clients, api_id) == UNTRUSTED and stages_of(flow.clients, api_id) == before, "nothing written"
    assert flow.audit_records() == []
    (message,) = flow.notifications()
    assert message["kind"] == "findings" and kinds(message["blocked_by_undeployed_changes"]) == expected
    assert {c["stage"] for c in message["blocked_by_undeployed_changes"]} == {"dev", "prod"}
    assert json.loads(message["patch_operations"][0]["value"]) == FIXED, "the notice names the fix it needs"
    assert f"undeployed_changes is {setting}" in message["how_to_proceed"]


def test_auto_mode_publishes_the_edits_with_the_fix_under_publish(make_flow) -> None:
    flow = make_flow(mode="auto", undeployed_changes="publish")
    api_id = seed(flow.clients)
    for do, _ in EDITS.values():
        do(flow.clients, api_id)
    flow.later()
    result = run(flow, api_id)
    assert result.status == "SUCCEEDED" and result.states == FIX_PATH
    deployment = result.output["redeploy"]["deployment_id"]
    assert set(stages_of(flow.clients, api_id).values()) == {deployment}
    snapshot = published(flow.account, api_id, deployment)
    assert snapshot == {"/": {"GET": {"authorizationType": "AWS_IAM", "apiKeyRequired": False}},
                        "/orders": {"POST": {"authorizationType": "NONE", "apiKeyRequired": False}}}
    (record,) = flow.audit_records()
    assert record.outcome == "applied" and parse_policy(record.policy_after) == FIXED
    every = set().union(*(expected for _, expected in EDITS.values()))
    assert kinds(record.undeployed) == every and {c["stage"] for c in record.undeployed} == {"dev", "prod"}
    (message,) = flow.notifications()
    assert message["kind"] == "result" and kinds(message["undeployed_changes_published"]) == every


def test_an_api_deployed_after_it_was_built_is_fixed_under_the_default(make_flow) -> None:
    flow = make_flow(mode="auto")
    api_id = seed(flow.clients)
    flow.later()
    result = run(flow, api_id)
    assert result.status == "SUCCEEDED" and result.states == FIX_PATH
    (record,) = flow.audit_records()
    assert record.undeployed == [] and policy_of(flow.clients, api_id) == FIXED
    (message,) = flow.notifications()
    assert message["undeployed_changes_published"] == []


def test_an_edit_between_the_plan_and_create_deployment_is_not_published(make_flow, monkeypatch) -> None:
    flow = make_flow(mode="auto")
    api_id = seed(flow.clients)
    before = stages_of(flow.clients, api_id)
    flow.later()
    race_after_the_write(monkeypatch, flow.clients, api_id)
    result = run(flow, api_id)
    assert result.status == "FAILED" and result.states[-3:] == ["RestorePolicy", "NotifyFailure", "Failed"]
    assert "Redeploy" in result.states and "Record" not in result.states
    assert policy_of(flow.clients, api_id) == UNTRUSTED and stages_of(flow.clients, api_id) == before, "the fix was never published"
    assert not [d for d in flow.account.strict.deployments._snapshots if d[2] == api_id and d[3] not in before.values()]
    (record,) = flow.audit_records()
    assert record.outcome == "restored" and record.deployment_id is None and record.undeployed == []
    (message,) = flow.notifications()
    assert message["kind"] == "failure" and message["restore"] == "previous policy restored"
    assert "POST /orders added" in json.dumps(message["error"])


def race_after_the_write(monkeypatch, clients: ClientFactory, api_id: str) -> list[int]:
    """A person adds a method (without deploying it) right after the bot's policy write: after the plan."""
    original = ApiGatewayAdapter.update_policy
    done: list[int] = []

    def update_policy(self: ApiGatewayAdapter, region: str, target: str, operations: list[dict[str, str]]) -> Any:
        answer = original(self, region, target, operations)
        if target == api_id and not done:
            done.append(1)
            add_method(clients, api_id)
        return answer

    monkeypatch.setattr(ApiGatewayAdapter, "update_policy", update_policy)
    return done


def test_approval_shows_the_edits_and_approving_publishes_them(make_flow) -> None:
    from tests.test_approvals import message_of, text_of, wait_for_buttons

    flow = make_flow(mode="approval", approvers=["U0APPROVER"])
    api_id = seed(flow.clients)
    add_method(flow.clients, api_id)
    flow.later()
    started = flow.deliver(cloudtrail.api_call_event("UpdateRestApi", api_id, REGION, OWNER))
    approval_id = wait_for_buttons(flow)
    shown = text_of(message_of(flow, approval_id))
    assert "Also published by the redeploy" in shown and "POST /orders added" in shown
    stored = ApprovalStore(flow.clients, "apigw-remediator-audit", REGION).get(approval_id)
    assert kinds(stored.undeployed) == {("/orders", "POST", "method-added")}
    assert flow.press(approval_id, "approve")[0] == 200
    result = flow.wait(started["execution_name"])
    assert result.status == "SUCCEEDED" and result.states[-6:] == FIX_PATH[-6:]
    deployment = result.output["redeploy"]["deployment_id"]
    assert "/orders" in published(flow.account, api_id, deployment)
    (record,) = flow.audit_records()
    assert kinds(record.undeployed) == {("/orders", "POST", "method-added")}


# --- the command line ---------------------------------------------------------------------------------------

def cli_args(account: Any, audit: Path, *extra: str) -> list[str]:
    return ["fix", "--regions", REGION, "--trusted-accounts", PARTNER, "--endpoint-url", account.endpoint_url,
            "--format", "json", "--apply", "--audit-log", str(audit), *extra]


def test_the_cli_reports_under_ask_and_publishes_when_told(account, tmp_path: Path) -> None:
    api_id = seed(account.clients)
    before = stages_of(account.clients, api_id)
    delete_resource(account.clients, api_id)
    account.strict.clock.advance(60)
    audit = tmp_path / "audit.jsonl"
    status, (record,), _ = run_cli(*cli_args(account, audit))
    assert status == 1 and record["action"] == "blocked"
    assert "GET /legacy removed" in record["detail"] and "--undeployed-changes publish" in record["detail"]
    assert kinds(record["undeployed_changes"]) == {("/legacy", "GET", "method-removed"), ("/legacy", "POST", "method-removed")}
    assert policy_of(account.clients, api_id) == UNTRUSTED and stages_of(account.clients, api_id) == before
    assert list(JsonLinesAuditLog(audit).records()) == []

    status, (record,), _ = run_cli(*cli_args(account, audit, "--undeployed-changes", "publish"))
    assert status == 0 and record["action"] == "applied" and "published with the fix" in record["detail"]
    assert "/legacy" not in published(account, api_id, record["deployment_id"])
    (written,) = JsonLinesAuditLog(audit).records()
    assert kinds(written.undeployed) == {("/legacy", "GET", "method-removed"), ("/legacy", "POST", "method-removed")}

    status, _, err = run_cli(*cli_args(account, audit, "--undeployed-changes", "sometimes"))
    assert status == 2 and "invalid choice" in err


def test_the_cli_undoes_a_fix_when_an_edit_lands_before_its_deployment(account, tmp_path: Path, monkeypatch) -> None:
    api_id = seed(account.clients)
    before = stages_of(account.clients, api_id)
    account.strict.clock.advance(60)
    race_after_the_write(monkeypatch, account.clients, api_id)
    audit = tmp_path / "audit.jsonl"
    status, (record,), _ = run_cli(*cli_args(account, audit))
    assert status == 1 and record["action"] == "blocked"
    assert "POST /orders added" in record["detail"] and "previous policy restored" in record["detail"]
    assert policy_of(account.clients, api_id) == UNTRUSTED and stages_of(account.clients, api_id) == before
    (written,) = JsonLinesAuditLog(audit).records()
    assert written.outcome == "restored" and written.deployment_id is None


# --- a person's rollback publishes only what it restores, as a fix does ---------------------------------------

def rollback_args(account: Any, audit: Path, api_id: str, *extra: str) -> list[str]:
    return ["rollback", "--audit-log", str(audit), "--api-id", api_id, "--endpoint-url", account.endpoint_url,
            "--format", "json", "--force", *extra]


def fixed_then_edited(account: Any, audit: Path) -> tuple[str, dict[str, str | None]]:
    """An API fixed by the CLI (its record in `audit`), then a method added by a person and not deployed."""
    api_id = seed(account.clients)
    account.strict.clock.advance(60)
    status, (record,), _ = run_cli(*cli_args(account, audit))
    assert status == 0 and record["action"] == "applied" and policy_of(account.clients, api_id) == FIXED
    add_method(account.clients, api_id)
    account.strict.clock.advance(60)
    return api_id, stages_of(account.clients, api_id)


@pytest.mark.parametrize("setting", ["ask", "report"])
def test_a_rollback_is_not_applied_when_its_redeploy_would_publish_undeployed_edits(account, tmp_path: Path,
                                                                                     setting: str) -> None:
    audit = tmp_path / "audit.jsonl"
    api_id, serving = fixed_then_edited(account, audit)
    extra = () if setting == "ask" else ("--undeployed-changes", setting)
    account.server.counts.clear()

    status, (record,), err = run_cli(*rollback_args(account, audit, api_id, *extra))  # the dry run says so first
    assert status == 2 and record["action"] == "blocked" and err == ""
    assert record["detail"].startswith("dry run: not rolled back") and "POST /orders added" in record["detail"]

    status, (record,), err = run_cli(*rollback_args(account, audit, api_id, "--apply", *extra))
    assert status == 2 and record["action"] == "blocked" and err == ""
    assert "POST /orders added" in record["detail"] and f"undeployed_changes is {setting}" in record["detail"]
    assert "deploy or revert those edits first" in record["detail"] and "--undeployed-changes publish" in record["detail"]
    assert kinds(record["undeployed_changes"]) == {("/orders", "POST", "method-added")}
    assert record["stages_redeployed"] == [] and record["deployment_id"] is None
    assert policy_of(account.clients, api_id) == FIXED and stages_of(account.clients, api_id) == serving
    writes = {("apigateway", "UpdateRestApi"), ("apigateway", "CreateDeployment"), ("apigateway", "UpdateStage")}
    assert not writes & set(account.server.aws_requests()), "nothing was written"
    assert [r.action for r in JsonLinesAuditLog(audit).records()] == ["remediate"]


def test_a_rollback_publishes_undeployed_edits_under_publish_and_records_them(account, tmp_path: Path) -> None:
    audit = tmp_path / "audit.jsonl"
    api_id, _ = fixed_then_edited(account, audit)
    status, (record,), _ = run_cli(*rollback_args(account, audit, api_id, "--undeployed-changes", "publish"))
    assert status == 0 and record["action"] == "proposed" and "the redeploy also publishes stage" in record["detail"]
    assert "POST /orders added" in record["detail"] and kinds(record["undeployed_changes"]) == {("/orders", "POST", "method-added")}

    status, (record,), _ = run_cli(*rollback_args(account, audit, api_id, "--apply", "--undeployed-changes", "publish"))
    assert status == 0 and record["action"] == "rolled-back"
    assert "published with the rollback: " in record["detail"] and "POST /orders added" in record["detail"]
    assert policy_of(account.clients, api_id) == UNTRUSTED
    assert sorted(record["stages_redeployed"]) == ["dev", "prod"]
    assert set(stages_of(account.clients, api_id).values()) == {record["deployment_id"]}
    assert "/orders" in published(account, api_id, record["deployment_id"])
    remediate, rollback = JsonLinesAuditLog(audit).records()
    assert (remediate.action, rollback.action) == ("remediate", "rollback") and remediate.undeployed == []
    assert kinds(rollback.undeployed) == {("/orders", "POST", "method-added")}


def test_a_rollback_is_undone_when_an_edit_lands_before_its_deployment(account, tmp_path: Path, monkeypatch) -> None:
    audit = tmp_path / "audit.jsonl"
    api_id = seed(account.clients)
    account.strict.clock.advance(60)
    assert run_cli(*cli_args(account, audit))[0] == 0
    serving = stages_of(account.clients, api_id)
    account.strict.clock.advance(60)
    race_after_the_write(monkeypatch, account.clients, api_id)
    status, (record,), _ = run_cli(*rollback_args(account, audit, api_id, "--apply"))
    assert status == 2 and record["action"] == "blocked"
    assert "appeared since the rollback was planned" in record["detail"] and "POST /orders added" in record["detail"]
    assert policy_of(account.clients, api_id) == FIXED and stages_of(account.clients, api_id) == serving
    remediate, undone = JsonLinesAuditLog(audit).records()
    assert undone.action == "rollback" and undone.outcome == "restored" and undone.deployment_id is None
