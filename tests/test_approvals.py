"""Approval mode: the Slack message, the signed callback, and every way a press is refused.

Each press goes over HTTP to the real callback handler behind a local Function URL, signed
as Slack signs it; the Slack Web API is a stand-in on loopback that records the messages.
"""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

from remediator.adapters.apigateway import ApiGatewayAdapter
from remediator.adapters.dynamodb import ApprovalStore
from remediator.core import parse_policy
from remediator.local import cloudtrail
from remediator.local.emulator import seed_rest_api
from remediator.local.runner import LocalWorkflow
from remediator.local.slack import button_press_body
from tests.conftest import OWNER, PARTNER, STRANGER

REGION = "eu-west-1"
APPROVER = "U0APPROVER"


def allow(*principals: str) -> dict[str, Any]:
    return {"Effect": "Allow", "Principal": {"AWS": list(principals)}, "Action": "execute-api:Invoke", "Resource": "execute-api:/*"}


UNTRUSTED = {"Version": "2012-10-17", "Statement": [allow(OWNER, STRANGER, f"arn:aws:iam::{PARTNER}:role/r")]}
FIXED = {"Version": "2012-10-17", "Statement": [allow(OWNER, f"arn:aws:iam::{PARTNER}:role/r")]}


@pytest.fixture
def flow(make_flow) -> LocalWorkflow:
    return make_flow(mode="approval", approvers=[APPROVER, "U0SECOND"])


def start(flow: LocalWorkflow, policy: dict = UNTRUSTED, stages=("prod", "dev")) -> tuple[str, str]:
    api_id = seed_rest_api(flow.clients, REGION, "orders", json.dumps(policy), None, stages)
    started = flow.deliver(cloudtrail.api_call_event("UpdateRestApi", api_id, REGION, OWNER))
    assert started["status"] == "started"
    return api_id, started["execution_name"]


def wait_for_buttons(flow: LocalWorkflow, count: int = 1, timeout: float = 20.0) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        posted = [f for method, f in list(flow.slack.calls) if method == "chat.postMessage" and '"actions"' in json.dumps(f["blocks"])]
        if len(posted) >= count:
            return flow.pending_approval()
        time.sleep(0.05)
    raise AssertionError(f"no approval message after {timeout} s; Slack saw {flow.slack.calls}")


def status_of(flow: LocalWorkflow, execution: str) -> str:
    from remediator.adapters.stepfunctions import execution_arn

    arn = execution_arn(flow.state_machine_arn, execution)
    return flow.clients.client("stepfunctions", REGION).describe_execution(executionArn=arn)["status"]


def policy_of(flow: LocalWorkflow, api_id: str) -> dict:
    return parse_policy(ApiGatewayAdapter(flow.clients).get_rest_api(REGION, api_id).policy)


def message_of(flow: LocalWorkflow, approval_id: str) -> dict[str, Any]:
    for message in flow.slack.messages.values():
        if approval_id in json.dumps(message.get("first_version")):
            return message
    raise LookupError(approval_id)


def text_of(message: dict[str, Any]) -> str:
    return json.dumps(message["blocks"])


def test_the_message_shows_everything_and_the_token_stays_home(flow: LocalWorkflow) -> None:
    api_id, execution = start(flow)
    approval_id = wait_for_buttons(flow)
    (method, fields), = flow.slack.calls
    assert method == "chat.postMessage" and fields["channel"] == "#api-security"
    blocks = text_of(message_of(flow, approval_id))
    for expected in (OWNER, REGION, "orders", api_id, "user/alice", "untrusted-account", STRANGER, "Approve", "Reject",
                     f"- {STRANGER}", f"  {OWNER}", "replace", "/policy"):
        assert expected in blocks, expected
    stored = ApprovalStore(flow.clients, "apigw-remediator-audit", REGION).get(approval_id)
    assert stored.status == "pending" and stored.task_token not in json.dumps(flow.slack.calls)
    assert status_of(flow, execution) == "RUNNING" and policy_of(flow, api_id) == UNTRUSTED


