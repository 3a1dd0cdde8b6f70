"""Identity-perimeter credit by AWS's documented semantics (docs/trust-model.md, "Identity perimeters").

Every Deny the engine refuses to credit comes with a caller AWS would let through: a small evaluator of
the documented rules (absent keys, IfExists, ANDed tests, ORed values, IAM wildcards, ArnLike field by
field) shows that caller getting past the Deny while the wildcard Allow admits it. Conversely, whatever the
engine credits, no generated caller outside the trusted set gets past it. AWS's own published template
(tests/data/perimeter/) earns credit: no false alarm.
"""

from __future__ import annotations

import itertools
import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import example, given, settings, strategies as st

from remediator.core import TrustConfig, evaluate_policy
from remediator.core.patterns import covers, matches
from remediator.core.trust import reference_evaluate
from tests.conftest import OWNER, PARTNER, STRANGER, TRUSTED_ORG

CONFIG = TrustConfig(owner_account=OWNER, trusted_accounts=frozenset({PARTNER}), trusted_org_ids=frozenset({TRUSTED_ORG}))
OTHER_ORG = "o-zz9y8x7w6v"
API = "arn:aws:execute-api:eu-west-1:111122223333:abcdefghij"
OPEN = {"Effect": "Allow", "Principal": "*", "Action": "execute-api:Invoke", "Resource": "execute-api:/*"}
TEMPLATE = Path(__file__).parent / "data" / "perimeter" / "s3_bucket_policy.json"


def deny(condition: dict[str, Any], resource: Any = "execute-api:/*") -> dict[str, Any]:
    return {"Effect": "Deny", "Principal": "*", "Action": "execute-api:Invoke", "Resource": resource, "Condition": condition}


def policy(*statements: dict[str, Any]) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)})


# --- A small evaluator of AWS's documented condition semantics, for the counterexamples -----------------

def _arn_fields_match(value: str, pattern: str) -> bool:
    """ArnLike/ArnEquals: each of the six colon-delimited fields matched on its own."""
    values, patterns = value.split(":", 5), pattern.split(":", 5)
    return len(values) == len(patterns) == 6 and all(matches(v, p) for v, p in zip(values, patterns))


def _match(operator: str, value: Any, wanted: str) -> bool | None:
    """One value against one policy value; None when the operator cannot compare this value (wrong type)."""
    if operator.startswith("Arn"):
        return _arn_fields_match(value, wanted) if isinstance(value, str) and value.startswith("arn:") else None
    if operator.startswith("Bool"):
        return str(value).lower() == str(wanted).lower()
    if "IgnoreCase" in operator:
        return value.lower() == wanted.lower()
    if "Like" in operator:
        return matches(value, wanted)
    return value == wanted


def aws_test(operator: str, key: str, wanted: Any, context: dict[str, Any]) -> bool:
    """One Condition test as IAM documents it: a missing key makes a positive operator false, a negated
    one (and ...IfExists) true; ForAnyValue:/ForAllValues: on a single-valued key as documented for sets."""
    prefix = ""
    if ":" in operator and operator.startswith("For"):
        prefix, operator = operator.split(":", 1)
    if_exists = operator.endswith("IfExists")
    base = operator[: -len("IfExists")] if if_exists else operator
    negated = "Not" in base
    present = key.lower() in context
    if not present:
        return True if if_exists or prefix == "ForAllValues" else (False if prefix == "ForAnyValue" else negated)
    values = wanted if isinstance(wanted, list) else [wanted]
    results = [_match(base.replace("Not", ""), context[key.lower()], str(v)) for v in values]
    if any(r is None for r in results):
        return False  # a comparison IAM cannot make: no match, and the Deny does not apply
    hit = any(results)
    return not hit if negated else hit


def deny_applies(statement: dict[str, Any], context: dict[str, Any], resource: str) -> bool:
    patterns = statement["Resource"] if isinstance(statement["Resource"], list) else [statement["Resource"]]
    expanded = [API + p[len("execute-api:"):] if p.startswith("execute-api:/") else p for p in patterns]
    if not any(matches(resource, p) for p in expanded):
        return False
    return all(aws_test(op, key, wanted, context) for op, block in statement["Condition"].items() for key, wanted in block.items())


def caller(account: str | None, org: str | None = None, arn: str | None = None, service: bool | None = False) -> dict[str, Any]:
    """A request context: None for an anonymous caller (no principal keys at all)."""
    if account is None:
        return {}
    context: dict[str, Any] = {"aws:principalaccount": account, "aws:principalarn": arn or f"arn:aws:iam::{account}:role/r"}
    if org:
        context["aws:principalorgid"] = org
    if service is not None:
        context["aws:principalisawsservice"] = "true" if service else "false"
    return context


