"""`make demo`: the event-driven workflow, end to end, on an emulated account on this machine.

Starts the emulator on loopback, creates the stack's parts from the same state-machine
definition, seeds REST APIs, sends CloudTrail-shaped events for them through the rule, runs
the executions in each mode and prints what was found, the patch, the policy before and after,
the stages redeployed and the audit record. `--seed FILE` uses your own policies instead:
a JSON list of {"name": ..., "policy": {...}, "tags": {...}, "stages": [...]}.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
from pathlib import Path
from typing import Any

OWNER = "111122223333"
PARTNER = "444455556666"
STRANGER = "999999999999"
REGION = "eu-west-1"
MODES = ("dry-run", "approval", "auto")  # the workflow's modes (remediator.workflow.MODES), in the demo's order


def default_seed() -> list[dict[str, Any]]:
    def allow(*principals: str) -> dict[str, Any]:
        return {"Effect": "Allow", "Principal": {"AWS": list(principals)}, "Action": "execute-api:Invoke", "Resource": "execute-api:/*"}

    return [
        {"name": "payments", "stages": ["prod"],
         "policy": {"Version": "2012-10-17", "Statement": [allow(f"arn:aws:iam::{OWNER}:root", f"arn:aws:iam::{PARTNER}:role/billing")]}},
        {"name": "orders", "stages": ["prod", "dev"], "escaped": True,
         "policy": {"Version": "2012-10-17", "Statement": [
             {**allow(f"arn:aws:iam::{OWNER}:root", f"arn:aws:iam::{PARTNER}:role/reader", STRANGER, "AROAEXAMPLEDELETEDROLE"), "Sid": "Partners"},
             {"Effect": "Deny", "Principal": "*", "Action": "execute-api:Invoke", "Resource": "execute-api:/*/DELETE/*"}]}},
        {"name": "legacy-export", "stages": ["v1"], "tags": {"remediator:exempt": "true"},
         "policy": {"Version": "2012-10-17", "Statement": [allow(f"arn:aws:iam::{STRANGER}:root")]}},
        {"name": "internal-private", "stages": ["prod"],
         "policy": {"Version": "2012-10-17", "Statement": [
             {"Effect": "Allow", "Principal": "*", "Action": "execute-api:Invoke", "Resource": "execute-api:/*"},
             {"Effect": "Deny", "Principal": "*", "Action": "execute-api:Invoke", "Resource": "execute-api:/*",
              "Condition": {"StringNotEquals": {"aws:SourceVpce": "vpce-0123456789abcdef0"}}}]}},
    ]


def load_seed(path: str) -> list[dict[str, Any]]:
    data = json.loads(Path(path).read_text(encoding="utf-8"))
    if not isinstance(data, list) or not all(isinstance(item, dict) and "name" in item and "policy" in item for item in data):
        raise SystemExit(f"error: {path}: expected a JSON list of {{\"name\": ..., \"policy\": {{...}}}} objects")
    return data


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m remediator.demo", description=__doc__.splitlines()[0])
    parser.add_argument("--seed", help="JSON file with your own APIs and policies")
    parser.add_argument("--modes", default=",".join(MODES), help="comma-separated modes to run (dry-run,approval,auto)")
    args = parser.parse_args(argv)
    os.environ.setdefault("REMEDIATOR_LOG_LEVEL", "ERROR")
    seed = load_seed(args.seed) if args.seed else default_seed()
    modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    bad = [m for m in modes if m not in MODES]
    if bad:
        print(f"error: unknown mode {bad[0]!r} (choose from {', '.join(MODES)})", file=sys.stderr)
        return 2

    from remediator.local import cloudtrail
    from remediator.local.emulator import emulated_account, escaped, seed_rest_api
    from remediator.local.runner import LocalWorkflow, WorkflowConfig

    with emulated_account(account_id=OWNER, region=REGION) as account:
        print(f"Emulated account {OWNER} on {account.endpoint_url} (no AWS account, no Docker).")
        print(f"Trusted: owner {OWNER}, partner {PARTNER}. Exemption tag: remediator:exempt=true.\n")
        transitions: dict[str, int] = {}
        apigw = account.clients.client("apigateway", REGION)
        flow = None
        for mode in modes:
            # Each mode is its own deployment of the stack: its template's roles, grants and rule.
            if flow is not None:
                flow.close()
                account.reset()
            flow = LocalWorkflow(account, WorkflowConfig(mode=mode, trusted_accounts=[PARTNER]), region=REGION)
            _banner(f"mode: {mode}")
            for item in seed:
                name = f"{item['name']}-{mode}"
                policy = item["policy"]
                text = escaped(policy) if item.get("escaped") else json.dumps(policy)
                api_id = seed_rest_api(account.clients, REGION, name, text, item.get("tags"), tuple(item.get("stages", ["prod"])))
                flow.discard_pending()  # the seed's own CloudTrail event: the demo delivers its own, below
                event = cloudtrail.api_call_event("CreateRestApi", api_id, REGION, OWNER)
                posted_before = len(flow.slack.calls)
                print(f"\nAPI {name} ({api_id}) in {REGION}: {event['detail']['eventName']} by {event['detail']['userIdentity']['arn']}")
                started = flow.deliver(event)
                if mode == "approval":
                    _approve_from_slack(flow, started["execution_name"], posted_before)
                result = flow.wait(started["execution_name"])
                after = apigw.get_rest_api(restApiId=api_id).get("policy")
                _show_api(name, api_id, event, started, result, text, after, flow)
                transitions[result.output["evaluation"]["verdict"] if result.output else result.status] = result.transitions
                if mode == "auto" and result.output and result.output.get("applied", {}).get("outcome") == "patched":
                    _show_follow_up(flow, api_id, event)
            if mode == "auto":
                _show_sweep(flow, account, seed)
        _banner("cost per event (Standard workflows bill per state transition)")
        for verdict, count in sorted(transitions.items()):
            print(f"  {verdict:<12} {count} state transitions")
        if flow is not None:
            checked = flow.strict.checked if flow.strict else []
            print(f"\nStrict local account: {len(checked)} AWS calls of the functions checked against the IAM policies "
                  f"of the synthesized template, {sum(not c.allowed for c in checked)} denied.")
            flow.close()
    return 0


def _approve_from_slack(flow: Any, execution: str, posted_before: int) -> None:
    """Print the Slack message with its buttons, show a forged press refused, then press Approve as an approver."""
    import time

    from remediator.local.slack import button_press_body

    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        posts = [f for method, f in flow.slack.calls[posted_before:] if method == "chat.postMessage"]
        if posts:
            break
        if _finished(flow, execution):
            return
        time.sleep(0.05)
    else:
        return
    approval_id = flow.pending_approval()
    print("  Slack message posted for approval:")
    for line in _render(posts[0]["blocks"]):
        print(f"    | {line}")
    code, reason = flow.press(approval_id, "approve", secret="a-forged-signing-secret")
    print(f"  forged click (wrong signature): HTTP {code} {reason}: nothing changed")
    code, reason = flow.press(approval_id, "approve", "U0INTRUDER")
    print(f"  click by someone not on the approver list: HTTP {code} {reason}")
    body = button_press_body(approval_id, "approve", "U0APPROVER")
    code, reason = flow.press(approval_id, "approve", "U0APPROVER", body=body)
    print(f"  signed click on Approve by U0APPROVER: HTTP {code} {reason}")


def _finished(flow: Any, execution: str) -> bool:
    from remediator.adapters.stepfunctions import execution_arn

    arn = execution_arn(flow.state_machine_arn, execution)
    return flow.clients.client("stepfunctions", REGION).describe_execution(executionArn=arn)["status"] != "RUNNING"


def _render(blocks: list[dict[str, Any]]) -> list[str]:
    lines: list[str] = []
    for block in blocks:
        if block["type"] == "header":
            lines.append(block["text"]["text"])
        elif block["type"] == "section":
            texts = [f["text"] for f in block.get("fields", [])] or [block["text"]["text"]]
            for text in texts:
                lines.extend(re.sub(r"^\*([^*\n]+)\*", r"\1", text.replace("```", "")).splitlines())
        elif block["type"] == "actions":
            lines.append("  ".join(f"[ {e['text']['text']} ]" for e in block["elements"]))
    return lines


def _banner(title: str) -> None:
    print("=" * 100)
    print(title)
    print("=" * 100)


def _show_api(name: str, api_id: str, event: dict[str, Any], started: dict[str, Any], result: Any, before: str, after: str | None,
              flow: Any) -> None:
    print(f"  workflow:  {result.status} in {result.transitions} state transitions: {' > '.join(result.states)}")
    output = result.output or {}
    evaluation = output.get("evaluation", {})
    print(f"  verdict:   {evaluation.get('verdict')}" + ("  (exempt: never changed)" if evaluation.get("exempt") else ""))
    for finding in evaluation.get("findings", []):
        print(f"  found:     [{finding['remediation']}] {finding['kind']} {finding['principal']} "
              f"(statement {finding['statement_index']}): {finding['detail']}")
    for operation in evaluation.get("patch_operations", []):
        print(f"  patch:     {operation['op']} {operation['path']} = {operation['value']}")
    print(f"  before:    {before}")
    print(f"  after:     {after}" + ("  (unchanged; API Gateway returns it escaped)" if _same(after, before) else ""))
    redeploy = output.get("redeploy")
    if redeploy:
        print(f"  stages:    {', '.join(redeploy['stages'])} now serve deployment {redeploy['deployment_id']}")
    audit = output.get("audit")
    if audit:
        shown = {k: audit[k] for k in ("account", "region", "api_id", "action", "stages_redeployed", "deployment_id", "triggered_by", "timestamp")}
        print(f"  audit:     {json.dumps(shown)}")
    for message in flow.notifications():
        print(f"  published: {message['kind']} to the notification topic"
              + (f" ({len(message['patch_operations'])} patch operation(s) proposed, nothing changed)" if message["kind"] == "proposal" else ""))
    if evaluation.get("mode") == "approval" and output.get("approval"):
        print(f"  approval:  {output['approval']['decision']} by {output['approval']['approver']} in Slack; the message was updated in place")


def _same(left: str | None, right: str | None) -> bool:
    from remediator.core import PolicyError, parse_policy

    if left is None or right is None:
        return left == right
    try:
        return parse_policy(left) == parse_policy(right)
    except PolicyError:
        return left == right


def _show_follow_up(flow: Any, api_id: str, original: dict[str, Any]) -> None:
    """The fix's own writes are CloudTrail events too: the rule must match none of them."""
    own = [e for e in (flow.strict.trail if flow.strict else [])
           if e["requestParameters"].get("restApiId") == api_id and e["userIdentity"]["type"] == "AssumedRole"]
    answers = flow.pump()
    print(f"  follow-up: CloudTrail recorded the fix's own writes ({', '.join(e['eventName'] for e in own) or 'none'}); "
          f"the rule matched {len(answers)} of them: no new execution, no loop")
    duplicate = flow.deliver(original)
    print(f"  duplicate: the same CreateRestApi event delivered again: {duplicate['status']} (not run twice)")
    flow.notifications()


