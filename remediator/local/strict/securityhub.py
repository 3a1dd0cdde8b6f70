"""Security Hub's BatchImportFindings.

The emulator stores what it is sent, whole. AWS Security Hub API Reference, "BatchImportFindings": 1 to 100 findings a
request (InvalidInputException otherwise), the account must be subscribed (InvalidAccessException), a finding without
the required ASFF attributes, of another account or another product than the caller's default one is listed in
FailedFindings; once a finding exists, Note, UserDefinedFields, VerificationState and Workflow are not updated by it.
"Workflow" (API Reference): Security Hub resets Workflow.Status from NOTIFIED or RESOLVED to NEW when RecordState goes
from ARCHIVED to ACTIVE or Compliance.Status leaves PASSED; and (Security Hub User Guide, ASFF "Workflow") sets it to
RESOLVED when Compliance.Status becomes PASSED. GetFindings is the emulator's own (it ignores Filters).
"""

from __future__ import annotations

import json
from typing import Any

from remediator.local.strict.protocol import Request, error_response


ASFF_REQUIRED = ("AwsAccountId", "CreatedAt", "Description", "GeneratorId", "Id", "ProductArn", "Resources",
                 "SchemaVersion", "Severity", "Title", "Types", "UpdatedAt")


_KEPT_FROM_FIRST_IMPORT = ("Note", "UserDefinedFields", "VerificationState", "Workflow")


def default_product(region: str, account: str) -> str:
    return f"arn:aws:securityhub:{region}:{account}:product/{account}/default"


def import_findings(request: Request, account: str, start_response: Any) -> list[bytes]:
    from moto.securityhub.models import Finding, securityhub_backends

    findings = request.json().get("Findings")
    if not isinstance(findings, list) or not 1 <= len(findings) <= 100:
        count = len(findings) if isinstance(findings, list) else 0
        return error_response(start_response, "securityhub", 400, "InvalidInputException",
                      f"Findings must hold between 1 and 100 findings; this request holds {count}")
    backend = securityhub_backends[account][request.region]
    if not backend.enabled:
        return error_response(start_response, "securityhub", 401, "InvalidAccessException",
                      f"Account {account} is not subscribed to AWS Security Hub")
    failed: list[dict[str, str]] = []
    for finding in findings:
        identifier = str(finding.get("Id", "")) if isinstance(finding, dict) else ""
        missing = [key for key in ASFF_REQUIRED if not isinstance(finding, dict) or key not in finding]
        if missing:
            failed.append({"Id": identifier, "ErrorCode": "InvalidInput", "ErrorMessage": f"missing {', '.join(missing)}"})
            continue
        if finding["AwsAccountId"] != account or finding["ProductArn"] != default_product(request.region, account):
            failed.append({"Id": identifier, "ErrorCode": "AccessDeniedException",
                           "ErrorMessage": "a finding of another account or product than the caller's default one"})
            continue
        existing = next((f for f in backend.findings if f.id == identifier), None)
        if existing is None:
            backend.findings.append(Finding(identifier, {"Workflow": {"Status": "NEW"}, **finding}))
            continue
        old, new = existing.data, dict(finding)
        for key in _KEPT_FROM_FIRST_IMPORT:
            new.pop(key, None)
            if key in old:
                new[key] = old[key]
        status = (old.get("Workflow") or {}).get("Status", "NEW")
        was = (old.get("Compliance") or {}).get("Status")
        now = (new.get("Compliance") or {}).get("Status")
        if now == "PASSED" and was != "PASSED":
            status = "RESOLVED"
        elif was == "PASSED" and now in ("WARNING", "FAILED", "NOT_AVAILABLE") and status in ("NOTIFIED", "RESOLVED"):
            status = "NEW"
        if old.get("RecordState") == "ARCHIVED" and new.get("RecordState", "ACTIVE") == "ACTIVE" and status in ("NOTIFIED", "RESOLVED"):
            status = "NEW"
        new["Workflow"] = {"Status": status}
        existing.data = new
    body = json.dumps({"FailedCount": len(failed), "SuccessCount": len(findings) - len(failed), "FailedFindings": failed}).encode()
    start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
    return [body]
