"""Who can actually call (remediator.core.access): one test per row of AWS's policy evaluation outcome tables as the
bot models them (API Gateway developer guide, "How API Gateway resource policies affect authorization workflow"),
endpoint types, API keys, Denies, what it cannot decide, and the grade's use by the findings formats and the notice
fingerprint. Pure: no AWS."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from hypothesis import given, settings, strategies as st

from remediator import findings_formats as formats
from remediator.core import TrustConfig, evaluate_policy
from remediator.core.access import (
    AUTHORIZATION_TYPES,
    GATES,
    GRADES,
    METHODS_LISTED,
    Endpoint,
    Method,
    effective_access,
    grade_of,
    intersects,
)
from remediator.transaction.planning import findings_fingerprint

OWNER, STRANGER = "111122223333", "999999999999"
CONFIG = TrustConfig(OWNER)
ARN = f"arn:aws:execute-api:eu-west-1:{OWNER}:a1b2c3d4e5"
PUBLIC, PRIVATE = Endpoint(("REGIONAL",)), Endpoint(("PRIVATE",), ("vpce-0123456789abcdef0",))
WILDCARD = {"Effect": "Allow", "Principal": "*", "Action": "execute-api:Invoke", "Resource": "execute-api:/*"}
NAMED = {"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{STRANGER}:root"}, "Action": "execute-api:Invoke",
         "Resource": "execute-api:/*"}


def reach(statements: list[dict[str, Any]], methods: list[Method] | None, endpoint: Endpoint | None = PUBLIC,
          unread: str | None = None) -> list[dict[str, Any]]:
    policy = {"Version": "2012-10-17", "Statement": statements}
    evaluation = evaluate_policy(policy, CONFIG)
    return effective_access(evaluation.findings, evaluation.policy, ARN, methods, endpoint, unread).to_list()


def one(statements: list[dict[str, Any]], methods: list[Method] | None, endpoint: Endpoint | None = PUBLIC, **kw: Any) -> dict[str, Any]:
    (only,) = reach(statements, methods, endpoint, **kw)
    return only


# --- the outcome tables, row by row --------------------------------------------------------------------------

def test_resource_policy_only_an_explicit_allow_for_everyone_on_a_public_endpoint_is_critical() -> None:
    """Resource policy only (NONE): the explicit Allow of Principal "*" lets anyone in."""
    result = one([WILDCARD], [Method("/", "GET", "NONE", False)])
    assert result["reachability"] == "reachable" and result["severity"] == "critical"
    assert result["reachable_methods"][0]["caller"] == "anyone" and result["reachable_methods"][0]["gates"] == ["anyone"]


def test_resource_policy_only_a_named_account_reaches_nothing_unsigned() -> None:
    """NONE: the caller is anonymous (no SigV4 signature; "Use VPC endpoint policies for private APIs"), so a
    statement naming an account's principals matches nobody there."""
    result = one([NAMED], [Method("/", "GET", "NONE", False)])
    assert result["reachability"] == "unreachable" and result["severity"] == "low" and result["reachable_methods"] == []


@pytest.mark.parametrize("statement, caller", [(NAMED, f"account {STRANGER}"), (WILDCARD, "any AWS account")])
def test_iam_cross_account_allow_in_both_is_allow_table_b(statement: dict[str, Any], caller: str) -> None:
    """Table B: another account's caller needs an Allow in its IAM policy (its own, so assumed) and in the resource
    policy: the resource policy's Allow is all that stands between it and the method."""
    result = one([statement], [Method("/pets", "GET", "AWS_IAM", False)])
    assert result["reachability"] == "reachable" and result["severity"] == "high"
    assert result["reachable_methods"][0]["caller"] == caller and result["reachable_methods"][0]["gates"] == ["iam"]


def test_iam_resource_policy_explicit_deny_wins_table_b() -> None:
    deny = {"Effect": "Deny", "Principal": "*", "Action": "execute-api:Invoke", "Resource": "execute-api:/*"}
    assert one([NAMED, deny], [Method("/pets", "GET", "AWS_IAM", False)])["reachability"] == "unreachable"


def test_lambda_authorizer_allow_in_resource_policy_table_a_needs_the_authorizer() -> None:
    """Lambda authorizer: explicit Denies first, then Table A with the authorizer's policy: the caller still needs a
    token the authorizer accepts. Medium."""
    result = one([WILDCARD], [Method("/", "GET", "CUSTOM", False)])
    assert result["severity"] == "medium" and result["reachable_methods"][0]["gates"] == ["authorizer"]
    assert one([NAMED], [Method("/", "GET", "CUSTOM", False)])["reachability"] == "unreachable"


def test_lambda_authorizer_explicit_deny_in_resource_policy_denies_before_the_authorizer() -> None:
    deny = {"Effect": "Deny", "Principal": "*", "Action": "execute-api:Invoke", "Resource": "execute-api:/*/GET/*"}
    assert one([WILDCARD, deny], [Method("/", "GET", "CUSTOM", False)])["reachability"] == "unreachable"


