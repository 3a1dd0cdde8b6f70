"""Deployable and honest in a fresh account (issue "M: behave in AWS as the emulator says", part 7).

No reserved concurrency unless asked for (a new account's concurrency quota cannot spare any); the Slack callback
answers first and updates the message from an asynchronous invocation of its own; list settings that can grow live
in an SSM parameter, never in Lambda's 4 KB environment; `make demo` and the CLI exit non-zero when something failed.
"""

from __future__ import annotations

import json
import os
from typing import Any

import pytest

from infra import ConfigError, build_app
from infra.config import ENVIRONMENT_LIMIT, MAX_APPROVERS, from_context
from remediator.adapters.ssm import TrustListError, parse_settings_document
from remediator.functions import common
from remediator.functions import slack_callback
from remediator.local import runner
from remediator.local.runner import LocalWorkflow
from remediator.transaction.outcomes import FixOutcome
from tests.test_approvals import APPROVER, message_of, start, text_of, wait_for_buttons

os.environ.setdefault("JSII_SILENCE_WARNING_UNTESTED_NODE_VERSION", "1")


def exempt_ids(count: int) -> list[str]:
    return [f"{index:010d}" for index in range(count)]


def environments(context: dict[str, Any]) -> dict[str, dict[str, Any]]:
    from aws_cdk import assertions

    _, stack = build_app(context, nag=False)
    resources = assertions.Template.from_stack(stack).to_json()["Resources"]
    return {f["Properties"]["Handler"]: f["Properties"]["Environment"]["Variables"]
            for f in resources.values() if f["Type"] == "AWS::Lambda::Function"}


def test_every_environment_stays_under_4_kb_with_the_largest_lists() -> None:
    """Lambda: "the total size of all environment variables doesn't exceed 4 KB" (Lambda quotas). The exempt IDs
    (600, the most an 8 KB parameter holds) are in the settings parameter; the lists left are bounded at synth."""
    context = {"remediator:mode": "approval", "remediator:slackChannel": "C0123ABCDE",
               "remediator:approverUserIds": [f"U{index:010d}" for index in range(MAX_APPROVERS)],
               "remediator:exemptApiIds": exempt_ids(600),
               "remediator:redeployStages": ",".join(f"stage-{index:03d}" for index in range(100))}
    found = environments(context)
    assert "remediator.functions.slack_callback.handler" in found
    for handler, env in found.items():
        # Tokens (Ref, GetAtt) resolve to names and ARNs: count each as 256 characters, more than any of them takes.
        size = sum(len(k) + (len(v) if isinstance(v, str) else 256) for k, v in env.items())
        assert size < ENVIRONMENT_LIMIT, (handler, size)
        assert "EXEMPT_API_IDS" not in env and "SETTINGS_PARAMETER_NAME" in env


@pytest.mark.parametrize("key, value, message", [
    ("remediator:exemptApiIds", exempt_ids(1000), r"remediator:exemptApiIds: 1000 IDs exceed the 8 KB .* remediator:exemptTagKey"),
    ("remediator:approverUserIds", [f"U{index:010d}" for index in range(MAX_APPROVERS + 1)], r"remediator:approverUserIds holds 51"),
    ("remediator:redeployStages", ",".join(f"stage-{index:04d}" for index in range(120)), r"remediator:redeployStages is \d+ characters"),
])
def test_a_list_too_long_for_its_place_is_one_line_naming_the_key(key: str, value: Any, message: str) -> None:
    context = {"remediator:mode": "approval", "remediator:slackChannel": "C0123ABCDE", "remediator:approverUserIds": ["U0APPROVER"],
               key: value}
    with pytest.raises(ConfigError, match=message) as raised:
        from_context(context.get)
    assert "\n" not in str(raised.value)