def test_approve_applies_exactly_the_proposed_patch_and_redeploys(flow: LocalWorkflow) -> None:
    api_id, execution = start(flow)
    approval_id = wait_for_buttons(flow)
    proposed = ApprovalStore(flow.clients, "apigw-remediator-audit", REGION).get(approval_id).patch_operations
    status, body = flow.press(approval_id, "approve")
    assert status == 200 and "approved" in body
    result = flow.wait(execution)
    assert result.status == "SUCCEEDED"
    assert result.states == ["Evaluate", "IsActionNeeded", "ChooseMode", "AwaitApproval", "Apply", "WasPatched",
                             "Redeploy", "IsDeployed", "Record", "Notify", "Done"]
    assert result.output["applied"]["patch_operations"] == proposed and policy_of(flow, api_id) == FIXED
    assert result.output["approval"]["approver"] == APPROVER
    stages = {s.name: s.deployment_id for s in ApiGatewayAdapter(flow.clients).list_stages(REGION, api_id)}
    assert set(stages.values()) == {result.output["redeploy"]["deployment_id"]}
    updated = text_of(message_of(flow, approval_id))
    assert "Approved and applied" in updated and f"<@{APPROVER}>" in updated and "Redeployed stages" in updated
    assert '"actions"' not in updated, "the buttons are gone once decided"
    (record,) = flow.audit_records()
    assert record.api_id == api_id


def test_reject_changes_nothing(flow: LocalWorkflow) -> None:
    api_id, execution = start(flow)
    approval_id = wait_for_buttons(flow)
    assert flow.press(approval_id, "reject", "U0SECOND")[0] == 200
    result = flow.wait(execution)
    assert result.status == "SUCCEEDED" and result.states[-2:] == ["NotifyRejected", "Done"]
    assert policy_of(flow, api_id) == UNTRUSTED and flow.audit_records() == []
    assert "Rejected: nothing changed" in text_of(message_of(flow, approval_id))
    assert [m["kind"] for m in flow.notifications()] == ["rejected"]


def test_timeout_changes_nothing_and_says_so(make_flow) -> None:
    flow = make_flow(mode="approval", approvers=[APPROVER], approval_timeout_seconds=2)
    api_id, execution = start(flow)
    approval_id = wait_for_buttons(flow)
    result = flow.wait(execution)
    assert result.status == "SUCCEEDED" and result.states[-2:] == ["NotifyTimeout", "Done"]
    assert policy_of(flow, api_id) == UNTRUSTED and flow.audit_records() == []
    assert "timed out: nothing changed" in text_of(message_of(flow, approval_id))
    status, _ = flow.press(approval_id, "approve")
    assert status in (409, 410), "a late press changes nothing"
    assert policy_of(flow, api_id) == UNTRUSTED


def refused(flow: LocalWorkflow, approval_id: str, status: int, **press: Any) -> None:
    before = list(flow.slack.calls)
    code, reason = flow.press(approval_id, press.pop("action", "approve"), **press)
    assert code == status, reason
    assert flow.slack.calls == before, "a refused press does not touch Slack"


def still_waiting(flow: LocalWorkflow, api_id: str, execution: str, approval_id: str) -> None:
    time.sleep(0.3)
    assert status_of(flow, execution) == "RUNNING"
    assert policy_of(flow, api_id) == UNTRUSTED
    assert ApprovalStore(flow.clients, "apigw-remediator-audit", REGION).get(approval_id).status == "pending"


def test_forged_and_invalid_presses_are_refused(flow: LocalWorkflow) -> None:
    api_id, execution = start(flow)
    approval_id = wait_for_buttons(flow)
    refused(flow, approval_id, 401, secret="not-the-signing-secret")                       # bad signature
    refused(flow, approval_id, 401, timestamp=int(time.time()) - 6 * 60)                   # 6 minutes old
    refused(flow, approval_id, 401, timestamp=int(time.time()) + 6 * 60)                   # from the future
    refused(flow, approval_id, 403, user_id="U0INTRUDER")                                  # not an approver
    refused(flow, "A" * 24, 404)                                                           # unknown approval ID
    refused(flow, approval_id, 400, body="payload=%7Bnot+json")                            # malformed payload
    refused(flow, approval_id, 400, body=button_press_body(approval_id, "approve_all", APPROVER))
    refused(flow, "../../etc/passwd", 400)                                                 # malformed ID
    still_waiting(flow, api_id, execution, approval_id)

    # A body that was signed for a different press cannot be replayed with another action.
    from remediator.local.slack import post, signed_headers

    signed_for_reject = signed_headers(button_press_body(approval_id, "reject", APPROVER), flow.signing_secret)
    code, _ = post(flow.callback.url, button_press_body(approval_id, "approve", APPROVER), signed_for_reject)
    assert code == 401
    still_waiting(flow, api_id, execution, approval_id)

    assert flow.press(approval_id, "approve")[0] == 200
    assert flow.wait(execution).status == "SUCCEEDED"
    refused(flow, approval_id, 409)                                                        # replay of a used approval
    refused(flow, approval_id, 409, action="reject")


