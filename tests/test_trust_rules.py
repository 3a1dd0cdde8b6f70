"""One test (or a few) per rule of docs/trust-model.md."""

from __future__ import annotations

import json
from typing import Any

import pytest

from remediator.core import ConfigError, FindingKind, TrustConfig, evaluate_policy
from tests.conftest import OWNER, PARTNER, STRANGER, TRUSTED_ORG


def allow(principal: Any, condition: dict | None = None, **extra: Any) -> dict:
    statement: dict[str, Any] = {"Effect": "Allow", "Principal": principal, "Action": "execute-api:Invoke", "Resource": "execute-api:/*"}
    if condition is not None:
        statement["Condition"] = condition
    statement.update(extra)
    return statement


def policy(*statements: dict) -> dict:
    return {"Version": "2012-10-17", "Statement": list(statements)}


def kinds(evaluation) -> list[tuple[str, str, str]]:
    return [(f.kind.value, f.principal, f.remediation.value) for f in evaluation.findings]


# --- accounts -----------------------------------------------------------------------------------

@pytest.mark.parametrize(
    "principal",
    [
        STRANGER,
        f"arn:aws:iam::{STRANGER}:root",
        f"arn:aws:iam::{STRANGER}:role/path/developer",
        f"arn:aws:iam::{STRANGER}:user/Alice",
        f"arn:aws:sts::{STRANGER}:assumed-role/partner/session-1",
        f"arn:aws-cn:iam::{STRANGER}:root",
        f"arn:aws-us-gov:iam::{STRANGER}:role/x",
        f"arn:aws-iso:iam::{STRANGER}:root",
        f"arn:aws-iso-b:iam::{STRANGER}:root",
    ],
)
def test_untrusted_account_forms_are_removed(config: TrustConfig, principal: str) -> None:
    evaluation = evaluate_policy(policy(allow({"AWS": principal})), config)
    (finding,) = evaluation.findings
    assert finding.kind is FindingKind.UNTRUSTED_ACCOUNT
    assert finding.account == STRANGER
    assert finding.remediation.value == "remove"
    assert finding.principal == principal


@pytest.mark.parametrize("account", [OWNER, PARTNER])
def test_owner_and_trusted_accounts_pass(config: TrustConfig, account: str) -> None:
    evaluation = evaluate_policy(policy(allow({"AWS": [account, f"arn:aws:iam::{account}:role/r"]})), config)
    assert evaluation.compliant
    assert evaluation.patch_operations == []
    assert evaluation.remediated_policy is None


def test_owner_is_trusted_even_when_not_listed() -> None:
    config = TrustConfig(owner_account=OWNER)
    assert evaluate_policy(policy(allow(OWNER)), config).compliant


def test_orphaned_unique_ids_are_removed(config: TrustConfig) -> None:
    evaluation = evaluate_policy(policy(allow({"AWS": ["AROAEXAMPLEDELETEDROLE", "AIDAJQABLZS4A3QDU576Q"]})), config)
    assert [f.kind for f in evaluation.findings] == [FindingKind.ORPHANED_PRINCIPAL] * 2
    assert all(f.remediation.value == "remove" for f in evaluation.findings)


@pytest.mark.parametrize("principal", ["*", {"AWS": "*"}, ["*"], {"AWS": ["*", OWNER]}, {"AWS": "arn:aws:iam::*:root"}])
def test_wildcards_are_report_only_by_default(config: TrustConfig, principal: Any) -> None:
    evaluation = evaluate_policy(policy(allow(principal)), config)
    assert [f.kind for f in evaluation.findings] == [FindingKind.WILDCARD_PRINCIPAL]
    assert evaluation.findings[0].remediation.value == "report-only"
    assert evaluation.patch_operations == []


def test_wildcards_are_removed_when_configured() -> None:
    config = TrustConfig(owner_account=OWNER, remove_wildcard_principals=True)
    evaluation = evaluate_policy(policy(allow({"AWS": ["*", OWNER]})), config)
    assert evaluation.remediated_policy["Statement"][0]["Principal"] == {"AWS": [OWNER]}


