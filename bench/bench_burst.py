#!/usr/bin/env python
"""A burst of fixes against the account's deployment quota: the transactional fix under load.

Run from the repository root:

    .venv/bin/python -m bench.bench_burst [--apis 50] [--window 60]

One strict local account (remediator.local: moto's server behind the strict layer, which enforces
API Gateway's quotas on its own clock, CreateDeployment's one call per 5 s per account among them)
runs the stack's real state machine in auto mode. Two scenarios, each with --apis REST APIs that
grant an untrusted account (two stages each):

  event   one CloudTrail event per API, the events spread evenly over --window seconds
  sweep   the scheduled sweep finds the same number of APIs at once

For each: APIs fixed and deployed on every stage, policies restored, failed executions, audit
records per change, deployments per API, times the quota had to hold a CreateDeployment back, and
each API's time from its event (or the sweep) to its deployment against the bound 5*(N-1)+10 s,
N being the number of fixes. Times are on the local clock (Wait states, Retry intervals and
botocore's backoff pass on it), so a run takes seconds, not minutes.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[1]

from remediator.adapters.apigateway import ApiGatewayAdapter
from remediator.core import parse_policy
from remediator.local import cloudtrail
from remediator.local.emulator import emulated_account, seed_rest_api
from remediator.local.runner import LocalWorkflow, WorkflowConfig
from remediator.local.strict import local_clock
from remediator.logs import configure

OWNER, PARTNER, STRANGER = "111122223333", "444455556666", "999999999999"
REGION = "eu-west-1"
UNTRUSTED = ('{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":["%s","%s"]},'
             '"Action":"execute-api:Invoke","Resource":"execute-api:/*"}]}' % (OWNER, STRANGER))
FIXED = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"AWS": [OWNER]},
                                                  "Action": "execute-api:Invoke", "Resource": "execute-api:/*"}]}


class Deployments:
    """Each CreateDeployment the functions make: API and local time of its answer."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, float]] = []
        self._real = ApiGatewayAdapter.create_deployment

    def __enter__(self) -> Deployments:
        calls, real = self.calls, self._real

        def create_deployment(adapter: ApiGatewayAdapter, region: str, api_id: str, stage: str, description: str) -> str:
            deployment_id = real(adapter, region, api_id, stage, description)
            calls.append((api_id, local_clock().time()))
            return deployment_id

        ApiGatewayAdapter.create_deployment = create_deployment  # type: ignore[method-assign]
        return self

    def __exit__(self, *_: Any) -> None:
        ApiGatewayAdapter.create_deployment = self._real  # type: ignore[method-assign]


def seed(flow: LocalWorkflow, count: int, prefix: str) -> list[str]:
    apis = [seed_rest_api(flow.clients, REGION, f"{prefix}-{i:03d}", UNTRUSTED, stages=("prod", "dev")) for i in range(count)]
    flow.later(300)  # set up well before the burst: the setup's deployments are out of the quota's window
    flow.discard_pending()
    return apis


def executions(flow: LocalWorkflow) -> list[dict[str, Any]]:
    client = flow.clients.client("stepfunctions", REGION)
    found, token = [], None
    while True:
        page = client.list_executions(stateMachineArn=flow.state_machine_arn, **({"nextToken": token} if token else {}))
        found.extend(page["executions"])
        token = page.get("nextToken")
        if not token:
            return found