def test_expired_approval_is_refused(flow: LocalWorkflow) -> None:
    api_id, execution = start(flow)
    approval_id = wait_for_buttons(flow)
    store = ApprovalStore(flow.clients, "apigw-remediator-audit", REGION)
    flow.clients.client("dynamodb", REGION).update_item(
        TableName=store.table_name, Key={"pk": {"S": f"approval#{approval_id}"}, "sk": {"S": "approval"}},
        UpdateExpression="SET expires_at = :past", ExpressionAttributeValues={":past": {"N": str(int(time.time()) - 1)}})
    record = store.get(approval_id)
    record.expires_at = int(time.time()) - 1
    store.save(record)
    refused(flow, approval_id, 410)
    assert status_of(flow, execution) == "RUNNING" and policy_of(flow, api_id) == UNTRUSTED


def test_policy_changed_after_the_proposal_is_proposed_again(flow: LocalWorkflow) -> None:
    api_id, execution = start(flow)
    first = wait_for_buttons(flow)
    newer = {"Version": "2012-10-17", "Statement": [allow(OWNER, "123456789012", STRANGER)]}
    ApiGatewayAdapter(flow.clients).update_policy(REGION, api_id, [{"op": "replace", "path": "/policy", "value": json.dumps(newer)}])
    assert flow.press(first, "approve")[0] == 200
    second = wait_for_buttons(flow, count=2)
    assert second != first
    assert "Superseded" in text_of(message_of(flow, first))
    assert policy_of(flow, api_id) == newer, "the approved plan was stale: nothing was written"
    assert "123456789012" in text_of(message_of(flow, second))
    assert flow.press(second, "approve")[0] == 200
    result = flow.wait(execution)
    assert result.status == "SUCCEEDED"
    assert policy_of(flow, api_id) == {"Version": "2012-10-17", "Statement": [allow(OWNER)]}
    assert result.states.count("AwaitApproval") == 2 and result.states.count("Evaluate") == 2


def test_policy_fixed_by_someone_else_before_approval_ends_compliant(flow: LocalWorkflow) -> None:
    api_id, execution = start(flow)
    approval_id = wait_for_buttons(flow)
    ApiGatewayAdapter(flow.clients).update_policy(REGION, api_id, [{"op": "replace", "path": "/policy", "value": json.dumps(FIXED)}])
    assert flow.press(approval_id, "approve")[0] == 200
    result = flow.wait(execution)
    assert result.status == "SUCCEEDED" and result.states[-3:] == ["Evaluate", "IsActionNeeded", "Done"]
    assert flow.audit_records() == []


def test_slack_unreachable_fails_with_a_notification_and_applies_nothing(flow: LocalWorkflow) -> None:
    flow.slack.stop()
    api_id, execution = start(flow)
    result = flow.wait(execution)
    assert result.status == "FAILED" and result.states[-3:] == ["AwaitApproval", "NotifyFailure", "Failed"]
    assert policy_of(flow, api_id) == UNTRUSTED and flow.audit_records() == []
    (message,) = flow.notifications()
    assert message["kind"] == "failure" and "Slack unreachable" in json.dumps(message["error"])


def test_auto_mode_posts_the_result_without_buttons(make_flow) -> None:
    flow = make_flow(mode="auto")
    api_id, execution = start(flow)
    assert flow.wait(execution).status == "SUCCEEDED"
    (posted,) = flow.slack.messages.values()
    assert posted["text"].startswith(":white_check_mark: Fixed") and '"actions"' not in json.dumps(posted["blocks"])


def test_requests_that_are_not_even_text_are_refused_cleanly(flow: LocalWorkflow) -> None:
    """The callback is a public URL: whatever arrives gets an error status, never an exception."""
    import base64

    from remediator.functions import slack_callback
    from remediator.local.slack import signed_headers

    api_id, execution = start(flow)
    approval_id = wait_for_buttons(flow)
    signed = signed_headers(button_press_body(approval_id, "approve", APPROVER), flow.signing_secret)

    def answer(body: str, encoded: bool = True, **headers: str) -> int:
        event = {"headers": {**signed, **headers}, "body": body, "isBase64Encoded": encoded,
                 "requestContext": {"http": {"method": "POST"}}}
        return slack_callback.handler(event)["statusCode"]

    assert answer(base64.b64encode(b"payload=\xff\xfe").decode()) == 400                      # not UTF-8
    assert answer("not*base64!") == 400                                                     # not base64
    assert answer(button_press_body(approval_id, "approve", APPROVER), False,
                  **{"X-Slack-Request-Timestamp": "\u00b2"}) == 401                         # a digit, but not ASCII
    assert answer(button_press_body(approval_id, "approve", APPROVER), False,
                  **{"X-Slack-Request-Timestamp": "9" * 5000}) == 401                       # a number int() refuses
    listed_user = button_press_body(approval_id, "approve", APPROVER).replace(
        f'%22id%22%3A+%22{APPROVER}%22', f'%22id%22%3A+%5B%22{APPROVER}%22%5D')
    assert listed_user != button_press_body(approval_id, "approve", APPROVER)
    refused(flow, approval_id, 403, body=listed_user)                                       # user ID that is a list
    still_waiting(flow, api_id, execution, approval_id)


