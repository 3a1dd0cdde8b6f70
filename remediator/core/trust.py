"""The trust decision: which principals of a policy are outside the trusted set, and the minimal fix.

Evaluation and fix happen in one pass so that the fix removes exactly the entries the
findings name, by position, and nothing else.
"""

from __future__ import annotations

from enum import Enum
from operator import itemgetter
from typing import Any, NamedTuple

from remediator.core.conditions import NETWORK_KEYS, UNCONDITIONAL, judge_condition, restricts_to_trusted
from remediator.core.perimeter import candidates, guarding_perimeter, only_perimeter_keys, perimeters, refusals
from remediator.core.policy import (
    Policy,
    PolicyError,
    Statement,
    _json_type,
    compact_json,
    exact_json,
    fast_document,
    parse_policy_checked,
    read_policy,
    statements_of,
)
from remediator.core.principals import PrincipalCategory, ResolvedPrincipal, resolve_aws_principal
from remediator.core.trust_config import TrustConfig, _Memo

NON_ACCOUNT_PRINCIPAL_KEYS = frozenset({"Service", "Federated", "CanonicalUser"})


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
    """The findings for one policy and, when any principal is to be removed, the fixed policy.

    The engine decides the verdict and the fix eagerly and words the findings only when someone reads
    them: a caller that wants the verdict or the patch pays nothing for detail strings.
    """

    __slots__ = ("policy", "remediated_policy", "_findings", "_notes", "_pending", "_flagged", "_exact", "_patch")

    def __init__(self, policy: Policy, findings: tuple[Finding, ...], remediated_policy: Policy | None,
                 notes: tuple[str, ...] = ()) -> None:
        self.policy = policy
        self.remediated_policy = remediated_policy
        self._findings = findings
        self._notes = notes  # what the evaluation took into account without a finding (an identity perimeter)
        self._pending: tuple[Any, ...] | None = None
        self._flagged = bool(findings)
        self._exact = False  # the policy came from msgspec: msgspec writes the fix, exactly as the stdlib would
        self._patch: str | None = None  # the fixed policy's text, written on first read

    def _materialize(self) -> None:
        """Word the findings of a lazy evaluation (see _lazy_evaluation): `_pending` is () when there is
        nothing to word, else (statements, the engine's records (see _Decided), repeated keys, configuration,
        has_deny)."""
        pending = self._pending
        if pending is not None:
            if pending:
                statements, decided, repeated, config, has_deny = pending
                self._findings, self._notes = _describe_all(statements, _judged(decided, config), repeated, config,
                                                            has_deny, config._memo)
            else:
                self._findings = self._notes = ()
            self._pending = None

    @property
    def findings(self) -> tuple[Finding, ...]:
        self._materialize()
        return self._findings

    @property
    def notes(self) -> tuple[str, ...]:
        self._materialize()
        return self._notes

    @property
    def compliant(self) -> bool:
        return not self._flagged

    @property
    def patch_operations(self) -> list[dict[str, str]]:
        """update-rest-api patch operations that apply the fix; empty when nothing is removed."""
        if self.remediated_policy is None:
            return []
        text = self._patch
        if text is None:
            text = self._patch = exact_json(self.remediated_policy) if self._exact else compact_json(self.remediated_policy)
        return [{"op": "replace", "path": "/policy", "value": text}]  # a new list each time: the caller may change it

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


_new_evaluation = object.__new__


def _lazy_evaluation(policy: Policy, remediated_policy: Policy | None, flagged: bool, exact: bool,
                     pending: tuple[Any, ...]) -> Evaluation:
    """An Evaluation whose findings are worded on first read, from `pending` (see Evaluation._materialize);
    built without __init__, which would set the findings: the engine makes one per policy."""
    evaluation = _new_evaluation(Evaluation)
    evaluation.policy = policy
    evaluation.remediated_policy = remediated_policy
    evaluation._pending = pending
    evaluation._flagged = flagged
    evaluation._exact = exact
    evaluation._patch = None
    return evaluation


