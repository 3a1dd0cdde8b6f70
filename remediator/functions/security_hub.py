"""What the functions tell Security Hub (remediator:securityHub): one ASFF finding per REST API, kept current by the
states that know its outcome, so that Security Hub's own lifecycle follows the API:

- Notify: findings, a proposal, a failed, rejected or timed-out fix: Compliance FAILED (the finding stays open, with a
  note saying why); a fix that left nothing untrusted: PASSED, which Security Hub resolves (Workflow RESOLVED).
- Evaluate: the API is compliant (PASSED) or exempt; the API is gone: RecordState ARCHIVED.
- The sweep, for its region: every API it does not hand to an execution, in batches of 100, and the ACTIVE findings
  of APIs that no longer exist (ARCHIVED): API Gateway's DeleteRestApi starts no execution.

Not a Lambda function of its own (like `common`): a helper of evaluate, notify and sweep.
"""

from __future__ import annotations

import hashlib
import os
from datetime import UTC, datetime
from typing import Any

from remediator import clock, containers
from remediator.adapters.dynamodb import NoticeLedger
from remediator.adapters.securityhub import Imported, SecurityHub
from remediator.findings_formats import GENERATOR_ID, asff_finding, timestamp
from remediator.functions import common
from remediator.functions.common import Settings, partition_of
from remediator.logs import get_logger
from remediator.workflow.errors import RemediationFailed

log = get_logger("remediator.functions.security_hub")

SETTINGS = ("auto", "on", "off")
# DescribeHub is asked once per container and account-region, and kept an hour (enabling Security Hub later is seen
# within the hour, by a new container at once).
_enabled: containers.Kept[bool] = containers.Kept(3600)
# The one notice that findings are not imported (auto, and Security Hub not enabled): remembered as a notice item of
# its own, "notice#securityhub#<region>" / OFF_NOTICE_ID, so that it is told once, not by every execution.
OFF_NOTICE_ID = "securityhb"  # a notice item's sort key is a REST API ID's shape: 10 lowercase letters or digits
OFF_FINGERPRINT = hashlib.md5(b"security-hub-not-enabled", usedforsecurity=False).hexdigest()

NOTES = {
    "findings": "Reported only: the remediator does not change this policy by itself; a person must review it.",
    "proposal": "A fix is proposed; nothing is changed until it is applied (dry-run or approval mode).",
    "failure": "The remediator's fix failed; the finding stays open until a fix succeeds or a person acts.",
    "rejected": "The proposed fix was rejected; nothing was changed.",
    "timeout": "Nobody decided on the proposed fix in time; nothing was changed.",
    "result": "Fixed by the remediator; what is left is reported only and needs a person.",
}


def forget_cached() -> None:
    """New containers (the local runner, between deployments): DescribeHub is asked again."""
    _enabled.clear()


def setting() -> str:
    """SECURITY_HUB in the environment (the stack sets it unless it is auto); a value that cannot be right is off
    for nobody: it fails the state, as the other settings do."""
    value = os.environ.get("SECURITY_HUB", "auto")
    if value not in SETTINGS:
        raise RemediationFailed(f"SECURITY_HUB {value!r:.40} is not one of {', '.join(SETTINGS)}")
    return value


def active(settings: Settings, region: str) -> bool:
    """Whether findings go to Security Hub here: never in an organization's hub (BatchImportFindings takes the caller's
    own account's findings only), always with `on`, and with `auto` where DescribeHub says it is enabled."""
    choice = setting()
    if settings.organization or choice == "off":
        return False
    if choice == "on":
        return True
    enabled = _enabled.get(region, lambda: SecurityHub(common.clients(), region).enabled(), clock=clock.now)
    if not enabled:
        log.info("security_hub_not_enabled", region=region, setting=choice)
    return enabled


