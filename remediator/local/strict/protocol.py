"""What every emulated service shares: one HTTP request read once, the record of a call IAM checked, and
errors in each protocol's shape (query/XML or JSON), as the SDK parses them.
"""

from __future__ import annotations

import io
import json
import re
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, unquote

if TYPE_CHECKING:
    from remediator.local.strict.invocation import Principal


class Request:
    """One HTTP request to the emulator, read once."""

    def __init__(self, environ: dict[str, Any], service: str, operation: str) -> None:
        self.environ = environ
        self.service = service
        self.operation = operation
        self.method = environ.get("REQUEST_METHOD", "GET")
        self.path = unquote(environ.get("PATH_INFO", ""))
        self.query = {k: v[0] for k, v in parse_qs(environ.get("QUERY_STRING", "")).items()}
        length = int(environ.get("CONTENT_LENGTH") or 0)
        self.body = environ["wsgi.input"].read(length) if length else b""
        environ["wsgi.input"] = io.BytesIO(self.body)
        match = re.search(r"Credential=([^/]+)/\d{8}/([^/]+)/", environ.get("HTTP_AUTHORIZATION", ""))
        self.access_key = match.group(1) if match else ""
        self.region = match.group(2) if match else "us-east-1"

    def json(self) -> dict[str, Any]:
        try:
            value = json.loads(self.body or b"{}")
        except ValueError:
            return {}
        return value if isinstance(value, dict) else {}

    def form(self) -> dict[str, str]:
        return {k: v[0] for k, v in parse_qs(self.body.decode("utf-8", "replace")).items()}


@dataclass
class CheckedCall:
    principal: str
    action: str
    resource: str
    allowed: bool
    reason: str
    scope: str = ""


_QUERY_PROTOCOL = {"sns", "sts", "iam", "ec2", "cloudwatch", "sqs"}


def error_response(start_response: Any, service: str, status: int, code: str, message: str,
           extra: dict[str, str] | None = None) -> list[bytes]:
    if service in _QUERY_PROTOCOL:
        body = (f'<ErrorResponse><Error><Type>Sender</Type><Code>{code}</Code><Message>{_xml(message)}</Message>'
                f"</Error><RequestId>{uuid.uuid4()}</RequestId></ErrorResponse>").encode()
        content_type = "text/xml"
    else:
        body = json.dumps({"__type": code, "message": message, "Message": message}).encode()
        content_type = "application/json"
    headers = [("Content-Type", content_type), ("x-amzn-ErrorType", code), ("Content-Length", str(len(body))),
               *(extra or {}).items()]
    reasons = {400: "Bad Request", 403: "Forbidden", 429: "Too Many Requests"}
    start_response(f"{status} {reasons.get(status, 'Error')}", headers)
    return [body]


def access_denied(start_response: Any, service: str, principal: Principal, denied: CheckedCall) -> list[bytes]:
    message = (f"User: {principal.arn} is not authorized to perform: {denied.action} on resource: {denied.resource} "
               "because no identity-based policy allows the action")
    code = {"sns": "AuthorizationError", "sqs": "AccessDenied", "sts": "AccessDenied", "iam": "AccessDenied",
            "ec2": "UnauthorizedOperation", "cloudwatch": "AccessDenied"}.get(service, "AccessDeniedException")
    return error_response(start_response, service, 403, code, message)


def _xml(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def utc_now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
