"""The trigger decides before it starts: an event whose API needs nothing starts no execution (issue R, item 1).

Every test runs the stack's real functions on the strict local account, each as its template's role: the trigger's
reads (GetRestApi, the notice, the open intent) are checked against the grants the template gives it.
"""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

import pytest
from structlog.testing import capture_logs

from remediator.adapters.dynamodb import DynamoJournal, NoticeLedger
from remediator.events import EventError, parse_event
from remediator.journal import Intent
from remediator.local import cloudtrail
from remediator.local.emulator import seed_rest_api
from remediator.local.runner import LocalWorkflow
from tests.conftest import CORPUS, OWNER, PARTNER, STRANGER
from tests.test_organization import REGION as ORG_REGION, make_org, members  # noqa: F401 - a fixture
from tests.test_organization import seed as member_seed
from tests.test_workflow import COMPLIANT, FIX_PATH, FIXED, REGION, UNTRUSTED, policy_of, seed

WILDCARD = {"Version": "2012-10-17", "Statement": [
    {"Effect": "Allow", "Principal": "*", "Action": "execute-api:Invoke", "Resource": "execute-api:/*"}]}


def executions(flow: LocalWorkflow) -> list[dict[str, Any]]:
    return flow.clients.client("stepfunctions", REGION).list_executions(stateMachineArn=flow.state_machine_arn)["executions"]


def event(api_id: str, name: str = "UpdateRestApi", written: dict[str, Any] | None = None) -> dict[str, Any]:
    made = cloudtrail.api_call_event(name, api_id, REGION, OWNER)
    if written is not None:
        made["detail"]["requestParameters"]["updateRestApiInput"]["patchOperations"][0]["value"] = json.dumps(written)
    return made


def deliver(flow: LocalWorkflow, made: dict[str, Any]) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The trigger's answer to the event, and what it logged."""
    with capture_logs() as logs:
        answer = flow.deliver(made)
    return answer, [line for line in logs if line.get("log_level") != "debug"]


def evaluated(logs: list[dict[str, Any]]) -> dict[str, Any]:
    (line,) = [line for line in logs if line["event"] == "evaluated"]
    return line


@pytest.fixture
def flow(make_flow) -> LocalWorkflow:
    return make_flow(mode="auto", security_hub=True)


def test_a_compliant_event_starts_no_execution_and_logs_what_evaluate_would(flow: LocalWorkflow) -> None:
    api_id = seed(flow, COMPLIANT)
    flow.discard_pending()
    flow.account.server.counts.clear()
    answer, logs = deliver(flow, event(api_id))
    assert answer == {"status": "not-started", "verdict": "compliant"}
    assert executions(flow) == [], "no execution, so no state transition"
    line = evaluated(logs)
    # The fields the Evaluate state logs, as the one helper gives them for this outcome.
    assert {k: line[k] for k in ("verdict", "failures", "findings")} == {"verdict": "compliant", "failures": 0, "findings": 0}
    assert line["execution_started"] is False
    requests = flow.account.server.aws_requests()
    assert requests[("apigateway", "GetRestApi")] == 1 and requests[("states", "StartExecution")] == 0
    # Security Hub hears the API passed, as it would from Evaluate.
    (finding,) = flow.clients.client("securityhub", REGION).get_findings()["Findings"]
    assert finding["Compliance"]["Status"] == "PASSED" and api_id in json.dumps(finding["Resources"])
    assert flow.notifications() == [] and flow.audit_records() == []


def test_a_non_compliant_event_starts_one_execution_that_fixes_it(flow: LocalWorkflow) -> None:
    api_id = seed(flow, UNTRUSTED)
    flow.discard_pending()
    answer, logs = deliver(flow, event(api_id))
    assert answer["status"] == "started"
    assert any(line["event"] == "needs_execution" and line["reason"] == "fix" for line in logs)
    result = flow.wait(answer["execution_name"])
    assert result.states == FIX_PATH and policy_of(flow, api_id) == FIXED
    assert len(executions(flow)) == 1


def test_exempt_needs_nothing(flow: LocalWorkflow) -> None:
    api_id = seed(flow, UNTRUSTED, tags={"remediator:exempt": "true"})
    flow.discard_pending()
    answer, logs = deliver(flow, event(api_id))
    assert answer == {"status": "not-started", "verdict": "exempt"} and executions(flow) == []
    assert evaluated(logs)["verdict"] == "exempt"