# A principal entry's place in its statement: (`AWS` key or None for a bare form, index or -1 for a string).
_Location = tuple[str | None, int]
# A principal entry the trusted set does not cover: (Principal key, index or -1, the entry).
_Suspect = tuple[str | None, int, Any]
# The engine's suspect entry: a _Suspect and what the entry resolves to (None for NotPrincipal, a principal
# type other than AWS, or an entry that is not a string: _classify words those).
_Marked = tuple[str | None, int, Any, "ResolvedPrincipal | None"]


# What the trust model decided about one suspect entry, before any wording: (Principal key, position,
# entry, kind or None for a wildcard an identity perimeter guards, account, removable, reason). A plain
# tuple: the engine makes one per suspect entry, and a tuple is the cheapest record Python builds.
_Judged = tuple[str | None, int, Any, "FindingKind | None", str | None, bool, str]


# One Allow statement with a suspect principal: (index, statement, decisions).
_JudgedStatement = tuple[int, Statement, list[_Judged]]


# What the engine records of an Allow statement that has findings or a guarded wildcard, for the wording:
# (index, statement, its suspect entries or None for its single Principal entry, does its Condition confine
# it to trusted callers, does an identity perimeter Deny guard it). _judged takes the decisions from it.
_Decided = tuple[int, Statement, "list[_Marked] | None", bool, bool]


def _judged(decided: list[_Decided], config: TrustConfig) -> list[_JudgedStatement]:
    """_classify's decisions for the statements the engine recorded, in statement order."""
    remove_wildcards = config.remove_wildcard_principals
    judged: list[_JudgedStatement] = []
    for index, statement, suspects, restricted, guarded in sorted(decided, key=_first):
        if suspects is None:
            principal = statement["Principal"]
            entries: list[_Suspect] = [(None, -1, principal) if type(principal) is str else ("AWS", -1, principal["AWS"])]
        else:
            entries = [(key, position, entry) for key, position, entry, _ in suspects]
        judged.append((index, statement, _classify(entries, restricted, guarded, remove_wildcards)))
    return judged


_first = itemgetter(0)
_DETAILS = {
    FindingKind.ORPHANED_PRINCIPAL: "IAM unique ID left where a deleted user or role was; it names no current principal",
    FindingKind.WILDCARD_PRINCIPAL: "any AWS account may call the API",
    FindingKind.NOT_PRINCIPAL: "NotPrincipal in an Allow statement grants every principal except those listed",
}
_ACCOUNT = PrincipalCategory.ACCOUNT
_WILDCARD = PrincipalCategory.WILDCARD
_NOT_PRINCIPAL = "\0NotPrincipal"  # a marker no Principal key can equal
_NOT_AN_ACCOUNT = PrincipalCategory.NOT_AN_ACCOUNT
_WILDCARD_FINDING = FindingKind.WILDCARD_PRINCIPAL
_ORPHANED = PrincipalCategory.ORPHANED


