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
    from remediator.core.trust_config import TrustConfig

ACCOUNT_KEYS = frozenset({"aws:principalaccount", "aws:sourceaccount", "aws:sourceowner"})
ORG_KEYS = frozenset({"aws:principalorgid"})
ORG_PATH_KEYS = frozenset({"aws:principalorgpaths"})
ARN_KEYS = frozenset({"aws:principalarn", "aws:sourcearn"})
IDENTITY_KEYS = ACCOUNT_KEYS | ORG_KEYS | ORG_PATH_KEYS | ARN_KEYS
NETWORK_KEYS = frozenset({"aws:sourceip", "aws:vpcsourceip", "aws:sourcevpc", "aws:sourcevpce"})

STRING_OPERATORS = frozenset({"StringEquals", "StringEqualsIgnoreCase", "StringLike"})
ARN_OPERATORS = frozenset({"ArnEquals", "ArnLike"})
MEMO_LIMIT = 16384  # entries per memo and trust configuration; a full memo starts again empty


class ConditionVerdict(NamedTuple):  # a tuple: built for every judged statement that is worded
    restricts_to_trusted: bool
    network_keys: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()


UNCONDITIONAL = ConditionVerdict(False)


# One test of a Condition (an operator on a key), judged: (is it on a network key, what a finding's detail
# says about it or None, does it confine the callers to trusted identities).
TestVerdict = tuple[bool, "str | None", bool]


def judge_condition(condition: dict[str, Any] | None, config: TrustConfig,
                    memo: dict[Any, TestVerdict] | None = None) -> ConditionVerdict:
    """Whether the Condition admits only trusted callers, and what it says about the network.

    With `memo` (the engine's, per trust configuration), each test's verdict is remembered.
    """
    if not condition:
        return UNCONDITIONAL
    restricts = False
    network: list[str] = []
    notes: list[str] = []
    for operator, block in condition.items():
        if not isinstance(block, dict) or not isinstance(operator, str):
            continue
        for key, raw_values in block.items():
            on_network, note, confines = _test(operator, key, raw_values, config, memo)
            if on_network:
                network.append(key)
            if note:
                notes.append(note)
            restricts = restricts or confines
    return ConditionVerdict(restricts, tuple(network), tuple(notes))


def restricts_to_trusted(condition: dict[str, Any], config: TrustConfig, memo: dict[Any, TestVerdict]) -> bool:
    """judge_condition(condition, config).restricts_to_trusted without assembling the wording, which is all
    the engine's verdict needs."""
    for operator, block in condition.items():
        if isinstance(block, dict) and isinstance(operator, str):
            for key, raw_values in block.items():
                # Only an identity key can confine (checked first: most conditions are on the network).
                if type(key) is str and key.lower() in IDENTITY_KEYS and _test(operator, key, raw_values, config, memo)[2]:
                    return True
    return False


def _test(operator: str, key: Any, raw_values: Any, config: TrustConfig, memo: dict[Any, TestVerdict] | None) -> TestVerdict:
    if memo is None:
        return _judge_test(operator, key, raw_values, config)
    test = (operator, key, tuple(raw_values) if type(raw_values) is list else raw_values)
    try:
        verdict = memo.get(test)
    except TypeError:  # a value that cannot be a key (an object): judged every time
        return _judge_test(operator, key, raw_values, config)
    if verdict is None:
        if len(memo) >= MEMO_LIMIT:
            memo.clear()
        verdict = memo[test] = _judge_test(operator, key, raw_values, config)
    return verdict


def _judge_test(operator: str, key: Any, raw_values: Any, config: TrustConfig) -> TestVerdict:
    """The rule for one test: network keys never confine; identity keys do when every value is trusted and
    literal and the operator is an equality or pattern match an absent key cannot satisfy."""
    lowered = key.lower() if isinstance(key, str) else ""
    if lowered in NETWORK_KEYS:
        return (True, None, False)
    if lowered not in IDENTITY_KEYS:
        return (False, None, False)
    base, ignored_because = _base_operator(operator)
    if ignored_because:
        return (False, f"{operator} on {key} does not restrict the caller ({ignored_because})", False)
    if base in ARN_OPERATORS and lowered not in ARN_KEYS:  # IAM global condition keys: a String key, not an ARN
        return (False, f"{operator} on {key} does not restrict the caller (not an operator for the key's type, String)", False)
    values = [raw_values] if isinstance(raw_values, str) else raw_values
    if not isinstance(values, list) or not values or not all(isinstance(v, str) for v in values):
        return (False, None, False)
    untrusted = [v for v in values if not _value_is_trusted(lowered, base, v, config)]
    if untrusted:
        return (False, f"{operator} on {key} admits {', '.join(untrusted)}", False)
    return (False, None, True)


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
