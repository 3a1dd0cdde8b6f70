"""Prove that one resource policy grants nothing another does not: the test every policy write passes.

The proof is syntactic and conservative, which is what a guard needs: it says "not wider" only when each
Allow statement of the new policy is one of the old policy's Allow statements with less in it (fewer
principals, actions or resources, more conditions), and every Deny statement of the old policy is still
there. Whatever it cannot prove is reported as a widening, with the statement and its principals, so a
refusal can say what it would have granted. IAM's evaluation logic backs each rule:

- an explicit Deny overrides any Allow, so dropping or changing a Deny can widen access, adding one cannot;
- elements of a statement are ANDed and the values of one element ORed, so a statement with a subset of
  the principals, actions or resources, or with extra condition blocks, matches a subset of the requests
  (IAM User Guide, "Policy evaluation logic" and "Creating a condition with multiple keys or values");
- a resource policy naming an account (its root ARN) delegates to that account's identity policies
  (IAM User Guide, "AWS account principals"), so a statement that names only the owner's own account
  grants nobody anything the owner's IAM policies do not: the fix's "owner keeps access" statement.
"""

from __future__ import annotations

import json
from typing import Any

import msgspec

from remediator.core.policy import Policy, Statement, compact_json, statements_of

_STATEMENT_KEYS = frozenset({"Sid", "Effect", "Principal", "NotPrincipal", "Action", "NotAction",
                             "Resource", "NotResource", "Condition"})


class Widening(msgspec.Struct, frozen=True):
    """A statement of the new policy that the old one does not cover, and whom it names."""

    statement_index: int
    sid: str | None
    principals: tuple[str, ...]
    reason: str
    kind: str = "allow"  # allow: an Allow not covered | deny: a Deny dropped or changed | version | shape

    def __str__(self) -> str:
        where = f"statement {self.statement_index}" + (f" ({self.sid})" if self.sid else "")
        named = f" for {', '.join(self.principals)}" if self.principals else ""
        return f"{where}{named}: {self.reason}"


def widenings(live: Policy | None, new: Policy | None, owner_account: str) -> list[Widening]:
    """What `new` may grant that `live` does not (None: no policy). Empty only when proven not wider. A changed
    Version matters only where the policy holds a variable (`${...}`): the version decides whether it is one."""
    found: list[Widening] = []
    live_statements = statements_of(live) if live is not None else []
    new_statements = statements_of(new) if new is not None else []
    if live is not None and new is not None and live.get("Version") != new.get("Version") and "${" in compact_json(new):
        found.append(Widening(-1, None, (), f"the policy language version changes ({live.get('Version')!r} to "
                                            f"{new.get('Version')!r}), which changes how variables are read", "version"))
    new_denies = {_canonical(s) for s in new_statements if isinstance(s, dict) and s.get("Effect") == "Deny"}
    for index, statement in enumerate(live_statements):
        if isinstance(statement, dict) and statement.get("Effect") == "Deny" and _canonical(statement) not in new_denies:
            found.append(Widening(index, _sid(statement), _names(statement),
                                  "a Deny statement of the live policy is dropped or changed", "deny"))
    live_allows = [s for s in live_statements if isinstance(s, dict) and s.get("Effect") == "Allow"]
    live_texts = {_canonical(s) for s in live_statements if isinstance(s, dict)}
    for index, statement in enumerate(new_statements):
        if not isinstance(statement, dict):
            found.append(Widening(index, None, (), "the statement is not an object", "shape"))
            continue
        effect = statement.get("Effect")
        if effect == "Deny" or _canonical(statement) in live_texts:  # kept as it was: grants nothing new
            continue
        if effect != "Allow":
            found.append(Widening(index, _sid(statement), _names(statement), f"unknown effect {effect!r}", "shape"))
            continue
        if _owner_only(statement, owner_account):
            continue
        if not any(_within(statement, old) for old in live_allows):
            found.append(Widening(index, _sid(statement), _names(statement),
                                  "no Allow statement of the live policy grants all of it"))
    return found


def _canonical(statement: Statement) -> str:
    return compact_json({k: statement[k] for k in sorted(statement)})


def _sid(statement: Statement) -> str | None:
    sid = statement.get("Sid")
    return sid if isinstance(sid, str) else None


def _names(statement: Statement) -> tuple[str, ...]:
    """The principal entries a statement names, as text ("*" for everyone)."""
    for key in ("Principal", "NotPrincipal"):
        if key not in statement:
            continue
        value = statement[key]
        prefix = "not " if key == "NotPrincipal" else ""
        if isinstance(value, dict):
            return tuple(f"{prefix}{entry}" for entries in value.values() for entry in _listed(entries))
        return tuple(f"{prefix}{entry}" for entry in _listed(value))
    return ()


