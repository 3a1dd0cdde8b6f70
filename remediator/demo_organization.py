"""`make demo`'s organization part: one hub protecting the member accounts of a local AWS Organization.

A management account, the hub (the emulated account, where the stack runs in organization mode) and three
member accounts, each with the spoke the hub's StackSet deploys (remediator.local.organization); an account
outside the organization with a copy of the spoke. Changes in two member accounts reach the hub through its
bus and are fixed there, as each account's spoke role; the outsider's events are refused at the bus; then the
organization sweep (a Distributed Map over every account and region) and its summary.
"""

from __future__ import annotations

import json
import time
from typing import Any

from rich.console import Console
from rich.table import Table

HUB = "111122223333"
PARTNER = "444455556666"
STRANGER = "999999999999"
REGION = "us-east-1"  # the organization template's first sweep region (remediator.local.template)


def _policy(*accounts: str) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow", "Principal": {"AWS": [f"arn:aws:iam::{a}:root" for a in accounts]},
        "Action": "execute-api:Invoke", "Resource": "execute-api:/*"}]})


def _principals(clients: Any, api_id: str) -> str:
    from remediator.adapters.apigateway import ApiGatewayAdapter
    from remediator.core import parse_policy

    policy = parse_policy(ApiGatewayAdapter(clients).get_rest_api(REGION, api_id).policy)
    found = [p for s in policy["Statement"] for p in (s["Principal"]["AWS"] if isinstance(s["Principal"]["AWS"], list)
                                                      else [s["Principal"]["AWS"]])]
    return ", ".join(sorted(p.split(":")[4] for p in found))


def show(console: Console, say: Any, field: Any, account: Any) -> list[str]:
    """Run the organization part on a freshly reset emulated account; `say`/`field` are the demo's printers. Returns
    what did not succeed (executions, the organization sweep, pairs it could not sweep): the demo's exit status."""
    from remediator.local.emulator import seed_rest_api
    from remediator.local.runner import LocalWorkflow, WorkflowConfig

    console.print()
    console.rule("[bold]organization mode: one hub, every member account[/]")
    say(console, "The stack deployed as an organization's hub: member accounts forward their API Gateway changes to "
                 "the hub's bus (which takes events from the organization only), and the hub fixes them as each "
                 "account's spoke role. Mode: auto.")
    started = time.monotonic()
    with console.status("creating the organization, the hub and a spoke in every member account"):
        flow = LocalWorkflow(account, WorkflowConfig(mode="auto", organization=True, trusted_accounts=[PARTNER],
                                                     slack_channel=""), region=REGION)
        flow.refresh_roster()
    organization = flow.organization
    assert organization is not None
    members = list(organization.members.values())
    field(console, "accounts", f"organization {organization.organization_id}: management account "
                               f"{organization.management_account}, hub {HUB}, members "
                               f"{', '.join(m.account_id for m in members)} (ready in {time.monotonic() - started:.1f} s)")
    field(console, "outsider", f"{organization.outsider.account_id}, in no organization, with a copy of the spoke")
    failed: list[str] = []
    try:
        for member in members[:2]:
            api_id = seed_rest_api(member.clients, REGION, f"payments-{member.name}", _policy(member.account_id, PARTNER, STRANGER))
            console.print()
            say(console, f"CreateRestApi in member account {member.account_id} ({member.name}): API {api_id} grants "
                         f"{member.account_id}, {PARTNER} (trusted) and {STRANGER} (nobody's).")
            with console.status("forwarding to the hub bus and running the workflow"):
                answers = flow.pump()
            started_runs = [a for a in answers if a.get("status") == "started"]
            result = flow.wait(started_runs[0]["execution_name"]) if started_runs else None
            if result is None or result.status != "SUCCEEDED":
                failed.append(f"organization {member.name}: {result.status if result else 'no execution started'}")
            field(console, "hub", f"execution {result.status if result else 'none'}: "
                                  f"{' > '.join(result.states) if result else '-'}")
            field(console, "after", f"grants {_principals(member.clients, api_id)}")
        records = flow.audit_records()
        field(console, "audit", "; ".join(f"{r.account} {r.api_id} {r.action}" for r in records))
        outsider = organization.outsider
        seed_rest_api(outsider.clients, REGION, "outside", _policy(outsider.account_id, STRANGER))
        console.print()
        say(console, f"CreateRestApi in {outsider.account_id}, outside the organization: its rule forwards the event too.")
        refused = organization.forward()
        denied = [c for c in flow.strict.checked if c.action == "events:PutEvents (bus policy)" and not c.allowed] if flow.strict else []
        field(console, "hub bus", f"{refused['refused']} event(s) refused ({denied[-1].reason if denied else 'AccessDenied'}: "
                                  "aws:PrincipalOrgID is not the organization's); nothing started")
        flow.pump()
        # The organization sweep.
        reports = seed_rest_api(members[2].clients, REGION, "reports", _policy(members[2].account_id, STRANGER))
        seed_rest_api(members[2].clients, REGION, "catalog", _policy(members[2].account_id))
        flow.discard_pending()  # changes whose events were lost: the daily sweep finds them
        console.print()
        say(console, "The daily organization sweep: a Distributed Map over every account and sweep region (one child "
                     "each, bounded concurrency), through each account's spoke role, its results in the hub's bucket.")
        with console.status("sweeping the organization"):
            sweep = flow.run_org_sweep()
            for execution in flow.clients.client("stepfunctions", REGION).list_executions(
                    stateMachineArn=flow.state_machine_arn)["executions"]:
                if flow.wait(execution["name"]).status != "SUCCEEDED":
                    failed.append(f"organization execution {execution['name']}")
        if sweep.status != "SUCCEEDED":
            failed.append(f"organization sweep: {sweep.status}")
        (summary,) = [n for n in flow.notifications() if n.get("kind") == "organization-summary"]
        field(console, "sweep", f"{sweep.status}: {' > '.join(sweep.states)}; {summary['pairs_swept']} account-regions, "
                                f"{summary['apis']} APIs, {summary['executions_started']} fix(es) started, "
                                f"{len(summary['not_swept'])} not swept")
        table = Table(show_edge=False, pad_edge=False)
        table.add_column("account")
        table.add_column("verdicts", justify="right")  # right-aligned: no trailing spaces in a file
        for account_id, verdicts in summary["verdicts_per_account"].items():
            table.add_row(account_id, ", ".join(f"{k} {v}" for k, v in verdicts.items()) or "no APIs")
        console.print(table)
        for finding in summary["new_findings"]:
            field(console, "new", f"{finding['account']} {finding['name']} ({finding['api_id']}): {finding['verdict']}")
        field(console, "after", f"reports ({reports}) grants {_principals(members[2].clients, reports)}")
        failed += [f"organization sweep of {m['account']} {m['region']}: {m['error']}" for m in summary["not_swept"]]
    finally:
        flow.close()
    return failed
