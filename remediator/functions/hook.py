"""The CloudFormation Lambda Hook (remediator:cloudFormationHook = fail | warn): before CloudFormation creates or
updates an AWS::ApiGateway::RestApi, its `Policy` is judged by the same engine and the same trusted lists (the trust
parameter) as the workflow's, so that an untrusted principal never reaches API Gateway at all. An AWS::Serverless::Api
is a RestApi by then: the SAM transform expands it (and its Auth.ResourcePolicy into Policy) before provisioning.

The request and the answer are the documented ones (CloudFormation Hooks User Guide, "Create Lambda functions to
evaluate resources for Lambda Hooks"): the request's `actionInvocationPoint` (CREATE_PRE_PROVISION,
UPDATE_PRE_PROVISION, DELETE_PRE_PROVISION), `requestData.targetName` and `requestData.targetModel.resourceProperties`;
the answer's `hookStatus` (SUCCESS | FAILED | IN_PROGRESS), `errorCode` (NonCompliant | InternalFailure, required when
FAILED), `message` (truncated to 4096 characters for CloudFormation) and `clientRequestToken` (the request's).

A policy still holding an intrinsic function (Ref, Fn::...) cannot be judged: what it grants depends on a value the hook
does not see. It is let through with a warning, never blocked: blocking would stop deployments that may well be
compliant, and once deployed the API is judged anyway (its CreateRestApi/UpdateRestApi event starts the workflow).
"""

from __future__ import annotations

import json
import os
from typing import Any

from remediator.functions import coldstart
from remediator.adapters.apigateway import RestApi
from remediator.findings_formats import worst
from remediator.functions.common import Settings, own_account
from remediator.functions.needs import Needs
from remediator.logs import get_logger
from remediator.transaction.planning import assess
from remediator.workflow.errors import WorkflowError

log = get_logger("remediator.functions.hook")

TARGET = "AWS::ApiGateway::RestApi"
CHECKED_POINTS = ("CREATE_PRE_PROVISION", "UPDATE_PRE_PROVISION")
MESSAGE_LIMIT = 4096  # "When evaluating CloudFormation operations, this field is truncated to 4096 characters."
HOOK_MODES = ("fail", "warn")


def needs(mode: str, slack: bool) -> Needs | None:
    # The trusted lists (the trust parameter), as every state that judges reads them; nothing else.
    return Needs(read_trust=True)


def handler(event: dict[str, Any], context: Any = None) -> dict[str, Any]:
    """Judge the proposed Policy of a RestApi being created or updated; SUCCESS, or FAILED with the findings."""
    token = event.get("clientRequestToken") if isinstance(event, dict) else None
    mode = os.environ.get("HOOK_MODE", "fail")
    if mode not in HOOK_MODES:
        return _answer(token, "FAILED", f"HOOK_MODE {mode!r:.40} is not fail or warn", "InternalFailure")
    request = event.get("requestData") if isinstance(event, dict) else None
    point = event.get("actionInvocationPoint") if isinstance(event, dict) else None
    if not isinstance(request, dict) or not isinstance(point, str):
        return _answer(token, "FAILED", "not a CloudFormation Lambda Hook request (no requestData or actionInvocationPoint)",
                       "InternalFailure")
    target = request.get("targetName")
    if target != TARGET or point not in CHECKED_POINTS:
        return _answer(token, "SUCCESS", f"{target} {point}: not checked by apigw-remediator")
    model = request.get("targetModel") if isinstance(request.get("targetModel"), dict) else {}
    properties = model.get("resourceProperties") if isinstance(model.get("resourceProperties"), dict) else {}
    name = str(properties.get("Name") or request.get("targetLogicalId") or "")
    policy = properties.get("Policy")
    if policy in (None, "", {}):
        return _answer(token, "SUCCESS", f"{name}: no resource policy, so it grants no other account anything")
    unresolved = _intrinsic(policy)
    if unresolved:
        log.warning("hook_policy_unresolved", api=name, intrinsic=unresolved)
        return _answer(token, "SUCCESS", f"WARNING {name}: the resource policy holds {unresolved}, which the hook cannot "
                       "resolve, so it is not checked before deployment; the remediator checks the deployed API")
    try:
        settings = Settings.from_environment()
        region = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1"
        trust = settings.sweep_settings(own_account(context), region)
    except WorkflowError as error:  # the trusted lists cannot be read: nothing can be judged
        log.error("hook_trust_unreadable", error=str(error)[:300])
        return _answer(token, "FAILED", f"apigw-remediator cannot read its trusted lists: {error}", "InternalFailure")
    text = policy if isinstance(policy, str) else json.dumps(policy)
    tags = {str(t.get("Key")): str(t.get("Value")) for t in properties.get("Tags") or [] if isinstance(t, dict)}
    report = assess(RestApi(region, "", name, text, tags), trust)
    if report.exempt:
        return _answer(token, "SUCCESS", f"{name}: exempt (tag {trust.exempt_tag_key}=true); not checked")
    if report.evaluation is None:  # API Gateway refuses a policy that does not parse: said, not blocked here
        return _answer(token, "SUCCESS", f"WARNING {name}: {report.error}")
    if report.evaluation.compliant:
        return _answer(token, "SUCCESS", f"{name}: the resource policy grants only trusted accounts")
    findings = [f.to_dict() for f in report.evaluation.findings]
    severity = worst([f["kind"] for f in findings]).asff_label
    detail = "; ".join(f"{f['kind']} {f['principal']} (statement {f['statement_index']})" for f in findings)
    message = (f"{name}: the resource policy grants access that is not trusted ({severity}): {detail}. Remove these "
               "principals from Policy, or trust the account (remediator:trustedAccounts).")
    log.info("hook_findings", api=name, findings=len(findings), mode=mode, point=point)
    annotation = {"annotationName": "UntrustedPrincipals", "status": "FAILED", "statusMessage": detail[:1024],
                  "remediationMessage": "Remove the untrusted principals from the RestApi's Policy.", "severityLevel": severity}
    if mode == "warn":
        return _answer(token, "SUCCESS", f"WARNING {message}", annotations=[annotation])
    return _answer(token, "FAILED", message, "NonCompliant", annotations=[annotation])


def _answer(token: Any, status: str, message: str, error_code: str | None = None,
            annotations: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    answer: dict[str, Any] = {"hookStatus": status, "message": message[:MESSAGE_LIMIT], "clientRequestToken": token}
    if error_code:
        answer["errorCode"] = error_code
    if annotations:
        answer["annotations"] = annotations
    return answer


def _intrinsic(value: Any) -> str | None:
    """The first intrinsic function (Ref, Fn::...) left in a value, or None."""
    if isinstance(value, dict):
        if len(value) == 1:
            (key,) = value
            if key == "Ref" or key.startswith("Fn::"):
                return key
        for item in value.values():
            found = _intrinsic(item)
            if found:
                return found
    if isinstance(value, list):
        for item in value:
            found = _intrinsic(item)
            if found:
                return found
    return None


coldstart.loaded()  # last: this function's modules are loaded (remediator/functions/coldstart.py)