def evaluate_policy(policy: str | bytes | Policy, config: TrustConfig) -> Evaluation:
    """Evaluate a policy in any accepted form; raises PolicyError when it cannot be read.

    One pass over the statements validates each and decides the verdict and the fix for the Allow
    statements with a suspect principal (most name only trusted ones), with per-configuration memos of
    principal and condition verdicts; only a wildcard that an identity perimeter Deny may guard waits for
    the end of the pass (every statement validated). The statements with findings are recorded, and
    their findings worded when read. `reference_evaluate` is the same decision taken the plain way
    (stdlib JSON, validation first, no memo, eager wording): the differential tests hold the two identical.
    """
    document = fast_document(policy) if type(policy) is str else None
    if document is None:
        exact = False
        document, repeated = read_policy(policy)
        flagged = bool(repeated)
    else:
        exact = True  # msgspec read it: msgspec writes the fix
        repeated, flagged = [], False
    if "Statement" not in document:
        raise PolicyError("policy has no 'Statement'")
    statements = document["Statement"]
    if type(statements) is not list:
        if isinstance(statements, dict):
            statements = [statements]
        elif not isinstance(statements, list):
            raise PolicyError(f"'Statement' must be an object or a list (got {_json_type(statements)})")
    memo = config._memo
    suspect_memo = memo.suspects
    values = memo.values
    accounts = config._accounts
    decided: list[_Decided] = []  # the statements with findings or a guarded wildcard, for the wording
    deferred: list[tuple[int, Statement, list[_Marked] | None]] = []  # unrestricted wildcards a Deny may guard
    removals: dict[int, set[int]] = {}  # statement index -> positions of the entries to remove
    has_deny = denied = False  # a Deny as a plain dict (what the wording asks) / any Deny so far
    may_guard: bool | None = None  # whether a Deny may be an identity perimeter, read ahead once a wildcard needs it
    for index, statement in enumerate(statements):
        if type(statement) is not dict and not isinstance(statement, dict):
            raise PolicyError(f"statement {index} is not a JSON object (got {_json_type(statement)})")
        get = statement.get
        principal = get("Principal")
        if "NotPrincipal" in statement and "Principal" in statement:
            raise PolicyError(f"statement {index} has both 'Principal' and 'NotPrincipal'")
        condition = get("Condition")
        if condition is not None and type(condition) is not dict and not isinstance(condition, dict):
            raise PolicyError(f"statement {index}: 'Condition' must be an object (got {_json_type(condition)})")
        effect = get("Effect")
        if effect != "Allow":
            if effect == "Deny":
                denied = True
                if type(statement) is dict:
                    has_deny = True
            continue
        if principal is None:
            if "NotPrincipal" in statement:  # reported, never removed, whatever the Condition says
                flagged = True
                decided.append((index, statement, [(_NOT_PRINCIPAL, -1, statement["NotPrincipal"], None)], False, False))
            continue
        # _classify's verdict and removals, from the memo's resolution of each suspect entry.
        if type(principal) is str:  # "*", or a bare account
            key, single = None, principal
        elif type(principal) is dict and len(principal) == 1:  # the common shape: {"AWS": ...}
            key, single = "AWS", principal.get("AWS")
        else:
            single = None
        if type(single) is str:  # one entry: its verdict straight from the memo
            resolved = suspect_memo.get(single)
            if resolved is None:
                resolved = memo.remember(suspect_memo, single, _resolved_suspect(single, accounts))
            if not resolved:
                continue
            category = resolved.category
            if category is _ACCOUNT or category is _WILDCARD:
                if condition and restricts_to_trusted(condition, config, values):
                    continue
                if category is _WILDCARD:
                    if may_guard is None:  # no Deny so far and no statement left: none
                        may_guard = (denied or index + 1 < len(statements)) and _may_guard(statements)
                    if may_guard:  # whether a perimeter guards it is known once every statement is validated
                        deferred.append((index, statement, None))
                        continue
                    if config.remove_wildcard_principals:
                        removals[index] = {-1}
                else:
                    removals[index] = {-1}
            elif category is _ORPHANED:
                removals[index] = {-1}
            flagged = True  # (an entry that is not an account: reported, never removed)
            decided.append((index, statement, None, False, False))  # the Condition decides only for those two
            continue
        suspects: list[_Marked] = []
        if type(principal) is dict:  # several entries: AWS ones looked up here, others by _marked
            for key, value in principal.items():
                if key != "AWS":
                    if key not in NON_ACCOUNT_PRINCIPAL_KEYS:
                        suspects += _marked(_entries_of(key, value), accounts, memo)
                    continue
                for position, entry in enumerate(value) if type(value) is list else ((-1, value),):
                    if type(entry) is not str:
                        suspects.append(("AWS", position, entry, None))
                        continue
                    resolved = suspect_memo.get(entry)
                    if resolved is None:
                        resolved = memo.remember(suspect_memo, entry, _resolved_suspect(entry, accounts))
                    if resolved:
                        suspects.append(("AWS", position, entry, resolved))
        else:
            suspects = _marked(_principal_entries(principal), accounts, memo)
        if not suspects:
            continue
        restricted = bool(condition) and restricts_to_trusted(condition, config, values)
        wildcard = found = False
        removed: set[int] | None = None
        for _, position, _, resolved in suspects:
            if not resolved:  # a principal type other than AWS, an entry that is not a string
                found = True  # reported, never removed
                continue
            category = resolved.category
            if category is _ACCOUNT:
                if restricted:
                    continue
            elif category is _WILDCARD:
                wildcard = wildcard or not restricted  # decided below: a perimeter Deny may guard it
                continue
            elif category is not _ORPHANED:  # not an account: reported, never removed
                found = True
                continue
            found = True
            if removed is None:
                removed = removals[index] = set()
            removed.add(position)
        if wildcard:
            if may_guard is None:
                may_guard = (denied or index + 1 < len(statements)) and _may_guard(statements)
            if may_guard:  # whether a perimeter guards it is known once every statement is validated
                flagged = flagged or found
                deferred.append((index, statement, suspects))
                continue
            found = True
            if config.remove_wildcard_principals:
                _remove_wildcards(removals, index, suspects)
        if found:
            flagged = True
            decided.append((index, statement, suspects, restricted, False))
    if deferred:
        guards = perimeters(statements, config)  # every statement is validated: perimeters() may read them
        for index, statement, maybe_suspects in deferred:
            guarded = bool(guards) and guarding_perimeter(statement, statements, config, guards) is not None
            decided.append((index, statement, maybe_suspects, False, guarded))
            if not guarded:  # guarded: AWS's identity perimeter lets only trusted identities past (a note, when worded)
                flagged = True
                if config.remove_wildcard_principals:
                    if maybe_suspects is None:
                        removals[index] = {-1}
                    else:
                        _remove_wildcards(removals, index, maybe_suspects)
    if not decided and not repeated:
        return _lazy_evaluation(document, None, False, exact, ())
    remediated = _fixed(document, statements, removals, config) if removals and not repeated else None
    return _lazy_evaluation(document, remediated, flagged, exact, (statements, decided, repeated, config, has_deny))


