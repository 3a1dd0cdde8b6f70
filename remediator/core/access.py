"""Who can actually call: each finding joined with what the API enforces on each of its methods.

A finding says a policy *grants* something to a principal nobody trusts; whether that principal can *call* a
method also depends on the method's `authorizationType` and `apiKeyRequired` and on the API's endpoint type.
This module follows AWS's documented evaluation, cited where it is modelled; what it cannot decide it calls
indeterminate, with the reason, and never compliant. It reads; it never changes the fix (the engine's).

Sources (API Gateway developer guide):
- [FLOW] "How API Gateway resource policies affect authorization workflow", with its "Policy evaluation outcome
  tables" (https://docs.aws.amazon.com/apigateway/latest/developerguide/apigateway-authorization-flow.html):
  * resource policy only (authorizationType NONE): an explicit Allow in the resource policy is needed; an
    implicit or explicit deny denies;
  * Lambda authorizer (CUSTOM): explicit Denies of the resource policy are checked first, then the authorizer's
    policy and the resource policy together by Table A (same account: either Allow suffices, any Deny wins);
  * IAM (AWS_IAM): a caller in another account needs an Allow in both its IAM policy and the resource policy
    (Table B); in the API owner's account either suffices (Table A);
  * Amazon Cognito (COGNITO_USER_POOLS): the caller authenticates with the user pool first, then the resource
    policy must explicitly allow.
- [VPCE] "Use VPC endpoint policies for private APIs in API Gateway": a request without a SigV4 signature is
  evaluated as an anonymous user; a signed one as the IAM identity of the signature. So a statement naming an
  account's principals admits nobody on a NONE, CUSTOM or Cognito method: only Principal "*" matches there.
- [RP] "Control access to a REST API with API Gateway resource policies": resource policies allow "specified
  VPCs or VPC endpoints (in any account)"; a PRIVATE API is reached through interface VPC endpoints only
  ("Private REST APIs in API Gateway"), so a policy that does not confine aws:SourceVpce / aws:SourceVpc lets any
  account's VPC endpoint in.
- [KEYS] "Usage plans and API keys for REST APIs in API Gateway": API keys identify clients for usage plans and
  are used together with Lambda authorizers, IAM or Cognito to control access; alone they are a shared secret.
- IAM user guide, "Condition operators": a key absent from the request makes every operator false except
  `...IfExists`, `Null` and the negated operators (as remediator.core.perimeter); "AWS global condition context
  keys": principal keys (aws:PrincipalAccount, aws:PrincipalOrgID, aws:PrincipalArn, ...) are in the context of
  signed requests only, so an anonymous caller never has them.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from typing import Any

import msgspec

from remediator.codec import Record

from remediator.core.conditions import IDENTITY_KEYS, NETWORK_KEYS
from remediator.core.patterns import covers
from remediator.core.perimeter import _covers_invoke, _strings, _wildcard_principal
from remediator.core.policy import Policy, Statement, statements_of
from remediator.core.trust import Finding, FindingKind

AUTHORIZATION_TYPES = ("NONE", "AWS_IAM", "CUSTOM", "COGNITO_USER_POOLS")
ENDPOINT_TYPES = ("EDGE", "REGIONAL", "PRIVATE")

# What a caller must get past to call a method, and the grade of a method whose weakest barrier it is. The one
# table the bot grades by (remediator.findings_formats maps the names to SARIF, OCSF and ASFF): a method's grade is
# the lowest among the gates its caller must pass, a finding's the highest among the methods it reaches.
GATES: dict[str, str] = {
    "anyone": "critical",  # NONE, no API key, EDGE or REGIONAL endpoint, Principal "*": anyone on the internet [FLOW]
    "any-vpc-endpoint": "high",  # the same on a PRIVATE endpoint whose policy names no VPC endpoint or VPC [RP]
    "iam": "high",  # AWS_IAM: an untrusted account's own IAM identities, by Table B [FLOW]
    "api-key": "medium",  # apiKeyRequired: a valid API key too [KEYS]
    "authorizer": "medium",  # CUSTOM (Table A) or COGNITO_USER_POOLS: a token the authorizer accepts [FLOW]
    "named-vpc-endpoints": "medium",  # PRIVATE, confined by aws:SourceVpce / aws:SourceVpc to named ones [RP]
    "nothing-reachable": "low",  # no method reachable through the finding's statement
}
GRADES = ("low", "medium", "high", "critical")

REACHABLE, UNREACHABLE, INDETERMINATE, UNKNOWN = "reachable", "unreachable", "indeterminate", "unknown"

# Condition keys in the context of every request (so a caller meets or misses them by where and how it calls).
REQUEST_KEYS = NETWORK_KEYS | frozenset({"aws:securetransport", "aws:currenttime", "aws:epochtime", "aws:useragent",
                                         "aws:referer", "aws:requestedregion"})
# Keys in the context of signed requests only (IAM user guide, global condition context keys).
PRINCIPAL_KEYS = IDENTITY_KEYS | frozenset({
    "aws:principaltype", "aws:userid", "aws:username", "aws:principalisawsservice", "aws:principalservicename",
    "aws:multifactorauthpresent", "aws:multifactorauthage", "aws:viaawsservice", "aws:tokenissuetime",
    "aws:sourceidentity", "aws:calledvia", "aws:calledviafirst", "aws:calledvialast"})
PRINCIPAL_KEY_PREFIXES = ("aws:principaltag/",)
VPC_KEYS = frozenset({"aws:sourcevpce", "aws:sourcevpc"})
METHODS_LISTED = 25  # reachable methods listed per finding (all are counted and digested)
SEGMENT = "\x00"  # in `intersects`' right pattern only: any run of characters but `/` (one path segment)
_STATE_LIMIT = 200_000  # pattern pairs explored before a resource is taken to match (never to not match)


class Method(msgspec.Struct, frozen=True):
    """One method as GetResources (embed=methods) returns it. None where API Gateway did not say."""

    path: str
    http_method: str
    authorization_type: str | None
    api_key_required: bool | None = False


class Endpoint(msgspec.Struct, frozen=True):
    """The API's endpointConfiguration (GetRestApi): its types and, for PRIVATE, the associated VPC endpoints."""

    types: tuple[str, ...]
    vpc_endpoint_ids: tuple[str, ...] = ()

    @property
    def private(self) -> bool:
        return "PRIVATE" in self.types


