"""Input someone else controls: malformed command lines, audit records, trust settings, events and
signature headers each get one clear line and change nothing."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from remediator.adapters.ssm import TrustListError, parse_trust_lists
from remediator.approvals import ApprovalRequest, CallbackRejected, verify_request
from remediator.cli import main
from remediator.events import Ignored, parse_event
from remediator.local.cloudtrail import api_call_event
from tests.conftest import OWNER

RECORD = {"account": OWNER, "region": "eu-west-1", "api_id": "abcdefghij", "api_name": "x", "action": "remediate",
          "policy_before": "{}", "policy_after": "{}", "patch_operations": [], "stages_redeployed": ["prod"],
          "deployment_id": None, "triggered_by": "t"}


def _log(tmp_path: Path, name: str, *records: dict) -> str:
    path = tmp_path / name
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return str(path)


SWEEP = ["--regions", "eu-west-1", "--endpoint-url", "http://127.0.0.1:9"]  # nothing listens: never reached

MALFORMED = [
    (["frobnicate"], "invalid choice"),
    (["scan", "--endpoint-url", "http://127.0.0.1:9"], "nothing answers at http://127.0.0.1:9"),
    (["scan", "--regions", ""], "names no region"),
    (["scan", "--regions", ",,"], "names no region"),
    (["scan", "--regions", "Mars-1"], "not a region"),
    (["scan", "--regions", "us-east-1,not a region"], "not a region"),
    (["scan", *SWEEP, "--trusted-accounts", "12345"], "not a 12-digit account ID"),
    (["scan", *SWEEP, "--trusted-accounts", "١١١١٢٢٢٢٣٣٣٣"], "not a 12-digit account ID"),
    (["scan", *SWEEP, "--trusted-org-ids", "org-1"], "not an organization ID"),
    (["scan", *SWEEP, "--owner-account", "owner"], "not a 12-digit account ID"),
    (["scan", *SWEEP, "--partition", "mars"], "invalid choice"),
    (["scan", *SWEEP, "--format", "xml"], "invalid choice"),
    (["scan", *SWEEP, "--exempt-api-ids", "not-an-id!"], "not a REST API ID"),
    (["scan", *SWEEP, "--exempt-tag-key", ""], "not a tag key"),
    (["scan", "--regions", "us-east-1", "--endpoint-url", "not a url"], "not a http:// or https:// URL"),
    (["fix", *SWEEP, "--stages", ""], "stages must be"),
    (["fix", *SWEEP, "--stages", ",,"], "stages must be"),
    (["fix", *SWEEP, "--apply", "--lease-table", ""], "not a DynamoDB table name"),
    (["fix", *SWEEP, "--apply", "--audit-log", "{tmp}"], "Is a directory"),
    (["fix", *SWEEP, "--apply", "--audit-log", "{tmp}/missing/deeper/x.jsonl"], None),
    (["evaluate"], "FILE"),
    (["evaluate", "policy.json"], "--owner-account"),
    (["evaluate", "--owner-account", "abc", "policy.json"], "not a 12-digit account ID"),
    (["rollback", "--api-id", "abcdefghij"], "--audit-log"),
    (["rollback", "--audit-log", "x.jsonl"], "--api-id"),
    (["rollback", "--audit-log", "x.jsonl", "--api-id", "ABC"], "not a REST API ID"),
    (["rollback", "--audit-log", "x.jsonl", "--api-id", "abcdefghij", "--region", "moon"], "not a region"),
    (["rollback", "--audit-log", "{tmp}", "--api-id", "abcdefghij"], "Is a directory"),
    (["rollback", "--audit-log", "{tmp}/nulls.jsonl", "--api-id", "abcdefghij"], "stages_redeployed: Expected `array`, got `null`"),
    (["rollback", "--audit-log", "{tmp}/strings.jsonl", "--api-id", "abcdefghij"], "patch_operations: Expected `array`, got `str`"),
    (["rollback", "--audit-log", "{tmp}/list.jsonl", "--api-id", "abcdefghij"], "a record is an object"),
    (["rollback", "--audit-log", "{tmp}/nothing.jsonl", "--api-id", "abcdefghij"], "no remediation of abcdefghij"),
]


@pytest.mark.parametrize("argv, message", MALFORMED, ids=lambda v: " ".join(v) if isinstance(v, list) else str(v))
def test_a_malformed_invocation_gets_one_line_and_exit_2(tmp_path: Path, argv: list[str], message: str | None) -> None:
    _log(tmp_path, "nulls.jsonl", {**RECORD, "stages_redeployed": None})
    _log(tmp_path, "strings.jsonl", {**RECORD, "patch_operations": "replace everything"})
    (tmp_path / "list.jsonl").write_text("[1, 2]\n")
    (tmp_path / "missing").write_text("a file where a folder should be")
    argv = [a.replace("{tmp}", str(tmp_path)) for a in argv]
    out, err = io.StringIO(), io.StringIO()
    assert main(argv, out, err) == 2
    assert out.getvalue() == ""
    lines = err.getvalue().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), lines
    if message:
        assert message in lines[0], lines[0]
    assert {p.name for p in tmp_path.iterdir()} <= {"nulls.jsonl", "strings.jsonl", "list.jsonl", "missing"}, "nothing written"


def test_enough_malformed_invocations() -> None:
    assert len(MALFORMED) >= 20 and len({a[0] if a else "" for a, _ in MALFORMED}) >= 5


GOOD = {"trusted_accounts": ["444455556666"], "trusted_org_ids": ["o-a1b2c3d4e5"]}


@pytest.mark.parametrize("value, message", [
    ("", "not JSON"),
    ("[]", "not a JSON object"),
    (json.dumps({"trusted_account_ids": ["444455556666"], "trusted_org_ids": []}), "unknown key(s) 'trusted_account_ids'"),
    (json.dumps({"trustedAccounts": ["444455556666"]}), "unknown key(s) 'trustedAccounts'"),
    (json.dumps({"trusted_accounts": ["444455556666"]}), "missing key(s) 'trusted_org_ids'"),
    (json.dumps({**GOOD, "comment": "x"}), "unknown key(s) 'comment'"),
    (json.dumps({**GOOD, "trusted_accounts": "444455556666"}), "must be a list"),
    (json.dumps({**GOOD, "trusted_accounts": [444455556666]}), "not 12-digit account IDs"),
    (json.dumps({**GOOD, "trusted_accounts": ["4444-5555-6666"]}), "not 12-digit account IDs"),
    (json.dumps({**GOOD, "trusted_accounts": ["١١١١٢٢٢٢٣٣٣٣"]}), "not 12-digit account IDs"),
    (json.dumps({**GOOD, "trusted_org_ids": ["r-abcd"]}), "not organization IDs"),
    (json.dumps({**GOOD, "trusted_org_ids": None}), "must be a list"),
])
def test_the_trust_parameter_fails_closed(value: str, message: str) -> None:
    with pytest.raises(TrustListError, match=None) as raised:
        parse_trust_lists(value, "/remediator/trust")
    assert message in str(raised.value) and "\n" not in str(raised.value)


def test_the_trust_parameter_as_the_stack_writes_it() -> None:
    assert parse_trust_lists(json.dumps(GOOD), "p") == (frozenset({"444455556666"}), frozenset({"o-a1b2c3d4e5"}))
    assert parse_trust_lists(json.dumps({"trusted_accounts": [], "trusted_org_ids": []}), "p") == (frozenset(), frozenset())


def test_a_misspelt_trust_parameter_fails_the_execution_and_changes_nothing(make_flow) -> None:
    from remediator.core import parse_policy
    from tests.test_workflow import UNTRUSTED, policy_of, run, seed

    flow = make_flow(mode="auto")
    name = next(iter(flow.clients.client("ssm", "eu-west-1").describe_parameters()["Parameters"]))["Name"]
    flow.clients.client("ssm", "eu-west-1").put_parameter(
        Name=name, Value=json.dumps({"trusted_account_ids": ["444455556666"], "trusted_org_ids": []}), Overwrite=True)
    api_id = seed(flow, UNTRUSTED)
    _, result = run(flow, api_id)
    assert result.status == "FAILED" and policy_of(flow, api_id) == parse_policy(json.dumps(UNTRUSTED))
    (notice,) = [n for n in flow.notifications() if n["kind"] == "failure"]
    assert "trusted_account_ids" in json.dumps(notice["error"]), notice
    assert flow.audit_records() == []


def test_http_api_create_is_ignored_like_every_v2_call() -> None:
    """A real CreateApi record has no apiId in its request, only in its answer."""
    event = api_call_event("UpdateRestApi", "abcde12345", "eu-west-1", OWNER)
    event["detail"]["eventName"] = "CreateApi"
    event["detail"]["requestParameters"] = {"name": "orders", "protocolType": "HTTP"}
    event["detail"]["responseElements"] = {"apiId": "abcde12345", "apiEndpoint": "https://abcde12345.execute-api.eu-west-1.amazonaws.com",
                                           "protocolType": "HTTP", "name": "orders"}
    assert isinstance(parse_event(event), Ignored)
    for name in ("UpdateApi", "ImportApi", "ReimportApi", "DeleteApi", "CreateRoute"):
        event["detail"]["eventName"] = name
        event["detail"]["requestParameters"], event["detail"]["responseElements"] = {}, {}
        assert isinstance(parse_event(event), Ignored), name


@pytest.mark.parametrize("signature", ["v0=é" + "0" * 63, "v0=" + "\u0663" * 64, "é", "sha256=" + "0" * 64, "v0=" + "0" * 500])
def test_a_non_ascii_or_malformed_signature_is_401(signature: str) -> None:
    with pytest.raises(CallbackRejected) as rejected:
        verify_request({"X-Slack-Signature": signature, "X-Slack-Request-Timestamp": "1700000000"}, "payload=x", "secret", 1700000000)
    assert rejected.value.status == 401


def _request(api_name: str, strangers: int, sid: str = "s") -> ApprovalRequest:
    from remediator.approvals import new_approval_id
    from remediator.core import TrustConfig, evaluate_policy

    principals = [OWNER] + [f"{100000000000 + i}" for i in range(strangers)]
    policy = json.dumps({"Version": "2012-10-17", "Statement": [
        {"Sid": sid, "Effect": "Allow", "Principal": {"AWS": principals}, "Action": "execute-api:Invoke", "Resource": "*"}]})
    evaluation = evaluate_policy(policy, TrustConfig(owner_account=OWNER))
    return ApprovalRequest(
        approval_id=new_approval_id(), execution="exec", task_token="t", account=OWNER, region="eu-west-1", api_id="abcdefghij",
        api_name=api_name, changed_by="arn:aws:iam::111122223333:user/<!here>", findings=[f.to_dict() for f in evaluation.findings],
        patch_operations=evaluation.patch_operations, policy_before=policy, expires_at=0)


@pytest.mark.parametrize("strangers", [1, 200, 2000])
def test_slack_messages_stay_within_block_kits_limits(strangers: int) -> None:
    """Checked by slack_sdk's own Block Kit models: a policy granting 2,000 accounts still makes a message Slack takes."""
    from slack_sdk.models.blocks import Block

    from remediator.approvals import message

    for state, buttons in (("pending", True), ("applied", False)):
        text, blocks = message(_request("orders", strangers), state, buttons)
        for block in blocks:
            Block.parse(block).validate_json()  # raises SlackObjectFormationError past a limit
        removed = next(b["text"]["text"] for b in blocks if b["type"] == "section" and "To be removed" in b.get("text", {}).get("text", ""))
        if strangers > 100:
            assert "more (all of them in the audit record)" in removed
        else:
            assert "100000000000" in removed


