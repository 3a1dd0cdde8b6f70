"""The schedule's target: every API of the region that needs attention goes through the workflow.

In an organization's hub the same function is the organization sweep's Map child (an Express execution): it sweeps
a batch of accounts (the Map's ItemBatcher), all of their sweep regions at once (bounded threads), each through its
account's spoke role, within a time budget, and returns the regions' summaries instead of publishing them.
"""

from __future__ import annotations

import contextvars
import os
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any

import msgspec
from msgspec.structs import replace

from remediator import clock
from remediator.adapters.apigateway import ApiGatewayAdapter
from remediator.adapters.dynamodb import DynamoJournal, NoticeLedger
from remediator.adapters.sns import publish
from remediator.adapters.stepfunctions import start_execution
from remediator.events import ACCOUNT, ApiChange, Caller
from remediator.functions import coldstart, common, decision, security_hub
from remediator.functions.common import Settings, aws_call, own_account, partition_of
from remediator.functions.needs import RESOURCES, RESTAPIS, Needs
from remediator.logs import bind, get_logger
from remediator.transaction.planning import SweepSettings, Verdict, assess, with_access
from remediator.workflow.errors import RemediationFailed

log = get_logger("remediator.functions.sweep")


def needs(mode: str, slack: bool) -> Needs | None:
    # The listing carries each policy: GET on the collection is all it reads. Where the workflow writes, it
    # also looks for changes left half-done (one Query of the open intents). It reads what people were told
    # (one Query), forgets the APIs that need nobody any more, and publishes the day's summary.
    # Security Hub: the finding of every API it hands to no execution, and the findings of APIs deleted since (it reads
    # which APIs have ACTIVE findings of this remediator: GetFindings).
    writes = mode in ("auto", "approval")
    # For an API whose findings are told once, its methods (GetResources): who can call is part of what was told.
    return Needs(apigateway=(("GET", RESTAPIS), ("GET", RESOURCES)), read_trust=True, start_execution=True,
                 journal=("dynamodb:Query",) if writes else (), notices=("dynamodb:Query", "dynamodb:DeleteItem"),
                 publish=True, import_findings=True, read_findings=True)


def organization_needs(found: Needs, mode: str) -> Needs:
    # The Map child returns its summary; the summarize state publishes one for the whole organization.
    return msgspec.structs.replace(found, publish=False)


def handler(event: dict[str, Any], context: Any = None) -> dict[str, Any]:
    """Schedule target: every API of this region that needs attention goes through the same workflow, once.

    An API whose findings people were already told about (the same fingerprint, NoticeLedger) is not sent
    again: report-only findings, and a dry run's proposals, are told when they first appear or change. One
    summary message per sweep says the rest: counts per verdict, new and resolved findings.
    """
    settings = Settings.from_environment()
    if settings.organization:
        return sweep_accounts(settings, _accounts(event), context)
    region = os.environ.get("AWS_REGION") or common.clients().default_region
    summary, counts = sweep_region(settings, own_account(context), region)
    subject = (f"Daily sweep of {summary['account']} {region}: {summary['apis']} APIs, {len(summary['new_findings'])} "
               f"with new findings, {len(summary['resolved_findings'])} resolved")
    publish(common.clients(), settings.topic_arn, subject, summary)
    forget_resolved(settings, summary)  # only once the summary is out: a sweep retried after a failed publish lists them again
    return {**counts, "new": len(summary["new_findings"]), "resolved": len(summary["resolved_findings"])}


def forget_resolved(settings: Settings, summary: dict[str, Any]) -> None:
    """What people were told about the resolved APIs is forgotten (if their findings come back, they are news
    again). Done after the summary that lists them is published, never before, so a retry keeps every one."""
    place = settings.notice_place(summary["account"], summary["region"])
    notices = NoticeLedger(common.clients(), settings.audit_table)
    for item in summary["resolved_findings"]:
        aws_call(lambda api_id=item["api_id"]: notices.forget(place, api_id))