def _show_sweep(flow: Any, account: Any, seed: list[dict[str, Any]]) -> None:
    from remediator.local.emulator import seed_rest_api

    missed = next((item for item in seed if item["name"] == "orders"), seed[0])
    api_id = seed_rest_api(account.clients, REGION, "changed-while-events-were-lost", json.dumps(missed["policy"]), None, ("prod",))
    print(f"\nScheduled sweep (the stack's daily rule, here in {flow.config.mode} mode): API changed-while-events-were-lost "
          f"({api_id}) got no event; every API of the region that still needs attention goes through the workflow.")
    counts = flow.run_sweep()
    print(f"  sweep:     {counts['apis']} APIs listed, {counts['started']} execution(s) started, {counts['duplicate']} already running")
    names = {api["id"]: api["name"] for api in account.clients.client("apigateway", REGION).get_rest_apis(limit=500)["items"]}
    executions = account.clients.client("stepfunctions", REGION).list_executions(stateMachineArn=flow.state_machine_arn)["executions"]
    for execution in executions:
        if execution["name"].startswith("ScheduledSweep"):
            result = flow.wait(execution["name"])
            swept = execution["name"].rsplit("-", 1)[-1]
            print(f"  {names.get(swept, swept)} ({swept}): {result.status}, {' > '.join(result.states)}")
    flow.notifications()


if __name__ == "__main__":
    sys.exit(main())