def _may_guard(statements: list[Statement]) -> bool:
    """Whether perimeters(statements) may find an identity perimeter: a Deny it would not skip at once. Read
    ahead of the engine's pass, so statements that are not objects are passed over (the pass refuses them)."""
    for statement in statements:
        if isinstance(statement, dict) and statement.get("Effect") == "Deny" and only_perimeter_keys(statement):
            return True
    return False


def _remove_wildcards(removals: dict[int, set[int]], index: int, suspects: list[_Marked]) -> None:
    """remove_wildcard_principals: the statement's wildcard entries go with its other removed entries."""
    for _, position, _, resolved in suspects:
        if resolved and resolved.category is _WILDCARD:
            removals.setdefault(index, set()).add(position)


def reference_evaluate(policy: str | bytes | Policy, config: TrustConfig) -> Evaluation:
    """The oracle for `evaluate_policy`: the same decision by the plain path (stdlib JSON with validation
    first, no memo, every finding worded at once). Kept for the differential tests, not for speed."""
    document, repeated = parse_policy_checked(policy)
    statements = statements_of(document)
    has_deny = any(type(s) is dict and s.get("Effect") == "Deny" for s in statements)
    judged_statements: list[_JudgedStatement] = []
    removals: dict[int, set[_Location]] = {}
    for index, statement in enumerate(statements):
        if statement.get("Effect") != "Allow":
            continue
        if statement.get("Principal") is None:
            if "NotPrincipal" not in statement:
                continue
            entries: list[_Suspect] = [(_NOT_PRINCIPAL, -1, statement["NotPrincipal"])]
        else:
            entries = _principal_entries(statement["Principal"])
        suspects = [s for s in entries if s[0] is _NOT_PRINCIPAL or _suspect(s, config._accounts)]
        if not suspects:
            continue
        guard = guarding_perimeter(statement, statements, config) if has_deny else None
        restricted = judge_condition(statement.get("Condition"), config).restricts_to_trusted
        judged = _classify(suspects, restricted, guard is not None, config.remove_wildcard_principals)
        for key, position, _, kind, _, removable, _ in judged:
            if kind is not None and removable:
                removals.setdefault(index, set()).add((key if key == "AWS" else None, position))
        judged_statements.append((index, statement, judged))
    findings, notes = _describe_all(statements, judged_statements, repeated, config, has_deny)
    remediated = _remediate(document, statements, removals, config) if removals and not repeated else None
    return Evaluation(document, findings, remediated, notes)