def trusted(context: dict[str, Any]) -> bool:
    return context.get("aws:principalaccount") in (OWNER, PARTNER) or context.get("aws:principalorgid") == TRUSTED_ORG


# --- Each refused rule, with the caller AWS lets through -----------------------------------------------

PATH_TRICK = f"arn:aws:iam::{STRANGER}:role/x:iam::{OWNER}:role/y"
COUNTER_EXAMPLES: dict[str, tuple[dict[str, Any], dict[str, Any], str]] = {
    "a ? pattern does not cover /*": (
        deny({"StringNotEquals": {"aws:PrincipalOrgID": TRUSTED_ORG}}, "execute-api:/?"), caller(STRANGER), API + "/prod/GET/pets"),
    "a wildcard before the account field (IAM paths hold ':')": (
        deny({"StringNotLike": {"aws:PrincipalArn": f"arn:*:iam::{OWNER}:role/*"}}),
        caller(STRANGER, arn=PATH_TRICK), API + "/prod/GET/pets"),
    "a wildcard in the account field": (
        deny({"ArnNotLike": {"aws:PrincipalArn": f"arn:aws:iam::*{OWNER[-4:]}:role/*"}}),
        caller("999999993333", arn="arn:aws:iam::999999993333:role/r"), API + "/prod/GET/pets"),
    "plain Bool on aws:PrincipalIsAWSService (anonymous callers lack it)": (
        deny({"StringNotEquals": {"aws:PrincipalOrgID": TRUSTED_ORG}, "Bool": {"aws:PrincipalIsAWSService": "false"}}),
        caller(None), API + "/prod/GET/pets"),
    "an ARN operator on an account ID": (
        deny({"ArnNotEquals": {"aws:PrincipalAccount": OWNER}}), caller(STRANGER), API + "/prod/GET/pets"),
    "an ARN operator on an organization ID": (
        deny({"ArnNotLike": {"aws:PrincipalOrgID": TRUSTED_ORG}}), caller(STRANGER, OTHER_ORG), API + "/prod/GET/pets"),
    "an untrusted account in a multi-key block": (
        deny({"StringNotEqualsIfExists": {"aws:PrincipalOrgID": TRUSTED_ORG, "aws:PrincipalAccount": [PARTNER, STRANGER]}}),
        caller(STRANGER), API + "/prod/GET/pets"),
    "two spellings of one key, one untrusted": (
        deny({"StringNotEquals": {"aws:PrincipalAccount": OWNER, "AWS:PRINCIPALACCOUNT": STRANGER}}),
        caller(STRANGER), API + "/prod/GET/pets"),
    "a tag the caller sets itself": (
        deny({"StringNotEqualsIfExists": {"aws:PrincipalOrgID": TRUSTED_ORG, "aws:PrincipalTag/dp:exclude:identity": "true"}}),
        {**caller(STRANGER), "aws:principaltag/dp:exclude:identity": "true"}, API + "/prod/GET/pets"),
    "a positive operator (false for callers without the key)": (
        deny({"StringEquals": {"aws:PrincipalOrgID": OTHER_ORG}}), caller(STRANGER), API + "/prod/GET/pets"),
    "a set operator on a single-valued key": (
        deny({"ForAnyValue:StringNotEquals": {"aws:PrincipalOrgID": TRUSTED_ORG}}), caller(None), API + "/prod/GET/pets"),
    "a narrower resource": (
        deny({"StringNotEquals": {"aws:PrincipalOrgID": TRUSTED_ORG}}, "execute-api:/prod/*"), caller(STRANGER), API + "/dev/GET/pets"),
    "fnmatch's [..] is no IAM wildcard": (
        deny({"StringNotEquals": {"aws:PrincipalOrgID": TRUSTED_ORG}}, "execute-api:/[a-z]*"), caller(STRANGER), API + "/prod/GET/pets"),
}


@pytest.mark.parametrize("name", list(COUNTER_EXAMPLES))
def test_a_deny_aws_would_let_a_stranger_past_earns_no_credit(name: str) -> None:
    statement, context, resource = COUNTER_EXAMPLES[name]
    assert not trusted(context)
    assert not deny_applies(statement, context, resource), "AWS lets this caller past the Deny"
    for engine in (evaluate_policy, reference_evaluate):
        evaluation = engine(policy(OPEN, statement), CONFIG)
        (finding,) = evaluation.findings
        assert finding.kind.value == "wildcard-principal" and evaluation.notes == ()
        assert "the Deny in statement 1 earns no identity-perimeter credit: " in finding.detail, finding.detail


