"""The trust decision: which principals of a policy are outside the trusted set, and the minimal fix.

Evaluation and fix happen in one pass so that the fix removes exactly the entries the
findings name, by position, and nothing else.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from enum import Enum
from typing import Any, NamedTuple

from remediator.core.conditions import NETWORK_KEYS, judge_condition
from remediator.core.perimeter import guarding_perimeter
from remediator.core.policy import Policy, Statement, compact_json, parse_policy_checked, statements_of
from remediator.core.principals import ACCOUNT_ID, PARTITIONS, PrincipalCategory, resolve_aws_principal

ORG_ID = re.compile(r"o-[a-z0-9]{10,32}")
NON_ACCOUNT_PRINCIPAL_KEYS = frozenset({"Service", "Federated", "CanonicalUser"})


class ConfigError(ValueError):
    """A trust configuration that cannot be right (an account ID that is not 12 digits...)."""


class FindingKind(str, Enum):
    UNTRUSTED_ACCOUNT = "untrusted-account"
    ORPHANED_PRINCIPAL = "orphaned-principal"
    WILDCARD_PRINCIPAL = "wildcard-principal"
    NOT_PRINCIPAL = "not-principal"
    UNRECOGNIZED_PRINCIPAL = "unrecognized-principal"
    AMBIGUOUS_POLICY = "ambiguous-policy"  # a key repeated: which value AWS applies is not documented


class Remediation(str, Enum):
    REMOVE = "remove"
    REPORT_ONLY = "report-only"


@dataclass(frozen=True)
class TrustConfig:
    """Who is trusted. The owner account is always trusted, whether listed or not."""

    owner_account: str
    trusted_accounts: frozenset[str] = frozenset()
    trusted_org_ids: frozenset[str] = frozenset()
    partition: str = "aws"
    remove_wildcard_principals: bool = False
    _accounts: frozenset[str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not isinstance(self.owner_account, str) or not ACCOUNT_ID.fullmatch(self.owner_account):
            raise ConfigError(f"owner account '{self.owner_account}' is not a 12-digit account ID")
        bad = sorted(a for a in self.trusted_accounts if not isinstance(a, str) or not ACCOUNT_ID.fullmatch(a))
        if bad:
            raise ConfigError(f"trusted account '{bad[0]}' is not a 12-digit account ID")
        bad = sorted(o for o in self.trusted_org_ids if not isinstance(o, str) or not ORG_ID.fullmatch(o))
        if bad:
            raise ConfigError(f"trusted organization '{bad[0]}' is not an organization ID (o-...)")
        if self.partition not in PARTITIONS:
            raise ConfigError(f"partition '{self.partition}' is not one of {', '.join(sorted(PARTITIONS))}")
        object.__setattr__(self, "trusted_accounts", frozenset(self.trusted_accounts))
        object.__setattr__(self, "trusted_org_ids", frozenset(self.trusted_org_ids))
        object.__setattr__(self, "_accounts", frozenset(self.trusted_accounts) | {self.owner_account})

    def trusts_account(self, account: str) -> bool:
        return account in self._accounts

    def trusts_org(self, org_id: str) -> bool:
        return org_id in self.trusted_org_ids

    def to_dict(self) -> dict[str, Any]:
        """As stored in audit records: enough to compute the same fix again."""
        return {"owner_account": self.owner_account, "trusted_accounts": sorted(self.trusted_accounts),
                "trusted_org_ids": sorted(self.trusted_org_ids), "partition": self.partition,
                "remove_wildcard_principals": self.remove_wildcard_principals}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrustConfig:
        known = {"owner_account", "trusted_accounts", "trusted_org_ids", "partition", "remove_wildcard_principals"}
        if not isinstance(data, dict) or set(data) - known or "owner_account" not in data:
            raise ConfigError(f"trust settings must have exactly the keys {', '.join(sorted(known))}")
        if not all(isinstance(data.get(key, []), list) for key in ("trusted_accounts", "trusted_org_ids")):
            raise ConfigError("trusted_accounts and trusted_org_ids must be lists")
        return cls(owner_account=data["owner_account"], trusted_accounts=frozenset(data.get("trusted_accounts", ())),
                   trusted_org_ids=frozenset(data.get("trusted_org_ids", ())), partition=data.get("partition", "aws"),
                   remove_wildcard_principals=bool(data.get("remove_wildcard_principals", False)))

    @property
    def owner_root_arn(self) -> str:
        return f"arn:{self.partition}:iam::{self.owner_account}:root"


class Finding(NamedTuple):
    """One principal (or NotPrincipal) that the trust model objects to, and what to do about it."""

    kind: FindingKind
    statement_index: int
    sid: str | None
    principal: str
    account: str | None
    remediation: Remediation
    detail: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind.value,
            "statement_index": self.statement_index,
            "sid": self.sid,
            "principal": self.principal,
            "account": self.account,
            "remediation": self.remediation.value,
            "detail": self.detail,
        }


class Evaluation:
    """The findings for one policy and, when any principal is to be removed, the fixed policy."""

    __slots__ = ("policy", "findings", "remediated_policy", "notes", "_patch")

    def __init__(self, policy: Policy, findings: tuple[Finding, ...], remediated_policy: Policy | None,
                 notes: tuple[str, ...] = ()) -> None:
        self.policy = policy
        self.findings = findings
        self.remediated_policy = remediated_policy
        self.notes = notes  # what the evaluation took into account without a finding (an identity perimeter)
        self._patch: list[dict[str, str]] | None = None

    @property
    def compliant(self) -> bool:
        return not self.findings

    @property
    def patch_operations(self) -> list[dict[str, str]]:
        """update-rest-api patch operations that apply the fix; empty when nothing is removed."""
        if self.remediated_policy is None:
            return []
        if self._patch is None:
            self._patch = [{"op": "replace", "path": "/policy", "value": compact_json(self.remediated_policy)}]
        return [dict(operation) for operation in self._patch]

    def to_dict(self) -> dict[str, Any]:
        result = {
            "compliant": self.compliant,
            "findings": [finding.to_dict() for finding in self.findings],
            "remediated_policy": self.remediated_policy,
            "patch_operations": self.patch_operations,
        }
        if self.notes:
            result["notes"] = list(self.notes)
        return result

    def __repr__(self) -> str:
        return f"Evaluation(findings={list(self.findings)!r}, remediated_policy={self.remediated_policy!r})"


# A principal entry's place in its statement: (`AWS` key or None for a bare form, index or -1 for a string).
_Location = tuple[str | None, int]

_DETAILS = {
    FindingKind.ORPHANED_PRINCIPAL: "IAM unique ID left where a deleted user or role was; it names no current principal",
    FindingKind.WILDCARD_PRINCIPAL: "any AWS account may call the API",
    FindingKind.NOT_PRINCIPAL: "NotPrincipal in an Allow statement grants every principal except those listed",
}
_ACCOUNT = PrincipalCategory.ACCOUNT
_NOT_PRINCIPAL = "\0NotPrincipal"  # a marker no Principal key can equal
_NOT_AN_ACCOUNT = PrincipalCategory.NOT_AN_ACCOUNT


def evaluate_policy(policy: str | bytes | Policy, config: TrustConfig) -> Evaluation:
    """Evaluate a policy in any accepted form; raises PolicyError when it cannot be read.

    Most statements name only trusted principals, so each is first checked on a fast path;
    conditions and wording are worked out only for statements that have a suspect principal.
    """
    document, repeated = parse_policy_checked(policy)
    statements = statements_of(document)
    accounts = config._accounts
    findings: list[Finding] = []
    removals: dict[int, set[_Location]] = {}
    deny_keys: tuple[str, ...] | None = None
    notes: list[str] = []
    has_deny = any(type(s) is dict and s.get("Effect") == "Deny" for s in statements)
    for index, statement in enumerate(statements):
        if statement.get("Effect") != "Allow":
            continue
        principal = statement.get("Principal")
        if principal is None:
            if "NotPrincipal" not in statement:
                continue
            suspects: list[tuple[str | None, int, Any]] = [(_NOT_PRINCIPAL, -1, statement["NotPrincipal"])]
        elif type(principal) is dict and len(principal) == 1 and type(principal.get("AWS")) is str:
            entry = principal["AWS"]
            resolved = resolve_aws_principal(entry)
            if resolved.category is _NOT_AN_ACCOUNT or (resolved.category is _ACCOUNT and resolved.account in accounts):
                continue
            suspects = [("AWS", -1, entry)]
        else:
            suspects = [s for s in _principal_entries(principal) if _suspect(s, accounts)]
            if not suspects:
                continue
        if deny_keys is None:
            deny_keys = _deny_network_keys(statements)
        guard = guarding_perimeter(statement, statements, config) if has_deny else None
        if guard is not None:
            guard_sid = statements[guard].get("Sid")
            guarded_by = f"the identity perimeter Deny in statement {guard}" + (f" ({guard_sid})" if isinstance(guard_sid, str) else "")
        else:
            guarded_by = None
        _judge_statement(index, statement, suspects, config, deny_keys, findings, removals, guarded_by, notes)
    if repeated:
        # Judged on the values Python kept, but AWS may enforce others: report everything, change nothing.
        ambiguous = [Finding(FindingKind.AMBIGUOUS_POLICY, _statement_of(path), None, path, None, Remediation.REPORT_ONLY,
                             f"key {path.rsplit('.', 1)[-1]!r} appears more than once at {path}; AWS does not document which "
                             "value it applies, so the policy is never changed automatically") for path in repeated]
        return Evaluation(document, tuple(ambiguous + [f._replace(remediation=Remediation.REPORT_ONLY) for f in findings]), None)
    remediated = _remediate(document, statements, removals, config) if removals else None
    return Evaluation(document, tuple(findings), remediated, tuple(notes))


def _statement_of(path: str) -> int:
    """The statement a repeated key is in ("Statement[2].Principal" -> 2), or -1 (top level, one object)."""
    if path.startswith("Statement["):
        return int(path[len("Statement["):path.index("]")])
    return -1


def _suspect(item: tuple[str | None, int, Any], accounts: frozenset[str]) -> bool:
    key, _, entry = item
    if key is not None and key != "AWS":
        return key not in NON_ACCOUNT_PRINCIPAL_KEYS
    if type(entry) is not str:
        return True
    resolved = resolve_aws_principal(entry)
    return not (resolved.category is _NOT_AN_ACCOUNT or (resolved.category is _ACCOUNT and resolved.account in accounts))


def _deny_network_keys(statements: list[Statement]) -> tuple[str, ...]:
    keys: list[str] = []
    for statement in statements:
        condition = statement.get("Condition")
        if statement.get("Effect") != "Deny" or not condition:
            continue
        for block in condition.values():
            if isinstance(block, dict):
                keys.extend(k for k in block if isinstance(k, str) and k.lower() in NETWORK_KEYS and k not in keys)
    return tuple(keys)


def _judge_statement(
    index: int,
    statement: Statement,
    suspects: list[tuple[str | None, int, Any]],
    config: TrustConfig,
    deny_network_keys: tuple[str, ...],
    findings: list[Finding],
    removals: dict[int, set[_Location]],
    guarded_by: str | None = None,
    guarded: list[str] | None = None,
) -> None:
    """Findings for the suspect principals of one Allow statement, in the light of its Condition and of an
    identity perimeter Deny guarding it (`guarded_by`)."""
    sid = statement.get("Sid") if isinstance(statement.get("Sid"), str) else None
    verdict = judge_condition(statement.get("Condition"), config)
    notes = list(verdict.notes)
    if verdict.network_keys:
        notes.append(f"network-scoped by {', '.join(verdict.network_keys)} in this statement, which does not restrict the account")
    if deny_network_keys:
        notes.append(f"network-scoped by a Deny on {', '.join(deny_network_keys)}, which does not restrict the account")
    suffix = "; " + "; ".join(notes) if notes else ""
    restricted = verdict.restricts_to_trusted
    remove_wildcards = config.remove_wildcard_principals

    for key, position, entry in suspects:
        kind: FindingKind
        account: str | None = None
        removable = False
        if key is _NOT_PRINCIPAL:
            kind, text, detail = FindingKind.NOT_PRINCIPAL, _text(entry), _DETAILS[FindingKind.NOT_PRINCIPAL]
        elif key is not None and key != "AWS":
            kind, text, detail = FindingKind.UNRECOGNIZED_PRINCIPAL, f"{key}:{_text(entry)}", f"unknown principal type '{key}'"
        elif type(entry) is not str:
            kind, text, detail = FindingKind.UNRECOGNIZED_PRINCIPAL, _text(entry), "principal entry is not a string"
        else:
            resolved = resolve_aws_principal(entry)
            category = resolved.category
            text = entry
            if category is _ACCOUNT:
                if restricted:
                    continue
                kind, account, removable = FindingKind.UNTRUSTED_ACCOUNT, resolved.account, True
                detail = f"account {account} is not trusted" + (f"; {guarded_by} also blocks it" if guarded_by else "")
            elif category is PrincipalCategory.WILDCARD:
                if restricted:
                    continue
                if guarded_by:  # AWS's identity perimeter: only trusted identities get past the Deny
                    if guarded is not None:
                        guarded.append(f"statement {index}: the wildcard principal {entry} is guarded by {guarded_by}")
                    continue
                kind, removable = FindingKind.WILDCARD_PRINCIPAL, remove_wildcards
                detail = _DETAILS[kind] + (f" ({resolved.reason})" if resolved.reason else "")
            elif category is PrincipalCategory.ORPHANED:
                kind, removable, detail = FindingKind.ORPHANED_PRINCIPAL, True, _DETAILS[FindingKind.ORPHANED_PRINCIPAL]
            else:
                kind, detail = FindingKind.UNRECOGNIZED_PRINCIPAL, f"cannot resolve to an account: {resolved.reason}"
        remediation = Remediation.REMOVE if removable else Remediation.REPORT_ONLY
        findings.append(Finding(kind, index, sid, text, account, remediation, detail + suffix))
        if removable:
            removals.setdefault(index, set()).add((key if key == "AWS" else None, position))


def _principal_entries(principal: Any) -> list[tuple[str | None, int, Any]]:
    """Every entry of a Principal element with its location; a bare string or list names AWS principals."""
    if isinstance(principal, str):
        return [(None, -1, principal)]
    if isinstance(principal, list):
        return [(None, i, entry) for i, entry in enumerate(principal)]
    if isinstance(principal, dict):
        entries: list[tuple[str | None, int, Any]] = []
        for key, value in principal.items():
            if isinstance(value, list):
                entries.extend((key, i, entry) for i, entry in enumerate(value))
            else:
                entries.append((key, -1, value))
        return entries
    return [("Principal", -1, principal)]


def _remediate(document: Policy, statements: list[Statement], removals: dict[int, set[_Location]], config: TrustConfig) -> Policy:
    kept: list[Statement] = []
    for index, statement in enumerate(statements):
        locations = removals.get(index)
        if not locations:
            kept.append(statement)
            continue
        principal = _strip_principal(statement["Principal"], locations)
        if principal is not None:
            kept.append({**statement, "Principal": principal})
    fixed = dict(document)
    if not kept:
        fixed.setdefault("Version", "2012-10-17")
        fixed["Statement"] = [_owner_statement(config)]
    elif isinstance(document["Statement"], dict):
        fixed["Statement"] = kept[0]
    else:
        fixed["Statement"] = kept
    return fixed


def _strip_principal(principal: Any, locations: set[_Location]) -> Any:
    """The Principal without the entries at `locations`; None when nothing is left."""
    if isinstance(principal, str):
        return None
    if isinstance(principal, list):
        remaining = [entry for i, entry in enumerate(principal) if (None, i) not in locations]
        return remaining or None
    stripped: dict[str, Any] = {}
    for key, value in principal.items():
        if key != "AWS":
            stripped[key] = value
        elif isinstance(value, list):
            remaining = [entry for i, entry in enumerate(value) if ("AWS", i) not in locations]
            if remaining:
                stripped[key] = remaining
        elif ("AWS", -1) not in locations:
            stripped[key] = value
    return stripped or None


def _owner_statement(config: TrustConfig) -> Statement:
    """What a policy becomes when every statement went: the owner keeps access, nobody else gains any."""
    return {
        "Effect": "Allow",
        "Principal": {"AWS": config.owner_root_arn},
        "Action": "execute-api:Invoke",
        "Resource": "execute-api:/*",
    }


def _text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, separators=(",", ":"))
