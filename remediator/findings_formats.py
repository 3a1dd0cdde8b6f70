"""Findings in the formats other tools read: SARIF 2.1.0 (code scanning), OCSF Detection Finding (security
data lakes), AWS Security Finding Format (Security Hub). Pure: no I/O, no AWS call, the time passed in, so
that the workflow can build the same ASFF findings for BatchImportFindings.

One table grades every finding kind for all three formats (SEVERITIES).
"""

from __future__ import annotations

import hashlib
from datetime import datetime, timezone
from typing import Any

import msgspec

from remediator import __version__

TOOL = "apigw-remediator"
INDETERMINATE = "indeterminate-policy"


class Severity(msgspec.Struct, frozen=True):
    """One grade in each format's own scale.

    - OCSF `severity_id` (base_event, OCSF 1.1.0): 0 Unknown, 1 Informational, 2 Low, 3 Medium, 4 High,
      5 Critical, 6 Fatal, 99 Other;
    - ASFF `Severity.Label` (AWS Security Hub User Guide, "Severity" in the ASFF): INFORMATIONAL, LOW, MEDIUM,
      HIGH, CRITICAL;
    - SARIF `level` (SARIF 2.1.0 §3.27.10: none, note, warning, error) and the `security-severity` rule
      property GitHub code scanning reads (a score from 0.0 to 10.0: over 9.0 critical, 7.0 to 8.9 high,
      4.0 to 6.9 medium, 0.1 to 3.9 low).
    """

    ocsf_id: int
    name: str
    asff_label: str
    sarif_level: str
    security_severity: str


CRITICAL = Severity(5, "Critical", "CRITICAL", "error", "9.5")
HIGH = Severity(4, "High", "HIGH", "error", "8.0")
MEDIUM = Severity(3, "Medium", "MEDIUM", "warning", "5.5")
LOW = Severity(2, "Low", "LOW", "warning", "3.0")
UNKNOWN = Severity(0, "Unknown", "INFORMATIONAL", "warning", "4.0")
INFORMATIONAL = Severity(1, "Informational", "INFORMATIONAL", "note", "0.0")

# The grade of each finding kind (remediator.core.FindingKind values). For now by kind alone: any AWS
# account may call (wildcard) is Critical, a named account nobody trusts High, a stale unique ID (it names
# nobody) Low, what the bot only reports (NotPrincipal, unrecognized, ambiguous) Medium; a policy `check`
# cannot resolve is of Unknown severity (it may hide anything).
SEVERITIES: dict[str, Severity] = {
    "wildcard-principal": CRITICAL,
    "untrusted-account": HIGH,
    "not-principal": MEDIUM,
    "unrecognized-principal": MEDIUM,
    "ambiguous-policy": MEDIUM,
    "orphaned-principal": LOW,
    INDETERMINATE: UNKNOWN,
}
_ORDER = [INFORMATIONAL, LOW, UNKNOWN, MEDIUM, HIGH, CRITICAL]

RULES: dict[str, str] = {
    "untrusted-account": "An Allow statement grants an AWS account that is not trusted",
    "wildcard-principal": "An Allow statement grants any AWS account (Principal *)",
    "orphaned-principal": "An Allow statement names an IAM unique ID of a deleted user or role",
    "not-principal": "An Allow statement uses NotPrincipal: everyone except those listed",
    "unrecognized-principal": "An Allow statement names a principal that is not understood",
    "ambiguous-policy": "A policy repeats a key: which value AWS applies is not documented",
    INDETERMINATE: "A policy cannot be resolved before deployment, so it cannot be checked",
}


def severity_of(kind: str) -> Severity:
    return SEVERITIES.get(kind, MEDIUM)


def worst(kinds: list[str]) -> Severity:
    """The highest grade among the kinds (Informational when there is none)."""
    return max((severity_of(kind) for kind in kinds), key=_ORDER.index, default=INFORMATIONAL)


# remediator.core.access grades (its GATES table, after AWS's policy evaluation outcome tables) in these scales.
BY_GRADE: dict[str, Severity] = {"critical": CRITICAL, "high": HIGH, "medium": MEDIUM, "low": LOW}


def graded(kind: str, reach: dict[str, Any] | None = None) -> Severity:
    """A finding's grade: from who can actually call (`reach`, a remediator.core.access.Reach as a dict) when that
    is known (reachable, unreachable); by kind otherwise (methods unknown), and never below the kind's grade when
    it is indeterminate (what the bot could not decide may be the worst)."""
    status = (reach or {}).get("reachability")
    known = BY_GRADE.get(str((reach or {}).get("severity")))
    if status in ("reachable", "unreachable") and known is not None:
        return known
    if status == "indeterminate" and known is not None:
        return max(known, severity_of(kind), key=_ORDER.index)
    return severity_of(kind)


