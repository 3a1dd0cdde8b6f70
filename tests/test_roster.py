"""The organization's roster, the organization keys of the trust document, forwarded events and organization
settings: each fails closed with one line."""

from __future__ import annotations

import json

import msgspec
import pytest

from remediator.adapters.ssm import TrustListError, parse_trust_document
from remediator.events import ApiChange, EventError, Ignored, parse_member_event
from remediator.functions.common import Settings
from remediator.functions.summarize import summarize
from remediator.organization import DEPARTURE_HOLD_SECONDS, Roster, RosterError
from remediator.workflow.errors import RemediationFailed

ORG = "o-abcdefghij"
A, B, C, M = "111111111111", "222222222222", "333333333333", "900000000001"
OU = "ou-ab12-cdefgh12"


def roster(**changes: object) -> Roster:
    base = Roster(ORG, 100.0, frozenset({A, B, C, M}), M, {OU: frozenset({A, B})}, {})
    return msgspec.structs.replace(base, **changes)


def test_the_roster_round_trips_and_refuses_anything_else() -> None:
    r = roster(departed={"444444444444": 50.0})
    assert Roster.from_json(r.to_json(), ORG) == r
    data = json.loads(r.to_json())
    bad = [
        "not json", json.dumps([]), json.dumps({**data, "extra": 1}), json.dumps({k: v for k, v in data.items() if k != "under"}),
        json.dumps({**data, "organization_id": "o-otherorgid"}), json.dumps({**data, "accounts": ["12345"]}),
        json.dumps({**data, "accounts": "111111111111"}), json.dumps({**data, "refreshed_at": True}),
        json.dumps({**data, "under": {"not-an-ou": [A]}}), json.dumps({**data, "departed": {A: "yesterday"}}),
        json.dumps({**data, "management_account": 900000000001}),
        json.dumps({**data, "lost_units": {A: [OU]}}),  # lost units of an account that has not departed
        json.dumps({**data, "lost_units": {"444444444444": ["not-an-ou"]}}),
    ]
    for text in bad:
        with pytest.raises(RosterError) as refused:
            Roster.from_json(text, ORG)
        assert "\n" not in str(refused.value)


def test_an_account_that_leaves_is_remembered_from_the_refresh_that_first_misses_it() -> None:
    first = roster()
    second = first.refreshed([A, C, M], {OU: [A]}, 200.0)
    assert second.accounts == {A, C, M} and second.departed == {B: 200.0} and second.management_account == M
    third = second.refreshed([A, C, M], {OU: [A]}, 300.0)
    assert third.departed == {B: 200.0}, "left at the first refresh that missed it, not at each one"
    back = third.refreshed([A, B, C, M], {OU: [A, B]}, 400.0)
    assert back.departed == {} and B in back.accounts


def test_an_account_moved_out_of_the_trusted_ous_is_departed_until_it_is_back_under_one() -> None:
    OTHER = "ou-ab12-otherou1"
    first = roster(under={OU: frozenset({A, B}), OTHER: frozenset({C})})
    moved = first.refreshed([A, B, C, M], {OU: [A], OTHER: [C]}, 200.0)  # B moved to an OU nobody trusts
    assert moved.departed == {B: 200.0} and moved.lost_units == {B: {OU}} and moved.held_back([B], 250.0) == [B]
    still = moved.refreshed([A, B, C, M], {OU: [A], OTHER: [C]}, 300.0)
    assert still.departed == {B: 200.0}, "still outside the trusted OUs: departed since it left them"
    assert Roster.from_json(still.to_json(), ORG) == still
    sideways = still.refreshed([A, B, C, M], {OU: [A], OTHER: [B, C]}, 350.0)  # under another trusted OU: covered again
    assert sideways.departed == {}
    across = sideways.refreshed([A, B, C, M], {OU: [A, B], OTHER: [C]}, 400.0)
    assert across.departed == {}, "from one trusted OU to another is no departure"
    untrusted_unit = across.refreshed([A, B, C, M], {OTHER: [C]}, 500.0)  # the OU no longer trusted: a trust change too
    assert untrusted_unit.departed == {A: 500.0, B: 500.0}