class MethodReach(Record, frozen=True):
    """A method the finding's principal can call, and what it must meet to do so."""

    path: str
    http_method: str
    authorization_type: str
    api_key_required: bool
    caller: str  # who, in words: "anyone", "any AWS account", "account 999999999999", ...
    gates: tuple[str, ...]  # GATES keys the caller must pass
    conditions: tuple[str, ...] = ()  # the policy's conditions the call must meet (an Allow's, or not a Deny's)
    severity: str = "low"

    def key(self) -> tuple[str, str, str, bool]:
        return (self.http_method, self.path, self.authorization_type, self.api_key_required)


class Reach(msgspec.Struct, frozen=True):
    """One finding's effective access: the methods its principal reaches, the grade, or why it cannot be told."""

    finding: int  # the finding's position in Evaluation.findings
    status: str  # REACHABLE, UNREACHABLE, INDETERMINATE, UNKNOWN (the methods were not read)
    severity: str | None  # a GRADES name; None where the status leaves only the policy's own grade
    methods: tuple[MethodReach, ...] = ()
    reason: str = ""

    def to_dict(self) -> dict[str, Any]:
        """At most METHODS_LISTED methods (the workflow's state takes 256 KB), their count, and a digest of all of
        them (what the notice fingerprint compares: a change past the listed ones is still a change). A report, not
        a codec pair: nothing decodes it back into a Reach."""
        keys = sorted(json.dumps(m.key()) for m in self.methods)
        record: dict[str, Any] = {"finding": self.finding, "reachability": self.status, "severity": self.severity,
                                  "reachable_methods": [m.to_dict() for m in self.methods[:METHODS_LISTED]],
                                  "reachable_method_count": len(self.methods),
                                  "methods_digest": hashlib.sha256("\n".join(keys).encode()).hexdigest()[:32]}
        if self.reason:
            record["reason"] = self.reason
        return record


class ApiAccess(msgspec.Struct, frozen=True):
    """Every finding's Reach for one API, in the order of the findings."""

    reaches: tuple[Reach, ...] = ()

    def to_list(self) -> list[dict[str, Any]]:
        return [reach.to_dict() for reach in self.reaches]


def grade_of(gates: Sequence[str]) -> str:
    """The grade of a method: its weakest-graded gate (a key or an authorizer in front lowers the grade)."""
    return min((GATES[gate] for gate in gates), key=GRADES.index, default=GATES["nothing-reachable"])


