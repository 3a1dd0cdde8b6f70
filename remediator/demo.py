"""`make demo`: the event-driven workflow, end to end, on an emulated account on this machine.

Starts the emulator on loopback, creates the stack's parts from the same state-machine
definition, seeds REST APIs, sends CloudTrail-shaped events for them through the rule, runs
the executions in each mode and prints what was found, the policy before and after (decoded, as a
diff), the stages redeployed and the audit record. `--seed FILE` uses your own policies instead:
a JSON list of {"name": ..., "policy": {...}, "tags": {...}, "stages": [...]} (examples/demo-apis.json).

Output goes through rich: colours and a spinner on a terminal, plain text wrapped to 80 columns
otherwise. rich is a command-line dependency; the Lambda bundle never holds it.
"""

from __future__ import annotations

import argparse
import difflib
import json
import os
import re
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

OWNER = "111122223333"
PARTNER = "444455556666"
STRANGER = "999999999999"
REGION = "eu-west-1"
MODES = ("dry-run", "approval", "auto")  # the workflow's modes (remediator.workflow.MODES), in the demo's order
MODE_SUMMARY = {
    "dry-run": "findings are reported and the fix is proposed; nothing is changed",
    "approval": "the fix waits for a person to press Approve in Slack (a signed request, from an approver)",
    "auto": "the fix is applied and every stage redeployed, hands-off",
}


