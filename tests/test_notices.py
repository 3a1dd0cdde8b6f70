"""Quiet notifications: findings a person must review (and a dry run's proposals) are told when they first
appear or change, not on every sweep or event; one summary per sweep says the rest. And the trusted lists
are read once a minute per container, except by the state that removes principals."""

from __future__ import annotations

import json
from typing import Any

import pytest

from remediator.adapters import ssm
from remediator.adapters.apigateway import ApiGatewayAdapter
from remediator.local import cloudtrail
from tests.conftest import OWNER, PARTNER, STRANGER
from tests.test_workflow import REGION, UNTRUSTED, allow, policy_of, run, run_directly, seed

WILDCARD = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": "*", "Action": "execute-api:Invoke",
                                                    "Resource": "execute-api:/*"}]}
TWO_WILDCARDS = {"Version": "2012-10-17", "Statement": [*WILDCARD["Statement"], {**WILDCARD["Statement"][0], "Sid": "Again"}]}
COMPLIANT = {"Version": "2012-10-17", "Statement": [allow(OWNER)]}


def sweep(flow: Any) -> tuple[dict[str, Any], list[dict[str, Any]], dict[str, Any]]:
    """The next day's sweep, and its executions; (its counts, the per-API notices, the summary)."""
    flow.later(24 * 3600)
    counts = flow.run_sweep()
    executions = flow.clients.client("stepfunctions", REGION).list_executions(stateMachineArn=flow.state_machine_arn)["executions"]
    for execution in executions:
        flow.wait(execution["name"])
    messages = flow.notifications()
    (summary,) = [m for m in messages if m["kind"] == "summary"]
    return counts, [m for m in messages if m["kind"] != "summary"], summary


def set_policy(flow: Any, api_id: str, policy: dict) -> None:
    flow.clients.client("apigateway", REGION).update_rest_api(
        restApiId=api_id, patchOperations=[{"op": "replace", "path": "/policy", "value": json.dumps(policy)}])
    flow.discard_pending()  # the test's own write: the sweep is what is under test


def test_report_only_findings_are_told_once_until_they_change(make_flow) -> None:
    flow = make_flow(mode="auto")
    api_id = seed(flow, WILDCARD)
    flow.discard_pending()
    counts, told, summary = sweep(flow)
    assert counts["started"] == 1 and [(m["kind"], m["api_id"]) for m in told] == [("findings", api_id)]
    assert summary["verdicts"] == {"report-only": 1} and [a["api_id"] for a in summary["new_findings"]] == [api_id]

    for _ in range(2):  # the next days: nothing new, nobody told again, one summary
        counts, told, summary = sweep(flow)
        assert (counts["started"], counts["told_already"], told) == (0, 1, [])
        assert summary["new_findings"] == [] and summary["told_already"] == 1 and summary["verdicts"] == {"report-only": 1}

    # An event on the API, its findings the same: the trigger decides, no execution starts, nobody is told.
    assert flow.deliver(cloudtrail.api_call_event("UpdateRestApi", api_id, REGION, OWNER)) == {
        "status": "not-started", "verdict": "report-only"}
    assert flow.notifications() == []
    _, result = run_directly(flow, api_id)  # an execution that does run anyway: Notify tells nobody either
    assert result.output["notification"]["unchanged"] is True and flow.notifications() == []

    set_policy(flow, api_id, TWO_WILDCARDS)  # other findings: told again
    counts, told, summary = sweep(flow)
    assert counts["started"] == 1 and [m["kind"] for m in told] == ["findings"] and len(told[0]["findings"]) == 2

    set_policy(flow, api_id, COMPLIANT)  # resolved: said once in the summary, and forgotten
    counts, told, summary = sweep(flow)
    assert told == [] and [a["api_id"] for a in summary["resolved_findings"]] == [api_id]
    assert summary["verdicts"] == {"compliant": 1}
    set_policy(flow, api_id, WILDCARD)  # back again: news again
    assert [m["kind"] for m in sweep(flow)[1]] == ["findings"]


def test_findings_that_come_back_after_a_fix_are_told_again(make_flow) -> None:
    """Between two sweeps: told, fixed by hand (the event's evaluation forgets the notice), back again: told."""
    flow = make_flow(mode="auto")
    api_id = seed(flow, WILDCARD)
    _, result = run(flow, api_id)
    assert [m["kind"] for m in flow.notifications()] == ["findings"]
    set_policy(flow, api_id, COMPLIANT)
    run(flow, api_id)
    set_policy(flow, api_id, WILDCARD)
    _, result = run(flow, api_id)
    assert "unchanged" not in result.output["notification"] and [m["kind"] for m in flow.notifications()] == ["findings"]
    # The same findings once more: not told, whether the trigger decides (no execution) or an execution runs.
    assert flow.deliver(cloudtrail.api_call_event("UpdateRestApi", api_id, REGION, OWNER))["status"] == "not-started"
    _, result = run_directly(flow, api_id)
    assert result.output["notification"]["unchanged"] is True and flow.notifications() == []


