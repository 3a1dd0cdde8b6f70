"""The fix's guarantees, checked over generated policies."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from remediator.core import TrustConfig, evaluate_policy, parse_policy, statements_of
from tests.conftest import OWNER, PARTNER, STRANGER, TRUSTED_ORG

CONFIG = TrustConfig(owner_account=OWNER, trusted_accounts=frozenset({PARTNER}), trusted_org_ids=frozenset({TRUSTED_ORG}))
WILDCARD_CONFIG = TrustConfig(owner_account=OWNER, trusted_accounts=frozenset({PARTNER}), remove_wildcard_principals=True)

aws_entries = st.sampled_from(
    [
        OWNER, PARTNER, STRANGER, "123456789012", "*",
        f"arn:aws:iam::{OWNER}:root", f"arn:aws:iam::{STRANGER}:role/x", f"arn:aws:sts::{STRANGER}:assumed-role/r/s",
        f"arn:aws:iam::{PARTNER}:user/u", "arn:aws:iam::*:root", "AROAEXAMPLEDELETEDROLE", "AIDAJQABLZS4A3QDU576Q",
        "account-id-2", "arn:aws:iam::cloudfront:user/CloudFront Origin Access Identity E1",
    ]
)
entry_lists = st.lists(aws_entries, min_size=1, max_size=4)
principals = st.one_of(
    st.just("*"),
    aws_entries,
    entry_lists,
    st.fixed_dictionaries({"AWS": st.one_of(aws_entries, entry_lists)}),
    st.fixed_dictionaries(
        {"AWS": st.one_of(aws_entries, entry_lists)},
        optional={"Service": st.just("lambda.amazonaws.com"), "Federated": st.just("cognito-identity.amazonaws.com")},
    ),
    st.just({"Service": ["apigateway.amazonaws.com"]}),
)
conditions = st.sampled_from(
    [
        None,
        {"StringEquals": {"aws:PrincipalAccount": OWNER}},
        {"StringEquals": {"aws:PrincipalAccount": [OWNER, STRANGER]}},
        {"StringEquals": {"aws:PrincipalOrgID": TRUSTED_ORG}},
        {"ForAllValues:StringEquals": {"aws:PrincipalAccount": OWNER}},
        {"IpAddress": {"aws:SourceIp": "10.0.0.0/8"}},
        {"StringNotEquals": {"aws:SourceVpce": "vpce-1"}},
    ]
)


@st.composite
def statements(draw: st.DrawFn) -> dict[str, Any]:
    statement: dict[str, Any] = {}
    if draw(st.booleans()):
        statement["Sid"] = draw(st.sampled_from(["A", "B", "Partner"]))
    effect = draw(st.sampled_from(["Allow", "Allow", "Deny", None]))
    if effect:
        statement["Effect"] = effect
    key = draw(st.sampled_from(["Principal"] * 6 + ["NotPrincipal", None]))
    if key:
        statement[key] = draw(principals)
    statement["Action"] = draw(st.sampled_from(["execute-api:Invoke", ["execute-api:Invoke", "execute-api:InvalidateCache"], "*"]))
    statement["Resource"] = draw(st.sampled_from(["execute-api:/*", "execute-api:/prod/GET/*", ["execute-api:/a/*", "execute-api:/b/*"]]))
    condition = draw(conditions)
    if condition is not None:
        statement["Condition"] = condition
    return statement


@st.composite
def policies(draw: st.DrawFn) -> dict[str, Any]:
    document: dict[str, Any] = {}
    if draw(st.booleans()):
        document["Version"] = "2012-10-17"
    if draw(st.booleans()) and draw(st.booleans()):
        document["Id"] = "policy-id"
    items = draw(st.lists(statements(), min_size=1, max_size=5))
    document["Statement"] = items[0] if len(items) == 1 and draw(st.booleans()) else items
    return document


def _entries(principal: Any) -> list[tuple[str, str]]:
    if isinstance(principal, str):
        return [("AWS", principal)]
    if isinstance(principal, list):
        return [("AWS", entry) for entry in principal]
    return [(key, entry) for key, value in principal.items() for entry in (value if isinstance(value, list) else [value])]


def grants(document: dict[str, Any]) -> set[tuple[str, str, str, str]]:
    """Every (principal element, principal type, entry, rest of the statement) an Allow statement grants."""
    result = set()
    for statement in statements_of(document):
        if statement.get("Effect") != "Allow":
            continue
        rest = json.dumps({k: v for k, v in statement.items() if k not in ("Principal", "NotPrincipal")}, sort_keys=True)
        for element in ("Principal", "NotPrincipal"):
            if element in statement:
                result.update((element, kind, entry, rest) for kind, entry in _entries(statement[element]))
    return result


def is_owner_fallback(document: dict[str, Any]) -> bool:
    return statements_of(document) == [
        {"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{OWNER}:root"}, "Action": "execute-api:Invoke", "Resource": "execute-api:/*"}
    ]


def non_allow(document: dict[str, Any]) -> list[dict[str, Any]]:
    return [s for s in statements_of(document) if s.get("Effect") != "Allow"]


PROPERTY_SETTINGS = settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@PROPERTY_SETTINGS
@given(policies(), st.sampled_from([CONFIG, WILDCARD_CONFIG]))
def test_fix_never_grants_anything_new_and_removes_exactly_the_findings(document: dict[str, Any], config: TrustConfig) -> None:
    snapshot = json.dumps(document)
    evaluation = evaluate_policy(document, config)
    assert json.dumps(document) == snapshot
    fixed = evaluation.remediated_policy
    removals = [f for f in evaluation.findings if f.remediation.value == "remove"]
    if fixed is None:
        assert not removals and evaluation.patch_operations == []
        return
    assert removals
    before, after = grants(document), grants(fixed)
    if is_owner_fallback(fixed) and not non_allow(document):
        # The one deliberate exception: with every statement gone, the owner (and only the owner) keeps access.
        assert {(element, kind, entry) for element, kind, entry, _ in after} == {("Principal", "AWS", f"arn:aws:iam::{OWNER}:root")}
        return
    assert after <= before, "the fix granted something new"
    removed = {(entry, kind) for (_, kind, entry, _) in before - after}
    assert removed == {(f.principal, "AWS") for f in removals}


@PROPERTY_SETTINGS
@given(policies(), st.sampled_from([CONFIG, WILDCARD_CONFIG]))
def test_fix_is_idempotent(document: dict[str, Any], config: TrustConfig) -> None:
    evaluation = evaluate_policy(document, config)
    fixed = evaluation.remediated_policy
    if fixed is None:
        return
    (operation,) = evaluation.patch_operations
    assert parse_policy(operation["value"]) == fixed
    again = evaluate_policy(operation["value"], config)
    assert again.remediated_policy is None
    assert again.patch_operations == []
    assert not [f for f in again.findings if f.remediation.value == "remove"]


@PROPERTY_SETTINGS
@given(policies(), st.sampled_from([CONFIG, WILDCARD_CONFIG]))
def test_deny_statements_come_out_identical(document: dict[str, Any], config: TrustConfig) -> None:
    fixed = evaluate_policy(document, config).remediated_policy
    if fixed is not None:
        assert non_allow(fixed) == non_allow(document)
        assert {k: v for k, v in fixed.items() if k != "Statement"} == {
            **{k: v for k, v in document.items() if k != "Statement"},
            **({"Version": "2012-10-17"} if is_owner_fallback(fixed) and "Version" not in document else {}),
        }


@PROPERTY_SETTINGS
@given(policies(), st.sampled_from([CONFIG, WILDCARD_CONFIG]))
def test_owner_is_never_locked_out(document: dict[str, Any], config: TrustConfig) -> None:
    fixed = evaluate_policy(document, config).remediated_policy
    if fixed is None:
        return
    assert statements_of(fixed), "the API keeps a policy"
    trusted_grants = {g for g in grants(document) if g[1] == "AWS" and (OWNER in g[2] or PARTNER in g[2])}
    assert trusted_grants <= grants(fixed) or is_owner_fallback(fixed)
    if not [s for s in statements_of(fixed) if s.get("Effect") == "Allow"] and not non_allow(document):
        raise AssertionError("an all-Allow policy lost every Allow")