@pytest.mark.parametrize("mode, policy, kind", [("dry-run", UNTRUSTED, "proposal"), ("auto", WILDCARD, "findings")])
def test_findings_told_once_start_an_execution_only_when_what_is_told_changes(make_flow, mode: str, policy: dict[str, Any],
                                                                              kind: str) -> None:
    flow = make_flow(mode=mode)
    api_id = seed(flow, policy)
    flow.discard_pending()
    first, _ = deliver(flow, event(api_id))
    assert first["status"] == "started"
    flow.wait(first["execution_name"])
    (message,) = flow.notifications()
    assert message["kind"] == kind
    again, logs = deliver(flow, event(api_id))
    assert again == {"status": "not-started", "verdict": "fix" if kind == "proposal" else "report-only"}
    assert evaluated(logs)["told_already"] is True and len(executions(flow)) == 1 and flow.notifications() == []
    # What is told changes (one more untrusted account; the wildcard now under a condition): an execution starts.
    wider = json.loads(json.dumps(policy))
    if kind == "proposal":
        wider["Statement"].append({"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{STRANGER[:-1]}8:root"},
                                   "Action": "execute-api:Invoke", "Resource": "execute-api:/*"})
    else:
        wider["Statement"][0]["Condition"] = {"IpAddress": {"aws:SourceIp": "10.0.0.0/8"}}
    flow.clients.client("apigateway", REGION).update_rest_api(restApiId=api_id, patchOperations=[
        {"op": "replace", "path": "/policy", "value": json.dumps(wider)}])
    flow.discard_pending()
    changed, _ = deliver(flow, event(api_id))
    assert changed["status"] == "started"
    flow.wait(changed["execution_name"])
    assert [m["kind"] for m in flow.notifications()] == [kind]


def test_a_fix_in_approval_mode_starts_the_execution(make_flow) -> None:
    flow = make_flow(mode="approval", approvers=["U0APPROVER"])
    api_id = seed(flow, UNTRUSTED)
    flow.discard_pending()
    answer, _ = deliver(flow, event(api_id))
    assert answer["status"] == "started"
    flow.press(flow_approval(flow), "reject")
    result = flow.wait(answer["execution_name"])
    assert "AwaitApproval" in result.states and policy_of(flow, api_id) == UNTRUSTED


def flow_approval(flow: LocalWorkflow) -> str:
    for _ in range(200):
        try:
            return flow.pending_approval()
        except LookupError:
            time.sleep(0.02)
    raise AssertionError("no approval message was posted")


def test_a_resolved_api_that_people_were_told_about_starts_the_execution_that_forgets_it(flow: LocalWorkflow) -> None:
    api_id = seed(flow, WILDCARD)
    flow.discard_pending()
    first, _ = deliver(flow, event(api_id))
    flow.wait(first["execution_name"])
    place = REGION
    notices = NoticeLedger(flow.clients, "apigw-remediator-audit", REGION)
    assert notices.fingerprint(place, api_id) is not None
    flow.clients.client("apigateway", REGION).update_rest_api(restApiId=api_id, patchOperations=[
        {"op": "replace", "path": "/policy", "value": json.dumps(COMPLIANT)}])
    flow.discard_pending()
    answer, _ = deliver(flow, event(api_id))
    assert answer["status"] == "started"
    result = flow.wait(answer["execution_name"])
    assert result.output["evaluation"]["verdict"] == "compliant" and notices.fingerprint(place, api_id) is None
    # Now there is nothing to forget: the next event needs nothing.
    assert deliver(flow, event(api_id))[0] == {"status": "not-started", "verdict": "compliant"}


def test_a_deleted_api_starts_an_execution_only_if_people_were_told_about_it(flow: LocalWorkflow) -> None:
    quiet, told = seed(flow, COMPLIANT), seed(flow, WILDCARD)
    flow.discard_pending()
    first, _ = deliver(flow, event(told))
    flow.wait(first["execution_name"])
    flow.notifications()
    for api_id in (quiet, told):
        flow.clients.client("apigateway", REGION).delete_rest_api(restApiId=api_id)
    assert deliver(flow, event(quiet))[0] == {"status": "not-started", "verdict": "gone"}
    answer, _ = deliver(flow, event(told))
    assert answer["status"] == "started"
    assert flow.wait(answer["execution_name"]).output["evaluation"]["verdict"] == "gone"