def test_a_dry_runs_proposals_are_told_once(make_flow) -> None:
    flow = make_flow(mode="dry-run")
    api_id = seed(flow, UNTRUSTED)
    flow.discard_pending()
    assert [m["kind"] for m in sweep(flow)[1]] == ["proposal"]
    counts, told, summary = sweep(flow)
    assert (counts["started"], told, summary["verdicts"]) == (0, [], {"fix": 1})
    assert policy_of(flow, api_id) == UNTRUSTED


def test_a_deleted_api_is_resolved(make_flow) -> None:
    flow = make_flow(mode="auto")
    api_id = seed(flow, WILDCARD)
    flow.discard_pending()
    sweep(flow)
    flow.clients.client("apigateway", REGION).delete_rest_api(restApiId=api_id)
    flow.discard_pending()
    _, told, summary = sweep(flow)
    assert told == [] and summary["resolved_findings"] == [{"api_id": api_id, "name": "", "verdict": "gone"}]


def test_fixes_and_failures_are_still_told_every_time(make_flow) -> None:
    """Only what needs a person's review is told once: every change the bot makes is told."""
    flow = make_flow(mode="auto")
    first, second = seed(flow, UNTRUSTED), seed(flow, UNTRUSTED)
    flow.discard_pending()
    _, told, summary = sweep(flow)
    assert sorted(m["kind"] for m in told) == ["result", "result"] and summary["verdicts"] == {"fix": 2}
    assert {first, second} == {m["api_id"] for m in told}


def test_the_trusted_lists_are_kept_a_minute_but_read_fresh_to_write(in_process) -> None:
    ssm.forget_cached()
    client = in_process.client("ssm", "us-east-1")
    client.put_parameter(Name="trust", Type="String", Value=json.dumps({"trusted_accounts": [PARTNER], "trusted_org_ids": []}))
    now = [1000.0]
    calls: list[str] = []
    in_process.client("ssm").meta.events.register("before-call.ssm.GetParameter", lambda **_: calls.append("get"))
    assert ssm.trust_lists(in_process, "trust", clock=lambda: now[0])[0] == {PARTNER}
    client.put_parameter(Name="trust", Value=json.dumps({"trusted_accounts": [PARTNER, STRANGER], "trusted_org_ids": []}), Overwrite=True)
    now[0] += ssm.CACHE_SECONDS - 1
    assert ssm.trust_lists(in_process, "trust", clock=lambda: now[0])[0] == {PARTNER} and calls == ["get"]
    assert ssm.trust_lists(in_process, "trust", fresh=True, clock=lambda: now[0])[0] == {PARTNER, STRANGER}
    now[0] += ssm.CACHE_SECONDS
    client.put_parameter(Name="trust", Value="{not json", Overwrite=True)
    for _ in range(2):  # a parameter that does not read is never kept: each call fails, closed
        with pytest.raises(ssm.TrustListError):
            ssm.trust_lists(in_process, "trust", clock=lambda: now[0])
    ssm.forget_cached()


def test_an_account_trusted_a_moment_ago_is_never_stripped_by_a_stale_list(make_flow) -> None:
    """Evaluate judged with the container's copy of the lists; Apply, which writes, reads them fresh."""
    flow = make_flow(mode="auto")
    warm = seed(flow, UNTRUSTED)
    run(flow, warm)  # the containers now hold the lists: PARTNER trusted, STRANGER not
    parameter = next(iter(flow.clients.client("ssm", REGION).describe_parameters()["Parameters"]))["Name"]
    flow.clients.client("ssm", REGION).put_parameter(
        Name=parameter, Value=json.dumps({"trusted_accounts": [PARTNER, STRANGER], "trusted_org_ids": []}), Overwrite=True)
    api_id = seed(flow, UNTRUSTED)
    _, result = run(flow, api_id)
    assert result.output["evaluation"]["verdict"] == "fix", "Evaluate used the copy it kept"
    assert policy_of(flow, api_id) == UNTRUSTED, "Apply judged by the lists as they are now: STRANGER is trusted"
    assert ApiGatewayAdapter(flow.clients).get_rest_api(REGION, api_id).policy is not None


def test_a_sweep_retried_after_a_failed_publish_keeps_the_resolved_findings(make_flow) -> None:
    """SNS refuses the summary once (the sweep's Lambda fails and is run again): the retried sweep still lists
    the API deleted in between as resolved, because what people were told is forgotten only after the summary
    that says so is out."""
    from remediator.functions import common
    from tests.faults.injection import Fault

    flow = make_flow(mode="auto")
    api_id = seed(flow, WILDCARD)
    flow.discard_pending()
    sweep(flow)
    flow.clients.client("apigateway", REGION).delete_rest_api(restApiId=api_id)
    flow.discard_pending()
    fault = Fault("sns", "Publish", "before", "refuse", times=1).install_on(common.clients(), REGION)
    flow.later(24 * 3600)
    with pytest.raises(Exception):
        flow.run_sweep()
    assert fault.fired
    _, told, summary = sweep(flow)
    assert told == [] and summary["resolved_findings"] == [{"api_id": api_id, "name": "", "verdict": "gone"}]
