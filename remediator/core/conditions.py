"""Decide whether a statement's Condition confines its callers to trusted identities.

A Condition only counts when it cannot be satisfied by an untrusted caller: every
value must be trusted and literal, and operators an absent key satisfies
(`ForAllValues:`, `...IfExists`) never count. Network keys narrow where a call comes
from, not whose it is, so they never count either; they are noted in the finding.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, NamedTuple

from remediator.core.principals import ACCOUNT_ID, arn_account, has_wildcard

if TYPE_CHECKING:
    from remediator.core.trust import TrustConfig

ACCOUNT_KEYS = frozenset({"aws:principalaccount", "aws:sourceaccount", "aws:sourceowner"})
ORG_KEYS = frozenset({"aws:principalorgid"})
ORG_PATH_KEYS = frozenset({"aws:principalorgpaths"})
ARN_KEYS = frozenset({"aws:principalarn", "aws:sourcearn"})
IDENTITY_KEYS = ACCOUNT_KEYS | ORG_KEYS | ORG_PATH_KEYS | ARN_KEYS
NETWORK_KEYS = frozenset({"aws:sourceip", "aws:vpcsourceip", "aws:sourcevpc", "aws:sourcevpce"})

STRING_OPERATORS = frozenset({"StringEquals", "StringEqualsIgnoreCase", "StringLike"})
ARN_OPERATORS = frozenset({"ArnEquals", "ArnLike"})
MEMO_LIMIT = 4096  # entries per memo and trust configuration; a full memo starts again empty


class ConditionVerdict(NamedTuple):  # a tuple: built for every judged statement that is worded
    restricts_to_trusted: bool
    network_keys: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()


UNCONDITIONAL = ConditionVerdict(False)


def judge_condition(condition: dict[str, Any] | None, config: TrustConfig) -> ConditionVerdict:
    """Whether the Condition admits only trusted callers, and what it says about the network."""
    if not condition:
        return UNCONDITIONAL
    restricts = False
    network: list[str] = []
    notes: list[str] = []
    for operator, block in condition.items():
        if not isinstance(block, dict) or not isinstance(operator, str):
            continue
        base, ignored_because = _base_operator(operator)
        for key, raw_values in block.items():
            lowered = key.lower() if isinstance(key, str) else ""
            if lowered in NETWORK_KEYS:
                network.append(key)
                continue
            if lowered not in IDENTITY_KEYS:
                continue
            if ignored_because:
                notes.append(f"{operator} on {key} does not restrict the caller ({ignored_because})")
                continue
            values = [raw_values] if isinstance(raw_values, str) else raw_values
            if not isinstance(values, list) or not values or not all(isinstance(v, str) for v in values):
                continue
            untrusted = [v for v in values if not _value_is_trusted(lowered, base, v, config)]
            if not untrusted:
                restricts = True
            else:
                notes.append(f"{operator} on {key} admits {', '.join(untrusted)}")
    return ConditionVerdict(restricts, tuple(network), tuple(notes))


def restricts_to_trusted(condition: dict[str, Any], config: TrustConfig, memo: dict[Any, bool]) -> bool:
    """judge_condition(condition, config).restricts_to_trusted without the wording, which is all the engine's
    verdict needs; `memo` (per trust configuration) remembers each (operator, key, values) test's answer."""
    for operator, block in condition.items():
        if not isinstance(block, dict) or not isinstance(operator, str):
            continue
        for key, raw_values in block.items():
            test = (operator, key, tuple(raw_values) if type(raw_values) is list else raw_values)
            try:
                confines = memo.get(test)
            except TypeError:  # a value that cannot be a key (an object): it confines nobody, but ask the rule
                confines = _confines(operator, key, raw_values, config)
            else:
                if confines is None:
                    if len(memo) >= MEMO_LIMIT:
                        memo.clear()
                    confines = memo[test] = _confines(operator, key, raw_values, config)
            if confines:
                return True
    return False


def _confines(operator: str, key: Any, raw_values: Any, config: TrustConfig) -> bool:
    """Whether one test of a Condition admits only trusted callers (the rule judge_condition applies)."""
    lowered = key.lower() if isinstance(key, str) else ""
    if lowered not in IDENTITY_KEYS:
        return False
    base, ignored_because = _base_operator(operator)
    values = [raw_values] if isinstance(raw_values, str) else raw_values
    if ignored_because or not isinstance(values, list) or not values or not all(isinstance(v, str) for v in values):
        return False
    return all(_value_is_trusted(lowered, base, v, config) for v in values)


def _base_operator(operator: str) -> tuple[str, str]:
    """The operator without its set prefix, and why it cannot restrict (empty when it can)."""
    if operator.startswith("ForAllValues:"):
        return operator[len("ForAllValues:"):], "ForAllValues is satisfied when the key is absent"
    if operator.startswith("ForAnyValue:"):
        operator = operator[len("ForAnyValue:"):]
    if operator.endswith("IfExists"):
        return operator, "IfExists is satisfied when the key is absent"
    if operator not in STRING_OPERATORS and operator not in ARN_OPERATORS:
        return operator, f"operator {operator} is not an equality or pattern match"
    return operator, ""


def _value_is_trusted(key: str, operator: str, value: str, config: TrustConfig) -> bool:
    if key in ARN_KEYS:
        account = arn_account(value, fields_match_separately=operator in ARN_OPERATORS)
        return account is not None and ACCOUNT_ID.fullmatch(account) is not None and config.trusts_account(account)
    if operator not in STRING_OPERATORS:
        return False
    if key in ORG_PATH_KEYS:
        # o-exampleorgid/r-root/ou-unit/*: only the organization segment must be literal.
        value = value.split("/", 1)[0]
    if has_wildcard(value):
        return False
    if key in ACCOUNT_KEYS:
        return config.trusts_account(value)
    if operator == "StringEqualsIgnoreCase":
        value = value.lower()
    return config.trusts_org(value)