def test_a_fix_removing_an_account_that_left_within_the_hour_is_held_back() -> None:
    r = roster(departed={B: 1000.0})
    assert r.held_back([B, None, A], 1000.0 + DEPARTURE_HOLD_SECONDS - 1) == [B]
    assert r.held_back([B], 1000.0 + DEPARTURE_HOLD_SECONDS) == []
    assert r.held_back([A], 1000.0) == []


def test_trust_from_the_organization_or_its_units() -> None:
    r = roster()
    assert r.trusted(True, []) == {A, B, C, M}
    assert r.trusted(False, [OU]) == {A, B}
    assert r.trusted(False, []) == frozenset()
    with pytest.raises(RosterError, match="no accounts for ou-zz99-zzzzzzzz"):
        r.trusted(False, ["ou-zz99-zzzzzzzz"])
    assert r.sweepable() == sorted({A, B, C}), "the management account has no spoke"


def test_the_trust_documents_organization_keys_are_exact() -> None:
    plain = parse_trust_document('{"trusted_accounts": [], "trusted_org_ids": []}', "p")
    assert (plain.trust_organization, plain.trusted_ous) == (False, frozenset())
    document = parse_trust_document(json.dumps({"trusted_accounts": [A], "trusted_org_ids": [], "trust_organization": True,
                                                "trusted_ous": [OU, "r-ab12"]}), "p")
    assert document.trust_organization and document.trusted_ous == {OU, "r-ab12"}
    for broken in ({"trust_organization": "true", "trusted_ous": []}, {"trust_organization": True, "trusted_ous": "ou"},
                   {"trust_organization": True, "trusted_ous": ["ou-x"]}, {"trust_organization": True},
                   {"trusted_ous": [OU]}):
        with pytest.raises(TrustListError):
            parse_trust_document(json.dumps({"trusted_accounts": [], "trusted_org_ids": [], **broken}), "p")


def forwarded(account: object, recipient: object, **detail: object) -> dict:
    return {"version": "0", "id": "e1", "detail-type": "AWS API Call via CloudTrail", "source": "aws.apigateway",
            "account": account, "region": "us-east-1", "detail": {
                "eventSource": "apigateway.amazonaws.com", "eventName": "UpdateRestApi", "awsRegion": "us-east-1",
                "eventID": "ev-1", "recipientAccountId": recipient, "requestParameters": {"restApiId": "abcdefghij"},
                "userIdentity": {"type": "IAMUser", "arn": f"arn:aws:iam::{recipient}:user/dev"}, **detail}}


def test_a_forwarded_event_is_the_senders_and_only_the_senders() -> None:
    change = parse_member_event(forwarded(A, A), spoke_role_name="apigw-remediator-spoke")
    assert isinstance(change, ApiChange) and change.account == A
    for event, message in (
        (forwarded(A, B), f"event ev-1 came from account {A} but its CloudTrail record names account '{B}'; refused"),
        (forwarded(None, A), "event account None is not a 12-digit account ID"),
        (forwarded("1111", "1111"), "event account '1111' is not a 12-digit account ID"),
        ({"eventSource": "apigateway.amazonaws.com"}, "organization mode takes only EventBridge events forwarded by a member "
                                                      "account's spoke rule"),
        (forwarded(A, A, resources=[{"ARN": f"arn:aws:apigateway:us-east-1:{B}:/restapis/abcdefghij"}]), None),
    ):
        with pytest.raises(EventError) as refused:
            parse_member_event(event, spoke_role_name="apigw-remediator-spoke")
        if message:
            assert str(refused.value) == message
    own = forwarded(A, A, userIdentity={"type": "AssumedRole", "sessionContext": {"sessionIssuer": {
        "arn": f"arn:aws:iam::{A}:role/apigw-remediator-spoke"}}})
    assert isinstance(parse_member_event(own, spoke_role_name="apigw-remediator-spoke"), Ignored)