def _statement_of(path: str) -> int:
    """The statement a repeated key is in ("Statement[2].Principal" -> 2), or -1 (top level, one object)."""
    if path.startswith("Statement["):
        return int(path[len("Statement["):path.index("]")])
    return -1


def _suspect_entry(entry: str, accounts: frozenset[str]) -> bool:
    """Whether an AWS principal entry may name someone outside the trusted accounts."""
    resolved = resolve_aws_principal(entry)
    return not (resolved.category is _NOT_AN_ACCOUNT or (resolved.category is _ACCOUNT and resolved.account in accounts))


def _suspect(item: _Suspect, accounts: frozenset[str]) -> bool:
    key, _, entry = item
    if key is not None and key != "AWS":
        return key not in NON_ACCOUNT_PRINCIPAL_KEYS
    if type(entry) is not str:
        return True
    return _suspect_entry(entry, accounts)


def _resolved_suspect(entry: str, accounts: frozenset[str]) -> ResolvedPrincipal | bool:
    """What an AWS principal entry resolves to when it may name someone outside the trusted accounts; else
    False. The engine's memo keeps this, so that a suspect entry is resolved once, not again when judged."""
    resolved = resolve_aws_principal(entry)
    category = resolved.category
    if category is _NOT_AN_ACCOUNT or (category is _ACCOUNT and resolved.account in accounts):
        return False
    return resolved


def _marked(entries: list[_Suspect], accounts: frozenset[str], memo: _Memo) -> list[_Marked]:
    """The suspect entries among `entries`, each with its resolution (None where it is not an AWS string entry)."""
    marked: list[_Marked] = []
    suspect_memo = memo.suspects
    for key, position, entry in entries:
        if key is not None and key != "AWS":
            if key not in NON_ACCOUNT_PRINCIPAL_KEYS:
                marked.append((key, position, entry, None))
        elif type(entry) is not str:
            marked.append((key, position, entry, None))
        else:
            resolved = suspect_memo.get(entry)
            if resolved is None:
                resolved = memo.remember(suspect_memo, entry, _resolved_suspect(entry, accounts))
            if resolved:
                marked.append((key, position, entry, resolved))
    return marked


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


def _classify(suspects: list[_Suspect], restricted: bool, guarded: bool, remove_wildcards: bool) -> list[_Judged]:
    """The decision for each suspect entry of one Allow statement, given whether its Condition confines it to
    trusted callers (`restricted`) and whether an identity perimeter Deny guards it (`guarded`)."""
    judged: list[_Judged] = []
    for key, position, entry in suspects:
        if key is _NOT_PRINCIPAL:
            judged.append((key, position, entry, FindingKind.NOT_PRINCIPAL, None, False, ""))
        elif key is not None and key != "AWS":
            judged.append((key, position, entry, FindingKind.UNRECOGNIZED_PRINCIPAL, None, False, f"unknown principal type '{key}'"))
        elif type(entry) is not str:
            judged.append((key, position, entry, FindingKind.UNRECOGNIZED_PRINCIPAL, None, False, "principal entry is not a string"))
        else:
            resolved = resolve_aws_principal(entry)
            category = resolved.category
            if category is _ACCOUNT:
                if not restricted:
                    judged.append((key, position, entry, FindingKind.UNTRUSTED_ACCOUNT, resolved.account, True, ""))
            elif category is _WILDCARD:
                if not restricted:  # guarded: AWS's identity perimeter, only trusted identities get past the Deny
                    judged.append((key, position, entry, None if guarded else FindingKind.WILDCARD_PRINCIPAL, None,
                                   remove_wildcards and not guarded, resolved.reason))
            elif category is PrincipalCategory.ORPHANED:
                judged.append((key, position, entry, FindingKind.ORPHANED_PRINCIPAL, None, True, ""))
            else:
                judged.append((key, position, entry, FindingKind.UNRECOGNIZED_PRINCIPAL, None, False,
                               f"cannot resolve to an account: {resolved.reason}"))
    return judged


