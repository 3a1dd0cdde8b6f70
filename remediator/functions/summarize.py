"""The organization sweep's last state: one summary of every account (and each of its regions) the Map swept."""

from __future__ import annotations

import hashlib
import json
from collections import Counter, defaultdict
from datetime import UTC, datetime
from typing import Any

from remediator import clock
from remediator.adapters.dynamodb import NoticeLedger
from remediator.adapters.s3 import ResultsBucket
from remediator.adapters.sns import publish
from remediator.functions import coldstart, common
from remediator.functions.common import NotEnrolled, Settings, aws_call
from remediator.functions.needs import Needs
from remediator.logs import get_logger
from remediator.workflow.errors import RemediationFailed

log = get_logger("remediator.functions.summarize")

SUMMARIES_PREFIX = "summaries/"
NOT_ENROLLED = NotEnrolled.__name__  # the Map child's error name when the hub may not assume the account's spoke role


def needs(mode: str, slack: bool) -> Needs | None:
    # The ResultWriter's manifest and result files (GetObject), the summary kept beside them (PutObject), one message
    # on the topic, and what people were told about the accounts that are not enrolled (its notice item).
    return Needs(results=("s3:GetObject", "s3:PutObject"), publish=True,
                 notices=("dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:DeleteItem"))


# The not-enrolled accounts' notice (NoticeLedger): one item, "notice#enrollment" / "unenrolled", whose fingerprint is
# that of the set of accounts; people are told when the set changes, not on every sweep.
ENROLLMENT_PLACE = "enrollment"
ENROLLMENT_KEY = "unenrolled"  # the ledger's sort key is a 10-character REST API ID's shape


def handler(event: dict[str, Any], context: Any = None) -> dict[str, Any]:
    """Read the Map's results from its ResultWriter manifest; counts per verdict per account, new and resolved
    findings, and the pairs that could not be swept (a missing spoke role, one that does not trust the hub)."""
    settings = Settings.from_environment()
    details = ((event or {}).get("results") or {}).get("ResultWriterDetails") or {}
    bucket, key = details.get("Bucket"), details.get("Key")
    if not bucket or not key or bucket != settings.results_bucket:
        raise RemediationFailed(f"the Map's results are not in the results bucket: {details!r:.200}")
    store = ResultsBucket(common.clients(), bucket)
    manifest = aws_call(lambda: store.get_json(key))
    tally = Tally(settings.mode, int(((event or {}).get("plan") or {}).get("pairs") or 0))
    for status, files in (manifest.get("ResultFiles") or {}).items():
        for entry in files:  # one result file at a time: 17,000 children's results never held at once
            for child in aws_call(lambda entry=entry: store.get_json(entry["Key"])):
                if status == "SUCCEEDED" and child.get("Output"):
                    tally.add(common_json(child["Output"]))
                else:
                    tally.add_failed({"status": status, "input": common_json(child.get("Input") or "{}"),
                                      "error": child.get("Error"), "cause": str(child.get("Cause", ""))[:300]})
    summary = tally.summary()
    summary["not_enrolled_told"] = tell_not_enrolled(settings, summary["not_enrolled"])
    execution = str((event or {}).get("execution") or "manual")
    summary_key = f"{SUMMARIES_PREFIX}{execution}.json"
    aws_call(lambda: store.put_json(summary_key, summary))
    subject = (f"Organization sweep: {summary['accounts']} accounts, {summary['pairs_swept']} account-regions, "
               f"{summary['apis']} APIs, {len(summary['new_findings'])} with new findings, "
               f"{len(summary['resolved_findings'])} resolved, {len(summary['not_swept'])} not swept"
               + (f", {len(summary['not_enrolled'])} not enrolled" if summary["not_enrolled"] else ""))
    message = bounded(summary, f"s3://{bucket}/{summary_key}")
    aws_call(lambda: publish(common.clients(), settings.topic_arn, subject[:100], message))
    log.info("organization_swept", accounts=summary["accounts"], apis=summary["apis"], not_swept=len(summary["not_swept"]),
             message_bytes=len(json.dumps(message)))
    return {k: summary[k] for k in ("accounts", "pairs_swept", "apis", "executions_started")} | {
        "new": len(summary["new_findings"]), "resolved": len(summary["resolved_findings"]), "not_swept": len(summary["not_swept"]),
        "not_enrolled": len(summary["not_enrolled"])}