def test_cognito_authenticates_then_needs_the_resource_policys_allow() -> None:
    result = one([WILDCARD], [Method("/", "POST", "COGNITO_USER_POOLS", False)])
    assert result["severity"] == "medium" and "Cognito user pool" in result["reachable_methods"][0]["caller"]
    assert one([NAMED], [Method("/", "POST", "COGNITO_USER_POOLS", False)])["reachability"] == "unreachable"


def test_an_api_key_in_front_makes_it_medium() -> None:
    """"Usage plans and API keys": a key identifies a client, it is no authorization of its own; still, a caller
    without one is turned away: medium, whatever is behind."""
    assert one([WILDCARD], [Method("/", "GET", "NONE", True)])["severity"] == "medium"
    assert one([NAMED], [Method("/", "GET", "AWS_IAM", True)])["reachable_methods"][0]["gates"] == ["iam", "api-key"]


def test_private_endpoint_any_vpc_endpoint_is_high_named_vpc_endpoints_medium() -> None:
    """Resource policies admit "VPCs or VPC endpoints (in any account)": unconfined, any account's endpoint."""
    assert one([WILDCARD], [Method("/", "GET", "NONE", False)], PRIVATE)["severity"] == "high"
    confined = {**WILDCARD, "Condition": {"StringEquals": {"aws:SourceVpce": "vpce-0123456789abcdef0"}}}
    result = one([confined], [Method("/", "GET", "NONE", False)], PRIVATE)
    assert result["severity"] == "medium" and result["reachable_methods"][0]["gates"] == ["named-vpc-endpoints"]
    assert result["reachable_methods"][0]["conditions"] == ["StringEquals aws:SourceVpce vpce-0123456789abcdef0"]
    deny = {"Effect": "Deny", "Principal": "*", "Action": "execute-api:Invoke", "Resource": "execute-api:/*",
            "Condition": {"StringNotEquals": {"aws:SourceVpce": "vpce-0123456789abcdef0"}}}
    result = one([WILDCARD, deny], [Method("/", "GET", "NONE", False)], PRIVATE)
    assert result["severity"] == "medium" and "not (StringNotEquals aws:SourceVpce" in result["reachable_methods"][0]["conditions"][0]


def test_principal_keys_are_absent_from_unsigned_requests() -> None:
    """Principal "*" with StringEquals aws:PrincipalAccount: an anonymous caller has no such key, so the Allow does
    not apply to it on a NONE method; a signed caller of that account meets it on an AWS_IAM method."""
    statement = {**WILDCARD, "Condition": {"StringEquals": {"aws:PrincipalAccount": STRANGER}}}
    methods = [Method("/open", "GET", "NONE", False), Method("/signed", "GET", "AWS_IAM", False)]
    result = one([statement], methods)
    assert [m["path"] for m in result["reachable_methods"]] == ["/signed"] and result["severity"] == "high"
    assert result["reachable_methods"][0]["conditions"] == [f"StringEquals aws:PrincipalAccount {STRANGER}"]


def test_only_the_methods_the_statement_names_are_reachable() -> None:
    statement = {**NAMED, "Resource": "execute-api:/prod/GET/pets/*"}
    methods = [Method("/pets/{id}", "GET", "AWS_IAM", False), Method("/pets/{id}", "DELETE", "AWS_IAM", False),
               Method("/orders", "ANY", "AWS_IAM", False)]
    assert [(m["http_method"], m["path"]) for m in one([statement], methods)["reachable_methods"]] == [("GET", "/pets/{id}")]


def test_no_method_reachable_is_low_and_the_api_with_no_method_too() -> None:
    assert one([WILDCARD], [])["severity"] == "low"


# --- what the bot cannot decide --------------------------------------------------------------------------------

def test_unknown_condition_keys_unresolved_references_and_unknown_auth_are_indeterminate() -> None:
    unknown_key = {**WILDCARD, "Condition": {"StringEquals": {"execute-api:SomethingNew": "x"}}}
    assert one([unknown_key], [Method("/", "GET", "NONE", False)])["reachability"] == "indeterminate"
    reference = {**WILDCARD, "Resource": "execute-api:/${Stage}/GET/*"}
    result = one([reference], [Method("/", "GET", "NONE", False)])
    assert result["reachability"] == "indeterminate" and "unresolved reference" in result["reason"]
    result = one([WILDCARD], [Method("/", "GET", None, False)])
    assert result["reachability"] == "indeterminate" and "authorizationType" in result["reason"]


def test_methods_not_read_are_unknown_and_methods_that_could_not_be_read_indeterminate() -> None:
    assert one([WILDCARD], None)["reachability"] == "unknown"
    result = one([WILDCARD], None, unread="AccessDeniedException")
    assert result["reachability"] == "indeterminate" and "AccessDeniedException" in result["reason"]


def test_graded_by_reach_when_known_by_kind_otherwise_never_below_kind_when_indeterminate() -> None:
    assert formats.graded("wildcard-principal", one([WILDCARD], [Method("/", "GET", "AWS_IAM", False)])) is formats.HIGH
    assert formats.graded("untrusted-account", one([NAMED], [Method("/", "GET", "NONE", False)])) is formats.LOW
    assert formats.graded("wildcard-principal", one([WILDCARD], None)) is formats.CRITICAL
    undecided = {"reachability": "indeterminate", "severity": "medium"}
    assert formats.graded("untrusted-account", undecided) is formats.HIGH
    assert formats.graded("untrusted-account", None) is formats.HIGH