def test_reserved_concurrency_is_off_unless_set() -> None:
    assert from_context({}.get).callback_reserved_concurrency is None
    for unset in (None, "", "none"):
        assert from_context({"remediator:callbackReservedConcurrency": unset}.get).callback_reserved_concurrency is None
    assert from_context({"remediator:callbackReservedConcurrency": "5"}.get).callback_reserved_concurrency == 5
    with pytest.raises(ConfigError, match=r"^context remediator:callbackReservedConcurrency must be between 1 and 100"):
        from_context({"remediator:callbackReservedConcurrency": 0}.get)


# ---- the settings parameter, read fail-closed ------------------------------------------------------------------

@pytest.mark.parametrize("value", [
    "not json", "[]", '{"exempt_api_ids": "a1b2c3d4e5"}', '{"exempt_api_ids": ["A1B2C3D4E5"]}',
    '{"exempt_api_ids": [], "exempt_ids": []}', '{"exemptApiIds": []}', '{"exempt_api_ids": [1234567890]}',
])
def test_a_settings_parameter_that_is_not_exactly_the_stacks_is_refused(value: str) -> None:
    with pytest.raises(TrustListError, match="parameter /s/settings"):
        parse_settings_document(value, "/s/settings")


class _Ssm:
    def __init__(self, value: str) -> None:
        self.value, self.reads = value, 0

    def get_parameter(self, Name: str) -> dict[str, Any]:  # noqa: N803 - boto3's spelling
        self.reads += 1
        return {"Parameter": {"Name": Name, "Value": self.value}}


class _Clients:
    endpoint_url = "fake://settings"

    def __init__(self, ssm: _Ssm) -> None:
        self.ssm = ssm

    def client(self, service: str, region: str | None = None) -> Any:
        assert service == "ssm"
        return self.ssm


def test_the_judging_states_take_the_exempt_ids_from_the_parameter(monkeypatch: pytest.MonkeyPatch) -> None:
    from remediator.adapters import ssm as ssm_adapter

    ssm_adapter.forget_cached()
    fake = _Ssm(json.dumps({"exempt_api_ids": ["a1b2c3d4e5"]}))
    monkeypatch.setattr(common, "clients", lambda: _Clients(fake))
    settings = common.Settings(mode="auto", trust_parameter="", exempt_tag_key="remediator:exempt", exempt_api_ids=frozenset(),
                               stages="all", remove_wildcards=False, audit_table="t", topic_arn="", state_machine_arn="",
                               settings_parameter="/s/settings")
    assert settings.sweep_settings("111122223333", "eu-west-1").exempt_api_ids == {"a1b2c3d4e5"}
    assert settings.sweep_settings("111122223333", "eu-west-1", read_trust_lists=False).exempt_api_ids == frozenset()
    fake.value = '{"exempt_api_ids": ["bad"]}'
    with pytest.raises(TrustListError):  # read fresh by the state that writes: a broken parameter stops it
        settings.sweep_settings("111122223333", "eu-west-1", fresh=True)
    ssm_adapter.forget_cached()


def test_only_the_judging_states_may_read_the_settings_parameter() -> None:
    import remediator.functions as function_modules

    for mode in ("auto", "dry-run", "approval"):
        readers = {name for name in function_modules.NAMES
                   if (found := function_modules.needs(name, mode, True)) is not None and found.read_settings}
        # The trigger judges too: it decides before it starts an execution (tests/test_trigger_decides.py).
        assert readers == ({"trigger", "evaluate", "sweep"} | (set() if mode == "dry-run" else {"apply"})), mode


# ---- the Slack callback answers first --------------------------------------------------------------------------

@pytest.fixture
def flow(make_flow) -> LocalWorkflow:
    return make_flow(mode="approval", approvers=[APPROVER])