def test_slack_messages_escape_what_users_chose() -> None:
    from remediator.approvals import message

    hostile = "orders <!channel> <https://evil.example/|press Reject> & `code"
    text, blocks = message(_request(hostile, 1, sid="<@U0BOSS>"), "pending", True)
    rendered = json.dumps(blocks) + text
    for raw in ("<!channel>", "<https://evil", "<!here>", "<@U0BOSS>"):
        assert raw not in rendered, raw
    assert "&lt;!channel&gt;" in rendered and "&amp;" in rendered


AMBIGUOUS = [
    ('{"Statement":[{"Effect":"Allow","Effect":"Deny","Principal":{"AWS":"999999999999"},"Action":"*","Resource":"*"}]}',
     "Statement[0].Effect"),
    ('{"Statement":[{"Effect":"Allow","Principal":{"AWS":"111122223333"},"Principal":{"AWS":"999999999999"},'
     '"Action":"*","Resource":"*"}]}', "Statement[0].Principal"),
    ('{"Statement":[{"Effect":"Allow","Principal":"*","Action":"*","Resource":"*"}],"Statement":[]}', "Statement"),
    ('{"Version":"2012-10-17","Version":"2008-10-17","Statement":[]}', "Version"),
    ('{"Statement":[{"Effect":"Allow","Principal":{"AWS":"999999999999","AWS":"111122223333"},"Action":"*","Resource":"*"}]}',
     "Statement[0].Principal.AWS"),
    ('{"Statement":[{"Effect":"Deny","Principal":"*","Action":"*","Resource":"*","Condition":{"StringNotEquals":'
     '{"aws:SourceVpce":"vpce-1","aws:SourceVpce":"vpce-2"}}}]}', "Statement[0].Condition.StringNotEquals.aws:SourceVpce"),
]


