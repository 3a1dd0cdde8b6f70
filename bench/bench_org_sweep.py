#!/usr/bin/env python
"""Cost of an organization sweep: the hub's Distributed Map against a one-account-at-a-time sweep.

    .venv/bin/python -m bench.bench_org_sweep [--accounts 20] [--apis 50] [--concurrency 40]

The local organization (remediator.local.organization, on the strict local account: every account's IAM,
the spoke role's trust policy and API Gateway's per-account quotas enforced) has --accounts accounts with a
spoke (the hub and --accounts - 1 members), each seeded with --apis REST APIs in each of the organization
template's three sweep regions (default 20 x 3 x 50 = 3,000 APIs; seeding is not measured): four in five
compliant, one in five granting an account nobody trusts. The hub runs in dry-run mode. A first sweep, not
measured, finds those and starts their proposals (told once); the measured sweeps then start nothing.

Runs of the same state machine (remediator/workflow/org_sweep.json), with the Map's MaxConcurrency at
--concurrency and then at 1 (one (account, region) at a time, which is what sweeping account by account
gives); first as the emulator answers (at once, in this process: nothing for concurrency to overlap), then
with --latency-ms added to each of the product's requests (a real sleep in the strict layer, as a
region's round trip would take). For each: the wall time, the time on the local clock (API Gateway's
quotas and botocore's backoff pass there, as they would in AWS), and the requests the emulator received
per (service, operation), the harness's own left out. The
executions a sweep starts are run to their end before the next row.

Checks: both runs see every seeded API once, with the same verdicts per account, and no pair fails.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import random
import sys
import time
from typing import Any

PARTNER = "210987654321"
STRANGER = "999988887777"


def _policy(owner: str, untrusted: bool) -> str:
    principals = [f"arn:aws:iam::{owner}:root", f"arn:aws:iam::{PARTNER}:role/reader"]
    if untrusted:
        principals.append(f"arn:aws:iam::{STRANGER}:root")
    return json.dumps({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"AWS": principals},
                                                               "Action": "execute-api:Invoke", "Resource": "execute-api:/*"}]})


def seed(accounts: list[str], regions: list[str], apis: int, rng: random.Random) -> dict[str, collections.Counter[str]]:
    """REST APIs straight into the emulator's state (not measured): the verdicts each account should get."""
    from moto.apigateway.models import apigateway_backends

    expected: dict[str, collections.Counter[str]] = {a: collections.Counter() for a in accounts}
    for account in accounts:
        for region in regions:
            backend = apigateway_backends[account][region]
            for index in range(apis):
                untrusted = rng.random() < 0.2
                backend.create_rest_api(f"api-{index}", "", policy=_policy(account, untrusted))
                expected[account]["fix" if untrusted else "compliant"] += 1
    return expected


# The harness's own calls: it starts the sweep and polls it.
HARNESS_CALLS = {("states", "StartExecution"), ("states", "DescribeExecution"), ("states", "GetExecutionHistory")}


def run(flow: Any, account: Any, concurrency: int, latency: float = 0.0) -> dict[str, Any]:
    from remediator.local.strict import local_clock

    os.environ["ORG_SWEEP_CONCURRENCY"] = str(concurrency)
    account.strict.latency = latency
    account.server.counts.clear()
    clock = local_clock()
    started_wall, started_clock = time.perf_counter(), clock.time()
    result = flow.run_org_sweep(timeout=3600)
    wall, virtual = time.perf_counter() - started_wall, clock.time() - started_clock
    account.strict.latency = 0.0
    requests = collections.Counter({k: v for k, v in account.server.aws_requests().items() if k not in HARNESS_CALLS})
    (summary,) = [n for n in flow.notifications() if n.get("kind") == "organization-summary"]
    listed = flow.clients.client("stepfunctions", flow.region).list_executions(stateMachineArn=flow.state_machine_arn)
    for execution in listed["executions"]:  # the proposals the sweep started: run to their end, not measured
        flow.wait(execution["name"], timeout=600)
    flow.notifications()
    return {"status": result.status, "wall": wall, "clock": virtual, "requests": requests, "summary": summary}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.bench_org_sweep", description=__doc__.splitlines()[0])
    parser.add_argument("--accounts", type=int, default=20, help="accounts with a spoke: the hub and accounts - 1 members (default 20)")
    parser.add_argument("--apis", type=int, default=50, help="REST APIs per account and region (default 50)")
    parser.add_argument("--concurrency", type=int, default=40, help="the Map's MaxConcurrency for the organization sweep (default 40)")
    parser.add_argument("--latency-ms", type=float, default=30.0,
                        help="the second pair of rows: each of the product's requests takes this long before the emulator "
                             "answers (a region's API round trip; default 30 ms). The emulator itself answers at once, in "
                             "this one process, so without it concurrency has nothing to overlap")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args(argv)

    from remediator.local import runner
    from remediator.local.emulator import emulated_account

    with emulated_account(account_id="111122223333") as account:
        flow = runner.LocalWorkflow(account, runner.WorkflowConfig(
            mode="dry-run", organization=True, members=args.accounts - 1, trusted_accounts=[PARTNER], slack_channel=""),
            region="us-east-1")
        flow.refresh_roster()
        regions = flow.environment["SWEEP_REGIONS"].split(",")
        assert flow.organization is not None
        accounts = [flow.organization.hub, *flow.organization.members]
        expected = seed(accounts, regions, args.apis, random.Random(args.seed))
        total = len(accounts) * len(regions) * args.apis
        print(f"organization sweep: {len(accounts)} accounts x {len(regions)} regions x {args.apis} APIs = {total} APIs "
              f"({len(accounts) * len(regions)} account-regions)")
        # A first sweep, not measured: the findings are new, so each starts a proposal (dry-run), told once. The
        # measured sweeps then start nothing: they are the sweep's own work only.
        warm_up = run(flow, account, args.concurrency)
        print(f"warm-up sweep (not measured): {warm_up['wall']:.1f} s, {warm_up['summary']['executions_started']} proposals started")
        flow.later(3600)
        for latency in (0.0, args.latency_ms / 1000):
            rows = {}
            for label, concurrency in (("distributed map", args.concurrency), ("one at a time", 1)):
                rows[label] = row = run(flow, account, concurrency, latency)
                summary = row["summary"]
                got = {a: collections.Counter(v) for a, v in summary["verdicts_per_account"].items()}
                checks = [row["status"] == "SUCCEEDED", summary["not_swept"] == [], got == expected, summary["apis"] == total,
                          summary["executions_started"] == 0]
                requests = row["requests"]
                print(f"\n{label} (MaxConcurrency {concurrency}), {latency * 1000:.0f} ms per request: {row['wall']:.1f} s wall, "
                      f"{row['clock']:.1f} s on the local clock, {sum(requests.values())} requests "
                      f"(the harness's start and polling left out); checks {'passed' if all(checks) else 'FAILED ' + str(checks)}")
                for (service, operation), count in sorted(requests.items(), key=lambda kv: -kv[1])[:8]:
                    print(f"  {count:6d}  {service} {operation}")
                if not all(checks):
                    return 1
                flow.later(3600)  # the next sweep's hour: its executions are new ones
            fast, slow = rows["distributed map"], rows["one at a time"]
            per_pair = sum(fast["requests"].values()) / (len(accounts) * len(regions))
            print(f"\n{latency * 1000:.0f} ms per request: one at a time / distributed map = {slow['wall'] / fast['wall']:.2f}x "
                  f"wall time; {per_pair:.1f} requests per account-region")
    return 0


if __name__ == "__main__":
    sys.exit(main())
