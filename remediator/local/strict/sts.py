"""STS: sts:AssumeRole as the caller's policy and the role's trust policy decide it, and the session it hands out.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from remediator.local.iam import Call, PolicySet, resource_policy_decide
from remediator.local.strict.invocation import Principal
from remediator.local.strict.organizations import organization_of
from remediator.local.strict.protocol import CheckedCall, Request, error_response

if TYPE_CHECKING:
    from remediator.local.strict.layer import StrictLayer


def assume_role_call(role_arn: str, caller_account: str) -> Call:
    """sts:AssumeRole as the caller's own policy sees it: the role (its ARN), with the global keys of the request
    (IAM user guide, "AWS global condition context keys"): aws:ResourceAccount and aws:ResourceOrgID (the account that
    owns the role and its organization, present only when that account is in one), aws:PrincipalAccount and
    aws:PrincipalOrgID (the caller's)."""
    parts = role_arn.split(":")
    owner = parts[4] if len(parts) > 5 else ""
    context: dict[str, tuple[str, ...]] = {"aws:PrincipalAccount": (caller_account,)}
    if owner:
        context["aws:ResourceAccount"] = (owner,)
        if (resource_org := organization_of(owner)) is not None:
            context["aws:ResourceOrgID"] = (resource_org,)
    if (principal_org := organization_of(caller_account)) is not None:
        context["aws:PrincipalOrgID"] = (principal_org,)
    return Call("sts:AssumeRole", role_arn, context)


def trust_policy(role_arn: str) -> dict[str, Any] | None:
    """The role's trust policy (AssumeRolePolicyDocument), or None if there is no such role."""
    from moto.iam.models import iam_backends

    parts = role_arn.split(":")
    if len(parts) < 6:
        return None
    try:
        role = iam_backends[parts[4]]["aws"].get_role_by_arn(role_arn)
    except Exception:
        return None
    document = role.assume_role_policy_document
    return json.loads(document) if isinstance(document, str) else document


def assume_role(layer: StrictLayer, app: Callable[..., Any], request: Request, principal: Principal, start_response: Any) -> Any:
    """sts:AssumeRole as STS decides it: the caller's own policy allowed it (checked before), and the role's
    trust policy must name the caller's role (with its conditions, aws:PrincipalOrgID among them). The
    session the emulator hands out is then a principal of the role's account, with the role's policies."""
    target = request.form().get("RoleArn", "")
    session = request.form().get("RoleSessionName", "session")
    target_account = target.split(":")[4] if target.count(":") >= 5 else ""
    looking_on = principal is layer.harness or principal.looking_on
    if not looking_on:
        trust = trust_policy(target)
        caller = principal.role_arn or principal.arn
        decision = None
        if trust is not None:
            context = {"aws:PrincipalAccount": (layer.account_of(principal),), "aws:PrincipalArn": (caller,)}
            org = organization_of(layer.account_of(principal))
            if org:
                context["aws:PrincipalOrgID"] = (org,)
            decision = resource_policy_decide(trust, caller, Call("sts:AssumeRole", target, context))
        if decision is None or not decision.allowed:
            with layer._lock:
                layer.checked.append(CheckedCall(principal.name, "sts:AssumeRole", target, False,
                                                "no such role" if trust is None else f"trust policy: {decision.reason}",
                                                principal.scope))
            return error_response(start_response, "sts", 403, "AccessDenied",
                          f"User: {principal.arn} is not authorized to perform: sts:AssumeRole on resource: {target}")
    captured: dict[str, Any] = {}

    def capture(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
        captured["status"], captured["headers"] = status, headers
        return lambda data: None

    body = b"".join(app(request.environ, capture))
    key = re.search(rb"<AccessKeyId>([^<]+)</AccessKeyId>", body)
    if key is not None and captured["status"].startswith("200"):
        name = target.rsplit("/", 1)[-1]
        layer.register(Principal(
            name=f"{name}@{target_account}", arn=f"arn:aws:sts::{target_account}:assumed-role/{name}/{session}",
            access_key=key.group(1).decode(), policies=session_policies(layer, target, request.form().get("Policy"), looking_on),
            role_arn=target, patient=looking_on, scope=principal.scope, account=target_account, looking_on=looking_on))
    start_response(captured["status"], captured["headers"])
    return [body]


def session_policies(layer: StrictLayer, role_arn: str, session_policy: str | None, looking_on: bool) -> PolicySet | None:
    """What a session of the role may do: the role's identity policies, intersected with the session policy
    the caller passed (IAM user guide, Session policies). The harness's own sessions are not IAM-checked, but
    one it bounded with a session policy (the CLI's read-only commands) is held to that policy."""
    document = json.loads(session_policy) if session_policy else None
    if looking_on:
        # the harness may do anything: the intersection is the session policy itself
        return None if document is None else PolicySet([document], principal="harness session")
    role = layer.role_policies.get(role_arn, PolicySet([], principal=role_arn))
    return role if document is None else role.with_session(document)