CREDITED = {
    "organization, IfExists": deny({"StringNotEqualsIfExists": {"aws:PrincipalOrgID": TRUSTED_ORG},
                                     "BoolIfExists": {"aws:PrincipalIsAWSService": "false"}}),
    "organization and partner accounts in one block": deny({"StringNotEqualsIfExists": {
        "aws:PrincipalOrgID": TRUSTED_ORG, "aws:PrincipalAccount": [OWNER, PARTNER]}}),
    "ARN with every field up to the account literal": deny({"StringNotLike": {"aws:PrincipalArn": f"arn:aws:iam::{OWNER}:role/*"}}),
    "two spellings, both trusted (ANDed: stricter)": deny({"StringNotEquals": {"aws:PrincipalAccount": OWNER,
                                                                              "AWS:PRINCIPALACCOUNT": PARTNER}}),
    "resource containment": deny({"StringNotEquals": {"aws:PrincipalOrgID": TRUSTED_ORG}}, ["execute-api:/*/GET/*", "execute-api:/*/POST/*"]),
}


@pytest.mark.parametrize("name", list(CREDITED))
def test_a_deny_aws_applies_to_every_stranger_earns_credit(name: str) -> None:
    statement = CREDITED[name]
    allow = dict(OPEN, Resource=["execute-api:/prod/GET/*", "execute-api:/*/POST/orders"]) if name == "resource containment" else OPEN
    for engine in (evaluate_policy, reference_evaluate):
        evaluation = engine(policy(allow, statement), CONFIG)
        assert evaluation.compliant, evaluation.findings
        assert "guarded by the identity perimeter Deny in statement 1" in evaluation.notes[0]
    for context in STRANGERS:
        assert deny_applies(statement, context, API + "/prod/GET/pets"), context


STRANGERS = [caller(None), caller(STRANGER), caller(STRANGER, OTHER_ORG), caller(STRANGER, arn=PATH_TRICK),
             caller(STRANGER, service=None), caller(STRANGER, OTHER_ORG, f"arn:aws:iam::{STRANGER}:user/{OWNER}")]


# --- Soundness, generated: whatever the engine credits, no stranger gets past -----------------------------

KEYS = ["aws:PrincipalOrgID", "aws:PrincipalAccount", "aws:PrincipalArn", "AWS:PRINCIPALACCOUNT", "aws:PrincipalIsAWSService",
        "aws:SourceVpce"]
OPERATORS = ["StringNotEquals", "StringNotEqualsIfExists", "StringNotLike", "StringNotEqualsIgnoreCase", "ArnNotLike",
             "ArnNotEquals", "ArnNotLikeIfExists", "StringEquals", "Bool", "BoolIfExists", "ForAnyValue:StringNotEquals",
             "ForAllValues:StringNotEquals"]
VALUES = [OWNER, PARTNER, STRANGER, TRUSTED_ORG, OTHER_ORG, "false", "true", "o-*", f"arn:aws:iam::{OWNER}:role/*",
          f"arn:*:iam::{OWNER}:role/*", f"arn:aws:iam::{OWNER}:*", "arn:aws:iam::*:root", f"arn:aws:iam::{STRANGER}:root"]
CONDITIONS = st.dictionaries(st.sampled_from(OPERATORS), st.dictionaries(
    st.sampled_from(KEYS), st.one_of(st.sampled_from(VALUES), st.lists(st.sampled_from(VALUES), min_size=1, max_size=3)),
    min_size=1, max_size=3), min_size=1, max_size=3)
RESOURCES = st.sampled_from(["execute-api:/*", "*", "execute-api:/prod/*", "execute-api:/?", "execute-api:/*/GET/*",
                             "execute-api:/p*"])


@settings(max_examples=400, deadline=None)
@given(CONDITIONS, RESOURCES)
def test_whatever_is_credited_denies_every_stranger(condition: dict[str, Any], resource: str) -> None:
    statement = deny(condition, resource)
    evaluation = evaluate_policy(policy(OPEN, statement), CONFIG)
    assert evaluation.compliant == reference_evaluate(policy(OPEN, statement), CONFIG).compliant
    if evaluation.compliant:
        for context, path in itertools.product(STRANGERS, ["/prod/GET/pets", "/d/POST/x", "/p"]):
            assert deny_applies(statement, context, API + path), (context, path)


ANY_CONDITIONS = st.dictionaries(
    st.sampled_from(OPERATORS + ["IpAddress", "NotIpAddress"]),
    st.one_of(st.dictionaries(st.sampled_from(KEYS + ["aws:SourceIp", "aws:userid", "AWS:PrincipalIsAWSService"]),
                              st.one_of(st.sampled_from(VALUES), st.lists(st.sampled_from(VALUES), max_size=3)), max_size=3),
              st.sampled_from(["", [], None, 1])),
    max_size=3)


