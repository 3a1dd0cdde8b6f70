"""Fuzzing, in `make test`: random and nearly valid input where someone else chooses it.

- The Slack callback, as its own function on the strict account: random headers and bodies, forged or
  replayed signatures. Never a change without a valid signature, an allowed user and a pending approval;
  never an uncaught exception (always an HTTP answer).
- `evaluate`, `scan` and `fix --apply` on random JSON and near-JSON: never a traceback, and a fix never
  grants a principal the policy did not.
"""

from __future__ import annotations

import base64
import io
import json
import time
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings, strategies as st

from remediator.cli import main
from remediator.core import PolicyError, parse_policy
from remediator.core.policy import aws_principals
from tests.conftest import OWNER, PARTNER, STRANGER

CALLBACK_EXAMPLES = 150
EVALUATE_EXAMPLES = 300
SWEEP_EXAMPLES = 25
def fuzz_settings(examples: int) -> settings:
    return settings(max_examples=examples, deadline=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])

# --- the callback ----------------------------------------------------------------------------------

HEADER_NAMES = st.sampled_from(["X-Slack-Signature", "X-Slack-Request-Timestamp", "x-slack-signature",
                                "x-slack-request-timestamp", "Content-Type"]) | st.text(max_size=20)
HEADER_VALUES = st.text(max_size=80) | st.sampled_from(["v0=" + "0" * 64, "v0=" + "é" * 64, str(int(time.time())), "-1", "9" * 40])


def _press_body(approval_id: str, action: str, user: str) -> str:
    from remediator.local.slack import button_press_body

    return button_press_body(approval_id, action, user)


@st.composite
def callback_events(draw: Any, approval_id: str, secret: str) -> dict[str, Any]:
    body = draw(st.one_of(
        st.text(max_size=300),
        st.sampled_from([_press_body(approval_id, "approve", "U0APPROVER"), _press_body(approval_id, "reject", "U0INTRUDER"),
                         _press_body("not-an-id", "approve", "U0APPROVER"), "payload=%7B%7D", "payload=" + "%" * 10]),
        st.binary(max_size=200).map(lambda b: base64.b64encode(b).decode()),
    ))
    headers = draw(st.dictionaries(HEADER_NAMES, HEADER_VALUES, max_size=5))
    from remediator.local.slack import signed_headers

    signing = draw(st.sampled_from(["none", "forged", "genuine"]))
    if signing == "forged":  # the wrong secret, or a signature over another body
        headers.update(signed_headers(draw(st.sampled_from([body, body + " ", "payload=x"])), "not-the-secret", None))
    elif signing == "genuine":  # signed by Slack, but no decision a person on the list made about this approval
        body = draw(st.sampled_from([_press_body(approval_id, "approve", "U0INTRUDER"), _press_body("b" * 32, "approve", "U0APPROVER"),
                                     _press_body(approval_id, "escalate", "U0APPROVER"), "payload=%7B%7D", "payload=[]"]))
        headers = signed_headers(body, secret, None)
        # Slack's own shape (a POST, not base64), so that the signature is checked and the decision refused (403).
        return {"headers": headers, "body": body, "isBase64Encoded": False, "requestContext": {"http": {"method": "POST"}}}
    return {"headers": headers, "body": body, "isBase64Encoded": draw(st.booleans()),
            "requestContext": {"http": {"method": draw(st.sampled_from(["POST", "POST", "GET", "PUT", ""]))}}}


def test_fuzz_the_callback_never_decides_without_a_valid_signature(make_flow) -> None:
    from remediator.adapters.dynamodb import ApprovalStore
    from remediator.local import runner
    from tests.test_approvals import REGION, start, wait_for_buttons

    flow = make_flow(mode="approval", approvers=["U0APPROVER"])
    api_id, execution = start(flow)
    approval_id = wait_for_buttons(flow)
    store = ApprovalStore(flow.clients, "apigw-remediator-audit", REGION)
    name = runner.FUNCTION_PREFIX + "slack_callback"
    answers: list[int] = []

    @fuzz_settings(CALLBACK_EXAMPLES)
    @given(callback_events(approval_id, flow.signing_secret))
    def fuzz(event: dict[str, Any]) -> None:
        answer = runner.run_function(name, event)  # an exception here would be a 502 at the Function URL
        assert isinstance(answer, dict) and answer["statusCode"] in (400, 401, 403, 404, 405, 409, 410), answer
        answers.append(answer["statusCode"])
        assert store.get(approval_id).status == "pending"

    fuzz()
    assert len(answers) >= CALLBACK_EXAMPLES // 2 and {400, 401, 403} <= set(answers), sorted(set(answers))
    assert flow.clients.client("stepfunctions", REGION).describe_execution(
        executionArn=flow.state_machine_arn.replace(":stateMachine:", ":execution:") + f":{execution}")["status"] == "RUNNING"
    assert flow.press(approval_id, "approve")[0] == 200, "the genuine click still works"
    assert flow.wait(execution).status == "SUCCEEDED"
    del api_id


# --- evaluate, scan and fix ------------------------------------------------------------------------