# A Map child's output goes into the parent's results (a state's payload takes 256 KB, Express or Standard): a child
# lists at most this many findings (new and resolved, over all its accounts and regions, about 120 bytes each), the
# first of each region's, and says how many more there are (tests/test_roster.py fills a batch of accounts x 17 regions).
LISTED_PER_CHILD = 1000
LISTED_PER_ACCOUNT = LISTED_PER_CHILD  # a child of one account lists as many
CAUSE_CHARS = 300  # of a region's or an account's error: one line, bounded (170 of them stay far under 256 KB)


NAME_CHARS = 128  # of an API's name in the listed findings (the whole name is in the API itself)


def within_state_limit(summary: dict[str, Any], listed: int = LISTED_PER_CHILD) -> dict[str, Any]:
    bounded = dict(summary)
    for name in ("new_findings", "resolved_findings"):
        bounded[name] = [{**f, "name": str(f.get("name", ""))[:NAME_CHARS]} for f in summary[name][:listed]]
        bounded[f"{name}_left_out"] = max(0, len(summary[name]) - listed)
    return bounded


def listed_per_region(accounts: int, regions: int) -> int:
    """How many of each region's new (and of its resolved) findings a child of `accounts` x `regions` lists."""
    return max(1, LISTED_PER_CHILD // (2 * max(1, accounts) * max(1, regions)))


# An organization sweep child is an Express execution: at most 5 minutes, and run at least once (Step Functions
# developer guide, "Choosing workflow type in Step Functions", https://docs.aws.amazon.com/step-functions/latest/dg/
# choosing-workflow-type.html: Express "Maximum duration: 5 minutes", "Execution semantics: at-least-once"). Its task
# (org_sweep.json SweepAccounts) times out at 140 s, above the function's 130 s in an organization (infra/stack.py), and
# is retried once: 140 + 2 + 140 < 300.
# The batch's accounts and regions are swept within this budget, or less if the function has less time left.
CHILD_BUDGET_SECONDS = 120.0
# Left of the function's own time when the budget ends: the summaries are gathered and the told notices forgotten.
MARGIN_SECONDS = 10.0
# (account, region) pairs swept at once, each on a thread of its own (botocore clients are thread-safe; their factory
# is locked; 8 stays under botocore's 10 pooled connections per client, the hub's DynamoDB and Step Functions clients
# being shared by every thread).
REGION_THREADS = 8
# Accounts a child sweeps (the Map's ItemBatcher, from the plan: remediator/functions/plan.py). The arithmetic
# (docs/organization.md): 10 accounts x 17 regions = 170 pairs on 8 threads = 22 waves; a region's sweep (one
# GetRestApis page, one Query of its notices, its starts) takes about 1 s, so a child takes about 25 s of its 120 s,
# leaving a region 5 s on average before the budget reports the rest as not swept; 140 + 2 + 140 s < 300 s as before.
ACCOUNTS_PER_CHILD = 10
MAX_ACCOUNTS_PER_CHILD = 40  # what a child takes at most (a hand-made or stale input beyond it is refused whole)


class OutOfTime(RemediationFailed):
    """The child's time budget ended before the region was swept: the region is not swept this time (the next sweep
    sweeps it), never a reason to stop the others."""


def _accounts(event: Any) -> list[str]:
    """The Map's batch, {"Items": [{"account": ...}, ...]} (ItemBatcher), well formed, or nothing is swept."""
    items = event.get("Items") if isinstance(event, dict) else None
    if not isinstance(items, list) or not 1 <= len(items) <= MAX_ACCOUNTS_PER_CHILD:
        raise RemediationFailed(f"the organization sweep's child takes {{\"Items\": [...]}} of 1 to "
                                f"{MAX_ACCOUNTS_PER_CHILD} accounts; got {event!r:.60}")
    accounts = []
    for item in items:
        account = item.get("account") if isinstance(item, dict) else None
        if not isinstance(account, str) or not ACCOUNT.fullmatch(account):
            raise RemediationFailed(f"the organization sweep's item must name an account; got {account!r:.40}")
        accounts.append(account)
    if len(set(accounts)) != len(accounts):
        raise RemediationFailed("the organization sweep's batch names an account twice")
    return accounts


def budget(context: Any) -> float:
    """Seconds the child may sweep for: CHILD_BUDGET_SECONDS, or less when the function has less time left."""
    remaining = getattr(context, "get_remaining_time_in_millis", None)
    left = remaining() / 1000.0 - MARGIN_SECONDS if callable(remaining) else CHILD_BUDGET_SECONDS
    return max(0.0, min(CHILD_BUDGET_SECONDS, left))


def sweep_accounts(settings: Settings, accounts: list[str], context: Any = None) -> dict[str, Any]:
    """The organization sweep's child: every sweep region of each account of its batch, REGION_THREADS (account,
    region) pairs at a time, within `budget`.

    Idempotent, as an Express child must be (it may run twice): it reads; what it starts is named after the account,
    the API and the hour (a second start of the same execution is a duplicate, not a second run); what it forgets was
    forgotten already. A region it cannot sweep (out of time, throttled past botocore's retries, denied) is in its
    account's `not_swept`; an account it cannot start on is `failed` (NotEnrolled when the hub may not assume its spoke
    role), and the batch's other accounts are swept all the same.
    """
    regions = list(settings.sweep_regions)
    deadline = clock.now() + budget(context)
    left_open = _left_open(settings)  # one Query for the whole batch
    listed = listed_per_region(len(accounts), len(regions))

    def start(account: str) -> tuple[ApiGatewayAdapter, SweepSettings] | RemediationFailed:
        bind(account=account)
        try:
            spoke = settings.member_clients(account, regions[0], "sweep")
            aws_call(lambda: spoke.client("apigateway", regions[0]))  # membership, and the spoke session: once per account
            return ApiGatewayAdapter(spoke), settings.sweep_settings(account, regions[0])  # the trusted lists, once
        except RemediationFailed as error:  # NotEnrolled, not in the roster, throttled: this account only
            log.warning("account_not_swept", error=type(error).__name__, cause=str(error)[:CAUSE_CHARS])
            return error

    def one(pair: tuple[str, str]) -> tuple[str, str, Any]:
        account, region = pair
        apis, judged = started[account]  # type: ignore[misc]
        try:
            sweep_settings = replace(judged, trust=replace(judged.trust, partition=partition_of(region)))
            summary, counts = sweep_region(settings, account, region, apis=apis, sweep_settings=sweep_settings,
                                           left_open={(r, a) for (o, r, a) in left_open if o == account}, deadline=deadline)
            return account, region, (within_state_limit(summary, listed), counts)
        except RemediationFailed as error:  # Throttled, Transient, OutOfTime, denied: this region only
            log.warning("region_not_swept", region=region, error=type(error).__name__, cause=str(error)[:CAUSE_CHARS])
            return account, region, error

    def in_context(function: Any, values: list[Any]) -> list[tuple[Any, Any]]:
        # Each task runs in its own copy of this invocation's context (its log bindings, its function's caches and, on
        # the local account, the invocation whose role signs the calls), copied here: a pool thread's own is empty.
        return [(contextvars.copy_context(), value) for value in values]

    def run(task: tuple[contextvars.Context, Any], function: Any) -> Any:
        return task[0].run(function, task[1])

    with ThreadPoolExecutor(max_workers=max(1, min(REGION_THREADS, len(accounts) * len(regions))),
                            thread_name_prefix="sweep") as pool:
        started = dict(zip(accounts, pool.map(lambda task: run(task, start), in_context(start, accounts)), strict=True))
        pairs = [(a, r) for r in regions for a in accounts if not isinstance(started[a], RemediationFailed)]
        # Region by region, the batch's accounts side by side: a slow account does not hold up the others.
        done = list(pool.map(lambda task: run(task, one), in_context(one, pairs)))
    outputs: dict[str, dict[str, Any]] = {}
    for account in accounts:
        failed = started[account]
        outputs[account] = ({"account": account, "region": "*", "failed": type(failed).__name__,
                             "cause": str(failed)[:CAUSE_CHARS]} if isinstance(failed, RemediationFailed)
                            else {"account": account, "regions": [], "not_swept": [], "duplicate": 0})
    for account, region, outcome in sorted(done, key=lambda d: (accounts.index(d[0]), regions.index(d[1]))):
        if isinstance(outcome, RemediationFailed):
            outputs[account]["not_swept"].append({"region": region, "error": type(outcome).__name__,
                                                  "cause": str(outcome)[:CAUSE_CHARS]})
            continue
        summary, counts = outcome
        outputs[account]["regions"].append(summary)
        outputs[account]["duplicate"] += counts["duplicate"]
    for output in outputs.values():  # last: a child run again before this still lists them
        for summary in output.get("regions", []):
            forget_resolved(settings, summary)
    log.info("accounts_swept", accounts=len(accounts), pairs=len(done),
             not_swept=sum(len(o.get("not_swept", [])) for o in outputs.values()),
             failed=sorted(a for a, o in outputs.items() if "failed" in o))
    return {"accounts": [outputs[a] for a in accounts]}


def _left_open(settings: Settings, account: str | None = None) -> set[tuple[str, str, str]]:
    """(account, region, API) of the changes left half-done by a holder that is gone (of `account`, or of every
    account): one Query for every region and account."""
    if settings.mode == "dry-run":
        return set()
    journal = DynamoJournal(common.clients(), settings.audit_table)
    intents = aws_call(journal.open_intents)  # first: its answer sets the journal's clock (DynamoDB's)
    return {(i.account, i.region, i.api_id) for i in intents
            if (account is None or i.account == account) and not journal.held_by_other(i, "", journal.now())}


def _hub_finding(account: str, region: str, report: Any) -> dict[str, Any]:
    evaluation = report.evaluation
    findings = [f.to_dict() for f in evaluation.findings] if evaluation else []
    compliant = evaluation is not None and evaluation.compliant
    note = None if compliant or report.exempt else security_hub.NOTES["findings"]
    return security_hub.finding(account, region, report.api.api_id, report.api.name, findings, compliant, report.exempt, note)


def _to_security_hub(settings: Settings, account: str, region: str, listed: set[str], findings: list[dict[str, Any]]) -> None:
    """The region's findings in batches of 100, with the ACTIVE findings of APIs no longer listed archived."""
    if not security_hub.active(settings, region):
        return
    try:
        known = security_hub.known_apis(settings, account, region)
    except RemediationFailed as error:  # not throttling (raised, so the sweep is retried): say it, archive nothing
        log.error("security_hub_findings_unread", error=str(error)[:300])
        known = {}
    for api_id in sorted(set(known) - listed):
        name = str(((known[api_id].get("Resources") or [{}])[0].get("Details") or {}).get("AwsApiGatewayRestApi", {}).get("Name") or "")
        findings.append(security_hub.finding(account, region, api_id, name, [], compliant=True, archived=True))
    security_hub.send(settings, region, findings)


def sweep_region(settings: Settings, account: str, region: str, *, apis: ApiGatewayAdapter | None = None,
                 sweep_settings: SweepSettings | None = None, left_open: set[tuple[str, str]] | None = None,
                 deadline: float | None = None) -> tuple[dict[str, Any], dict[str, int]]:
    """Sweep one account's region: start an execution for each API that needs one; the summary of what was seen,
    and the counts of what was done. An organization's child passes what it read once for all regions, and its
    `deadline` (past it, OutOfTime: the region is not swept this time)."""
    sweep_settings = sweep_settings or settings.sweep_settings(account, region)
    hour = datetime.fromtimestamp(clock.now(), UTC).strftime("%Y%m%dT%H")  # one sweep execution per API per hour
    bind(sweep=hour, region=region, account=account)
    counts = {"apis": 0, "started": 0, "duplicate": 0, "told_already": 0}
    if left_open is None:  # changes left half-done (their holder gone) are settled by an execution of their own
        left_open = {(r, a) for (_, r, a) in _left_open(settings, account)}
    place = settings.notice_place(account, region)
    notices = NoticeLedger(common.clients(), settings.audit_table)
    standing = aws_call(lambda: notices.standing(place))
    verdicts: Counter[str] = Counter()
    new: list[dict[str, str]] = []
    resolved: list[dict[str, str]] = []
    listed: set[str] = set()
    to_hub: list[dict[str, Any]] = []  # the Security Hub findings of the APIs no execution is started for
    apis = apis or ApiGatewayAdapter(settings.member_clients(account, region, "sweep"))  # type: ignore[arg-type]
    for api in aws_call(lambda: list(apis.list_rest_apis(region))):
        if deadline is not None and clock.now() > deadline:
            raise OutOfTime(f"the account's sweep ran out of its {CHILD_BUDGET_SECONDS:.0f} s in {region} after "
                            f"{counts['apis']} APIs; the next sweep sweeps the region again")
        counts["apis"] += 1
        listed.add(api.api_id)
        report = assess(api, sweep_settings)
        verdict = report.verdict(left_open=(region, api.api_id) in left_open)
        verdicts[verdict.value] += 1
        told_once = verdict is Verdict.REPORT_ONLY or (verdict is Verdict.FIX and settings.mode == "dry-run")
        if told_once:
            report = aws_call(lambda report=report: with_access(apis, report, sweep_settings.trust))
            # What Notify would remember for this evaluation: one formula (decision.notice_fingerprint) for Notify, the
            # trigger and the sweep, so that what was told is never told again, nor missed, for a difference of wording.
            fingerprint = decision.notice_fingerprint(decision.evaluation(report, verdict, settings.mode, settings))
            if standing.get(api.api_id) == fingerprint:
                counts["told_already"] += 1
                to_hub.append(_hub_finding(account, region, report))
                continue
            new.append({"api_id": api.api_id, "name": api.name, "verdict": verdict.value})
        elif api.api_id in standing and verdict in (Verdict.COMPLIANT, Verdict.EXEMPT):  # resolved (forgotten once told)
            resolved.append({"api_id": api.api_id, "name": api.name, "verdict": verdict.value})
        if not verdict.needs_attention:
            to_hub.append(_hub_finding(account, region, report))
            continue
        event_id = f"{hour}-{account}-{api.api_id}" if settings.organization else f"{hour}-{api.api_id}"
        change = ApiChange(api.api_id, region, account, event_id, "ScheduledSweep",
                           Caller("Scheduler", None, None, "events.amazonaws.com", None))
        status = aws_call(lambda change=change: start_execution(
            common.clients(), settings.state_machine_arn, change.execution_name, {"change": change.to_dict(), "source": "sweep"}))
        counts[status] += 1
    for api_id in sorted(set(standing) - listed):  # deleted since: nobody needs to hear about it again
        resolved.append({"api_id": api_id, "name": "", "verdict": Verdict.GONE.value})
    _to_security_hub(settings, account, region, listed, to_hub)
    # In an organization's child (17,000 regions a day at 1,000 accounts), a region where nothing started, appeared or
    # was resolved is a debug line: its counts are in the sweep's summary (results bucket), and the child logs one line.
    quiet = deadline is not None and not (counts["started"] or new or resolved)
    (log.debug if quiet else log.info)("sweep_done", **counts, new=len(new), resolved=len(resolved))
    return {"kind": "summary", "mode": settings.mode, "account": account, "region": region, "apis": counts["apis"],
            "verdicts": dict(sorted(verdicts.items())), "new_findings": new, "resolved_findings": resolved,
            "executions_started": counts["started"], "told_already": counts["told_already"]}, counts


coldstart.loaded()  # last: this function's modules are loaded (remediator/functions/coldstart.py)
