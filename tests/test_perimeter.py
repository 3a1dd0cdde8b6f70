"""Identity perimeters (docs/trust-model.md): a wildcard Allow guarded by AWS's "deny everyone outside my
organization" is not reported; every Deny that is anything less (or more narrow) earns no credit."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
from hypothesis import given, settings, strategies as st

from remediator.core import Remediation, TrustConfig, evaluate_policy
from tests.conftest import OWNER, PARTNER, STRANGER, TRUSTED_ORG

CONFIG = TrustConfig(owner_account=OWNER, trusted_accounts=frozenset({PARTNER}), trusted_org_ids=frozenset({TRUSTED_ORG}))
OPEN = {"Effect": "Allow", "Principal": "*", "Action": "execute-api:Invoke", "Resource": "execute-api:/*"}
# AWS's data-perimeter example for API Gateway resource policies.
PERIMETER = {"Sid": "AllowOnlyMyOrganization", "Effect": "Deny", "Principal": "*", "Action": "execute-api:Invoke",
             "Resource": "execute-api:/*",
             "Condition": {"StringNotEqualsIfExists": {"aws:PrincipalOrgID": TRUSTED_ORG},
                           "BoolIfExists": {"aws:PrincipalIsAWSService": "false"}}}


def policy(*statements: dict) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)})


def deny(**changes: Any) -> dict:
    statement = copy.deepcopy(PERIMETER)
    for key, value in changes.items():
        if value is None:
            statement.pop(key, None)
        else:
            statement[key] = value
    return statement


@pytest.mark.parametrize("perimeter", [
    PERIMETER,
    deny(Condition={"StringNotEquals": {"aws:PrincipalOrgID": [TRUSTED_ORG]}}),
    deny(Condition={"StringNotEquals": {"aws:PrincipalAccount": [OWNER, PARTNER]}}),
    deny(Condition={"ArnNotLike": {"aws:PrincipalArn": [f"arn:aws:iam::{OWNER}:role/*", f"arn:aws:iam::{PARTNER}:root"]}}),
    deny(Principal={"AWS": "*"}, Action="*", Resource="*"),
    deny(Action=None, NotAction="execute-api:ManageConnections"),
    deny(Action=["execute-api:*"], Resource=["arn:aws:execute-api:eu-west-1:111122223333:abcdefghij/*"]),
    # Tests are ANDed: the callers let through are the organization's and the owner's, all trusted.
    deny(Condition={"StringNotEquals": {"aws:PrincipalOrgID": TRUSTED_ORG},
                    "StringNotEqualsIgnoreCase": {"aws:PrincipalAccount": OWNER}}),
])
def test_a_wildcard_behind_an_identity_perimeter_is_not_reported(perimeter: dict) -> None:
    allow = dict(OPEN, Resource="arn:aws:execute-api:eu-west-1:111122223333:abcdefghij/*") if "arn:" in json.dumps(perimeter["Resource"]) else OPEN
    evaluation = evaluate_policy(policy(allow, perimeter), CONFIG)
    assert evaluation.compliant and evaluation.patch_operations == []
    (note,) = evaluation.notes
    assert "guarded by the identity perimeter Deny in statement 1" in note


COUNTER_EXAMPLES = {
    "principal not *": deny(Principal={"AWS": STRANGER}),
    "NotPrincipal": deny(Principal=None, NotPrincipal={"AWS": OWNER}),
    "actions miss Invoke": deny(Action="execute-api:ManageConnections"),
    "NotAction excludes Invoke": deny(Action=None, NotAction="execute-api:Inv*"),
    "resources miss some": deny(Resource="execute-api:/prod/*"),
    "NotResource": deny(Resource=None, NotResource="execute-api:/prod/*"),
    "operator not negated": deny(Condition={"StringEquals": {"aws:PrincipalOrgID": TRUSTED_ORG}}),
    "untrusted organization": deny(Condition={"StringNotEquals": {"aws:PrincipalOrgID": "o-zzzzzzzzzz"}}),
    "wildcard organization": deny(Condition={"StringNotLike": {"aws:PrincipalOrgID": "o-*"}}),
    "untrusted account": deny(Condition={"StringNotEquals": {"aws:PrincipalAccount": [OWNER, STRANGER]}}),
    "wildcard account in an ARN": deny(Condition={"ArnNotLike": {"aws:PrincipalArn": "arn:aws:iam::*:root"}}),
    "two identity blocks, one untrusted": deny(Condition={"StringNotEquals": {"aws:PrincipalOrgID": TRUSTED_ORG},
                                                          "StringNotEqualsIgnoreCase": {"aws:PrincipalAccount": STRANGER}}),
    "AWS services let through": deny(Condition={"StringNotEquals": {"aws:PrincipalOrgID": TRUSTED_ORG},
                                                "Bool": {"aws:PrincipalIsAWSService": "true"}}),
    "another key narrows it": deny(Condition={"StringNotEquals": {"aws:PrincipalOrgID": TRUSTED_ORG},
                                              "IpAddress": {"aws:SourceIp": "10.0.0.0/8"}}),
    "another key in the block": deny(Condition={"StringNotEquals": {"aws:PrincipalOrgID": TRUSTED_ORG, "aws:SourceVpce": "vpce-1"}}),
    "no condition": deny(Condition=None),
}


@pytest.mark.parametrize("name", list(COUNTER_EXAMPLES))
def test_anything_less_than_a_perimeter_earns_no_credit(name: str) -> None:
    evaluation = evaluate_policy(policy(OPEN, COUNTER_EXAMPLES[name]), CONFIG)
    assert [f.kind.value for f in evaluation.findings] == ["wildcard-principal"], name
    assert evaluation.notes == ()


def test_an_untrusted_account_behind_a_perimeter_is_still_removed() -> None:
    allow = {"Effect": "Allow", "Principal": {"AWS": [OWNER, STRANGER]}, "Action": "execute-api:Invoke", "Resource": "execute-api:/*"}
    evaluation = evaluate_policy(policy(OPEN, PERIMETER, allow), CONFIG)
    (finding,) = evaluation.findings
    assert finding.account == STRANGER and finding.remediation is Remediation.REMOVE
    assert "the identity perimeter Deny in statement 1 (AllowOnlyMyOrganization) also blocks it" in finding.detail
    fixed = json.loads(evaluation.patch_operations[0]["value"])
    assert fixed["Statement"][1] == PERIMETER, "the perimeter is kept as it was"


@settings(max_examples=200, deadline=None)
@given(st.lists(st.sampled_from([OWNER, PARTNER, STRANGER, "*", f"arn:aws:iam::{STRANGER}:root"]), min_size=1, max_size=4),
       st.integers(0, 2))
def test_the_fix_never_makes_a_perimeter_policy_less_strict(principals: list[str], where: int) -> None:
    allow = {"Effect": "Allow", "Principal": {"AWS": principals}, "Action": "execute-api:Invoke", "Resource": "execute-api:/*"}
    statements = [allow, OPEN]
    statements.insert(where, PERIMETER)
    evaluation = evaluate_policy(policy(*statements), CONFIG)
    for operation in evaluation.patch_operations:
        fixed = json.loads(operation["value"])["Statement"]
        assert PERIMETER in fixed, "the Deny survives every fix, unchanged"
        assert [s for s in fixed if s.get("Effect") == "Deny"] == [PERIMETER]
