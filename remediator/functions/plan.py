"""The organization sweep's first state: which (account, region) pairs to sweep, written as the Map's items."""

from __future__ import annotations

from typing import Any

from remediator.adapters.s3 import ResultsBucket
from remediator.functions import common
from remediator.functions.common import Settings, aws_call
from remediator.functions.needs import Needs
from remediator.logs import get_logger
from remediator.workflow.errors import RemediationFailed

log = get_logger("remediator.functions.plan")

PLANS_PREFIX = "plans/"


def needs(mode: str, slack: bool) -> Needs | None:
    # The roster (GetItem), and the items written to the results bucket for the Map's ItemReader.
    return Needs(roster=("dynamodb:GetItem",), results=("s3:PutObject",))


def handler(event: dict[str, Any], context: Any = None) -> dict[str, Any]:
    """Every active account of the roster times every sweep region. The items go to S3, not into the state:
    1,000 accounts x 17 regions would not fit in a state's 256 KB."""
    settings = Settings.from_environment()
    if not settings.organization or not settings.sweep_regions or not settings.results_bucket:
        raise RemediationFailed("the organization sweep needs organization mode, SWEEP_REGIONS and RESULTS_BUCKET")
    execution = str((event or {}).get("execution") or "manual")
    roster = aws_call(settings.roster)
    # The management account has no spoke (service-managed StackSets never deploy there): it is not swept.
    items = [{"account": account, "region": region} for account in roster.sweepable() for region in settings.sweep_regions]
    key = f"{PLANS_PREFIX}{execution}.json"
    aws_call(lambda: ResultsBucket(common.clients(), settings.results_bucket).put_json(key, items))
    log.info("sweep_planned", accounts=len(roster.sweepable()), regions=len(settings.sweep_regions), items=len(items))
    return {"bucket": settings.results_bucket, "key": key, "count": len(items), "accounts": len(roster.sweepable()),
            "max_concurrency": settings.org_sweep_concurrency}