def test_a_change_of_ours_left_open_starts_the_execution_that_settles_it(flow: LocalWorkflow) -> None:
    api_id = seed(flow, COMPLIANT)
    flow.discard_pending()
    journal = DynamoJournal(flow.clients, "apigw-remediator-audit", REGION)
    intent = Intent(intent_id=uuid.uuid4().hex, account=OWNER, region=REGION, api_id=api_id, api_name="api", action="remediate",
                    policy_before=json.dumps(UNTRUSTED), policy_after=json.dumps(COMPLIANT), patch_operations=[
                        {"op": "replace", "path": "/policy", "value": json.dumps(COMPLIANT)}], stages=[],
                    triggered_by="test", holder="execution:gone", expires_at=journal.now() - 1)
    journal.begin(intent)
    answer, logs = deliver(flow, event(api_id))
    assert answer["status"] == "started"
    assert any(line["event"] == "needs_execution" and "open" in line["reason"] for line in logs), logs
    assert flow.wait(answer["execution_name"]).output["evaluation"]["verdict"] == "recover"


def test_a_person_write_the_bot_may_have_written_over_starts_the_execution(flow: LocalWorkflow) -> None:
    api_id = seed(flow, COMPLIANT)
    flow.discard_pending()
    theirs = {"Version": "2012-10-17", "Statement": [{**COMPLIANT["Statement"][0], "Sid": "theirs"}]}
    answer, logs = deliver(flow, event(api_id, written=theirs))
    assert answer["status"] == "started"
    assert any(line["event"] == "needs_execution" and "write of ours" in line["reason"] for line in logs)
    flow.wait(answer["execution_name"])
    # The event wrote what is there: nothing was lost, nothing starts.
    assert deliver(flow, event(api_id, written=COMPLIANT))[0]["status"] == "not-started"


def test_what_the_trigger_cannot_decide_starts_the_execution(flow: LocalWorkflow) -> None:
    unreadable = seed_rest_api(flow.clients, REGION, "api", "{not a policy", None, ("prod",))
    flow.discard_pending()
    answer, logs = deliver(flow, event(unreadable))
    assert answer["status"] == "started" and any("cannot be read" in line.get("reason", "") for line in logs)
    assert flow.wait(answer["execution_name"]).output["evaluation"]["verdict"] == "report-only"
    # A read that fails (here: a notice item the bot never wrote, which is decoded strictly) starts the execution, as
    # every event did before; Evaluate, which does not read it for a compliant API, ends the execution.
    compliant = seed(flow, COMPLIANT)
    flow.discard_pending()
    flow.clients.client("dynamodb", REGION).put_item(TableName="apigw-remediator-audit", Item={
        "pk": {"S": f"notice#{REGION}"}, "sk": {"S": compliant}, "fingerprint": {"N": "1"}})
    answer, logs = deliver(flow, event(compliant))
    assert answer["status"] == "started"
    assert any(line["event"] == "undecided" for line in logs)
    assert flow.wait(answer["execution_name"]).output["evaluation"]["verdict"] == "compliant"


def corpus_events() -> list[tuple[str, dict[str, Any]]]:
    found = []
    for path in sorted((CORPUS / "events").glob("*.json")):
        data = json.loads(path.read_text())
        records = data.get("Records") or [json.loads(e["CloudTrailEvent"]) for e in data.get("Events", [])] or [data]
        found.extend((path.name, record) for record in records)
    return found


def test_the_trigger_refuses_nothing_it_accepted(flow: LocalWorkflow) -> None:
    """Every event of the corpus (and the local account's own shapes) is accepted, ignored or rejected by the
    trigger exactly as the event parser decides: deciding before starting changed none of the rules."""
    api_id = seed(flow, COMPLIANT)
    flow.discard_pending()
    cases = corpus_events() + [(f"local {n}", event(api_id, n)) for n in ("CreateRestApi", "UpdateRestApi", "PutRestApi", "ImportRestApi")]
    for name, made in cases:
        made = json.loads(json.dumps(made).replace("111122223333", OWNER))
        try:
            parsed = parse_event(made, owner_account=OWNER)
            expected = "ignored" if type(parsed).__name__ == "Ignored" else "accepted"
        except EventError:
            expected = "rejected"
        answer = flow.invoke_trigger(made)
        status = {"started": "accepted", "not-started": "accepted", "duplicate": "accepted"}.get(answer["status"], answer["status"])
        assert status == expected, (name, answer)