def default_seed() -> list[dict[str, Any]]:
    """The APIs the demo creates (the same as examples/demo-apis.json)."""
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
    """A seed file's APIs; anything else stops with one line (exit 1)."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as error:
        raise SystemExit(f"error: {path}: {error.strerror}") from None
    except ValueError as error:
        raise SystemExit(f"error: {path}: not JSON: {' '.join(str(error).split())}") from None
    if not isinstance(data, list) or not all(isinstance(item, dict) and "name" in item and "policy" in item for item in data):
        raise SystemExit(f"error: {path}: expected a JSON list of {{\"name\": ..., \"policy\": {{...}}}} objects")
    return data


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m remediator.demo", description=__doc__.splitlines()[0])
    parser.add_argument("--seed", metavar="FILE", help="JSON file with your own APIs and policies (see examples/demo-apis.json)")
    parser.add_argument("--modes", default=",".join(MODES), help="comma-separated modes to run (default: dry-run,approval,auto)")
    parser.add_argument("--no-organization", action="store_true",
                        help="leave out the organization part (one hub protecting the member accounts of an organization)")
    args = parser.parse_args(argv)
    console = Console(highlight=False)
    os.environ.setdefault("REMEDIATOR_LOG_LEVEL", "ERROR")
    seed = load_seed(args.seed) if args.seed else default_seed()
    modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    bad = [m for m in modes if m not in MODES]
    if bad:
        print(f"error: unknown mode {bad[0]!r} (choose from {', '.join(MODES)})", file=sys.stderr)
        return 2

    _say(console, "apigw-remediator demo: the event-driven workflow, end to end, on an emulated AWS account "
                  "on this machine (no AWS account, no Docker).", style="bold")
    _say(console, "Starting the emulated account: moto's server on loopback, behind the strict layer that enforces "
                  "IAM, quotas and CloudTrail as AWS does...")
    started_at = time.monotonic()
    with console.status("starting the emulated account"):
        from remediator.local import cloudtrail
        from remediator.local.emulator import emulated_account, escaped, seed_rest_api
        from remediator.local.runner import LocalWorkflow, WorkflowConfig
        from remediator.local.template import cdk_installed

        account_context = emulated_account(account_id=OWNER, region=REGION)
        account = account_context.__enter__()
    try:
        _say(console, f"Emulated account {OWNER} ready on {account.endpoint_url} in {time.monotonic() - started_at:.1f} s. "
                      f"Trusted: the owner {OWNER} and the partner {PARTNER}; the exemption tag is remediator:exempt=true.")
        _say(console, "The stack's template for each mode: " + ("synthesized by the CDK now." if cdk_installed() else
                      "as committed in remediator/local/templates (the CDK toolchain is not installed; the tests keep "
                      "them equal to a synth)."))
        costs: list[tuple[str, str, str, int]] = []  # (mode, API, verdict, state transitions)
        failed: list[str] = []  # every execution (or organization sweep pair) that did not succeed: the exit status
        from remediator import demo_check

        failed += demo_check.show(console, _say, OWNER, PARTNER, REGION)  # before deployment: the template checked
        shown: dict[str, str] = {}  # policy -> the mode it was shown in: an unchanged one is shown once
        apigw = account.clients.client("apigateway", REGION)
        flow = None
        for mode in modes:
            # Each mode is its own deployment of the stack: its template's roles, grants and rule.
            if flow is not None:
                flow.close()
                account.reset()
            console.print()
            console.rule(f"[bold]mode: {mode}[/]")
            _say(console, f"In {mode} mode {MODE_SUMMARY[mode]}.")
            with console.status(f"deploying the {mode} stack's roles, functions, state machine and rule"):
                flow = LocalWorkflow(account, WorkflowConfig(mode=mode, trusted_accounts=[PARTNER]), region=REGION)
            for item in seed:
                name = f"{item['name']}-{mode}"
                policy = item["policy"]
                text = escaped(policy) if item.get("escaped") else json.dumps(policy)
                with console.status(f"seeding API {name} and sending its CreateRestApi event"):
                    api_id = seed_rest_api(account.clients, REGION, name, text, item.get("tags"), tuple(item.get("stages", ["prod"])))
                    flow.discard_pending()  # the seed's own CloudTrail event: the demo delivers its own, below
                    event = cloudtrail.api_call_event("CreateRestApi", api_id, REGION, OWNER)
                    posted_before = len(flow.slack.calls)
                    started = flow.deliver(event)
                console.print()
                console.rule(Text(f"API {name} ({api_id})", style="bold"), align="left", characters="-")
                _say(console, f"{event['detail']['eventName']} in {REGION} by {event['detail']['userIdentity']['arn']}")
                if started["status"] == "not-started":  # nothing to do: the trigger judged it, no execution
                    _show_decided(console, started["verdict"], text, apigw.get_rest_api(restApiId=api_id).get("policy"),
                                  mode, shown)
                    costs.append((mode, item["name"], started["verdict"], 0))
                    continue
                if "execution_name" not in started:
                    answer = f"{started.get('status')} {started.get('error') or ''}".rstrip()
                    failed.append(f"{mode} {name}: the trigger answered {answer}")
                    continue
                if mode == "approval":
                    _approve_from_slack(console, flow, started["execution_name"], posted_before)
                with console.status("running the workflow"):
                    result = flow.wait(started["execution_name"])
                after = apigw.get_rest_api(restApiId=api_id).get("policy")
                _show_api(console, result, text, after, flow, shown)
                verdict = result.output["evaluation"]["verdict"] if result.output else result.status
                if result.status != "SUCCEEDED":
                    failed.append(f"{mode} {name}: {result.status} {result.error or ''}".rstrip())
                costs.append((mode, item["name"], verdict, result.transitions))
                if mode == "auto" and result.output and result.output.get("applied", {}).get("outcome") == "patched":
                    if "security_hub" not in shown:  # once: the fixed API's finding, as Security Hub holds it now
                        shown["security_hub"] = mode
                        _show_security_hub(console, account, api_id)
                    _show_follow_up(console, flow, api_id, event)
            if mode == "auto":
                failed += _show_sweep(console, flow, account, seed)
        _show_costs(console, costs)
        if flow is not None:
            checked = flow.strict.checked if flow.strict else []
            console.print()
            _say(console, f"Strict local account: {len(checked)} AWS calls of the functions checked against the IAM policies "
                          f"of the synthesized template, {sum(not c.allowed for c in checked)} denied.")
            flow.close()
        if not args.no_organization:
            from remediator import demo_organization

            account.reset()
            failed += demo_organization.show(console, _say, _field, account)
    finally:
        account_context.__exit__(None, None, None)
    return _exit_status(console, failed)


def _exit_status(console: Console, failed: list[str]) -> int:
    """0 when every execution succeeded; 1, naming each one that did not, otherwise (make demo fails with it)."""
    if not failed:
        return 0
    console.print()
    _say(console, f"error: {len(failed)} execution(s) did not succeed: {'; '.join(failed)}", style="bold red")
    return 1


def _show_costs(console: Console, costs: list[tuple[str, str, str, int]]) -> None:
    console.print()
    console.rule("[bold]cost per event[/]")
    _say(console, "Standard workflows bill per state transition: what each API's execution took, in every mode; "
                  "0 where the trigger decided the API needs nothing and started no execution.")
    table = Table(show_edge=False, pad_edge=False)
    for column, justify in (("mode", "left"), ("API", "left"), ("verdict", "left"), ("state transitions", "right")):
        table.add_column(column, justify=justify)  # type: ignore[arg-type]
    for mode, name, verdict, transitions in costs:
        table.add_row(mode, name, verdict, str(transitions))
    console.print(table)


LABEL = 11  # the width of a field's label column


def _say(console: Console, text: str, style: str = "") -> None:
    """A paragraph, wrapped to the console's width (80 columns when it is not a terminal)."""
    console.print(Text(textwrap.fill(text, max(console.width, 40), break_on_hyphens=False), style=style), soft_wrap=True)