def finding(account: str, region: str, api_id: str, name: str, findings: list[dict[str, Any]], compliant: bool,
            exempt: bool = False, note: str | None = None, archived: bool = False) -> dict[str, Any]:
    """The API's one ASFF finding (findings_formats.asff_finding: stable Id, the account's default product, severity
    from its table), with the top-level Region, and why it stands (ProductFields, which an update changes; Note, which
    only a new finding takes)."""
    moment = datetime.fromtimestamp(clock.now(), UTC)
    record = asff_finding(account=account, partition=partition_of(region), region=region, api_id=api_id,
                          api_name=name, findings=findings, compliant=compliant, exempt=exempt, moment=moment)
    record["Region"] = region
    if note:
        record["ProductFields"] = {**record.get("ProductFields", {}), "apigw-remediator/note": note[:1024]}
        record["Note"] = {"Text": note[:512], "UpdatedBy": GENERATOR_ID, "UpdatedAt": timestamp(moment)}
    if archived:  # a deleted API grants nobody anything: PASSED (resolved), and the finding is archived
        record.update(RecordState="ARCHIVED", Title=f"API Gateway REST API {name or api_id} was deleted"[:256],
                      Description=f"The REST API {api_id} in {region} no longer exists: its resource policy grants nothing.")
        record["ProductFields"] = {**record.get("ProductFields", {}), "apigw-remediator/note": "The REST API was deleted."}
    return record


def send(settings: Settings, region: str, findings: list[dict[str, Any]]) -> Imported | None:
    """Import the findings (in batches of 100) if Security Hub is on here. Throttling and Security Hub's internal
    errors are raised (the state machine retries them, errors.TABLE); anything else is logged, not raised: the SNS
    notice is the record, Security Hub its mirror."""
    if not findings or not active(settings, region):
        return None
    try:
        imported = SecurityHub(common.clients(), region).import_findings(findings)
    except RemediationFailed as error:
        log.error("security_hub_import_failed", error=str(error)[:300], findings=len(findings))
        return None
    if imported.failed:
        log.error("security_hub_findings_refused", failed=imported.failed[:5], count=len(imported.failed))
    log.info("security_hub_imported", succeeded=imported.succeeded, batches=imported.batches)
    return imported


def tell_off_once(settings: Settings, account: str, region: str) -> bool:
    """With auto where Security Hub is not enabled: one notice on the topic that findings are not imported, told once
    per region (a notice item remembers it). True if told now."""
    from remediator.adapters.sns import publish

    if settings.organization or setting() != "auto" or active(settings, region):
        return False
    notices = NoticeLedger(common.clients(), settings.audit_table)
    place = f"securityhub#{region}"
    if common.aws_call(lambda: notices.fingerprint(place, OFF_NOTICE_ID)) == OFF_FINGERPRINT:
        return False
    common.aws_call(lambda: publish(common.clients(), settings.topic_arn, f"Security Hub is not enabled in {account} {region}",
                                    {"kind": "security-hub", "account": account, "region": region, "security_hub": "off",
                                     "reason": "remediator:securityHub is auto and DescribeHub says Security Hub is not "
                                               "enabled here: findings are not imported (enable Security Hub, or set "
                                               "remediator:securityHub=off to say so)"}))
    told_at = datetime.fromtimestamp(clock.now(), UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    common.aws_call(lambda: notices.remember(place, OFF_NOTICE_ID, OFF_FINGERPRINT, "Security Hub", "off", told_at))
    return True


def known_apis(settings: Settings, account: str, region: str) -> dict[str, dict[str, Any]]:
    """API ID -> the ACTIVE finding this remediator imported for it in the region (the sweep: which to archive)."""
    hub = SecurityHub(common.clients(), region)
    found: dict[str, dict[str, Any]] = {}
    for item in hub.active_findings(GENERATOR_ID, account, region):
        for resource in item.get("Resources") or []:
            details = (resource.get("Details") or {}).get("AwsApiGatewayRestApi") or {}
            if resource.get("Type") == "AwsApiGatewayRestApi" and resource.get("Region", region) == region and details.get("Id"):
                found[str(details["Id"])] = item
    return found
