"""CloudTrail-shaped events for the emulated account, in the shapes of the samples AWS delivers.

UpdateRestApi and PutRestApi name the API in requestParameters.restApiId; CreateRestApi
and ImportRestApi only in responseElements.id (the API did not exist before the call).
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any


def caller(account: str, user: str = "alice") -> dict[str, Any]:
    return {
        "type": "IAMUser",
        "principalId": "AIDAEXAMPLEUSER0001",
        "arn": f"arn:aws:iam::{account}:user/{user}",
        "accountId": account,
        "userName": user,
    }


def remediator_caller(account: str) -> dict[str, Any]:
    """How the remediator's own UpdateRestApi call appears: an assumed-role session of its Lambda role."""
    role = "apigw-remediator-apply"
    return {
        "type": "AssumedRole",
        "principalId": f"AROAEXAMPLEREMEDIATOR:{role}",
        "arn": f"arn:aws:sts::{account}:assumed-role/{role}/{role}",
        "accountId": account,
        "sessionContext": {"sessionIssuer": {"type": "Role", "arn": f"arn:aws:iam::{account}:role/{role}", "accountId": account}},
    }


def api_call_event(event_name: str, api_id: str, region: str, account: str, identity: dict[str, Any] | None = None,
                   event_id: str | None = None) -> dict[str, Any]:
    """An EventBridge "AWS API Call via CloudTrail" event for one REST API call."""
    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    request: dict[str, Any] = {"template": False}
    response: dict[str, Any] = {"id": api_id, "restapiUpdate": {"restApiId": api_id, "template": False}}
    if event_name in ("UpdateRestApi", "PutRestApi"):
        request["restApiId"] = api_id
    if event_name == "UpdateRestApi":
        request["updateRestApiInput"] = {"patchOperations": [{"op": "replace", "path": "/policy"}]}
    elif event_name == "PutRestApi":
        request["putRestApiInput"] = {"mode": "overwrite", "failOnWarnings": False}
    elif event_name == "ImportRestApi":
        request["importRestApiInput"] = {"failOnWarnings": False}
    else:
        request["createRestApiInput"] = {"name": f"api-{api_id}"}
    detail = {
        "eventVersion": "1.09",
        "userIdentity": identity or caller(account),
        "eventTime": now,
        "eventSource": "apigateway.amazonaws.com",
        "eventName": event_name,
        "awsRegion": region,
        "sourceIPAddress": "198.51.100.23",
        "userAgent": "aws-cli/2",
        "requestParameters": request,
        "responseElements": response,
        "requestID": str(uuid.uuid4()),
        "eventID": event_id or str(uuid.uuid4()),
        "readOnly": False,
        "eventType": "AwsApiCall",
        "managementEvent": True,
        "recipientAccountId": account,
        "eventCategory": "Management",
    }
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "AWS API Call via CloudTrail",
        "source": "aws.apigateway",
        "account": account,
        "time": now,
        "region": region,
        "resources": [],
        "detail": detail,
    }