def _field(console: Console, label: str, value: str) -> None:
    """One labelled line; a long value wraps under itself, not under the label (and leaves no trailing spaces)."""
    width = max(console.width - LABEL, 30)
    lines = textwrap.wrap(value, width, break_long_words=True, break_on_hyphens=False) or [""]
    text = Text(f"{label}:".ljust(LABEL), style="bold")
    text.append(lines[0])
    for line in lines[1:]:
        text.append("\n" + " " * LABEL + line)
    console.print(text, soft_wrap=True)


def _approve_from_slack(console: Console, flow: Any, execution: str, posted_before: int) -> None:
    """Show the Slack message with its buttons, a forged press refused, then press Approve as an approver."""
    from remediator.local.slack import button_press_body

    deadline = time.monotonic() + 20
    with console.status("waiting for the approval message in Slack"):
        while time.monotonic() < deadline:
            posts = [f for method, f in flow.slack.calls[posted_before:] if method == "chat.postMessage"]
            if posts or _finished(flow, execution):
                break
            time.sleep(0.05)
    if not posts:
        return
    approval_id = flow.pending_approval()
    console.print("Slack message posted for approval:")
    width = max(console.width - 4, 30)
    for line in _render(posts[0]["blocks"]):
        for part in textwrap.wrap(line, width, break_on_hyphens=False) or [""]:
            console.print(Text(f"  | {part}", style="cyan"), soft_wrap=True)
    code, reason = flow.press(approval_id, "approve", secret="a-forged-signing-secret")
    _field(console, "forged", f"a click with a wrong signature: HTTP {code} {reason}: nothing changed")
    code, reason = flow.press(approval_id, "approve", "U0INTRUDER")
    _field(console, "intruder", f"a click by someone not on the approver list: HTTP {code} {reason}")
    body = button_press_body(approval_id, "approve", "U0APPROVER")
    code, reason = flow.press(approval_id, "approve", "U0APPROVER", body=body)
    _field(console, "approver", f"a signed click on Approve by U0APPROVER: HTTP {code} {reason}")


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


def _show_decided(console: Console, verdict: str, before: str, after: str | None, mode: str, shown: dict[str, str]) -> None:
    """An API that needs nothing (compliant, exempt, findings told already): decided in the trigger, which starts
    no execution for it (docs/concepts/workflow.md, "Decided before starting")."""
    _field(console, "workflow", "decided in the trigger, no execution (0 state transitions)")
    _field(console, "verdict", verdict + ("  (exempt: never changed)" if verdict == "exempt" else ""))
    _show_unchanged(console, before, after, mode, shown)