@settings(max_examples=400, deadline=None)
@given(ANY_CONDITIONS, st.sampled_from(["*", {"AWS": "*"}, {"AWS": STRANGER}]))
@example({"StringNotEquals": {"aws:PrincipalOrgID": TRUSTED_ORG}}, "*")
@example({"StringNotEqualsIfExists": {"AWS:PrincipalAccount": [OWNER, PARTNER]}}, {"AWS": "*"})
@example({"ArnNotLike": {"aws:PrincipalArn": f"arn:aws:iam::{OWNER}:role/*"}}, "*")
@example({"StringNotEquals": {"aws:PrincipalOrgID": TRUSTED_ORG, "aws:PrincipalAccount": PARTNER},
          "BoolIfExists": {"aws:PrincipalIsAWSService": "false"}}, "*")
@example({"StringNotEquals": {"aws:PrincipalOrgID": TRUSTED_ORG}, "NotIpAddress": {"aws:SourceIp": "10.0.0.0/8"}}, "*")
def test_the_engines_quick_rejection_only_skips_denies_refusal_refuses(condition: dict[str, Any], principal: Any) -> None:
    """perimeters() skips refusal() for a Deny whose Condition tests a key no perimeter tests (most Denies, on
    the network): every Deny it skips is one refusal() refuses, so no credit is lost or gained by skipping."""
    from remediator.core.perimeter import only_perimeter_keys, perimeters, refusal

    statement = deny(condition) | {"Principal": principal}
    if not only_perimeter_keys(statement):
        assert refusal(statement, CONFIG) is not None
    assert perimeters([OPEN, statement], CONFIG) == ([1] if refusal(statement, CONFIG) is None else [])


# --- AWS's published template -----------------------------------------------------------------------------

def _template(org: str = TRUSTED_ORG, accounts: tuple[str, ...] = (PARTNER,)) -> list[dict[str, Any]]:
    """AWS's data-perimeter template, placeholders filled in, written for API Gateway."""
    text = TEMPLATE.read_text().replace("<my-org-id>", org).replace("<my-account-id>", OWNER)
    text = text.replace("<my-corporate-cidr>", "203.0.113.0/24").replace("<my-vpc>", "vpc-0123456789abcdef0")
    for placeholder, account in zip(("<load-balancing-account-id>", "<third-party-account-a>", "<third-party-account-b>"),
                                    itertools.cycle(accounts)):
        text = text.replace(placeholder, account)
    statements = json.loads(text)["Statement"]
    return [dict(s, Action="execute-api:Invoke", Resource="execute-api:/*") for s in statements]


def test_aws_data_perimeter_template_earns_credit() -> None:
    identity, network = _template()
    for engine in (evaluate_policy, reference_evaluate):
        evaluation = engine(policy(OPEN, identity), CONFIG)
        assert evaluation.compliant and evaluation.patch_operations == []
        assert "guarded by the identity perimeter Deny in statement 1 (EnforceIdentityPerimeter)" in evaluation.notes[0]
        # The whole template: the identity statement guards; the network one is no identity perimeter.
        assert engine(policy(OPEN, identity, network), CONFIG).compliant
        (finding,) = engine(policy(OPEN, network), CONFIG).findings
        assert "the Deny in statement 1 earns no identity-perimeter credit" in finding.detail


def test_aws_template_with_an_untrusted_partner_is_reported() -> None:
    identity, _ = _template(accounts=(PARTNER, STRANGER))
    (finding,) = evaluate_policy(policy(OPEN, identity), CONFIG).findings
    assert f"account {STRANGER} is not trusted" in finding.detail
    assert not deny_applies(identity | {"Resource": "execute-api:/*"}, caller(STRANGER), API + "/prod/GET/x")


# --- The pattern language ---------------------------------------------------------------------------------

ALPHABET = "a/:"


@settings(max_examples=500, deadline=None)
@given(st.text(alphabet="a/*?", max_size=5), st.text(alphabet="a/:*?", max_size=5))
def test_containment_agrees_with_brute_force(outer: str, inner: str) -> None:
    """Over a three-letter alphabet (plus one letter neither pattern uses), strings up to 7 long: a
    counterexample, if any, is that short for patterns this short."""
    letters = ALPHABET + "z"
    contained = all(matches(text, outer) for n in range(8) for text in map("".join, itertools.product(letters, repeat=n))
                    if matches(text, inner))
    assert covers(outer, inner) is contained, (outer, inner)


@pytest.mark.parametrize("outer, inner, expected", [
    ("execute-api:/*", "execute-api:/prod/*", True), ("execute-api:/?", "execute-api:/*", False),
    ("execute-api:/prod/*", "execute-api:/*", False), ("*", "anything/at:all", True),
    ("a*b", "a?b", True), ("a?b", "a*b", False), ("*a*", "x*a*", True), ("*ab*", "*a*b*", False),
    ("*/GET/*", "prod/GET/*", True), ("*/GET/*", "prod/*/pets", False),
])
def test_containment_examples(outer: str, inner: str, expected: bool) -> None:
    assert covers(outer, inner) is expected
