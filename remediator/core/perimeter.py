"""Identity perimeters: the Deny statement AWS recommends beside a wildcard Allow ("deny everyone who is
not in my organization or my partners' accounts"). Such a Deny earns credit only when AWS's documented
evaluation guarantees it applies to every caller outside the trusted set (docs/trust-model.md, "Identity
perimeters"); whatever the engine cannot prove earns none, and `refusal` says why. Pure, like the core.

The Condition's tests are ANDed (blocks, and keys within a block; values within a key are ORed), so the
callers a Deny lets through are the union of those each test lets through: every test must let through
only trusted callers (or AWS service principals, by AWS's own template).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from remediator.core.patterns import covers, matches
from remediator.core.policy import Statement
from remediator.core.principals import ACCOUNT_ID, has_wildcard

if TYPE_CHECKING:
    from remediator.core.trust_config import TrustConfig

# The negated operators of each key's documented type (IAM global condition keys: aws:PrincipalOrgID and
# aws:PrincipalAccount are String keys, aws:PrincipalArn an ARN key that String operators also compare).
# Negated operators are true when the key is absent, so the Deny still applies to callers without it;
# `...IfExists` is too. Set operators (ForAllValues:, ForAnyValue:) are for multivalued keys: never credited.
_STRING_NEGATED = frozenset(op + suffix for op in ("StringNotEquals", "StringNotEqualsIgnoreCase", "StringNotLike")
                            for suffix in ("", "IfExists"))
_ARN_NEGATED = frozenset(op + suffix for op in ("ArnNotEquals", "ArnNotLike") for suffix in ("", "IfExists"))
NEGATED_OPERATORS = _STRING_NEGATED | _ARN_NEGATED
KEY_OPERATORS = {"aws:principalorgid": _STRING_NEGATED, "aws:principalaccount": _STRING_NEGATED,
                 "aws:principalarn": _STRING_NEGATED | _ARN_NEGATED}
SERVICE_KEY = "aws:principalisawsservice"
PERIMETER_KEYS = frozenset(KEY_OPERATORS) | {SERVICE_KEY}
INVOKE = "execute-api:invoke"
WHOLE_API = ("*", "execute-api:/*")
RELATIVE = "execute-api:/"


def _strings(value: Any) -> list[str] | None:
    if isinstance(value, str):
        return [value]
    if isinstance(value, list) and value and all(isinstance(v, str) for v in value):
        return value
    return None


def _wildcard_principal(principal: Any) -> bool:
    return principal == "*" or (isinstance(principal, dict) and list(principal) == ["AWS"] and _strings(principal["AWS"]) == ["*"])


def _covers_invoke(statement: Statement) -> bool:
    """Actions are case-insensitive: the Deny's Action must match execute-api:Invoke, or its NotAction must not."""
    if "Action" in statement:
        actions = _strings(statement["Action"])
        return actions is not None and any(matches(INVOKE, a.lower()) for a in actions)
    excluded = _strings(statement.get("NotAction"))
    return excluded is not None and not any(matches(INVOKE, pattern.lower()) for pattern in excluded)


def _pattern_covers(outer: str, inner: str) -> bool:
    """Whether the Deny's Resource pattern `outer` matches every resource the Allow's `inner` does.

    `execute-api:/...` names this API's own resources; its ARN prefix is not known here, so a relative
    pattern is compared only with another relative one (or covered by `execute-api:/*`, all of this API).
    """
    if outer in WHOLE_API:
        return True
    if outer.startswith(RELATIVE) != inner.startswith(RELATIVE):
        return False
    return covers(outer, inner)


def resources_refusal(deny: Statement, allow: Statement) -> str | None:
    """Why the Deny's resources do not provably cover the Allow's, or None when they do."""
    if "NotResource" in deny:
        return "it has a NotResource"
    patterns = _strings(deny.get("Resource"))
    if patterns is None:
        return "its Resource is not a string or a list of strings"
    if "Resource" not in allow:  # NotResource (or none): the Allow may reach any resource of the API
        return None if any(p in WHOLE_API for p in patterns) else "the Allow has no Resource the Deny's can be shown to cover"
    wanted = _strings(allow.get("Resource"))
    if wanted is None:
        return "the Allow's Resource is not a string or a list of strings"
    for resource in wanted:
        if not any(_pattern_covers(p, resource) for p in patterns):
            return f"its Resource does not cover {resource}"
    return None


def _value_refusal(key: str, operator: str, value: str, config: TrustConfig) -> str | None:
    """Why callers matching `value` may be outside the trusted set, or None when they cannot be."""
    if key == "aws:principalarn":
        parts = value.split(":", 5)
        if len(parts) != 6 or parts[0] != "arn" or parts[2] not in ("iam", "sts"):
            return f"{value} is not an IAM principal ARN"
        if any(has_wildcard(part) for part in parts[:5]):
            # IAM paths may hold ':', so a wildcard before the account field can reach another account's roles.
            return f"{value} has a wildcard before or in its account field, so it can match another account's principals"
        return None if config.trusts_account(parts[4]) else f"{value} is in account {parts[4]}, which is not trusted"
    if has_wildcard(value):
        return f"{value} is a pattern, not one {'organization' if key == 'aws:principalorgid' else 'account'}"
    if key == "aws:principalaccount":
        return None if ACCOUNT_ID.fullmatch(value) and config.trusts_account(value) else f"account {value} is not trusted"
    org = value.lower() if operator.startswith("StringNotEqualsIgnoreCase") else value
    return None if config.trusts_org(org) else f"organization {value} is not trusted"