PRINCIPALS = st.sampled_from([OWNER, PARTNER, STRANGER, "*", f"arn:aws:iam::{STRANGER}:root", f"arn:aws:iam::{PARTNER}:role/r",
                              "AIDAEXAMPLEUNIQUEID1", "arn:aws:iam::*:root", "", "not-an-arn", f"arn:aws-cn:iam::{STRANGER}:root"])
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=10) | st.sampled_from(["1e999", "-0"]),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children, max_size=3), max_leaves=8)


@st.composite
def policies(draw: Any) -> str:
    statements = draw(st.lists(st.fixed_dictionaries(
        {"Effect": st.sampled_from(["Allow", "Deny", "allow", ""]),
         "Principal": st.one_of(st.just("*"), st.fixed_dictionaries({"AWS": st.one_of(PRINCIPALS, st.lists(PRINCIPALS, max_size=4))}),
                                st.fixed_dictionaries({"Service": st.just("lambda.amazonaws.com")}), JSON_VALUES),
         "Action": st.sampled_from(["execute-api:Invoke", "*", ["execute-api:Invoke"]]),
         "Resource": st.sampled_from(["execute-api:/*", "*"])},
        optional={"Condition": st.dictionaries(st.sampled_from(["StringEquals", "IpAddress", "StringNotEquals", "Bogus"]),
                                               st.dictionaries(st.sampled_from(["aws:SourceVpce", "aws:PrincipalOrgID",
                                                                                "aws:SourceIp", "aws:PrincipalAccount"]),
                                                               st.one_of(st.text(max_size=12), st.lists(st.text(max_size=12), max_size=2),
                                                                         st.integers()), max_size=2), max_size=2),
                  "Sid": st.text(max_size=6), "NotPrincipal": JSON_VALUES}), max_size=4))
    text = json.dumps({"Version": "2012-10-17", "Statement": statements})
    mutation = draw(st.sampled_from(["none", "none", "cut", "insert", "escape", "duplicate"]))
    if mutation == "cut":
        text = text[: draw(st.integers(0, len(text)))]
    elif mutation == "insert":
        at = draw(st.integers(0, len(text)))
        text = text[:at] + draw(st.sampled_from(['"', "{", "}", ",", "\\", "\ud800", "NaN", "1e999", "]"])) + text[at:]
    elif mutation == "escape":
        text = json.dumps(text)[1:-1].replace("/", "\\/")
    elif mutation == "duplicate":
        text = text.replace('"Effect": ', '"Effect": "Allow", "Effect": ', 1)
    return text


def _granted(text: str) -> set[str]:
    try:
        return set(aws_principals(parse_policy(text)))
    except (PolicyError, AttributeError, TypeError):
        return set()


def _never_grants_more(before: str, after: str) -> None:
    new = _granted(after) - _granted(before) - {OWNER, f"arn:aws:iam::{OWNER}:root"}
    assert not new, f"the fix granted {new}"


@fuzz_settings(EVALUATE_EXAMPLES)
@given(policies())
def test_fuzz_evaluate_never_crashes_and_never_grants_more(tmp_path_factory: Any, text: str) -> None:
    path = Path(tmp_path_factory.mktemp("fuzz")) / "p.json"
    path.write_text(text, encoding="utf-8", errors="surrogatepass")
    for fmt in ("json", "text"):
        out, err = io.StringIO(), io.StringIO()
        status = main(["evaluate", "--owner-account", OWNER, "--trusted-accounts", PARTNER, "--format", fmt, str(path)], out, err)
        assert status in (0, 1, 2)
        if status == 2:
            assert err.getvalue().count("\n") == 1 and err.getvalue().startswith("error: "), err.getvalue()
        elif fmt == "json":
            (result,) = [json.loads(line) for line in out.getvalue().splitlines()]
            for operation in result["patch_operations"]:
                _never_grants_more(text, operation["value"])


def test_fuzz_scan_and_fix_never_crash_and_never_grant_more(account, tmp_path: Path) -> None:
    from remediator.adapters.apigateway import ApiGatewayAdapter
    from remediator.local.emulator import seed_rest_api

    adapter = ApiGatewayAdapter(account.clients)
    seen: list[int] = []

    @fuzz_settings(SWEEP_EXAMPLES)
    @given(policies())
    def fuzz(text: str) -> None:
        region = "eu-west-1"
        for api in list(adapter.list_rest_apis(region)):
            account.clients.client("apigateway", region).delete_rest_api(restApiId=api.api_id)
        api_id = seed_rest_api(account.clients, region, "fuzzed", text.encode("utf-8", "surrogatepass").decode("utf-8", "replace"))
        before = adapter.get_rest_api(region, api_id).policy or ""
        common = ["--regions", region, "--trusted-accounts", PARTNER, "--endpoint-url", account.endpoint_url, "--format", "json"]
        for argv in (["scan", *common], ["fix", *common, "--apply", "--audit-log", str(tmp_path / "audit.jsonl")]):
            out, err = io.StringIO(), io.StringIO()
            status = main(argv, out, err)
            assert status in (0, 1, 2) and "Traceback" not in err.getvalue(), err.getvalue()
            assert len(out.getvalue().splitlines()) == 1, "the API is reported"
        after = adapter.get_rest_api(region, api_id).policy or ""
        if after != before:
            _never_grants_more(before, after)
        seen.append(status)

    fuzz()
    assert len(seen) >= SWEEP_EXAMPLES // 2