@pytest.mark.parametrize("environment", [
    {"REMEDIATOR_DEPLOYMENT": "org"},
    {"REMEDIATOR_DEPLOYMENT": "organization", "SPOKE_ROLE_NAME": "apigw-remediator-spoke"},
    {"REMEDIATOR_DEPLOYMENT": "organization", "ORGANIZATION_ID": ORG},
    {"REMEDIATOR_DEPLOYMENT": "organization", "ORGANIZATION_ID": ORG, "SPOKE_ROLE_NAME": "x", "SWEEP_REGIONS": "mars-1"},
    {"REMEDIATOR_DEPLOYMENT": "organization", "ORGANIZATION_ID": ORG, "SPOKE_ROLE_NAME": "x", "ORG_SWEEP_CONCURRENCY": "0"},
])
def test_organization_settings_fail_closed(monkeypatch: pytest.MonkeyPatch, environment: dict[str, str]) -> None:
    for key in ("REMEDIATOR_DEPLOYMENT", "ORGANIZATION_ID", "SPOKE_ROLE_NAME", "SWEEP_REGIONS", "ORG_SWEEP_CONCURRENCY"):
        monkeypatch.delenv(key, raising=False)
    for key, value in environment.items():
        monkeypatch.setenv(key, value)
    with pytest.raises(RemediationFailed) as refused:
        Settings.from_environment()
    assert "\n" not in str(refused.value)


def test_the_summary_counts_per_account_and_lists_what_was_not_swept() -> None:
    """A child's output is its batch's accounts (sweep.sweep_accounts); its Catch (NotSwept) names the whole batch; a
    failed child in the results is every account of its input's Items: each account is counted or listed as not swept."""
    D, E, F = "444444444444", "555555555555", "666666666666"
    outputs = [
        {"accounts": [
            {"account": A, "regions": [
                {"account": A, "region": "us-east-1", "apis": 2, "verdicts": {"compliant": 1, "fix": 1}, "executions_started": 1,
                 "new_findings": [{"api_id": "abcdefghij", "name": "x", "verdict": "fix"}], "resolved_findings": []},
                {"account": A, "region": "eu-west-1", "apis": 1, "verdicts": {"compliant": 1}, "executions_started": 0,
                 "new_findings": [], "resolved_findings": [{"api_id": "bcdefghijk", "name": "", "verdict": "gone"}]}],
             "not_swept": [{"region": "eu-central-1", "error": "OutOfTime", "cause": "out of its 120 s"}], "duplicate": 0},
            {"account": B, "region": "*", "failed": "RemediationFailed", "cause": "AccessDenied"},
            {"account": M, "region": "*", "failed": "NotEnrolled", "cause": "no spoke"}]},
        {"accounts": [D, E], "region": "*", "failed": "States.TaskFailed", "cause": "the child's task failed"},
    ]
    failed = [{"status": "FAILED", "input": {"Items": [{"account": C}, {"account": F}]}, "error": "States.Timeout", "cause": ""}]
    summary = summarize(outputs, failed, "auto", 9)
    assert summary["verdicts_per_account"] == {A: {"compliant": 2, "fix": 1}, B: {}, C: {}, D: {}, E: {}, F: {}}
    assert summary["apis"] == 3 and summary["executions_started"] == 1 and summary["pairs_swept"] == 2
    assert summary["pairs_planned"] == 9 and summary["not_enrolled"] == [M]
    assert [(f["account"], f["region"]) for f in summary["new_findings"]] == [(A, "us-east-1")]
    assert [(f["account"], f["region"]) for f in summary["resolved_findings"]] == [(A, "eu-west-1")]
    assert [(n["account"], n["region"], n["error"]) for n in summary["not_swept"]] == [
        (A, "eu-central-1", "OutOfTime"), (B, "*", "RemediationFailed"), (D, "*", "States.TaskFailed"),
        (E, "*", "States.TaskFailed"), (C, "*", "States.Timeout"), (F, "*", "States.Timeout")]