def _show_unchanged(console: Console, before: str, after: str | None, mode: str, shown: dict[str, str]) -> None:
    if before in shown:
        _field(console, "policy", f"unchanged, as shown in {shown[before]} mode above")
    else:
        shown[before] = mode
        _field(console, "policy", "unchanged" + ("; API Gateway returns it escaped, shown decoded:" if before != after else ":"))
        console.print(_diff(before, before), soft_wrap=True)


def _show_api(console: Console, result: Any, before: str, after: str | None, flow: Any, shown: dict[str, str]) -> None:
    _field(console, "workflow", f"{result.status} in {result.transitions} state transitions: {' > '.join(result.states)}")
    output = result.output or {}
    evaluation = output.get("evaluation", {})
    _field(console, "verdict", f"{evaluation.get('verdict')}" + ("  (exempt: never changed)" if evaluation.get("exempt") else ""))
    for finding in evaluation.get("findings", []):
        _field(console, "found", f"[{finding['remediation']}] {finding['kind']} {finding['principal']} "
                                 f"(statement {finding['statement_index']}): {finding['detail']}")
    proposed = [op["value"] for op in evaluation.get("patch_operations", []) if op.get("path") == "/policy"]
    changed = after is not None and not _same(after, before)
    if changed:
        _field(console, "policy", "changed by update-rest-api (replace /policy); before and after, decoded:")
        console.print(_diff(before, after), soft_wrap=True)
    elif proposed:
        _field(console, "policy", "unchanged; the proposed patch (replace /policy) would make it:")
        console.print(_diff(before, proposed[0]), soft_wrap=True)
    else:
        _show_unchanged(console, before, after, (result.output or {}).get("evaluation", {}).get("mode", ""), shown)
    redeploy = output.get("redeploy")
    if redeploy:
        _field(console, "stages", f"{', '.join(redeploy['stages'])} now serve deployment {redeploy['deployment_id']}")
    audit = output.get("audit")
    if audit:
        shown = {k: audit[k] for k in ("account", "region", "api_id", "action", "stages_redeployed", "deployment_id", "triggered_by", "timestamp")}
        _field(console, "audit", json.dumps(shown))
    for message in flow.notifications():
        _field(console, "published", f"{message['kind']} to the notification topic"
               + (f" ({len(message['patch_operations'])} patch operation(s) proposed, nothing changed)" if message["kind"] == "proposal" else ""))
    if evaluation.get("mode") == "approval" and output.get("approval"):
        _field(console, "approval", f"{output['approval']['decision']} by {output['approval']['approver']} in Slack; "
                                    "the message was updated in place")


def _decoded(text: str) -> list[str]:
    """A policy as indented JSON, whatever form it came in (API Gateway returns it escaped)."""
    from remediator.core import PolicyError, parse_policy

    try:
        return json.dumps(parse_policy(text), indent=2, ensure_ascii=False).splitlines()
    except PolicyError:
        return [text]


def _diff(before: str, after: str) -> Text:
    """The whole policy once, decoded, as it is after the fix: the lines the fix removes in red (-), the ones
    it adds in green (+). Lines are compared without their trailing comma, so that the entry before a removed
    last one does not show as changed."""
    old, new = _decoded(before), _decoded(after)
    matcher = difflib.SequenceMatcher(None, [line.rstrip(",") for line in old], [line.rstrip(",") for line in new], autojunk=False)
    shown = Text()
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag == "equal":
            for line in new[j1:j2]:
                shown.append(f"      {line}\n")
            continue
        for line in old[i1:i2]:
            shown.append(f"    - {line}\n", style="red")
        for line in new[j1:j2]:
            shown.append(f"    + {line}\n", style="green")
    shown.rstrip()
    return shown


