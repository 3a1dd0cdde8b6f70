"""The organization sweep's first state: which accounts to sweep, written as the Map's items (one per account; the Map
batches them, ItemBatcher, so that one Express child sweeps several accounts, all their sweep regions at once:
remediator/functions/sweep.py)."""

from __future__ import annotations

from typing import Any

from remediator.adapters.s3 import ResultsBucket
from remediator.functions import coldstart, common
from remediator.functions.common import Settings, aws_call
from remediator.functions.needs import Needs
from remediator.functions.sweep import ACCOUNTS_PER_CHILD
from remediator.logs import get_logger
from remediator.workflow.errors import RemediationFailed

log = get_logger("remediator.functions.plan")

PLANS_PREFIX = "plans/"


def needs(mode: str, slack: bool) -> Needs | None:
    # The roster (GetItem), and the items written to the results bucket for the Map's ItemReader.
    return Needs(roster=("dynamodb:GetItem",), results=("s3:PutObject",))


def handler(event: dict[str, Any], context: Any = None) -> dict[str, Any]:
    """Every active account of the roster, one item each (its regions are the child's to sweep), and how many accounts
    a child sweeps (the Map's ItemBatcher MaxItemsPerBatchPath): one child per ACCOUNTS_PER_CHILD accounts, not per
    account and region, starts 170 times fewer children at 17 regions, and the parent bills one transition per child.
    The items go to S3, not into the state: 1,000 accounts would not fit in a state's 256 KB once the items grow."""
    settings = Settings.from_environment()
    if not settings.organization or not settings.sweep_regions or not settings.results_bucket:
        raise RemediationFailed("the organization sweep needs organization mode, SWEEP_REGIONS and RESULTS_BUCKET")
    execution = str((event or {}).get("execution") or "manual")
    roster = aws_call(settings.roster)
    # The management account has no spoke (service-managed StackSets never deploy there): it is not swept.
    items = [{"account": account} for account in roster.sweepable()]
    key = f"{PLANS_PREFIX}{execution}.json"
    aws_call(lambda: ResultsBucket(common.clients(), settings.results_bucket).put_json(key, items))
    pairs = len(items) * len(settings.sweep_regions)
    log.info("sweep_planned", accounts=len(items), regions=len(settings.sweep_regions), items=len(items), pairs=pairs)
    return {"bucket": settings.results_bucket, "key": key, "count": len(items), "accounts": len(items), "pairs": pairs,
            "max_concurrency": settings.org_sweep_concurrency, "accounts_per_child": ACCOUNTS_PER_CHILD}


coldstart.loaded()  # last: this function's modules are loaded (remediator/functions/coldstart.py)