def worst_graded(findings: list[dict[str, Any]], access: list[dict[str, Any]] | None = None) -> Severity:
    """The highest grade among an API's findings (`access` aligned with them by its "finding" index)."""
    reach = {item.get("finding"): item for item in access or []}
    return max((graded(str(f.get("kind")), reach.get(i)) for i, f in enumerate(findings)), key=_ORDER.index,
               default=INFORMATIONAL)


def timestamp(moment: datetime) -> str:
    """RFC 3339 in UTC with milliseconds, a form ASFF accepts (YYYY-MM-DDTHH:MM:SS.mmmZ)."""
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


# --- SARIF 2.1.0 ------------------------------------------------------------------------------------------
# OASIS SARIF 2.1.0 (errata 01): sarifLog (§3.13) > runs (§3.14) > tool.driver (§3.18-3.19) with rules
# (reportingDescriptor, §3.49), results (§3.27) with locations (§3.28) of physicalLocation (§3.29):
# artifactLocation (§3.4) and region (§3.30; lines and columns from 1, columns counted as
# run.columnKind says, §3.14.17); fixes (§3.55): artifactChanges (§3.56) of replacements (§3.57),
# each a deletedRegion and its insertedContent (§3.3).

SARIF_SCHEMA = "https://docs.oasis-open.org/sarif/sarif/v2.1.0/errata01/os/schemas/sarif-schema-2.1.0.json"


class Region(msgspec.Struct, frozen=True):
    start_line: int
    start_column: int
    end_line: int
    end_column: int
    char_offset: int
    char_length: int

    def to_sarif(self) -> dict[str, int]:
        return {"startLine": self.start_line, "startColumn": self.start_column, "endLine": self.end_line,
                "endColumn": self.end_column, "charOffset": self.char_offset, "charLength": self.char_length}


class SarifResult(msgspec.Struct, frozen=True):
    """One result: a finding (or an indeterminate policy) at a place in a file, with its fix if any."""

    kind: str
    message: str
    uri: str
    region: Region
    fix: tuple[str, list[tuple[Region, str]]] | None = None  # (description, [(deleted region, inserted text)])
    properties: dict[str, Any] | None = None


def sarif_log(results: list[SarifResult]) -> dict[str, Any]:
    kinds = sorted({result.kind for result in results} | set(RULES), key=list(RULES).index)
    rules = [{"id": kind, "name": "".join(part.title() for part in kind.split("-")),
              "shortDescription": {"text": RULES[kind]},
              "defaultConfiguration": {"level": severity_of(kind).sarif_level},
              "properties": {"security-severity": severity_of(kind).security_severity, "tags": ["security"]}}
             for kind in kinds]
    index = {kind: i for i, kind in enumerate(kinds)}
    out: list[dict[str, Any]] = []
    for result in results:
        item: dict[str, Any] = {
            "ruleId": result.kind, "ruleIndex": index[result.kind], "level": severity_of(result.kind).sarif_level,
            "message": {"text": result.message},
            "locations": [{"physicalLocation": {"artifactLocation": {"uri": result.uri},
                                                "region": result.region.to_sarif()}}],
        }
        if result.fix is not None:
            description, replacements = result.fix
            item["fixes"] = [{"description": {"text": description}, "artifactChanges": [{
                "artifactLocation": {"uri": result.uri},
                "replacements": [{"deletedRegion": region.to_sarif(), "insertedContent": {"text": text}}
                                 for region, text in replacements]}]}]
        if result.properties:
            item["properties"] = result.properties
        out.append(item)
    return {"$schema": SARIF_SCHEMA, "version": "2.1.0", "runs": [{
        "tool": {"driver": {"name": TOOL, "version": __version__, "rules": rules}},
        "columnKind": "unicodeCodePoints",
        "results": out,
    }]}


# --- OCSF Detection Finding (class_uid 2004) ------------------------------------------------------------------
# OCSF schema 1.1.0, Findings category (category_uid 2), Detection Finding (class uid 4: class_uid 2004;
# events/findings/detection_finding.json extends finding.json in the ocsf-schema repository): required
# activity_id (1 Create), category_uid, class_uid, finding_info (uid, title), metadata (product, version),
# severity_id, time (ms since the epoch), type_uid (class_uid * 100 + activity_id); status_id 1 New.

OCSF_VERSION = "1.1.0"