@pytest.mark.parametrize("text, path", AMBIGUOUS)
@pytest.mark.parametrize("form", ["plain", "escaped"])
def test_a_repeated_key_is_an_ambiguous_policy_never_fixed(text: str, path: str, form: str) -> None:
    from remediator.core import Remediation, TrustConfig, evaluate_policy
    from remediator.local.strict import escape_policy

    evaluation = evaluate_policy(escape_policy(text) if form == "escaped" else text, TrustConfig(owner_account=OWNER))
    assert not evaluation.compliant and evaluation.patch_operations == []
    first = evaluation.findings[0]
    assert first.kind.value == "ambiguous-policy" and first.principal == path and path.rsplit(".", 1)[-1] in first.detail
    assert all(f.remediation is Remediation.REPORT_ONLY for f in evaluation.findings)


def test_no_real_world_policy_is_ambiguous() -> None:
    from remediator.core import TrustConfig, evaluate_policy
    from tests.conftest import corpus_dir

    config = TrustConfig(owner_account=OWNER)
    checked = 0
    for path in sorted(corpus_dir("policies").iterdir()):
        if path.suffix != ".json":
            continue
        try:
            evaluation = evaluate_policy(path.read_text(encoding="utf-8"), config)
        except ValueError:
            continue
        checked += 1
        assert not [f for f in evaluation.findings if f.kind.value == "ambiguous-policy"], path.name
    assert checked > 10