def worst(grades: Sequence[str | None]) -> str | None:
    known = [grade for grade in grades if grade is not None]
    return max(known, key=GRADES.index) if known else None


def effective_access(findings: Sequence[Finding], policy: Policy, api_arn: str, methods: Sequence[Method] | None,
                     endpoint: Endpoint | None, unread: str | None = None) -> ApiAccess:
    """Each finding's Reach. `api_arn` is arn:<partition>:execute-api:<region>:<account>:<api id>, what a
    relative `execute-api:/...` resource expands to; `methods` None means they were not read (`unread` says why,
    which makes the findings indeterminate rather than unknown)."""
    try:
        statements = statements_of(policy)
    except (KeyError, TypeError):
        statements = []
    return ApiAccess(tuple(_reach(index, finding, statements, api_arn, methods, endpoint, unread)
                           for index, finding in enumerate(findings)))


def _reach(index: int, finding: Finding, statements: list[Statement], api_arn: str, methods: Sequence[Method] | None,
           endpoint: Endpoint | None, unread: str | None) -> Reach:
    if finding.kind is FindingKind.AMBIGUOUS_POLICY:
        return Reach(index, INDETERMINATE, None, reason="the policy repeats a key; which value AWS applies is not documented")
    if finding.kind is FindingKind.UNRECOGNIZED_PRINCIPAL:
        return Reach(index, INDETERMINATE, None, reason=f"the principal {finding.principal} is not understood")
    if finding.kind is FindingKind.ORPHANED_PRINCIPAL:
        return Reach(index, UNREACHABLE, GATES["nothing-reachable"], reason="an IAM unique ID of a deleted principal names nobody")
    if methods is None:
        if unread:
            return Reach(index, INDETERMINATE, None, reason=f"the API's methods could not be read: {unread}")
        return Reach(index, UNKNOWN, None, reason="the API's methods are unknown: graded from the policy alone")
    if endpoint is None or not endpoint.types or any(t not in ENDPOINT_TYPES for t in endpoint.types):
        return Reach(index, INDETERMINATE, None, reason=f"endpoint types {list(endpoint.types) if endpoint else None} are not ones the bot models")
    if not 0 <= finding.statement_index < len(statements) or not isinstance(statements[finding.statement_index], dict):
        return Reach(index, INDETERMINATE, None, reason=f"statement {finding.statement_index} is not in the policy")
    allow = statements[finding.statement_index]
    if not _covers_invoke(allow):
        return Reach(index, UNREACHABLE, GATES["nothing-reachable"], reason="the statement does not allow execute-api:Invoke")
    anyone = "NotPrincipal" in allow or _wildcard_principal(allow.get("Principal"))
    reached: list[MethodReach] = []
    doubts: list[str] = []
    for method in methods:
        try:
            outcome = _method_reach(method, finding, allow, anyone, statements, api_arn, endpoint)
        except _Undecided as undecided:
            doubts.append(f"{method.http_method} {method.path}: {undecided}")
            continue
        if outcome is not None:
            reached.append(outcome)
    graded = worst([m.severity for m in reached]) or GATES["nothing-reachable"]
    if doubts:
        return Reach(index, INDETERMINATE, graded if reached else None, tuple(reached), "; ".join(doubts[:5])
                     + (f"; and {len(doubts) - 5} more" if len(doubts) > 5 else ""))
    if not reached:
        return Reach(index, UNREACHABLE, graded, reason="no method of the API is reachable through this statement")
    return Reach(index, REACHABLE, graded, tuple(reached))


class _Undecided(Exception):
    """What the bot cannot decide for one method; the message says why."""