def test_not_principal_in_allow_is_report_only(config: TrustConfig) -> None:
    statement = {"Effect": "Allow", "NotPrincipal": {"AWS": OWNER}, "Action": "execute-api:Invoke", "Resource": "*"}
    evaluation = evaluate_policy(policy(statement), config)
    assert kinds(evaluation) == [("not-principal", json.dumps({"AWS": OWNER}, separators=(",", ":")), "report-only")]


@pytest.mark.parametrize("principal", ["account-id-2", "12345", "arn:aws:iam::account-id-2:role/x", "arn:aws:s3:::bucket", "arn:evil:iam::999999999999:root",
                                       "\u0661" * 12, "arn:aws:iam::" + "\uff11" * 12 + ":root"])  # digits, but not an account ID
def test_unparsable_principals_are_report_only(config: TrustConfig, principal: str) -> None:
    evaluation = evaluate_policy(policy(allow({"AWS": principal})), config)
    assert kinds(evaluation) == [("unrecognized-principal", principal, "report-only")]


def test_non_string_principal_entries_are_unrecognized(config: TrustConfig) -> None:
    evaluation = evaluate_policy(policy(allow({"AWS": [123456789012]}), allow({"Weird": "x"})), config)
    assert [f.kind for f in evaluation.findings] == [FindingKind.UNRECOGNIZED_PRINCIPAL] * 2


@pytest.mark.parametrize(
    "principal",
    [
        {"Service": "lambda.amazonaws.com"},
        {"Federated": "cognito-identity.amazonaws.com"},
        {"CanonicalUser": "79a59df900b949e55d96a1e698fbacedfd6e09d98eacf8f8d5218e7cd47ef2be"},
        {"AWS": "arn:aws:iam::cloudfront:user/CloudFront Origin Access Identity E15MNIMTCFKK4C"},
    ],
)
def test_non_account_principals_are_left_alone(config: TrustConfig, principal: dict) -> None:
    assert evaluate_policy(policy(allow(principal)), config).compliant


def test_deny_statements_are_never_reported(config: TrustConfig) -> None:
    deny = {"Effect": "Deny", "Principal": {"AWS": [STRANGER, "*", "AROAEXAMPLEDELETEDROLE"]}, "Action": "*", "Resource": "*"}
    assert evaluate_policy(policy(deny), config).compliant


def test_statements_without_effect_or_principal_grant_nothing(config: TrustConfig) -> None:
    assert evaluate_policy({"Statement": {"Action": "execute-api:Invoke", "Resource": "*"}}, config).compliant
    assert evaluate_policy(policy({"Effect": "Allow", "Action": "*", "Resource": "*"}), config).compliant


# --- conditions ---------------------------------------------------------------------------------

@pytest.mark.parametrize(
    "condition",
    [
        {"StringEquals": {"aws:PrincipalAccount": OWNER}},
        {"StringEquals": {"aws:principalaccount": [OWNER, PARTNER]}},
        {"StringEqualsIgnoreCase": {"AWS:PrincipalOrgID": TRUSTED_ORG.upper()}},
        {"StringLike": {"aws:PrincipalOrgPaths": f"{TRUSTED_ORG}/r-ab12/ou-ab12-11111111/*"}},
        {"ForAnyValue:StringLike": {"aws:PrincipalOrgPaths": [f"{TRUSTED_ORG}/r-ab12/*"]}},
        {"ArnLike": {"aws:PrincipalArn": f"arn:aws:iam::{OWNER}:role/*"}},
        {"ArnEquals": {"aws:PrincipalArn": f"arn:aws:iam::{PARTNER}:role/caller"}},
        {"StringEquals": {"aws:SourceAccount": OWNER}},
        {"StringEquals": {"aws:SourceOwner": PARTNER}},
        {"ArnLike": {"aws:SourceArn": f"arn:aws:sns:*:{OWNER}:*"}},
        {"ForAnyValue:StringEquals": {"aws:PrincipalAccount": [OWNER]}},
        {"IpAddress": {"aws:SourceIp": "10.0.0.0/8"}, "StringEquals": {"aws:PrincipalOrgID": TRUSTED_ORG}},
    ],
)
def test_conditions_that_confine_callers_to_trusted_identities(config: TrustConfig, condition: dict) -> None:
    evaluation = evaluate_policy(policy(allow({"AWS": ["*", STRANGER]}, condition)), config)
    assert evaluation.compliant, kinds(evaluation)