def ocsf_finding(*, kind: str, title: str, detail: str, resource_uid: str, resource_type: str, resource_name: str,
                 moment: datetime, remediation: str, unmapped: dict[str, Any], account: str | None = None,
                 region: str | None = None, partition: str | None = None,
                 reach: dict[str, Any] | None = None) -> dict[str, Any]:
    """One OCSF Detection Finding record for one finding (graded by who can call it when `reach` says)."""
    severity = graded(kind, reach)
    uid = hashlib.sha256("\0".join([resource_uid, kind, str(unmapped.get("statement_index")),
                                    str(unmapped.get("principal"))]).encode()).hexdigest()[:32]
    resource: dict[str, Any] = {"uid": resource_uid, "type": resource_type, "name": resource_name}
    if region:
        resource["region"] = region
    if partition:
        resource["cloud_partition"] = partition
    record: dict[str, Any] = {
        "class_uid": 2004, "class_name": "Detection Finding", "category_uid": 2, "category_name": "Findings",
        "activity_id": 1, "activity_name": "Create", "type_uid": 200401, "type_name": "Detection Finding: Create",
        "severity_id": severity.ocsf_id, "severity": severity.name,
        "status_id": 1, "status": "New",
        "time": int(moment.timestamp() * 1000),
        "message": f"{title}: {detail}",
        "metadata": {"version": OCSF_VERSION, "product": {"name": TOOL, "vendor_name": TOOL, "version": __version__}},
        "finding_info": {"uid": uid, "title": title, "desc": detail, "types": [kind]},
        "resources": [resource],
        "remediation": {"desc": remediation},
        "unmapped": unmapped,
    }
    if account:
        record["cloud"] = {"provider": "AWS", "account": {"uid": account}, **({"region": region} if region else {})}
    return record


# --- AWS Security Finding Format -------------------------------------------------------------------------------
# AWS Security Hub User Guide, "Required top-level ASFF attributes": AwsAccountId, CreatedAt, Description,
# GeneratorId, Id, ProductArn, Resources, SchemaVersion, Severity, Title, Types, UpdatedAt; API Reference
# "AwsSecurityFinding" (Title at most 256 characters, Description at most 1024), "Resource" (Type
# AwsApiGatewayRestApi, Details.AwsApiGatewayRestApi), "Compliance" (Status PASSED, WARNING, FAILED,
# NOT_AVAILABLE), "Workflow" (Status NEW, NOTIFIED, RESOLVED, SUPPRESSED), RecordState ACTIVE or ARCHIVED.
# A finding of one's own account goes to the account's default product:
# arn:<partition>:securityhub:<region>:<account>:product/<account>/default.

ASFF_REQUIRED = ("AwsAccountId", "CreatedAt", "Description", "GeneratorId", "Id", "ProductArn", "Resources",
                 "SchemaVersion", "Severity", "Title", "Types", "UpdatedAt")
ASFF_SCHEMA_VERSION = "2018-10-08"
GENERATOR_ID = f"{TOOL}/untrusted-principals"
ASFF_TYPES = ["Software and Configuration Checks/AWS Security Best Practices/Resource Policy"]


def asff_finding(*, account: str, partition: str, region: str, api_id: str, api_name: str, findings: list[dict[str, Any]],
                 compliant: bool, exempt: bool, moment: datetime, access: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """The one ASFF finding of one REST API: FAILED with its findings, PASSED when compliant. Its Id is stable
    per API, so that importing it again updates the same finding. Graded by who can call (`access`) when known."""
    kinds = [finding["kind"] for finding in findings]
    failed = not compliant
    severity = worst_graded(findings, access) if failed else INFORMATIONAL
    when = timestamp(moment)
    principals = sorted({str(finding["principal"]) for finding in findings})
    if failed:
        title = f"API Gateway REST API {api_name or api_id} grants access that is not trusted"
        description = (f"{len(findings)} finding(s) in the resource policy of {api_id} in {region}: "
                       + "; ".join(f"{f['kind']} {f['principal']}" for f in findings))
        recommendation = ("Remove the principals nobody trusts from the resource policy "
                          f"({', '.join(principals)}) and redeploy the API's stages: `apigw-remediator fix --regions "
                          f"{region} --apply`, or edit the template that defines the API.")
    else:
        title = f"API Gateway REST API {api_name or api_id} grants only trusted accounts"
        description = f"The resource policy of {api_id} in {region} names no principal outside the trusted accounts."
        recommendation = "No action needed."
    return {
        "SchemaVersion": ASFF_SCHEMA_VERSION,
        "Id": f"arn:{partition}:execute-api:{region}:{account}:{api_id}/{TOOL}/untrusted-principals",
        "ProductArn": f"arn:{partition}:securityhub:{region}:{account}:product/{account}/default",
        "GeneratorId": GENERATOR_ID,
        "AwsAccountId": account,
        "Types": list(ASFF_TYPES),
        "CreatedAt": when,
        "UpdatedAt": when,
        "Severity": {"Label": severity.asff_label},
        "Title": title[:256],
        "Description": description[:1024],
        "Remediation": {"Recommendation": {"Text": recommendation[:512]}},
        "ProductFields": {"apigw-remediator/kinds": ",".join(sorted(set(kinds))) or "none"},
        "Resources": [{
            "Type": "AwsApiGatewayRestApi",
            "Id": f"arn:{partition}:apigateway:{region}::/restapis/{api_id}",
            "Partition": partition,
            "Region": region,
            "Details": {"AwsApiGatewayRestApi": {"Id": api_id, "Name": api_name}},
        }],
        "Compliance": {"Status": "FAILED" if failed else "PASSED"},
        "Workflow": {"Status": "SUPPRESSED" if exempt and failed else ("NEW" if failed else "RESOLVED")},
        "RecordState": "ACTIVE",
    }