def test_an_ambiguous_policy_is_reported_not_fixed_by_the_workflow(make_flow) -> None:
    from remediator.local.emulator import seed_rest_api
    from tests.test_workflow import REGION, run, stages_of

    flow = make_flow(mode="auto")
    text, _ = AMBIGUOUS[0]
    api_id = seed_rest_api(flow.clients, REGION, "api", text, stages=("prod",))
    flow.later()
    before = stages_of(flow, api_id)
    _, result = run(flow, api_id)
    assert result.states == ["Evaluate", "IsActionNeeded", "ReportFindings", "Done"]
    assert stages_of(flow, api_id) == before and flow.audit_records() == []
    (notice,) = flow.notifications()
    assert notice["kind"] == "findings" and notice["findings"][0]["kind"] == "ambiguous-policy"


def test_a_notice_about_an_unreadable_policy_says_why(make_flow) -> None:
    from remediator.local.emulator import seed_rest_api
    from tests.test_workflow import REGION, run

    flow = make_flow(mode="auto")
    api_id = seed_rest_api(flow.clients, REGION, "api", '{"Statement": [', stages=("prod",))
    flow.later()
    _, result = run(flow, api_id)
    assert result.states == ["Evaluate", "IsActionNeeded", "ReportFindings", "Done"]
    (notice,) = flow.notifications()
    assert notice["findings"] == [] and "policy cannot be read" in notice["reason"] and "not JSON" in notice["reason"]


def test_text_nobody_can_print_never_stops_the_tool(tmp_path: Path) -> None:
    """A lone surrogate (valid JSON) in a Sid and a principal: the text output escapes it."""
    import subprocess
    import sys

    policy = tmp_path / "p.json"
    policy.write_text('{"Statement":[{"Sid":"\\ud800","Effect":"Allow","Principal":{"AWS":["999999999999","\\udfff"]},'
                      '"Action":"*","Resource":"*"}]}', encoding="ascii")
    for fmt in ("text", "json"):
        done = subprocess.run([sys.executable, "-m", "remediator", "evaluate", "--owner-account", OWNER, "--format", fmt, str(policy)],
                              capture_output=True, env={"PYTHONIOENCODING": "utf-8", "PATH": ""}, timeout=60)
        assert done.returncode == 1 and b"Traceback" not in done.stderr, done.stderr
        assert b"ud800" in done.stdout