@pytest.mark.parametrize(
    ("condition", "why"),
    [
        ({"StringEquals": {"aws:PrincipalAccount": [OWNER, STRANGER]}}, f"admits {STRANGER}"),
        ({"StringLike": {"aws:PrincipalAccount": "1111*"}}, "admits 1111*"),
        ({"StringEquals": {"aws:PrincipalOrgID": "o-untrusted00"}}, "admits o-untrusted00"),
        ({"StringLike": {"aws:PrincipalOrgID": "o-*"}}, "admits o-*"),
        ({"ForAllValues:StringEquals": {"aws:PrincipalAccount": OWNER}}, "ForAllValues"),
        ({"StringEqualsIfExists": {"aws:PrincipalAccount": OWNER}}, "IfExists"),
        ({"ForAnyValue:StringEqualsIfExists": {"aws:PrincipalOrgID": TRUSTED_ORG}}, "IfExists"),
        ({"StringNotEquals": {"aws:PrincipalAccount": STRANGER}}, "not an equality"),
        ({"ArnLike": {"aws:PrincipalArn": "arn:aws:iam::*:role/x"}}, "admits arn:aws:iam::*:role/x"),
        ({"StringLike": {"aws:PrincipalArn": f"arn:*:iam::{OWNER}:role/x"}}, "admits"),
        ({"StringLike": {"aws:PrincipalArn": f"arn:aws:iam::{OWNER}*"}}, "admits"),
        ({"ArnLike": {"aws:SourceArn": "arn:aws:s3:::bucket"}}, "admits"),
    ],
)
def test_conditions_that_do_not_restrict(config: TrustConfig, condition: dict, why: str) -> None:
    evaluation = evaluate_policy(policy(allow({"AWS": ["*", STRANGER]}, condition)), config)
    assert [f.kind for f in evaluation.findings] == [FindingKind.WILDCARD_PRINCIPAL, FindingKind.UNTRUSTED_ACCOUNT]
    assert all(why in f.detail for f in evaluation.findings)


@pytest.mark.parametrize("key", ["aws:SourceIp", "aws:VpcSourceIp", "aws:SourceVpc", "aws:sourceVpce"])
def test_network_conditions_never_restrict_the_account(config: TrustConfig, key: str) -> None:
    evaluation = evaluate_policy(policy(allow({"AWS": STRANGER}, {"StringEquals": {key: "vpce-1"}})), config)
    (finding,) = evaluation.findings
    assert finding.kind is FindingKind.UNTRUSTED_ACCOUNT and finding.remediation.value == "remove"
    assert "network-scoped" in finding.detail and key in finding.detail


def test_a_deny_on_the_network_is_noted_but_does_not_restrict(config: TrustConfig) -> None:
    deny = {"Effect": "Deny", "Principal": "*", "Action": "*", "Resource": "*", "Condition": {"StringNotEquals": {"aws:SourceVpce": "vpce-1"}}}
    evaluation = evaluate_policy(policy(allow("*"), deny), config)
    (finding,) = evaluation.findings
    assert finding.kind is FindingKind.WILDCARD_PRINCIPAL
    assert "network-scoped by a Deny on aws:SourceVpce" in finding.detail


def test_orphans_are_still_reported_under_a_confining_condition(config: TrustConfig) -> None:
    evaluation = evaluate_policy(policy(allow({"AWS": ["AROAEXAMPLEDELETEDROLE"]}, {"StringEquals": {"aws:PrincipalAccount": OWNER}})), config)
    assert [f.kind for f in evaluation.findings] == [FindingKind.ORPHANED_PRINCIPAL]


# --- the fix ------------------------------------------------------------------------------------