def tell_not_enrolled(settings: Settings, accounts: list[str]) -> bool:
    """One notice when the set of accounts without a usable spoke changes (NoticeLedger); nothing while it stays the
    same, and the notice is forgotten once every account is enrolled. Whether people were told this time."""
    notices = NoticeLedger(common.clients(), settings.audit_table)
    told = aws_call(lambda: notices.fingerprint(ENROLLMENT_PLACE, ENROLLMENT_KEY))
    if not accounts:
        if told is not None:
            aws_call(lambda: notices.forget(ENROLLMENT_PLACE, ENROLLMENT_KEY))
        return False
    fingerprint = hashlib.md5(",".join(sorted(accounts)).encode(), usedforsecurity=False).hexdigest()
    if told == fingerprint:
        log.info("not_enrolled_told_already", accounts=len(accounts))
        return False
    message = {"kind": "not-enrolled", "accounts": accounts,
               "detail": "The hub may not assume these accounts' spoke role (AccessDenied): they have no spoke (the "
                         "StackSet does not target their OU) or one that does not trust the hub. They are not swept "
                         "and not protected; you are told again only when the list changes."}
    aws_call(lambda: publish(common.clients(), settings.topic_arn,
                             f"Organization sweep: {len(accounts)} account(s) not enrolled", message))
    now = datetime.fromtimestamp(clock.now(), UTC).isoformat()
    aws_call(lambda: notices.remember(ENROLLMENT_PLACE, ENROLLMENT_KEY, fingerprint, "not enrolled", "not-enrolled", now))
    return True


# SNS takes messages up to 256 KB; the message lists at most this many of each kind, and the whole summary is in S3.
MESSAGE_LIMIT = 200 * 1024
LISTED = 100


def bounded(summary: dict[str, Any], location: str) -> dict[str, Any]:
    """The summary as one SNS message: whole when it fits, else the counts and the first LISTED of each list, with
    where the whole summary is (and how many of each list were left out)."""
    message = {**summary, "full_summary": location}
    if len(json.dumps(message, indent=2, default=str)) <= MESSAGE_LIMIT:
        return message
    for name in ("new_findings", "resolved_findings", "not_swept"):
        items = summary[name]
        message[name] = items[:LISTED]
        message[f"{name}_left_out"] = max(0, len(items) - LISTED)
    accounts = summary["verdicts_per_account"]
    if len(json.dumps(message, indent=2, default=str)) > MESSAGE_LIMIT:
        message["verdicts_per_account"] = {a: accounts[a] for a in list(accounts)[:LISTED]}
        message["verdicts_per_account_left_out"] = max(0, len(accounts) - LISTED)
    return message


def common_json(text: Any) -> dict[str, Any]:
    """A child's Input or Output: Step Functions writes them as JSON text."""
    value = json.loads(text) if isinstance(text, str) else text
    return value if isinstance(value, dict) else {}


