"""Security Hub: the bot's findings, one per REST API, imported in the AWS Security Finding Format (ASFF).

AWS Security Hub API Reference, "BatchImportFindings": a request holds 1 to 100 findings ("Findings ... Array Members:
Minimum number of 1 item. Maximum number of 100 items"), each at most 240 KB; the caller's account must be the
findings' AwsAccountId when they go to the account's default product
(arn:<partition>:securityhub:<region>:<account>:product/<account>/default). A finding whose Id was imported before is
updated, except Note, UserDefinedFields, VerificationState and Workflow, which "BatchImportFindings cannot be used to
update" once the finding exists; Security Hub itself sets Workflow.Status to RESOLVED when Compliance.Status becomes
PASSED, and back to NEW when it leaves PASSED or RecordState goes from ARCHIVED to ACTIVE (API Reference, "Workflow").
Findings that failed are listed in FailedFindings (the call itself succeeds).

"DescribeHub" answers InvalidAccessException in an account and region where Security Hub is not enabled.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import msgspec

from botocore.exceptions import ClientError

from remediator.adapters.clients import ClientFactory
from remediator.workflow import errors

BATCH_LIMIT = 100  # BatchImportFindings: at most 100 findings per request
NOT_ENABLED = "InvalidAccessException"  # DescribeHub where Security Hub is not enabled


class Imported(msgspec.Struct, frozen=True):
    """What BatchImportFindings answered, over every batch."""

    succeeded: int
    failed: list[dict[str, Any]]
    batches: int


def batches(findings: list[dict[str, Any]], size: int = BATCH_LIMIT) -> Iterator[list[dict[str, Any]]]:
    for start in range(0, len(findings), size):
        yield findings[start:start + size]


def _call(action: Any) -> Any:
    """Security Hub's errors by the error table: LimitExceededException (its throttling) is `Throttled` and
    InternalException `Transient`, both retried by the state machine; the others `RemediationFailed`."""
    try:
        return action()
    except ClientError as error:
        code = error.response.get("Error", {}).get("Code")
        raise errors.from_aws(code, str(error), service="securityhub") from None


class SecurityHub:
    def __init__(self, clients: ClientFactory, region: str) -> None:
        self._client = clients.client("securityhub", region)

    def enabled(self) -> bool:
        """Whether Security Hub is enabled in this account and region (DescribeHub answers, or InvalidAccess)."""
        try:
            self._client.describe_hub()
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") == NOT_ENABLED:
                return False
            raise errors.from_aws(error.response.get("Error", {}).get("Code"), str(error), service="securityhub") from None
        return True

    def import_findings(self, findings: list[dict[str, Any]]) -> Imported:
        """BatchImportFindings in batches of BATCH_LIMIT."""
        succeeded, failed, count = 0, [], 0
        for batch in batches(findings):
            answer = _call(lambda batch=batch: self._client.batch_import_findings(Findings=batch))
            succeeded += int(answer.get("SuccessCount", 0))
            failed += list(answer.get("FailedFindings") or [])
            count += 1
        return Imported(succeeded, failed, count)

    def active_findings(self, generator_id: str, account: str, region: str) -> list[dict[str, Any]]:
        """The ACTIVE findings this generator imported for this account and region (GetFindings, every page). The
        filters are GetFindings' own (AwsSecurityFindingFilters: GeneratorId, AwsAccountId, Region, RecordState); each
        finding is checked against them here too."""
        equals = lambda value: [{"Value": value, "Comparison": "EQUALS"}]  # noqa: E731
        kwargs: dict[str, Any] = {"Filters": {"GeneratorId": equals(generator_id), "AwsAccountId": equals(account),
                                              "Region": equals(region), "RecordState": equals("ACTIVE")},
                                  "MaxResults": 100}
        found: list[dict[str, Any]] = []
        while True:
            page = _call(lambda: self._client.get_findings(**kwargs))
            found += [f for f in page.get("Findings", []) if f.get("GeneratorId") == generator_id
                      and f.get("AwsAccountId") == account and f.get("Region", region) == region
                      and f.get("RecordState", "ACTIVE") == "ACTIVE"]
            if not page.get("NextToken"):
                return found
            kwargs["NextToken"] = page["NextToken"]
