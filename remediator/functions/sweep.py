"""The schedule's target: every API of the region that needs attention goes through the workflow."""

from __future__ import annotations

import os
from collections import Counter
from datetime import UTC, datetime
from typing import Any

from remediator import clock
from remediator.adapters.apigateway import ApiGatewayAdapter
from remediator.adapters.dynamodb import DynamoJournal, NoticeLedger
from remediator.adapters.sns import publish
from remediator.adapters.stepfunctions import start_execution
from remediator.events import ApiChange, Caller
from remediator.functions import common
from remediator.functions.common import Settings, own_account
from remediator.functions.needs import RESTAPIS, Needs
from remediator.logs import bind, get_logger
from remediator.remediation import Verdict, assess, findings_fingerprint

log = get_logger("remediator.functions.sweep")


def needs(mode: str, slack: bool) -> Needs | None:
    # The listing carries each policy: GET on the collection is all it reads. Where the workflow writes, it
    # also looks for changes left half-done (one Query of the open intents). It reads what people were told
    # (one Query), forgets the APIs that need nobody any more, and publishes the day's summary.
    writes = mode in ("auto", "approval")
    return Needs(apigateway=(("GET", RESTAPIS),), read_trust=True, start_execution=True,
                 journal=("dynamodb:Query",) if writes else (), notices=("dynamodb:Query", "dynamodb:DeleteItem"),
                 publish=True)


def handler(event: dict[str, Any], context: Any = None) -> dict[str, Any]:
    """Schedule target: every API of this region that needs attention goes through the same workflow, once.

    An API whose findings people were already told about (the same fingerprint, NoticeLedger) is not sent
    again: report-only findings, and a dry run's proposals, are told when they first appear or change. One
    summary message per sweep says the rest: counts per verdict, new and resolved findings.
    """
    settings = Settings.from_environment()
    region = os.environ.get("AWS_REGION") or common.clients().default_region
    account = own_account(context)
    sweep_settings = settings.sweep_settings(account, region)
    hour = datetime.fromtimestamp(clock.now(), UTC).strftime("%Y%m%dT%H")  # one sweep execution per API per hour
    bind(sweep=hour, region=region)
    counts = {"apis": 0, "started": 0, "duplicate": 0, "told_already": 0}
    left_open: set[str] = set()
    if settings.mode != "dry-run":  # changes left half-done (their holder gone) are settled by an execution of their own
        journal = DynamoJournal(common.clients(), settings.audit_table)
        now = clock.now()
        left_open = {i.api_id for i in journal.open_intents()
                     if i.account == account and i.region == region and not journal.held_by_other(i, "", now)}
    notices = NoticeLedger(common.clients(), settings.audit_table)
    standing = notices.standing(region)
    verdicts: Counter[str] = Counter()
    new: list[dict[str, str]] = []
    resolved: list[dict[str, str]] = []
    listed: set[str] = set()
    for api in ApiGatewayAdapter(common.clients()).list_rest_apis(region):
        counts["apis"] += 1
        listed.add(api.api_id)
        report = assess(api, sweep_settings)
        verdict = report.verdict(left_open=api.api_id in left_open)
        verdicts[verdict.value] += 1
        told_once = verdict is Verdict.REPORT_ONLY or (verdict is Verdict.FIX and settings.mode == "dry-run")
        if told_once:
            fingerprint = findings_fingerprint(report.evaluation.findings if report.evaluation else [], report.error)
            if standing.get(api.api_id) == fingerprint:
                counts["told_already"] += 1
                continue
            new.append({"api_id": api.api_id, "name": api.name, "verdict": verdict.value})
        elif api.api_id in standing and verdict in (Verdict.COMPLIANT, Verdict.EXEMPT):
            notices.forget(region, api.api_id)  # compliant or exempt now: the findings are resolved
            resolved.append({"api_id": api.api_id, "name": api.name, "verdict": verdict.value})
        if not verdict.needs_attention:
            continue
        change = ApiChange(api.api_id, region, account, f"{hour}-{api.api_id}", "ScheduledSweep",
                           Caller("Scheduler", None, None, "events.amazonaws.com", None))
        status = start_execution(common.clients(), settings.state_machine_arn, change.execution_name, {"change": change.to_dict(), "source": "sweep"})
        counts[status] += 1
    for api_id in sorted(set(standing) - listed):  # deleted since: nobody needs to hear about it again
        notices.forget(region, api_id)
        resolved.append({"api_id": api_id, "name": "", "verdict": Verdict.GONE.value})
    summary = {"kind": "summary", "mode": settings.mode, "account": account, "region": region, "apis": counts["apis"],
               "verdicts": dict(sorted(verdicts.items())), "new_findings": new, "resolved_findings": resolved,
               "executions_started": counts["started"], "told_already": counts["told_already"]}
    subject = (f"Daily sweep of {account} {region}: {counts['apis']} APIs, {len(new)} with new findings, "
               f"{len(resolved)} resolved")
    publish(common.clients(), settings.topic_arn, subject, summary)
    log.info("sweep_done", **counts, new=len(new), resolved=len(resolved))
    return {**counts, "new": len(new), "resolved": len(resolved)}
