"""The schedule's target: every API of the region that needs attention goes through the workflow."""

from __future__ import annotations

from datetime import UTC, datetime
import os
from typing import Any

from remediator import clock
from remediator.adapters.apigateway import ApiGatewayAdapter
from remediator.adapters.dynamodb import DynamoJournal
from remediator.adapters.stepfunctions import start_execution
from remediator.events import ApiChange, Caller
from remediator.functions import common
from remediator.functions.common import Settings, own_account
from remediator.functions.needs import RESTAPIS, Needs
from remediator.logs import bind, get_logger
from remediator.remediation import assess

log = get_logger("remediator.functions.sweep")


def needs(mode: str, slack: bool) -> Needs | None:
    # The listing carries each policy: GET on the collection is all it reads. Where the workflow writes, it
    # also looks for changes left half-done (one Query of the open intents).
    writes = mode in ("auto", "approval")
    return Needs(apigateway=(("GET", RESTAPIS),), read_trust=True, start_execution=True,
                 journal=("dynamodb:Query",) if writes else ())


def handler(event: dict[str, Any], context: Any = None) -> dict[str, Any]:
    """Schedule target: every API of this region that needs attention goes through the same workflow."""
    settings = Settings.from_environment()
    region = os.environ.get("AWS_REGION") or common.clients().default_region
    account = own_account(context)
    sweep_settings = settings.sweep_settings(account, region)
    hour = datetime.now(UTC).strftime("%Y%m%dT%H")
    bind(sweep=hour, region=region)
    counts = {"apis": 0, "started": 0, "duplicate": 0}
    left_open: set[str] = set()
    if settings.mode != "dry-run":  # changes left half-done (their holder gone) are settled by an execution of their own
        journal = DynamoJournal(common.clients(), settings.audit_table)
        now = clock.now()
        left_open = {i.api_id for i in journal.open_intents()
                     if i.account == account and i.region == region and not journal.held_by_other(i, "", now)}
    for api in ApiGatewayAdapter(common.clients()).list_rest_apis(region):
        counts["apis"] += 1
        if not assess(api, sweep_settings).verdict(left_open=api.api_id in left_open).needs_attention:
            continue
        change = ApiChange(api.api_id, region, account, f"{hour}-{api.api_id}", "ScheduledSweep",
                           Caller("Scheduler", None, None, "events.amazonaws.com", None))
        status = start_execution(common.clients(), settings.state_machine_arn, change.execution_name, {"change": change.to_dict(), "source": "sweep"})
        counts[status] += 1
    log.info("sweep_done", **counts)
    return counts
