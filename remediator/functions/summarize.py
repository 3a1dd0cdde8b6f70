"""The organization sweep's last state: one summary of every (account, region) the Map swept."""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from typing import Any

from remediator.adapters.s3 import ResultsBucket
from remediator.adapters.sns import publish
from remediator.functions import common
from remediator.functions.common import Settings, aws_call
from remediator.functions.needs import Needs
from remediator.logs import get_logger
from remediator.workflow.errors import RemediationFailed

log = get_logger("remediator.functions.summarize")

SUMMARIES_PREFIX = "summaries/"


def needs(mode: str, slack: bool) -> Needs | None:
    # The ResultWriter's manifest and result files (GetObject), the summary kept beside them (PutObject), and one
    # message on the topic.
    return Needs(results=("s3:GetObject", "s3:PutObject"), publish=True)


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
    outputs: list[dict[str, Any]] = []
    failed_children: list[dict[str, Any]] = []
    for status, files in (manifest.get("ResultFiles") or {}).items():
        for entry in files:
            for child in aws_call(lambda entry=entry: store.get_json(entry["Key"])):
                if status == "SUCCEEDED" and child.get("Output"):
                    outputs.append(common_json(child["Output"]))
                else:
                    failed_children.append({"status": status, "input": common_json(child.get("Input") or "{}"),
                                            "error": child.get("Error"), "cause": str(child.get("Cause", ""))[:300]})
    summary = summarize(outputs, failed_children, settings.mode, int(((event or {}).get("plan") or {}).get("count") or 0))
    execution = str((event or {}).get("execution") or "manual")
    aws_call(lambda: store.put_json(f"{SUMMARIES_PREFIX}{execution}.json", summary))
    subject = (f"Organization sweep: {summary['accounts']} accounts, {summary['pairs_swept']} account-regions, "
               f"{summary['apis']} APIs, {len(summary['new_findings'])} with new findings, "
               f"{len(summary['resolved_findings'])} resolved, {len(summary['not_swept'])} not swept")
    aws_call(lambda: publish(common.clients(), settings.topic_arn, subject[:100], summary))
    log.info("organization_swept", accounts=summary["accounts"], apis=summary["apis"], not_swept=len(summary["not_swept"]))
    return {k: summary[k] for k in ("accounts", "pairs_swept", "apis", "executions_started")} | {
        "new": len(summary["new_findings"]), "resolved": len(summary["resolved_findings"]), "not_swept": len(summary["not_swept"])}


def common_json(text: Any) -> dict[str, Any]:
    """A child's Input or Output: Step Functions writes them as JSON text."""
    value = json.loads(text) if isinstance(text, str) else text
    return value if isinstance(value, dict) else {}


def summarize(outputs: list[dict[str, Any]], failed_children: list[dict[str, Any]], mode: str, planned: int) -> dict[str, Any]:
    """Pure: the per-pair summaries (sweep.sweep_region's) folded into one, per account."""
    per_account: dict[str, Counter[str]] = defaultdict(Counter)
    new: list[dict[str, str]] = []
    resolved: list[dict[str, str]] = []
    not_swept: list[dict[str, Any]] = []
    apis = started = 0
    for output in outputs:
        account, region = str(output.get("account")), str(output.get("region"))
        if "failed" in output:  # the child's Catch: the pair could not be swept
            not_swept.append({"account": account, "region": region, "error": output.get("failed"),
                              "cause": str(output.get("cause", ""))[:300]})
            continue
        per_account[account].update(output.get("verdicts") or {})
        apis += int(output.get("apis") or 0)
        started += int(output.get("executions_started") or 0)
        new += [{**f, "account": account, "region": region} for f in output.get("new_findings") or []]
        resolved += [{**f, "account": account, "region": region} for f in output.get("resolved_findings") or []]
    for child in failed_children:
        item = child["input"]
        not_swept.append({"account": item.get("account"), "region": item.get("region"), "error": child["error"] or child["status"],
                          "cause": child["cause"]})
    accounts = sorted(set(per_account) | {str(n["account"]) for n in not_swept})
    return {"kind": "organization-summary", "mode": mode, "accounts": len(accounts), "pairs_planned": planned,
            "pairs_swept": len(outputs) - sum(1 for o in outputs if "failed" in o), "apis": apis,
            "verdicts_per_account": {a: dict(sorted(per_account[a].items())) for a in accounts},
            "new_findings": new, "resolved_findings": resolved, "not_swept": not_swept, "executions_started": started}