def test_an_organization_hub_decides_through_the_spoke_role_read_only(make_org) -> None:
    flow = make_org(mode="auto")
    first = members(flow)[0]
    flow.pump()
    member_seed(first, {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": {"AWS": first.account_id}, "Action": "execute-api:Invoke", "Resource": "execute-api:/*"}]})
    answers = flow.pump()
    assert [a["status"] for a in answers] == ["not-started"] and org_executions(flow) == []
    member_seed(first, {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": {"AWS": [first.account_id, STRANGER]}, "Action": "execute-api:Invoke",
         "Resource": "execute-api:/*"}]}, name="other")
    answers = flow.pump()
    assert [a["status"] for a in answers] == ["started"] and len(org_executions(flow)) == 1


def org_executions(flow: LocalWorkflow) -> list[dict[str, Any]]:
    return flow.clients.client("stepfunctions", ORG_REGION).list_executions(stateMachineArn=flow.state_machine_arn)["executions"]


def add_method(flow: LocalWorkflow, api_id: str, verb: str) -> None:
    """A person's edit not deployed yet: a method on the root (with a mock integration, so that it can be deployed)."""
    client = flow.clients.client("apigateway", REGION)
    root = client.get_resources(restApiId=api_id)["items"][0]["id"]
    client.put_method(restApiId=api_id, resourceId=root, httpMethod=verb, authorizationType="NONE")
    client.put_integration(restApiId=api_id, resourceId=root, httpMethod=verb, type="MOCK")
    flow.discard_pending()


def test_a_fix_blocked_by_undeployed_edits_is_told_once_and_again_when_they_change(flow: LocalWorkflow) -> None:
    """Blocked (undeployed_changes ask, in auto mode): a person must be told, once per set of edits in the way, as
    findings are; once the edits are deployed, the next event starts the execution that fixes."""
    api_id = seed(flow, UNTRUSTED)
    add_method(flow, api_id, "POST")
    first, logs = deliver(flow, event(api_id))
    assert first["status"] == "started" and any(line.get("reason") == "fix" for line in logs)
    assert flow.wait(first["execution_name"]).output["evaluation"]["verdict"] == "blocked"
    (message,) = flow.notifications()
    blocked_by = [(c["http_method"], c["kind"]) for c in message["blocked_by_undeployed_changes"]]
    assert message["kind"] == "findings" and blocked_by == [("POST", "method-added")] * 2  # on each stage
    assert policy_of(flow, api_id) == UNTRUSTED

    flow.account.server.counts.clear()
    again, logs = deliver(flow, event(api_id))  # nothing changed: told already, no execution
    assert again == {"status": "not-started", "verdict": "blocked"}
    assert evaluated(logs)["told_already"] is True and len(executions(flow)) == 1 and flow.notifications() == []
    requests = flow.account.server.aws_requests()
    assert requests[("apigateway", "GetStages")] == 1 and requests[("states", "StartExecution")] == 0
    findings = flow.clients.client("securityhub", REGION).get_findings()["Findings"]
    (finding,) = [f for f in findings if api_id in json.dumps(f["Resources"])]
    assert finding["Compliance"]["Status"] == "FAILED"

    add_method(flow, api_id, "PUT")  # another edit in the way: other news
    changed, _ = deliver(flow, event(api_id))
    assert changed["status"] == "started"
    assert flow.wait(changed["execution_name"]).output["evaluation"]["verdict"] == "blocked"
    (message,) = flow.notifications()
    assert sorted({c["http_method"] for c in message["blocked_by_undeployed_changes"]}) == ["POST", "PUT"]
    assert deliver(flow, event(api_id))[0] == {"status": "not-started", "verdict": "blocked"}

    client = flow.clients.client("apigateway", REGION)  # the person deploys their edits: nothing is in the way
    for stage in ("prod", "dev"):
        client.create_deployment(restApiId=api_id, stageName=stage)
    flow.discard_pending()
    fixed, _ = deliver(flow, event(api_id))
    assert fixed["status"] == "started"
    assert flow.wait(fixed["execution_name"]).states == FIX_PATH and policy_of(flow, api_id) == FIXED