def _method_reach(method: Method, finding: Finding, allow: Statement, anyone: bool, statements: list[Statement],
                  api_arn: str, endpoint: Endpoint) -> MethodReach | None:
    auth = method.authorization_type
    if auth not in AUTHORIZATION_TYPES:
        raise _Undecided(f"authorizationType {auth!r} is not one the bot models")
    target = _target(api_arn, method)
    if not _in_resources(allow, target, _target(api_arn, method, SEGMENT), api_arn):
        return None
    signed = auth == "AWS_IAM"
    if not signed and not anyone:
        return None  # [VPCE] an unsigned caller is anonymous: only Principal "*" (or NotPrincipal) admits it
    conditions: list[str] = []
    if not _conditions_hold(allow.get("Condition"), signed, conditions):
        return None
    confined = _confines_vpc(allow.get("Condition"), negate=False)
    for number, deny in enumerate(statements):
        if not isinstance(deny, dict) or deny.get("Effect") != "Deny" or not _deny_applies(deny, finding, target, api_arn):
            continue
        unless: list[str] = []
        if _conditions_hold(deny.get("Condition"), signed, unless):
            if not unless:
                return None  # an unconditional Deny (for this caller) wins over every Allow [FLOW]
            conditions.append(f"not ({' and '.join(unless)}) (Deny, statement {number})")
            confined = confined or _confines_vpc(deny.get("Condition"), negate=True)
    api_key = bool(method.api_key_required)
    gates: list[str] = []
    if signed:
        gates.append("iam")
        caller = "any AWS account" if anyone else f"account {finding.account or finding.principal}"
    else:
        caller = "anyone"
        if auth in ("CUSTOM", "COGNITO_USER_POOLS"):
            gates.append("authorizer")
            caller = "anyone with a token the " + ("Lambda authorizer" if auth == "CUSTOM" else "Cognito user pool") + " accepts"
        elif endpoint.private:
            gates.append("named-vpc-endpoints" if confined else "any-vpc-endpoint")
        else:
            gates.append("anyone")
    if endpoint.private and (signed or auth != "NONE") and confined:
        gates.append("named-vpc-endpoints")
    if endpoint.private:
        caller += " through " + ("the named VPC endpoints or VPCs" if confined else "any account's VPC endpoint")
    if api_key:
        gates.append("api-key")
        caller += ", with an API key"
    return MethodReach(method.path, method.http_method, auth, api_key, caller, tuple(gates), tuple(conditions), grade_of(gates))


def _target(api_arn: str, method: Method, any_segment: str = "*") -> str:
    """The method's execute-api ARN on any stage: <api arn>/<stage>/<verb>/<path>, the stage, the verb of ANY and
    each path parameter as `any_segment`: SEGMENT (one path segment, no `/`) for `intersects`, `*` for `covers`
    (broader than any request: a Deny is credited only when it covers even that). A greedy `{proxy+}` spans
    segments: always `*`."""
    parts = []
    for part in method.path.strip("/").split("/"):
        if part.startswith("{") and part.endswith("+}"):
            parts.append("*")
        else:
            parts.append(any_segment if part.startswith("{") and part.endswith("}") else part)
    verb = any_segment if method.http_method.upper() == "ANY" else method.http_method.upper()
    return f"{api_arn}/{any_segment}/{verb}/{'/'.join(parts)}"


def _expand(pattern: str, api_arn: str) -> str:
    """execute-api:/... names this API's own resources (API Gateway expands it to the API's ARN when it saves the
    policy; developer guide, "API Gateway resource policy examples")."""
    if pattern.startswith("execute-api:/"):
        return api_arn + pattern[len("execute-api:"):]
    return pattern


def _patterns(statement: Statement, key: str) -> list[str]:
    values = _strings(statement.get(key))
    if values is None:
        raise _Undecided(f"its {key} is not a string or a list of strings")
    for value in values:
        if "${" in value:
            raise _Undecided(f"its {key} {value} holds an unresolved reference")
    return values


def _in_resources(statement: Statement, target: str, segmented: str, api_arn: str) -> bool:
    """Whether the statement's resources include some request of the method (Resource) or do not exclude every
    one of them (NotResource)."""
    if "NotResource" in statement:
        return not any(covers(_expand(p, api_arn), target) for p in _patterns(statement, "NotResource"))
    if "Resource" not in statement:
        raise _Undecided("it has no Resource")
    return any(intersects(_expand(p, api_arn), segmented) for p in _patterns(statement, "Resource"))


def _deny_applies(deny: Statement, finding: Finding, target: str, api_arn: str) -> bool:
    """A Deny counts against the method when it names every caller (or the finding's very principal), covers
    execute-api:Invoke, and covers every request of the method. A Deny the bot does not credit only leaves the
    method reachable: an overstatement, never a silent pass."""
    if "NotPrincipal" in deny:
        return False
    principal = deny.get("Principal")
    named = isinstance(principal, dict) and finding.principal in (_strings(principal.get("AWS")) or [])
    if not (_wildcard_principal(principal) or named) or not _covers_invoke(deny):
        return False
    try:
        if "NotResource" in deny:
            return False
        return any(covers(_expand(p, api_arn), target) for p in _patterns(deny, "Resource"))
    except _Undecided:
        return False