def test_a_sweep_reports_every_api_whatever_their_names(account, tmp_path: Path) -> None:
    import io as _io

    from remediator.local.emulator import seed_rest_api

    names = ["plain", "lone \ud800 surrogate", "bidi \u202e override", "nul \x00 byte"]
    for name in names:
        seed_rest_api(account.clients, "eu-west-1", name, json.dumps(
            {"Statement": [{"Effect": "Allow", "Principal": {"AWS": "999999999999"}, "Action": "*", "Resource": "*"}]}))
    raw = _io.BytesIO()
    out = _io.TextIOWrapper(raw, encoding="utf-8", errors="strict")
    status = main(["scan", "--regions", "eu-west-1", "--endpoint-url", account.endpoint_url], out, _io.StringIO())
    out.flush()
    assert status == 1
    text = raw.getvalue().decode("utf-8")
    assert len(text.splitlines()) == len(names), "one line per API, none lost"
    assert "\\ud800" in text, "the name that cannot be printed is shown escaped"


def _fixed_and_recorded(account, tmp_path: Path) -> tuple[str, Path, dict]:
    from remediator.local.emulator import seed_rest_api

    api_id = seed_rest_api(account.clients, "eu-west-1", "api", json.dumps(
        {"Version": "2012-10-17", "Statement": [{"Sid": "Partners", "Effect": "Allow", "Principal": {"AWS": [OWNER, "999999999999"]},
                                                 "Action": "execute-api:Invoke", "Resource": "execute-api:/*"}]}))
    audit = tmp_path / "audit.jsonl"
    assert main(["fix", "--regions", "eu-west-1", "--endpoint-url", account.endpoint_url, "--apply", "--audit-log", str(audit)],
                io.StringIO(), io.StringIO()) == 0
    lines = [json.loads(line) for line in audit.read_text().splitlines()]
    (record,) = [line for line in lines if line.get("kind") != "intent"]
    return api_id, audit, record