def test_a_decision_the_workflow_did_not_hear_can_be_made_again(flow: LocalWorkflow, monkeypatch) -> None:
    from botocore.exceptions import ClientError

    from remediator.functions import slack_callback

    api_id, execution = start(flow)
    approval_id = wait_for_buttons(flow)
    real_answer = slack_callback.answer_task

    def unavailable(*args: Any, **kwargs: Any) -> None:  # refused by Step Functions (4xx): not delivered
        raise ClientError({"Error": {"Code": "ThrottlingException", "Message": "try later"},
                           "ResponseMetadata": {"HTTPStatusCode": 400}}, "SendTaskSuccess")

    monkeypatch.setattr(slack_callback, "answer_task", unavailable)
    status, reason = flow.press(approval_id, "approve")
    assert status == 503 and "try again" in reason
    still_waiting(flow, api_id, execution, approval_id)
    monkeypatch.setattr(slack_callback, "answer_task", real_answer)
    assert flow.press(approval_id, "approve")[0] == 200, "the second click is not refused as a replay"
    assert flow.wait(execution).status == "SUCCEEDED" and policy_of(flow, api_id) == FIXED


@pytest.mark.parametrize("lost", ["timeout", "server error"])
def test_a_decision_whose_answer_was_lost_is_never_reopened_for_another(flow: LocalWorkflow, monkeypatch, lost: str) -> None:
    """SendTaskSuccess went through but its answer was lost: the callback asks again with the same token (the
    task is gone: it was delivered), keeps the decision, and a second approver's Reject is refused."""
    from botocore.exceptions import ClientError, ReadTimeoutError

    from remediator.functions import slack_callback

    api_id, execution = start(flow)
    approval_id = wait_for_buttons(flow)
    real_answer, calls = slack_callback.answer_task, []

    def delivered_then_lost(*args: Any, **kwargs: Any) -> None:
        calls.append(args)
        real_answer(*args, **kwargs)
        if len(calls) == 1:
            if lost == "timeout":
                raise ReadTimeoutError(endpoint_url="https://states.eu-west-1.amazonaws.com")
            raise ClientError({"Error": {"Code": "InternalFailure", "Message": "oops"},
                               "ResponseMetadata": {"HTTPStatusCode": 500}}, "SendTaskSuccess")

    monkeypatch.setattr(slack_callback, "answer_task", delivered_then_lost)
    status, reason = flow.press(approval_id, "approve")
    assert status == 200 and len(calls) == 2, reason
    assert flow.press(approval_id, "reject", user_id="U0APPROVER")[0] == 409, "decided once, by the delivered decision"
    assert flow.wait(execution).status == "SUCCEEDED" and policy_of(flow, api_id) == FIXED
    assert ApprovalStore(flow.clients, "apigw-remediator-audit", REGION).get(approval_id).decision == "approved"


def test_a_click_before_the_message_is_placed_keeps_its_decision(flow: LocalWorkflow) -> None:
    """approval() stores where the message went after posting it; a fast click must not be undone by that."""
    from remediator.approvals import ApprovalRequest, new_approval_id

    store = ApprovalStore(flow.clients, "apigw-remediator-audit", REGION)
    request = ApprovalRequest(approval_id=new_approval_id(), execution="fast-click", task_token="token", account=OWNER,
                              region=REGION, api_id="a1b2c3d4e5", api_name="orders", changed_by="alice", findings=[],
                              patch_operations=[], policy_before="", expires_at=int(time.time()) + 60)
    store.put(request)
    store.decide(request.approval_id, "approved", APPROVER, int(time.time()))
    store.place(request.approval_id, "C0CHANNEL", "1700000000.000100")
    stored = store.get(request.approval_id)
    assert (stored.status, stored.decided_by) == ("approved", APPROVER)
    assert (stored.channel, stored.ts) == ("C0CHANNEL", "1700000000.000100")