def test_a_summary_too_big_for_one_message_lists_the_first_of_each_and_says_where_the_rest_is() -> None:
    from remediator.functions.summarize import LISTED, MESSAGE_LIMIT, bounded

    outputs = [{"account": f"{n:012d}", "not_swept": [], "regions": [{
        "account": f"{n:012d}", "region": "us-east-1", "apis": 40, "verdicts": {"fix": 40}, "executions_started": 0,
        "new_findings": [{"api_id": f"a{i:09d}", "name": "api " * 10, "verdict": "fix"} for i in range(40)],
        "resolved_findings": []}]} for n in range(1, 1001)]
    summary = summarize(outputs, [], "dry-run", 1000)
    assert len(summary["new_findings"]) == 40_000 and summary["apis"] == 40_000
    message = bounded(summary, "s3://bucket/summaries/x.json")
    assert len(json.dumps(message, indent=2)) <= MESSAGE_LIMIT
    assert message["full_summary"] == "s3://bucket/summaries/x.json" and message["new_findings_left_out"] == 40_000 - LISTED
    assert message["apis"] == 40_000 and message["accounts"] == 1000
    small = summarize(outputs[:2], [], "dry-run", 2)
    assert bounded(small, "s3://b/k")["new_findings"] == small["new_findings"], "whole when it fits"


def test_a_batchs_summaries_fit_a_map_result_and_the_rest_is_counted() -> None:
    """A child's output goes into a state (256 KB: Step Functions developer guide, "Step Functions service quotas",
    maximum input or output size for a state): a full batch of accounts x 17 regions of 3,000 new and 3,000 resolved
    findings each still fits, the counts whole; so does a batch whose every region was not swept."""
    from remediator.functions.sweep import ACCOUNTS_PER_CHILD, CAUSE_CHARS, listed_per_region, within_state_limit

    accounts = [f"{n:012d}" for n in range(1, ACCOUNTS_PER_CHILD + 1)]
    regions = [f"us-east-{n}" for n in range(1, 18)]
    findings = [{"api_id": f"a{i:09d}", "name": "x" * 1024, "verdict": "fix"} for i in range(3000)]  # names cut short
    listed = listed_per_region(len(accounts), len(regions))
    output = {"accounts": [{"account": a, "not_swept": [], "duplicate": 0, "regions": [within_state_limit(
        {"kind": "summary", "mode": "dry-run", "account": a, "region": r, "apis": 3000, "verdicts": {"fix": 3000},
         "executions_started": 0, "told_already": 0, "new_findings": findings, "resolved_findings": findings}, listed)
        for r in regions]} for a in accounts]}
    assert len(json.dumps(output)) < 256 * 1024, len(json.dumps(output))
    summary = summarize([output], [], "dry-run", len(accounts) * 17)
    pairs = len(accounts) * 17
    assert len(summary["new_findings"]) == listed * pairs and summary["new_findings_not_listed"] == (3000 - listed) * pairs
    assert all(summary["verdicts_per_account"][a] == {"fix": 3000 * 17} for a in accounts), "the counts are whole"
    missed = {"accounts": [{"account": a, "regions": [], "duplicate": 0, "not_swept": [
        {"region": r, "error": "OutOfTime", "cause": "c" * CAUSE_CHARS} for r in regions]} for a in accounts]}
    assert len(json.dumps(missed)) < 256 * 1024, len(json.dumps(missed))
    assert len(summarize([missed], [], "dry-run", pairs)["not_swept"]) == pairs