def _same(left: str | None, right: str | None) -> bool:
    from remediator.core import PolicyError, parse_policy

    if left is None or right is None:
        return left == right
    try:
        return parse_policy(left) == parse_policy(right)
    except PolicyError:
        return left == right


def _show_security_hub(console: Console, account: Any, api_id: str) -> None:
    """The API's finding in Security Hub (GetFindings): the fix made it PASSED, which Security Hub resolves."""
    found = [f for f in account.clients.client("securityhub", REGION).get_findings(MaxResults=100)["Findings"]
             if any((r.get("Details") or {}).get("AwsApiGatewayRestApi", {}).get("Id") == api_id for r in f.get("Resources", []))]
    for finding in found[:1]:
        _say(console, f"Security Hub: finding {finding['Id'].rsplit(':', 1)[-1]} is {finding['Compliance']['Status']}, "
                      f"workflow {finding['Workflow']['Status']} (resolved by Security Hub once the fix made it PASSED).")


def _show_follow_up(console: Console, flow: Any, api_id: str, original: dict[str, Any]) -> None:
    """The fix's own writes are CloudTrail events too: the rule must match none of them."""
    own = [e for e in (flow.strict.trail if flow.strict else [])
           if e["requestParameters"].get("restApiId") == api_id and e["userIdentity"]["type"] == "AssumedRole"]
    answers = flow.pump()
    _field(console, "follow-up", f"CloudTrail recorded the fix's own writes ({', '.join(e['eventName'] for e in own) or 'none'}); "
                                 f"the rule matched {len(answers)} of them: no new execution, no loop")
    again = flow.deliver(original)
    # The trigger judges the API as it is now: fixed, it needs nothing. Had it still needed a fix, the execution
    # named after the event ID would be refused as already started (duplicate): never run twice either way.
    answer = (f"decided in the trigger, no execution (the API is {again['verdict']} now; not run twice)"
              if again["status"] == "not-started" else f"{again['status']} (not run twice)")
    _field(console, "duplicate", f"the same CreateRestApi event delivered again: {answer}")
    flow.notifications()


def _show_sweep(console: Console, flow: Any, account: Any, seed: list[dict[str, Any]]) -> list[str]:
    """The scheduled sweep; the executions it started that did not succeed."""
    from remediator.local.emulator import seed_rest_api

    missed = next((item for item in seed if item["name"] == "orders"), seed[0])
    api_id = seed_rest_api(account.clients, REGION, "changed-while-events-were-lost", json.dumps(missed["policy"]), None, ("prod",))
    console.print()
    console.rule(Text("scheduled sweep", style="bold"), align="left", characters="-")
    _say(console, f"The stack's daily rule, here in {flow.config.mode} mode: API changed-while-events-were-lost ({api_id}) got "
                  "no event; every API of the region that still needs attention goes through the workflow.")
    with console.status("sweeping the region"):
        counts = flow.run_sweep()
    _field(console, "sweep", f"{counts['apis']} APIs listed, {counts['started']} execution(s) started, "
                             f"{counts['duplicate']} already running")
    names = {api["id"]: api["name"] for api in account.clients.client("apigateway", REGION).get_rest_apis(limit=500)["items"]}
    executions = account.clients.client("stepfunctions", REGION).list_executions(stateMachineArn=flow.state_machine_arn)["executions"]
    failed: list[str] = []
    for execution in executions:
        if execution["name"].startswith("ScheduledSweep"):
            result = flow.wait(execution["name"])
            swept = execution["name"].rsplit("-", 1)[-1]
            _field(console, "swept", f"{names.get(swept, swept)} ({swept}): {result.status}, {' > '.join(result.states)}")
            if result.status != "SUCCEEDED":
                failed.append(f"sweep {names.get(swept, swept)}: {result.status}")
    flow.notifications()
    return failed


if __name__ == "__main__":
    sys.exit(main())