def test_fix_removes_exactly_the_untrusted_entries_and_keeps_everything_else(config: TrustConfig) -> None:
    original = {
        "Version": "2012-10-17",
        "Id": "keep-me",
        "Statement": [
            {"Sid": "Mixed", "Effect": "Allow", "Principal": {"AWS": [f"arn:aws:iam::{OWNER}:root", STRANGER, "AROAEXAMPLEDELETEDROLE", PARTNER], "Service": "lambda.amazonaws.com"},
             "Action": ["execute-api:Invoke"], "Resource": "execute-api:/prod/*", "Condition": {"IpAddress": {"aws:SourceIp": "10.0.0.0/8"}}},
            {"Effect": "Deny", "Principal": {"AWS": STRANGER}, "Action": "*", "Resource": "*"},
            {"Effect": "Allow", "Principal": {"AWS": STRANGER}, "Action": "execute-api:Invoke", "Resource": "*"},
            {"Effect": "Allow", "Principal": {"AWS": STRANGER, "Service": "apigateway.amazonaws.com"}, "Action": "execute-api:Invoke", "Resource": "*"},
        ],
    }
    before = json.dumps(original)
    evaluation = evaluate_policy(original, config)
    assert json.dumps(original) == before, "the input must not be mutated"
    fixed = evaluation.remediated_policy
    assert fixed == {
        "Version": "2012-10-17",
        "Id": "keep-me",
        "Statement": [
            {"Sid": "Mixed", "Effect": "Allow", "Principal": {"AWS": [f"arn:aws:iam::{OWNER}:root", PARTNER], "Service": "lambda.amazonaws.com"},
             "Action": ["execute-api:Invoke"], "Resource": "execute-api:/prod/*", "Condition": {"IpAddress": {"aws:SourceIp": "10.0.0.0/8"}}},
            {"Effect": "Deny", "Principal": {"AWS": STRANGER}, "Action": "*", "Resource": "*"},
            {"Effect": "Allow", "Principal": {"Service": "apigateway.amazonaws.com"}, "Action": "execute-api:Invoke", "Resource": "*"},
        ],
    }
    assert list(fixed["Statement"][0]) == list(original["Statement"][0]), "key order is kept"
    (operation,) = evaluation.patch_operations
    assert operation["op"] == "replace" and operation["path"] == "/policy"
    assert json.loads(operation["value"]) == fixed
    assert " " not in operation["value"].replace("Origin Access", "")


def test_bare_list_and_bare_string_principals(config: TrustConfig) -> None:
    fixed = evaluate_policy(policy(allow([OWNER, STRANGER]), allow(STRANGER)), config).remediated_policy
    assert fixed["Statement"] == [allow([OWNER])]


def test_all_statements_removed_leaves_the_owner_in_its_partition(config: TrustConfig) -> None:
    gov = TrustConfig(owner_account=OWNER, partition="aws-us-gov")
    for cfg, partition in ((config, "aws"), (gov, "aws-us-gov")):
        fixed = evaluate_policy({"Statement": allow({"AWS": f"arn:{partition}:iam::{STRANGER}:root"})}, cfg).remediated_policy
        assert fixed == {
            "Statement": [{"Effect": "Allow", "Principal": {"AWS": f"arn:{partition}:iam::{OWNER}:root"}, "Action": "execute-api:Invoke", "Resource": "execute-api:/*"}],
            "Version": "2012-10-17",
        }
        assert evaluate_policy(fixed, cfg).compliant


def test_single_object_statement_stays_an_object(config: TrustConfig) -> None:
    fixed = evaluate_policy({"Statement": allow({"AWS": [OWNER, STRANGER]})}, config).remediated_policy
    assert fixed["Statement"] == allow({"AWS": [OWNER]})


def test_report_only_findings_produce_no_patch(config: TrustConfig) -> None:
    evaluation = evaluate_policy(policy(allow("*"), allow("account-id-2")), config)
    assert not evaluation.compliant and evaluation.patch_operations == [] and evaluation.remediated_policy is None


def test_duplicate_untrusted_entries_are_all_removed(config: TrustConfig) -> None:
    fixed = evaluate_policy(policy(allow({"AWS": [STRANGER, OWNER, STRANGER]})), config).remediated_policy
    assert fixed["Statement"][0]["Principal"] == {"AWS": [OWNER]}


# --- configuration ------------------------------------------------------------------------------

@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"owner_account": "1234"}, "owner account '1234'"),
        ({"owner_account": "\uff11" * 12}, "is not a 12-digit account ID"),  # fullwidth digits
        ({"owner_account": OWNER, "trusted_accounts": frozenset({"12345678901x"})}, "trusted account '12345678901x'"),
        ({"owner_account": OWNER, "trusted_org_ids": frozenset({"org-1"})}, "organization 'org-1'"),
        ({"owner_account": OWNER, "partition": "mars"}, "partition 'mars'"),
    ],
)
def test_bad_configuration_is_rejected(kwargs: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        TrustConfig(**kwargs)
