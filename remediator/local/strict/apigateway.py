"""API Gateway: the IAM actions of a control-plane call, the deployments it refuses, resource policies in
the escaped form it returns, and the CloudTrail record of each successful write.
"""

from __future__ import annotations

import json
import re
import uuid
from typing import Any

from remediator.local.iam import Call
from remediator.local.strict.protocol import Request, utc_now


PATH_PARAMS = re.compile(r"/restapis/(?P<restApiId>[^/]+)(?:/(?:stages/(?P<stageName>[^/]+)|deployments/(?P<deploymentId>[^/]+)"
                          r"|resources/(?P<resourceId>[^/]+)(?:/methods/(?P<httpMethod>[^/]+))?))?")


def api_gateway_calls(request: Request) -> list[Call]:
    """API Gateway authorizes its control plane by HTTP verb on the resource path; writing a resource
    policy takes apigateway:UpdateRestApiPolicy besides (developer guide, resource policy prerequisites)."""
    resource = f"arn:aws:apigateway:{request.region}::{request.path}"
    calls = [Call(f"apigateway:{request.method}", resource)]
    body = request.json() if request.method in ("PATCH", "POST") else {}
    touches_policy = False
    if request.operation == "UpdateRestApi":
        touches_policy = any(str(op.get("path", "")).startswith("/policy")
                             for op in body.get("patchOperations", []) if isinstance(op, dict))
    elif request.operation == "CreateRestApi":
        touches_policy = bool(body.get("policy"))
    elif request.operation in ("PutRestApi", "ImportRestApi"):
        touches_policy = b"x-amazon-apigateway-policy" in request.body
    if touches_policy:
        calls.append(Call("apigateway:UpdateRestApiPolicy", resource))
    return calls


def deployment_refused(account: str, region: str, path: str) -> str | None:
    """API Gateway refuses to deploy an API any of whose methods has no integration (the emulator only
    refuses when none has one)."""
    from moto.apigateway.models import apigateway_backends

    match = PATH_PARAMS.match(path)
    try:
        api = apigateway_backends[account][region].get_rest_api(match.group("restApiId") if match else "")
    except Exception:
        return None  # no such API: the emulator answers NotFound itself
    for resource in api.resources.values():
        for verb, method in resource.resource_methods.items():
            if method.method_integration is None:
                return f"No integration defined for method {verb} {resource.get_path()}"
    return None


def cloudtrail_record(request: Request, identity: dict[str, Any], account: str, response: bytes) -> dict[str, Any]:
    """The CloudTrail record of one successful API Gateway call, in the shape CloudTrail delivers it."""
    match = PATH_PARAMS.match(request.path)
    parameters: dict[str, Any] = {k: v for k, v in (match.groupdict() if match else {}).items() if v}
    body = request.json()
    name = request.operation[:1].lower() + request.operation[1:]
    if body:
        parameters[f"{name}Input"] = body
    elif request.body and request.operation in ("PutRestApi", "ImportRestApi"):
        parameters[f"{name}Input"] = {"failOnWarnings": request.query.get("failonwarnings") == "true",
                                      **({"mode": request.query["mode"]} if "mode" in request.query else {})}
    parameters.setdefault("template", False)
    try:
        elements = json.loads(response) if response else {}
    except ValueError:
        elements = {}
    if isinstance(elements, dict):
        elements.pop("policy", None)  # CloudTrail elides the policy from the response elements
    return {
        "eventVersion": "1.09",
        "userIdentity": identity,
        "eventTime": utc_now(),
        "eventSource": "apigateway.amazonaws.com",
        "eventName": request.operation,
        "awsRegion": request.region,
        "sourceIPAddress": "127.0.0.1",
        "userAgent": request.environ.get("HTTP_USER_AGENT", ""),
        "requestParameters": parameters,
        "responseElements": elements if isinstance(elements, dict) else None,
        "requestID": str(uuid.uuid4()),
        "eventID": str(uuid.uuid4()),
        "readOnly": False,
        "eventType": "AwsApiCall",
        "managementEvent": True,
        "recipientAccountId": account,
        "eventCategory": "Management",
    }


def escape_policy(policy: str) -> str:
    """A policy as API Gateway returns it: the document's quotes and slashes backslash-escaped."""
    try:
        json.loads(policy)
    except ValueError:
        return policy  # not a JSON document (already escaped, say): returned as stored
    return json.dumps(policy, ensure_ascii=False)[1:-1].replace("/", "\\/")


def escape_policies(body: bytes) -> bytes:
    try:
        document = json.loads(body)
    except ValueError:
        return body
    if not isinstance(document, dict):
        return body
    items = document.get("item") if isinstance(document.get("item"), list) else [document]
    changed = False
    for item in items:
        if isinstance(item, dict) and isinstance(item.get("policy"), str):
            item["policy"] = escape_policy(item["policy"])
            changed = True
    return json.dumps(document).encode() if changed else body