def _rollback(account, audit: Path, api_id: str, *extra: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    status = main(["rollback", "--audit-log", str(audit), "--api-id", api_id, "--endpoint-url", account.endpoint_url, *extra], out, err)
    return status, out.getvalue(), err.getvalue()


WIDE_OPEN = json.dumps({"Statement": [{"Effect": "Allow", "Principal": "*", "Action": "*", "Resource": "*"}]})


@pytest.mark.parametrize("tamper, message", [
    (lambda r: {**r, "policy_before": WIDE_OPEN}, "policy_after is not the fix of policy_before"),
    (lambda r: {**r, "patch_operations": [{"op": "replace", "path": "/policy", "value": WIDE_OPEN}]}, "its patch does not turn"),
    (lambda r: {**r, "trust": {**r["trust"], "trusted_accounts": ["999999999999"]}}, "policy_after is not the fix"),
    (lambda r: {**r, "trust": {**r["trust"], "owner_account": "444455556666"}}, "trust settings are of account 444455556666"),
    (lambda r: {**r, "policy_before": "not json"}, "its policies cannot be read"),
])
def test_rollback_refuses_a_record_that_does_not_add_up(account, tmp_path: Path, tamper, message: str) -> None:
    from remediator.adapters.apigateway import ApiGatewayAdapter

    api_id, audit, record = _fixed_and_recorded(account, tmp_path)
    audit.write_text(json.dumps(tamper(record)) + "\n")
    policy = ApiGatewayAdapter(account.clients).get_rest_api("eu-west-1", api_id).policy
    for extra in ((), ("--apply",), ("--apply", "--force")):
        status, out, err = _rollback(account, audit, api_id, *extra)
        assert status == 2 and out == "" and "does not add up" in err and message in err and err.count("\n") == 1, err
    assert ApiGatewayAdapter(account.clients).get_rest_api("eu-west-1", api_id).policy == policy, "nothing changed"


def test_rollback_refuses_a_record_whose_trust_settings_are_malformed_when_it_reads_it(account, tmp_path: Path) -> None:
    """Malformed trust settings are refused by the record's decoder (remediator.stored), before any check."""
    from remediator.adapters.apigateway import ApiGatewayAdapter

    api_id, audit, record = _fixed_and_recorded(account, tmp_path)
    audit.write_text(json.dumps({**record, "trust": {"owner": OWNER}}) + "\n")
    policy = ApiGatewayAdapter(account.clients).get_rest_api("eu-west-1", api_id).policy
    for extra in ((), ("--apply",), ("--apply", "--force")):
        status, out, err = _rollback(account, audit, api_id, *extra)
        assert status == 2 and out == "" and err.count("\n") == 1, err
        assert "audit.jsonl:1: not an audit record (trust: Object contains unknown field `owner`)" in err
    assert ApiGatewayAdapter(account.clients).get_rest_api("eu-west-1", api_id).policy == policy, "nothing changed"


def test_rollback_of_an_older_record_without_trust_settings_takes_force(account, tmp_path: Path) -> None:
    api_id, audit, record = _fixed_and_recorded(account, tmp_path)
    audit.write_text(json.dumps({k: v for k, v in record.items() if k != "trust"}) + "\n")
    status, _, err = _rollback(account, audit, api_id, "--apply")
    assert status == 2 and "names no trust settings" in err
    status, out, err = _rollback(account, audit, api_id, "--apply", "--force")
    assert status == 0 and "rolled-back" in out, err


def test_rollback_shows_what_it_re_grants_and_re_grants_the_untrusted_only_with_force(account, tmp_path: Path) -> None:
    api_id, audit, _ = _fixed_and_recorded(account, tmp_path)
    status, out, _ = _rollback(account, audit, api_id)
    assert status == 0 and "re-granting 999999999999 in statement 0 (Partners)" in out and "it takes --force" in out
    status, _, err = _rollback(account, audit, api_id, "--apply")
    assert status == 2 and "would re-grant 999999999999, untrusted" in err
    status, out, _ = _rollback(account, audit, api_id, "--apply", "--trusted-accounts", "999999999999")
    assert status == 0 and "rolled-back" in out, "trusted now: no --force needed"


from hypothesis import given, settings, strategies as st  # noqa: E402

_digits = st.text("0123456789", min_size=1, max_size=30).map(lambda d: d.lstrip("0") or "0")
NUMBER = st.one_of(
    st.tuples(st.sampled_from(["", "-"]), _digits, st.sampled_from(["", ".5", ".50", ".000"]),
              st.sampled_from(["", "e999", "E-999", "e+16", "e16", "e-0"])).map("".join),
    st.integers(4290, 4400).map(lambda n: "9" * n),
    st.sampled_from(["-0", "1e999", "-1e999", "1e-999", "0.1", "1.0", "1e16", "123456789012345678901234567890"]),
)


def _strict(text: str) -> object:
    """A strict JSON parser: numbers left as text, NaN and Infinity refused."""
    def refuse(name: str) -> object:
        raise ValueError(f"{name} is not JSON")

    return json.loads(text, parse_int=str, parse_float=str, parse_constant=refuse)


@settings(max_examples=300, deadline=None)
@given(st.lists(NUMBER, min_size=1, max_size=4), st.sampled_from(["plain", "escaped"]))
def test_numbers_the_fix_does_not_touch_come_out_byte_for_byte(tokens: list[str], form: str) -> None:
    from remediator.core import TrustConfig, evaluate_policy
    from remediator.local.strict import escape_policy

    condition = "{" + ",".join(f'"k{i}":{t}' for i, t in enumerate(tokens)) + "}"
    text = ('{"Version":"2012-10-17","Statement":[{"Sid":"n","Effect":"Allow","Principal":{"AWS":["%s","999999999999"]},'
            '"Action":"execute-api:Invoke","Resource":"*","Condition":{"NumericLessThan":%s}},'
            '{"Effect":"Deny","Principal":"*","Action":"*","Resource":"*","Condition":{"NumericEquals":%s}}]}') % (OWNER, condition, condition)
    evaluation = evaluate_policy(escape_policy(text) if form == "escaped" else text, TrustConfig(owner_account=OWNER))
    (operation,) = evaluation.patch_operations
    fixed = _strict(operation["value"])  # parses strictly: no NaN, no Infinity
    assert "NaN" not in operation["value"] and "Infinity" not in operation["value"]
    for statement, operator in zip(fixed["Statement"], ("NumericLessThan", "NumericEquals")):
        assert list(statement["Condition"][operator].values()) == tokens, "every untouched number, byte for byte"
    assert fixed["Statement"][0]["Principal"] == {"AWS": [OWNER]}


STATEMENTS_YAML = """
- Effect: Allow
  Principal:
    AWS:
      - arn:aws:iam::111122223333:root
      - "999999999999"
  Action: execute-api:Invoke
  Resource: execute-api:/*
"""


@pytest.mark.parametrize("name, text, form", [
    ("policy.yaml", "Version: 2012-10-17\nStatement:" + STATEMENTS_YAML.replace("\n", "\n  "), "YAML"),
    ("statements.yaml", STATEMENTS_YAML, "list of statements"),
    ("statements.json", json.dumps([{"Effect": "Allow", "Principal": {"AWS": "999999999999"}, "Action": "*", "Resource": "*"}]),
     "list of statements"),
    ("openapi.yaml", "openapi: 3.0.1\ninfo: {title: orders, version: '1'}\npaths: {}\nx-amazon-apigateway-policy:\n"
     "  Version: '2012-10-17'\n  Statement:" + STATEMENTS_YAML.replace("\n", "\n  "), "OpenAPI x-amazon-apigateway-policy"),
    ("openapi.json", json.dumps({"swagger": "2.0", "info": {"title": "orders"}, "x-amazon-apigateway-policy": {
        "Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": "*", "Action": "*", "Resource": "*"}]}}),
     "OpenAPI x-amazon-apigateway-policy"),
    ("extension.json", json.dumps({"x-amazon-apigateway-policy": {"Statement": [
        {"Effect": "Allow", "Principal": {"AWS": "999999999999"}, "Action": "*", "Resource": "*"}]}}), "x-amazon-apigateway-policy"),
    ("serverless.yml", "service: orders\nprovider:\n  name: aws\n  apiGateway:\n    resourcePolicy:" + STATEMENTS_YAML.replace("\n", "\n      "),
     "provider.apiGateway.resourcePolicy"),
])
def test_evaluate_reads_the_forms_policies_come_in(tmp_path: Path, name: str, text: str, form: str) -> None:
    path = tmp_path / name
    path.write_text(text)
    out, err = io.StringIO(), io.StringIO()
    assert main(["evaluate", "--owner-account", OWNER, "--format", "json", str(path)], out, err) == 1, err.getvalue()
    (result,) = [json.loads(line) for line in out.getvalue().splitlines()]
    assert result["source"] == f"{path} ({form})" and result["findings"], result