def _describe_all(statements: list[Statement], judged_statements: list[_JudgedStatement], repeated: list[str],
                  config: TrustConfig, has_deny: bool, memo: _Memo | None = None) -> tuple[tuple[Finding, ...], tuple[str, ...]]:
    """The findings and notes, worded (the Deny guarding a statement is named in them). `memo`: the engine's,
    for the conditions' wording; the oracle words without."""
    findings: list[Finding] = []
    notes: list[str] = []
    deny_keys = _deny_network_keys(statements) if judged_statements else ()
    guards: list[int] | None = None
    lookalikes: list[int] | None = None  # the Denies that test the caller's identity, found once per policy
    for index, statement, judged in judged_statements:
        guard = None
        # The guarding Deny is named only beside an untrusted account, or as the note for a guarded wildcard.
        if has_deny and any(kind is None or kind is FindingKind.UNTRUSTED_ACCOUNT for _, _, _, kind, _, _, _ in judged):
            guards = perimeters(statements, config) if guards is None else guards
            guard = guarding_perimeter(statement, statements, config, guards) if guards else None
        # Why no Deny guards a reported wildcard (a Deny that tests the caller's identity but earns no credit).
        refused: list[str] = []
        if has_deny and any(kind is _WILDCARD_FINDING for _, _, _, kind, _, _, _ in judged):
            lookalikes = candidates(statements) if lookalikes is None else lookalikes
            refused = refusals(statement, statements, config, lookalikes) if lookalikes else refused
        _describe(index, statement, judged, _guarded_by(statements, guard), config, deny_keys, findings, notes,
                  memo.values if memo is not None else None, refused)
    if repeated:
        # Judged on the values Python kept, but AWS may enforce others: report everything, change nothing.
        ambiguous = [Finding(FindingKind.AMBIGUOUS_POLICY, _statement_of(path), None, path, None, Remediation.REPORT_ONLY,
                             f"key {path.rsplit('.', 1)[-1]!r} appears more than once at {path}; AWS does not document which "
                             "value it applies, so the policy is never changed automatically") for path in repeated]
        return tuple(ambiguous + [f._replace(remediation=Remediation.REPORT_ONLY) for f in findings]), ()
    return tuple(findings), tuple(notes)


def _guarded_by(statements: list[Statement], guard: int | None) -> str | None:
    if guard is None:
        return None
    sid = statements[guard].get("Sid")
    return f"the identity perimeter Deny in statement {guard}" + (f" ({sid})" if isinstance(sid, str) else "")