def test_the_callback_answers_before_it_updates_the_message(flow: LocalWorkflow, monkeypatch: pytest.MonkeyPatch) -> None:
    """Slack: respond with HTTP 200 within 3 seconds ("Handling user interaction in your Slack apps"). The URL
    invocation decides and answers; the message is updated by the asynchronous invocation it queues."""
    queued: list[str] = []
    monkeypatch.setattr(slack_callback, "request_update", lambda context, approval_id: queued.append(approval_id))
    _, execution = start(flow)
    approval_id = wait_for_buttons(flow)
    before = len([c for c in flow.slack.calls if c[0] == "chat.update"])
    status, body = flow.press(approval_id, "approve")
    assert (status, body) == (200, f"approved by <@{APPROVER}>")
    assert queued == [approval_id]
    assert len([c for c in flow.slack.calls if c[0] == "chat.update"]) == before, "nothing updated before the answer"
    monkeypatch.undo()
    answer = runner.run_function(runner.FUNCTION_PREFIX + "slack_callback", {slack_callback.UPDATE_KEY: approval_id})
    assert answer["updated"] is True and answer["status"] in ("approved", "applied")
    assert '"actions"' not in text_of(message_of(flow, approval_id))
    assert flow.wait(execution).status == "SUCCEEDED"


def test_the_update_is_an_asynchronous_invocation_of_itself_as_its_role(flow: LocalWorkflow) -> None:
    _, execution = start(flow)
    approval_id = wait_for_buttons(flow)
    assert flow.press(approval_id, "approve")[0] == 200
    invokes = [c for c in flow.strict.checked if c.action == "lambda:InvokeFunction" and c.principal == "slack_callback"]
    assert invokes and all(c.allowed for c in invokes)
    assert all(c.resource.endswith(f":function:{runner.FUNCTION_PREFIX}slack_callback") for c in invokes)
    updated = text_of(message_of(flow, approval_id))
    assert f"<@{APPROVER}>" in updated and '"actions"' not in updated
    assert flow.wait(execution).status == "SUCCEEDED"


def test_an_update_event_names_only_an_approval_and_shows_what_the_table_says(flow: LocalWorkflow) -> None:
    run = lambda event: runner.run_function(runner.FUNCTION_PREFIX + "slack_callback", event)  # noqa: E731
    _, execution = start(flow)
    approval_id = wait_for_buttons(flow)
    assert run({slack_callback.UPDATE_KEY: "../../etc"}) == {"updated": False}
    assert run({slack_callback.UPDATE_KEY: approval_id}) == {"updated": False}, "a pending approval keeps its buttons"
    assert '"actions"' in text_of(message_of(flow, approval_id))
    # A request through the URL always has requestContext: with the key, it is still a request, and unsigned.
    forged = run({slack_callback.UPDATE_KEY: approval_id, "requestContext": {"http": {"method": "POST"}}, "headers": {}, "body": "x"})
    assert forged["statusCode"] == 401 or forged["statusCode"] == 400, forged
    assert '"actions"' in text_of(message_of(flow, approval_id))
    assert flow.press(approval_id, "reject")[0] == 200
    assert flow.wait(execution).status == "SUCCEEDED"


# ---- honest exit codes ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("action, status", [
    ("failed", 2), ("refused", 2), ("stale", 2), ("proposed", 1), ("report-only", 1), ("applied", 0), ("unchanged", 0),
    ("exempt", 0), ("skipped", 0),
])
def test_a_fix_that_failed_is_never_exit_status_0(action: str, status: int) -> None:
    from remediator.cli import fix

    assert fix._fix_status(FixOutcome(None, action)) == status  # type: ignore[arg-type]


def test_the_demo_exits_non_zero_naming_what_failed(capsys, monkeypatch: pytest.MonkeyPatch) -> None:
    from remediator import demo
    from remediator.functions import record

    def broken(event: dict[str, Any], context: Any = None) -> Any:
        raise RuntimeError("injected: Record is down")

    monkeypatch.setattr(record, "handler", broken)
    saved = dict(os.environ)
    try:
        assert demo.main(["--modes", "auto", "--no-organization"]) == 1
    finally:
        os.environ.clear()
        os.environ.update(saved)
    out = " ".join(capsys.readouterr().out.split())
    assert "error:" in out and "did not succeed" in out and "auto orders-auto: FAILED" in out
