"""Identity perimeters: the Deny statement AWS recommends beside a wildcard Allow ("deny everyone who is
not in my organization"). Such a Deny earns credit only when it is exactly that, nothing narrower
(docs/trust-model.md, "Identity perimeters"); pure, like the rest of the core.
"""

from __future__ import annotations

import fnmatch
from typing import TYPE_CHECKING, Any

from remediator.core.policy import Statement

if TYPE_CHECKING:
    from remediator.core.trust import TrustConfig

NEGATED_OPERATORS = frozenset(
    op + suffix
    for op in ("StringNotEquals", "StringNotEqualsIgnoreCase", "StringNotLike", "ArnNotEquals", "ArnNotLike")
    for suffix in ("", "IfExists")
)
IDENTITY_KEYS = {"aws:principalorgid": "org", "aws:principalaccount": "account", "aws:principalarn": "arn"}
INVOKE_ACTIONS = ("*", "execute-api:*", "execute-api:invoke")
WHOLE_API = ("*", "execute-api:/*")


def _strings(value: Any) -> list[str] | None:
    if isinstance(value, str):
        return [value]
    if isinstance(value, list) and value and all(isinstance(v, str) for v in value):
        return value
    return None


def _wildcard_principal(principal: Any) -> bool:
    return principal == "*" or (isinstance(principal, dict) and list(principal) == ["AWS"] and _strings(principal["AWS"]) == ["*"])


def _covers_invoke(statement: Statement) -> bool:
    if "Action" in statement:
        actions = _strings(statement["Action"])
        return actions is not None and any(a.lower() in INVOKE_ACTIONS for a in actions)
    excluded = _strings(statement.get("NotAction"))
    if excluded is None:
        return False
    # A NotAction covers Invoke unless one of its patterns matches execute-api:Invoke.
    return not any(fnmatch.fnmatchcase("execute-api:invoke", pattern.lower()) for pattern in excluded)


def _covers_resources(deny: Statement, allow: Statement) -> bool:
    if "NotResource" in deny:
        return False
    patterns = _strings(deny.get("Resource"))
    if patterns is None:
        return False
    if any(p in WHOLE_API for p in patterns):
        return True
    wanted = _strings(allow.get("Resource"))
    return wanted is not None and all(any(fnmatch.fnmatchcase(r, p) for p in patterns) for r in wanted)


def _trusted(kind: str, values: list[str], config: TrustConfig) -> bool:
    for value in values:
        if kind == "org":
            if "*" in value or "?" in value or not config.trusts_org(value):
                return False
        elif kind == "account":
            if "*" in value or "?" in value or not config.trusts_account(value):
                return False
        else:
            parts = value.split(":")
            if len(parts) < 6 or parts[0] != "arn" or parts[2] != "iam" or not config.trusts_account(parts[4]):
                return False  # the account field must be a literal trusted account (no wildcard)
    return True


def _is_false(value: Any) -> bool:
    values = value if isinstance(value, list) else [value]
    return len(values) == 1 and (values[0] is False or (isinstance(values[0], str) and values[0].lower() == "false"))


def is_perimeter(deny: Statement, config: TrustConfig) -> bool:
    """A Deny to everyone but trusted identities, on every call of the API, and nothing narrower.

    The Condition is checked first: it is what most Denies (on the network) fail on.
    """
    condition = deny.get("Condition")
    if not isinstance(condition, dict) or not condition:
        return False
    identity = 0
    for operator, block in condition.items():
        if not isinstance(block, dict) or len(block) != 1:
            return False  # an empty block, or a second key: it narrows the Deny
        ((key, value),) = block.items()
        lowered = key.lower() if isinstance(key, str) else ""
        if operator in ("Bool", "BoolIfExists") and lowered == "aws:principalisawsservice" and _is_false(value):
            continue
        kind = IDENTITY_KEYS.get(lowered)
        values = _strings(value)
        if operator not in NEGATED_OPERATORS or kind is None or values is None or not _trusted(kind, values, config):
            return False
        identity += 1
    if identity != 1:
        return False
    if deny.get("Effect") != "Deny" or "NotPrincipal" in deny or not _wildcard_principal(deny.get("Principal")):
        return False
    return _covers_invoke(deny)


def perimeters(statements: list[Statement], config: TrustConfig) -> list[int]:
    """The indexes of a policy's identity perimeter Denies (worked out once per policy by the engine)."""
    return [index for index, statement in enumerate(statements)
            if statement.get("Effect") == "Deny" and is_perimeter(statement, config)]


def guarding_perimeter(allow: Statement, statements: list[Statement], config: TrustConfig,
                       perimeter_indexes: list[int] | None = None) -> int | None:
    """The index of a perimeter Deny that covers every resource of `allow`, if any."""
    for index in perimeters(statements, config) if perimeter_indexes is None else perimeter_indexes:
        if _covers_resources(statements[index], allow):
            return index
    return None