def _listed(value: Any) -> list[str]:
    items = value if isinstance(value, list) else [value]
    return [item if isinstance(item, str) else json.dumps(item, default=str) for item in items]


def _strings(value: Any) -> frozenset[str] | None:
    """A string-or-list-of-strings element as a set; None for any other shape (nothing is proven about it)."""
    if isinstance(value, str):
        return frozenset((value,))
    if isinstance(value, list) and value and all(isinstance(v, str) for v in value):
        return frozenset(value)
    return None


def _owner_only(statement: Statement, owner_account: str) -> bool:
    """Names only the owner's own account (its root ARN or bare ID), and nothing else."""
    principal = statement.get("Principal")
    if (set(statement) - _STATEMENT_KEYS or "NotPrincipal" in statement or not isinstance(principal, dict)
            or set(principal) != {"AWS"}):
        return False
    entries = _strings(principal["AWS"])
    if entries is None:
        return False
    return all(entry == owner_account or (entry.startswith("arn:") and entry.split(":")[3:] == ["", owner_account, "root"])
               for entry in entries)


def _within(new: Statement, old: Statement) -> bool:
    """Every request `new` allows, `old` allows too."""
    if set(new) - _STATEMENT_KEYS or set(old) - _STATEMENT_KEYS:
        return False
    if "NotPrincipal" in new or "NotPrincipal" in old:
        return _canonical({k: v for k, v in new.items() if k != "Sid"}) == _canonical({k: v for k, v in old.items() if k != "Sid"})
    if not _principal_within(new.get("Principal"), old.get("Principal")):
        return False
    for positive, negative in (("Action", "NotAction"), ("Resource", "NotResource")):
        if not _element_within(new, old, positive, negative):
            return False
    return _conditions_within(new.get("Condition"), old.get("Condition"))


def _element_within(new: Statement, old: Statement, positive: str, negative: str) -> bool:
    """Action/Resource: a subset of the old values; NotAction/NotResource: a superset (more excluded)."""
    if positive in old:
        if positive not in new or negative in new:
            return False
        mine, theirs = _strings(new[positive]), _strings(old[positive])
        return mine is not None and theirs is not None and (mine <= theirs or "*" in theirs)
    if negative in old:
        if negative not in new or positive in new:
            return False
        mine, theirs = _strings(new[negative]), _strings(old[negative])
        return mine is not None and theirs is not None and mine >= theirs
    return positive not in new and negative not in new  # neither: equal (both absent)


def _principal_map(principal: Any) -> dict[str, frozenset[str]] | None:
    if principal == "*":
        return {"*": frozenset(("*",))}
    if isinstance(principal, list):  # a bare list (the engine reads its entries as AWS principals): like with like
        entries = _strings(principal)
        return {"[]": entries} if entries is not None else None
    if not isinstance(principal, dict) or not principal:
        return None
    mapped: dict[str, frozenset[str]] = {}
    for key, value in principal.items():
        entries = _strings(value)
        if entries is None:
            return None
        mapped[key] = entries
    return mapped


def _principal_within(new: Any, old: Any) -> bool:
    mine, theirs = _principal_map(new), _principal_map(old)
    if mine is None or theirs is None:
        return False
    if "*" in theirs:  # "Principal": "*" names everyone
        return True
    if "*" in mine:
        return False
    for key, entries in mine.items():
        covering = theirs.get(key)
        if covering is None or not (entries <= covering or "*" in covering):
            return False
    return True


def _condition_blocks(condition: Any) -> dict[tuple[str, str], frozenset[str]] | None:
    """{(operator, key lower-cased): values}; keys are case-insensitive in IAM, operators are not."""
    if condition is None:
        return {}
    if not isinstance(condition, dict):
        return None
    blocks: dict[tuple[str, str], frozenset[str]] = {}
    for operator, tests in condition.items():
        if not isinstance(tests, dict):
            return None
        for key, values in tests.items():
            entries = _condition_values(values)
            if entries is None or not isinstance(key, str) or (operator, key.lower()) in blocks:
                return None
            blocks[(operator, key.lower())] = entries
    return blocks


def _condition_values(values: Any) -> frozenset[str] | None:
    """A condition's values as text (a scalar is one value; `true` and `"true"` are kept apart)."""
    items = values if isinstance(values, list) else [values]
    if not items or any(isinstance(v, (dict, list)) for v in items):
        return None
    return frozenset(v if isinstance(v, str) else json.dumps(v, default=str) for v in items)


def _conditions_within(new: Any, old: Any) -> bool:
    """Every condition test of `old` is in `new` with the same values; `new` may add tests (ANDed)."""
    mine, theirs = _condition_blocks(new), _condition_blocks(old)
    if mine is None or theirs is None:
        return False
    return all(mine.get(block) == values for block, values in theirs.items())