def _conditions_hold(condition: Any, signed: bool, shown: list[str]) -> bool:
    """Whether the Condition can hold for the caller. Tests the bot can settle (a principal key absent from an
    unsigned request) are settled; the others, on keys of the request, are appended to `shown` as what the call
    must meet. False when a settled test is false. An unknown key or operator is undecidable."""
    if condition is None:
        return True
    if not isinstance(condition, dict):
        raise _Undecided("a Condition is not an object")
    for operator, block in condition.items():
        if not isinstance(operator, str) or not isinstance(block, dict):
            raise _Undecided(f"its Condition block {operator!r} is not an object")
        for key, values in block.items():
            lowered = key.lower() if isinstance(key, str) else ""
            principal_key = lowered in PRINCIPAL_KEYS or lowered.startswith(PRINCIPAL_KEY_PREFIXES)
            if not principal_key and lowered not in REQUEST_KEYS:
                raise _Undecided(f"condition key {key!r} is not one the bot models")
            if principal_key and not signed:
                if _true_when_absent(operator, values):
                    continue
                return False
            shown.append(f"{operator} {key} {_values(values)}")
    return True


def _true_when_absent(operator: str, values: Any) -> bool:
    """IAM user guide, "Condition operators": with the key absent, `...IfExists`, the negated operators and
    ForAllValues are true, `Null` is true when it tests for absence, every other operator false."""
    if operator == "Null":
        return str(values[0] if isinstance(values, list) and values else values).lower() == "true"
    base = operator.split(":", 1)[1] if operator.startswith(("ForAllValues:", "ForAnyValue:")) else operator
    if operator.startswith("ForAllValues:") or base.endswith("IfExists"):
        return True
    return "Not" in base and not operator.startswith("ForAnyValue:")


def _values(values: Any) -> str:
    items = values if isinstance(values, list) else [values]
    return ", ".join(str(v) for v in items)


def _confines_vpc(condition: Any, negate: bool) -> bool:
    """Whether the Condition confines calls to named VPC endpoints or VPCs: an Allow's StringEquals (or a
    StringLike without wildcards) on aws:SourceVpce / aws:SourceVpc, or a Deny's StringNotEquals (StringNotLike)."""
    if not isinstance(condition, dict):
        return False
    wanted = ("StringNotEquals", "StringNotEqualsIgnoreCase", "StringNotLike") if negate else (
        "StringEquals", "StringEqualsIgnoreCase", "StringLike")
    for operator, block in condition.items():
        if operator not in wanted or not isinstance(block, dict):
            continue
        for key, values in block.items():
            items = _strings(values)
            if isinstance(key, str) and key.lower() in VPC_KEYS and items and not any("*" in v or "?" in v for v in items):
                return True
    return False


def intersects(left: str, right: str) -> bool:
    """Whether some string matches both IAM wildcard patterns (`*` any run, `?` one character; in `right`, SEGMENT
    any run without `/`). True when the search would exceed its bound: a resource taken to match can only
    overstate what is reachable."""
    seen: set[tuple[int, int]] = set()
    stack = [(0, 0)]
    while stack:
        i, j = stack.pop()
        if (i, j) in seen:
            continue
        seen.add((i, j))
        if len(seen) > _STATE_LIMIT:
            return True
        a = left[i] if i < len(left) else None
        b = right[j] if j < len(right) else None
        if a is None and b is None:
            return True
        if b == SEGMENT:
            stack.append((i, j + 1))  # the segment ends here
            if a is not None and a not in ("*", "/"):
                stack.append((i + 1, j))  # it takes the (non-slash) character the other pattern reads
        if a == "*":
            stack.append((i + 1, j))  # the star matches nothing
            if b is not None and b != SEGMENT:
                stack.append((i, j + 1))  # it matches the character the other pattern reads
        if b == "*":
            stack.append((i, j + 1))
            if a is not None:
                stack.append((i + 1, j))
        if a is not None and b is not None and "*" not in (a, b) and b != SEGMENT and (a == b or a == "?" or b == "?"):
            stack.append((i + 1, j + 1))
    return False