def _is_false(value: Any) -> bool:
    values = value if isinstance(value, list) else [value]
    return len(values) == 1 and (values[0] is False or (isinstance(values[0], str) and values[0].lower() == "false"))


def _test_refusal(operator: str, key: str, value: Any, config: TrustConfig) -> str | None:
    """Why one test of the Deny's Condition may be false for some caller outside the trusted set."""
    lowered = key.lower()
    if lowered == SERVICE_KEY:
        if operator == "Bool" and _is_false(value):
            return ("Bool on aws:PrincipalIsAWSService is false when the key is absent (anonymous callers), "
                    "so the Deny does not apply to them; BoolIfExists does")
        if operator != "BoolIfExists" or not _is_false(value):
            return f"{operator} on {key} lets through callers other than AWS services"
        return None
    allowed = KEY_OPERATORS.get(lowered)
    if allowed is None:
        return f"{operator} on {key} narrows the Deny: an untrusted caller need not meet it"
    if operator not in allowed:
        if operator in NEGATED_OPERATORS:
            return f"{operator} is not an operator for {key}'s type (String)"
        return f"{operator} on {key} is not a negated String or ARN match, so it is false for some untrusted callers"
    values = _strings(value)
    if values is None:
        return f"{operator} on {key} has no string values"
    for item in values:
        reason = _value_refusal(lowered, operator, item, config)
        if reason:
            return f"{operator} on {key}: {reason}"
    return None


def refusal(deny: Statement, config: TrustConfig) -> str | None:
    """Why `deny` is not an identity perimeter, or None when it is: a Deny to everyone (Principal "*") of
    execute-api:Invoke whose every Condition test is true for every caller outside the trusted set.

    The Condition is checked first: it is what most Denies (on the network) fail on.
    """
    condition = deny.get("Condition")
    if not isinstance(condition, dict) or not condition:
        return "it has no Condition on the caller's identity"
    identity = 0
    for operator, block in condition.items():
        if not isinstance(block, dict) or not block or not isinstance(operator, str):
            return f"its {operator} block is not a non-empty object"
        for key, value in block.items():
            if not isinstance(key, str):
                return "a condition key is not a string"
            reason = _test_refusal(operator, key, value, config)
            if reason:
                return reason
            identity += key.lower() != SERVICE_KEY
    if not identity:
        return "it tests neither aws:PrincipalOrgID, aws:PrincipalAccount nor aws:PrincipalArn"
    if deny.get("Effect") != "Deny" or "NotPrincipal" in deny or not _wildcard_principal(deny.get("Principal")):
        return "its Principal is not \"*\""
    if not _covers_invoke(deny):
        return "its actions do not include execute-api:Invoke"
    return None


def is_perimeter(deny: Statement, config: TrustConfig) -> bool:
    """A Deny to everyone but trusted identities (and AWS services), on execute-api:Invoke."""
    return refusal(deny, config) is None


def only_perimeter_keys(deny: Statement) -> bool:
    """False when `refusal` must give a reason whatever else the Deny says: a Condition that is not a non-empty
    object of non-empty blocks, or a test on a key that is not a perimeter key (`_test_refusal` refuses every
    such test). Checked before `refusal`, without wording a reason: most Denies test the network."""
    condition = deny.get("Condition")
    if not isinstance(condition, dict) or not condition:
        return False
    for block in condition.values():
        if not isinstance(block, dict) or not block:
            return False
        for key in block:
            if type(key) is not str or key.lower() not in PERIMETER_KEYS:
                return False
    return True


def perimeters(statements: list[Statement], config: TrustConfig) -> list[int]:
    """The indexes of a policy's identity perimeter Denies (worked out once per policy by the engine)."""
    return [index for index, statement in enumerate(statements)
            if statement.get("Effect") == "Deny" and only_perimeter_keys(statement) and is_perimeter(statement, config)]


def guarding_perimeter(allow: Statement, statements: list[Statement], config: TrustConfig,
                       perimeter_indexes: list[int] | None = None) -> int | None:
    """The index of a perimeter Deny that covers every resource of `allow`, if any."""
    for index in perimeters(statements, config) if perimeter_indexes is None else perimeter_indexes:
        if resources_refusal(statements[index], allow) is None:
            return index
    return None


def _looks_like_perimeter(statement: Statement) -> bool:
    condition = statement.get("Condition")
    return (statement.get("Effect") == "Deny" and isinstance(condition, dict)
            and any(isinstance(block, dict) and any(isinstance(k, str) and k.lower() in PERIMETER_KEYS for k in block)
                    for block in condition.values()))


def candidates(statements: list[Statement]) -> list[int]:
    """The Denies that test the caller's identity: the ones a reader may take for a perimeter."""
    return [index for index, statement in enumerate(statements)
            if type(statement) is dict and statement.get("Effect") == "Deny" and _looks_like_perimeter(statement)]


def refusals(allow: Statement, statements: list[Statement], config: TrustConfig, indexes: list[int]) -> list[str]:
    """For a finding's detail: why each Deny at `indexes` (see `candidates`) does not guard `allow`."""
    reasons: list[str] = []
    for index in indexes:
        statement = statements[index]
        reason = refusal(statement, config) or resources_refusal(statement, allow)
        if reason:
            reasons.append(f"the Deny in statement {index} earns no identity-perimeter credit: {reason}")
    return reasons