@pytest.mark.parametrize("text, message", [
    # A key repeated in a YAML policy is an ambiguous-policy finding, as in JSON (tests/test_one_verdict.py).
    ("openapi: 3.0.1\npaths: {}\n", "OpenAPI document without x-amazon-apigateway-policy"),
    ("just: [a, mapping]\n", "no Statement"),
    ("- [unbalanced\n", "neither JSON nor YAML"),
    ("!!python/object/apply:os.system ['echo owned']\n", "neither JSON nor YAML"),
])
def test_evaluate_refuses_what_is_no_policy_with_one_line(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "p.yaml"
    path.write_text(text)
    out, err = io.StringIO(), io.StringIO()
    assert main(["evaluate", "--owner-account", OWNER, str(path)], out, err) == 2
    assert err.getvalue().count("\n") == 1 and message in err.getvalue(), err.getvalue()


@pytest.mark.parametrize("key", ["remediator:trustedAccount", "remediator:trusted_accounts", "remediator:TrustedAccounts"])
def test_a_misspelt_cdk_context_key_stops_the_synth(key: str) -> None:
    from infra import ConfigError, build_app

    with pytest.raises(ConfigError) as raised:
        build_app({key: ["444455556666"]}, nag=False)
    assert key in str(raised.value) and "remediator:trustedAccounts" in str(raised.value) and "\n" not in str(raised.value)