def measure(flow: LocalWorkflow, apis: list[str], started_at: dict[str, float], names: list[str],
            deployments: Deployments, before: int, quota_waits_before: int, wall: float) -> dict[str, Any]:
    results = [flow.wait(name, timeout=900) for name in names]
    adapter = ApiGatewayAdapter(flow.clients)
    wanted = set(apis)
    fixed = sum(1 for api_id in apis if parse_policy(adapter.get_rest_api(REGION, api_id).policy) == FIXED
                and len({s.deployment_id for s in adapter.list_stages(REGION, api_id)}) == 1)
    records = [r for r in flow.audit_records() if r.api_id in wanted]
    calls = [(api_id, at) for api_id, at in deployments.calls[before:] if api_id in wanted]
    first_deploy: dict[str, float] = {}
    for api_id, at in calls:
        first_deploy.setdefault(api_id, at)
    n = len(apis)
    bound = 5 * (n - 1) + 10
    latency = [first_deploy[a] - started_at[a] for a in apis if a in first_deploy]
    return {
        "apis": n,
        "fixed and deployed": fixed,
        "restored": sum(1 for r in records if r.outcome == "restored"),
        "failed executions": sum(1 for r in results if r.status != "SUCCEEDED"),
        "audit records": len(records),
        "records per change": round(len([r for r in records if r.outcome == "applied"]) / max(1, fixed), 2),
        "deployments per API": round(len(calls) / max(1, len(first_deploy)), 2),
        "quota held a CreateDeployment back": flow.account.strict.quotas.held_back("CreateDeployment") - quota_waits_before,
        "latency max (s)": round(max(latency), 1) if latency else None,
        "latency median (s)": round(statistics.median(latency), 1) if latency else None,
        "bound 5(N-1)+10 (s)": bound,
        "over the bound": sum(1 for value in latency if value > bound),
        "wall time (s)": round(wall, 1),
    }


def event_burst(flow: LocalWorkflow, count: int, window: float, deployments: Deployments) -> dict[str, Any]:
    apis = seed(flow, count, "event")
    before, waits, clock = len(deployments.calls), flow.account.strict.quotas.held_back("CreateDeployment"), local_clock()
    started_at, names = {}, []
    wall = time.monotonic()
    start = clock.monotonic()
    for index, api_id in enumerate(apis):
        clock.wait_until(start + index * window / count)  # the next event arrives then (executions run meanwhile)
        started_at[api_id] = clock.time()
        answer = flow.deliver(cloudtrail.api_call_event("UpdateRestApi", api_id, REGION, OWNER))
        names.append(answer["execution_name"])
    return measure(flow, apis, started_at, names, deployments, before, waits, time.monotonic() - wall)


def sweep_burst(flow: LocalWorkflow, count: int, deployments: Deployments) -> dict[str, Any]:
    apis = seed(flow, count, "sweep")
    before, waits = len(deployments.calls), flow.account.strict.quotas.held_back("CreateDeployment")
    known = {e["name"] for e in executions(flow)}
    wall = time.monotonic()
    at = local_clock().time()
    flow.run_sweep()
    names = [e["name"] for e in executions(flow) if e["name"] not in known]
    return measure(flow, apis, {a: at for a in apis}, names, deployments, before, waits, time.monotonic() - wall)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--apis", type=int, default=50)
    parser.add_argument("--window", type=float, default=60.0, help="seconds over which the events arrive")
    args = parser.parse_args(argv)
    configure(json_output=False, level="ERROR")
    with emulated_account(account_id=OWNER) as account:
        flow = LocalWorkflow(account, WorkflowConfig(mode="auto", trusted_accounts=[PARTNER]), region=REGION)
        try:
            with Deployments() as deployments:
                rows = {"event": event_burst(flow, args.apis, args.window, deployments),
                        "sweep": sweep_burst(flow, args.apis, deployments)}
        finally:
            flow.close()
    keys = list(rows["event"])
    print(f"{'':36}{'event':>10}{'sweep':>10}")
    for key in keys:
        print(f"{key:36}{rows['event'][key]!s:>10}{rows['sweep'][key]!s:>10}")
    ok = all(row["fixed and deployed"] == row["apis"] and row["restored"] == 0 and row["failed executions"] == 0
             and row["records per change"] == 1.0 and row["deployments per API"] == 1.0 and row["over the bound"] == 0
             for row in rows.values())
    print("targets met" if ok else "TARGETS MISSED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