def test_asff_and_ocsf_take_the_reach_grade() -> None:
    from datetime import datetime, timezone

    access = reach([NAMED], [Method("/", "GET", "NONE", False)])
    findings = [f.to_dict() for f in evaluate_policy({"Statement": [NAMED]}, CONFIG).findings]
    moment = datetime(2024, 1, 1, tzinfo=timezone.utc)
    asff = formats.asff_finding(account=OWNER, partition="aws", region="eu-west-1", api_id="a1b2c3d4e5", api_name="",
                                findings=findings, compliant=False, exempt=False, moment=moment, access=access)
    assert asff["Severity"]["Label"] == "LOW"
    ocsf = formats.ocsf_finding(kind="untrusted-account", title="t", detail="d", resource_uid="r", resource_type="t",
                                resource_name="n", moment=moment, remediation="r", unmapped={}, reach=access[0])
    assert ocsf["severity_id"] == formats.LOW.ocsf_id


def test_a_method_switched_from_iam_to_none_changes_the_notice_fingerprint() -> None:
    policy = {"Version": "2012-10-17", "Statement": [WILDCARD]}
    findings = evaluate_policy(policy, CONFIG).findings
    before = reach([WILDCARD], [Method("/", "GET", "AWS_IAM", False)])
    after = reach([WILDCARD], [Method("/", "GET", "NONE", False)])
    again = reach([WILDCARD], [Method("/", "GET", "AWS_IAM", False)])
    assert findings_fingerprint(findings, None, policy, before) == findings_fingerprint(findings, None, policy, again)
    assert findings_fingerprint(findings, None, policy, before) != findings_fingerprint(findings, None, policy, after)
    # Without reachability (a file: methods unknown), the fingerprint is what it always was.
    assert findings_fingerprint(findings, None, policy) == findings_fingerprint([f.to_dict() for f in findings], None, policy)


def test_many_methods_are_listed_up_to_a_bound_and_all_digested() -> None:
    methods = [Method(f"/m{i}", "GET", "NONE", False) for i in range(METHODS_LISTED + 10)]
    result = one([WILDCARD], methods)
    assert len(result["reachable_methods"]) == METHODS_LISTED and result["reachable_method_count"] == METHODS_LISTED + 10
    fewer = one([WILDCARD], methods[:-1])
    assert fewer["methods_digest"] != result["methods_digest"]


# --- properties ----------------------------------------------------------------------------------------------------

method_strategy = st.builds(Method, st.sampled_from(["/", "/pets", "/pets/{id}", "/a/b"]),
                            st.sampled_from(["GET", "POST", "ANY", "DELETE"]), st.sampled_from(AUTHORIZATION_TYPES),
                            st.booleans())
endpoint_strategy = st.sampled_from([Endpoint(("EDGE",)), Endpoint(("REGIONAL",)), PRIVATE])


@settings(max_examples=150, deadline=None)
@given(st.lists(method_strategy, max_size=6), endpoint_strategy, st.sampled_from([WILDCARD, NAMED]))
def test_grades_follow_the_one_table_and_the_fix_is_untouched(methods: list[Method], endpoint: Endpoint,
                                                              statement: dict[str, Any]) -> None:
    policy = {"Version": "2012-10-17", "Statement": [statement]}
    evaluation = evaluate_policy(copy.deepcopy(policy), CONFIG)
    fixed = copy.deepcopy(evaluation.remediated_policy)
    (result,) = effective_access(evaluation.findings, evaluation.policy, ARN, methods, endpoint).to_list()
    assert evaluation.remediated_policy == fixed  # the fix stays the engine's
    assert result["reachability"] in ("reachable", "unreachable")
    for method in result["reachable_methods"]:
        assert method["severity"] == grade_of(method["gates"])
        if method["api_key_required"]:
            assert GRADES.index(method["severity"]) <= GRADES.index("medium")
        if statement is NAMED:
            assert method["authorization_type"] == "AWS_IAM"  # only a signed caller is an account's principal
        if method["severity"] == "critical":
            assert (method["authorization_type"], method["api_key_required"], endpoint.private) == ("NONE", False, False)
    expected = max((m["severity"] for m in result["reachable_methods"]), key=GRADES.index, default=GATES["nothing-reachable"])
    assert result["severity"] == expected


@settings(max_examples=200, deadline=None)
@given(st.text("ab*?/", max_size=6), st.text("ab*?/", max_size=6), st.text("ab/", max_size=6))
def test_intersects_is_true_whenever_one_string_matches_both(left: str, right: str, text: str) -> None:
    from remediator.core.patterns import matches

    if matches(text, left) and matches(text, right):
        assert intersects(left, right)
    if "*" not in left + right and "?" not in left + right:
        assert intersects(left, right) == (left == right)