def _describe(index: int, statement: Statement, judged: list[_Judged], guarded_by: str | None, config: TrustConfig,
              deny_network_keys: tuple[str, ...], findings: list[Finding], guarded: list[str], memo: Any = None,
              refused: list[str] | None = None) -> None:
    """Word the decisions for one Allow statement, in the light of its Condition and of the Deny guarding it."""
    sid = statement.get("Sid")
    sid = sid if isinstance(sid, str) else None
    condition = statement.get("Condition")
    verdict = judge_condition(condition, config, memo) if condition else UNCONDITIONAL
    notes = list(verdict.notes)
    if verdict.network_keys:
        notes.append(f"network-scoped by {', '.join(verdict.network_keys)} in this statement, which does not restrict the account")
    if deny_network_keys:
        notes.append(f"network-scoped by a Deny on {', '.join(deny_network_keys)}, which does not restrict the account")
    suffix = "; " + "; ".join(notes) if notes else ""
    for key, _, entry, kind, account, removable, reason in judged:
        if kind is None:
            guarded.append(f"statement {index}: the wildcard principal {entry} is guarded by {guarded_by}")
            continue
        text = entry
        if kind is FindingKind.NOT_PRINCIPAL:
            text, detail = _text(entry), _DETAILS[kind]
        elif kind is FindingKind.UNRECOGNIZED_PRINCIPAL:
            text, detail = (f"{key}:{_text(entry)}" if key not in (None, "AWS") else _text(entry)), reason
        elif kind is FindingKind.UNTRUSTED_ACCOUNT:
            detail = f"account {account} is not trusted" + (f"; {guarded_by} also blocks it" if guarded_by else "")
        elif kind is FindingKind.WILDCARD_PRINCIPAL:
            detail = _DETAILS[kind] + (f" ({reason})" if reason else "")
            if refused:
                detail += "".join(f"; {r}" for r in refused)
        else:
            detail = _DETAILS[kind]
        remediation = Remediation.REMOVE if removable else Remediation.REPORT_ONLY
        findings.append(_new_finding(Finding, (kind, index, sid, text, account, remediation, detail + suffix)))


_new_finding = tuple.__new__  # Finding(...) without its Python-level __new__: the engine words many findings


def _principal_entries(principal: Any) -> list[_Suspect]:
    """Every entry of a Principal element with its location; a bare string or list names AWS principals."""
    if isinstance(principal, str):
        return [(None, -1, principal)]
    if isinstance(principal, list):
        return [(None, i, entry) for i, entry in enumerate(principal)]
    if isinstance(principal, dict):
        return [entry for key, value in principal.items() for entry in _entries_of(key, value)]
    return [("Principal", -1, principal)]


def _entries_of(key: str, value: Any) -> list[_Suspect]:
    """The entries of one key of a Principal object (`"AWS": [...]`), with their locations."""
    if isinstance(value, list):
        return [(key, i, entry) for i, entry in enumerate(value)]
    return [(key, -1, value)]


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
    return _with_statements(document, kept, config)


def _with_statements(document: Policy, kept: list[Statement], config: TrustConfig) -> Policy:
    fixed = dict(document)
    if not kept:
        fixed.setdefault("Version", "2012-10-17")
        fixed["Statement"] = [_owner_statement(config)]
    elif isinstance(document["Statement"], dict):
        fixed["Statement"] = kept[0]
    else:
        fixed["Statement"] = kept
    return fixed


def _fixed(document: Policy, statements: list[Statement], removals: dict[int, set[int]], config: TrustConfig) -> Policy:
    """`_remediate` for the engine: `removals` holds positions only, since every removable entry of a statement
    is where the engine found it, an entry of the `AWS` key of a Principal object (plain dict: an ambiguous
    policy is never fixed) or of a bare Principal string or list. Only the statements named are visited."""
    kept: list[Statement] = list(statements)
    emptied = False
    for index, positions in removals.items():
        statement = statements[index]
        principal = statement["Principal"]
        stripped: Any = None
        if type(principal) is dict:
            value = principal["AWS"]
            remaining = [entry for i, entry in enumerate(value) if i not in positions] if type(value) is list else None
            if len(principal) == 1:
                stripped = {"AWS": remaining} if remaining else None
            else:
                stripped = {key: remaining if key == "AWS" else item for key, item in principal.items()
                            if key != "AWS" or remaining} or None
        elif type(principal) is list:
            stripped = [entry for i, entry in enumerate(principal) if i not in positions] or None
        if stripped is None:
            kept[index] = _GONE
            emptied = True
        else:
            kept[index] = {**statement, "Principal": stripped}
    if emptied:
        kept = [statement for statement in kept if statement is not _GONE]
    return _with_statements(document, kept, config)


_GONE: Statement = {}  # the place of a statement the fix removes, until the list is compacted


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
    return value if isinstance(value, str) else compact_json(value)
