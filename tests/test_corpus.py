"""The trust engine over the real-world policies and escaped strings of the shared corpus."""

from __future__ import annotations

import json

import pytest

from remediator.core import TrustConfig, evaluate_policy, parse_policy
from tests.conftest import OWNER, corpus_dir

W, U, O, R = "wildcard-principal", "untrusted-account", "orphaned-principal", "unrecognized-principal"

# File number -> the findings' kinds, owner 111122223333 and nobody else trusted.
EXPECTED: dict[str, list[str]] = {
    "01": [R, R], "02": [], "03": [W], "04": [W], "05": [W], "06": [W], "07": [R, R], "08": [W], "09": [], "10": [W],
    "11": [W], "12": [W], "13": [W], "14": [W], "15": [W], "16": [W], "17": [W], "18": [W], "19": [W, W], "20": [W],
    "21": [], "22": [U, W], "23": [W], "24": [R, R], "25": [], "26": [R, W], "27": [W], "28": [], "29": [W], "30": [W],
    "31": [U], "32": [W], "33": [], "34": [], "35": [U, U], "36": [U, O], "37": [W], "38": [], "39": [W],
}
NETWORK_SCOPED = {"03", "04", "05", "06", "08", "10", "11", "12", "13", "14", "15", "18", "19", "20", "23", "29", "32"}


def _policy_files():
    return sorted(corpus_dir("policies").glob("*.json"))


def test_every_corpus_policy_has_an_expectation() -> None:
    assert sorted(p.name[:2] for p in _policy_files()) == sorted(EXPECTED)


@pytest.mark.parametrize("number", sorted(EXPECTED))
def test_corpus_policy(number: str) -> None:
    (path,) = corpus_dir("policies").glob(f"{number}-*.json")
    evaluation = evaluate_policy(path.read_text(), TrustConfig(owner_account=OWNER))
    assert [f.kind.value for f in evaluation.findings] == EXPECTED[number]
    wildcard_details = [f.detail for f in evaluation.findings if f.kind.value == W]
    if number in NETWORK_SCOPED:
        assert any("network-scoped" in d for d in wildcard_details)
    if evaluation.remediated_policy is not None:
        fixed = evaluate_policy(evaluation.patch_operations[0]["value"], TrustConfig(owner_account=OWNER))
        assert fixed.remediated_policy is None
        assert not [f for f in fixed.findings if f.remediation.value == "remove"]


def test_mixed_list_keeps_the_owners_entries() -> None:
    (path,) = corpus_dir("policies").glob("36-*.json")
    fixed = evaluate_policy(path.read_text(), TrustConfig(owner_account=OWNER)).remediated_policy
    assert fixed["Statement"][0]["Principal"] == {"AWS": [f"arn:aws:iam::{OWNER}:root", f"arn:aws:iam::{OWNER}:user/Alice"]}


def test_condition_carried_findings_clear_when_their_values_are_trusted() -> None:
    (org,) = corpus_dir("policies").glob("27-*.json")
    (accounts,) = corpus_dir("policies").glob("39-*.json")
    assert evaluate_policy(org.read_text(), TrustConfig(owner_account=OWNER, trusted_org_ids=frozenset({"o-xxxxxxxxxx"}))).compliant
    assert evaluate_policy(accounts.read_text(), TrustConfig(owner_account=OWNER, trusted_accounts=frozenset({"444455556666"}))).compliant
    assert "admits 444455556666" in evaluate_policy(accounts.read_text(), TrustConfig(owner_account=OWNER)).findings[0].detail


@pytest.mark.parametrize("number", ["01", "02", "03"])
@pytest.mark.parametrize("form", ["txt", "sdk.txt"])
def test_escaped_policies_decode_exactly(number: str, form: str) -> None:
    folder = corpus_dir("policies-escaped")
    raw = (folder / f"{number}.{form}").read_text()
    expected = json.loads((folder / f"{number}.decoded.json").read_text())
    assert "\\/" in raw, "the sample keeps API Gateway's escaped slashes"
    assert parse_policy(raw) == expected
    assert any("/" in json.dumps(s.get("Resource")) for s in expected["Statement"])