class Tally:
    """The children's outputs (sweep.sweep_accounts': per account of the batch, its per-region summaries and the regions
    it could not sweep) folded into one, per account, as they are read."""

    def __init__(self, mode: str, planned: int) -> None:
        self.mode, self.planned = mode, planned
        self.per_account: dict[str, Counter[str]] = defaultdict(Counter)
        self.new: list[dict[str, str]] = []
        self.resolved: list[dict[str, str]] = []
        self.not_swept: list[dict[str, Any]] = []
        self.not_enrolled: set[str] = set()  # accounts whose spoke role the hub may not assume (NotEnrolled)
        self.apis = self.started = self.swept = 0
        self.left_out = {"new_findings": 0, "resolved_findings": 0}  # beyond what each pair could list (sweep.py)

    def add(self, output: dict[str, Any]) -> None:
        """One child's output: its batch's accounts (sweep.sweep_accounts'), or (its Catch, NotSwept) the whole batch
        not swept."""
        if "failed" in output and isinstance(output.get("accounts"), list):  # the child's Catch: none of its accounts swept
            for account in output["accounts"]:
                self.add_account({"account": account, "region": "*", "failed": output["failed"], "cause": output.get("cause")})
            return
        if isinstance(output.get("accounts"), list):
            for entry in output["accounts"]:
                self.add_account(entry if isinstance(entry, dict) else {})
            return
        self.add_account(output)

    def add_account(self, output: dict[str, Any]) -> None:
        """One account's output: its regions, or the account not swept ("failed": none of its regions)."""
        account = str(output.get("account"))
        if output.get("failed") == NOT_ENROLLED:  # no spoke the hub may assume: a state of the account, not a failure
            self.not_enrolled.add(account)
            return
        if "failed" in output:  # the account could not be swept ("*": none of its regions)
            self.not_swept.append({"account": account, "region": str(output.get("region", "*")), "error": output.get("failed"),
                                   "cause": str(output.get("cause", ""))[:300]})
            return
        self.per_account[account].update({})  # an account with no API is still listed
        for missed in output.get("not_swept") or []:
            self.not_swept.append({"account": account, "region": str(missed.get("region")), "error": missed.get("error"),
                                   "cause": str(missed.get("cause", ""))[:300]})
        for summary in output.get("regions") or []:
            self.add_region(account, summary)

    def add_region(self, account: str, output: dict[str, Any]) -> None:
        """One region's summary (sweep.sweep_region's)."""
        region = str(output.get("region"))
        self.swept += 1
        self.per_account[account].update(output.get("verdicts") or {})
        self.apis += int(output.get("apis") or 0)
        self.started += int(output.get("executions_started") or 0)
        self.new += [{**f, "account": account, "region": region} for f in output.get("new_findings") or []]
        self.resolved += [{**f, "account": account, "region": region} for f in output.get("resolved_findings") or []]
        for name in self.left_out:
            self.left_out[name] += int(output.get(f"{name}_left_out") or 0)

    def add_failed(self, child: dict[str, Any]) -> None:
        """A child the results list as failed (timed out, aborted): every account of its batch is not swept."""
        item = child["input"]
        items = item.get("Items") if isinstance(item.get("Items"), list) else [item]
        for entry in items:
            account = str(entry.get("account") if isinstance(entry, dict) else None)
            if child["error"] == NOT_ENROLLED:
                self.not_enrolled.add(account)
                continue
            self.not_swept.append({"account": account, "region": "*", "error": child["error"] or child["status"],
                                   "cause": child["cause"]})

    def summary(self) -> dict[str, Any]:
        accounts = sorted(set(self.per_account) | {str(n["account"]) for n in self.not_swept})
        return {"kind": "organization-summary", "mode": self.mode, "accounts": len(accounts), "pairs_planned": self.planned,
                "pairs_swept": self.swept, "apis": self.apis,
                "verdicts_per_account": {a: dict(sorted(self.per_account[a].items())) for a in accounts},
                "new_findings": self.new, "resolved_findings": self.resolved, "not_swept": self.not_swept,
                "executions_started": self.started, "new_findings_not_listed": self.left_out["new_findings"],
                "resolved_findings_not_listed": self.left_out["resolved_findings"],
                "not_enrolled": sorted(self.not_enrolled)}


def summarize(outputs: list[dict[str, Any]], failed_children: list[dict[str, Any]], mode: str, planned: int) -> dict[str, Any]:
    """Pure: the per-pair summaries folded into one (Tally, all at once)."""
    tally = Tally(mode, planned)
    for output in outputs:
        tally.add(output)
    for child in failed_children:
        tally.add_failed(child)
    return tally.summary()


coldstart.loaded()  # last: this function's modules are loaded (remediator/functions/coldstart.py)
