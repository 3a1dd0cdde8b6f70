#!/usr/bin/env python
"""Detection latency on the local runner: from a CloudTrail event to the trigger's decision (compliant) and to the
fixed policy (an automatic fix).

Run from the repository root:

    .venv/bin/python -m bench.bench_latency [--events 20]

One strict local account runs the stack's real functions and state machine in auto mode. For each of --events
events (after one of each to warm the containers): a compliant API's UpdateRestApi, delivered by the stack's rule
to the trigger, which decides and starts nothing; and an API granting an untrusted account, whose execution fixes and
redeploys it. Wall-clock seconds per event (median and max), against the bounds 0.3 s and 0.5 s.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

from remediator.local import cloudtrail
from remediator.local.emulator import emulated_account, seed_rest_api
from remediator.local.runner import LocalWorkflow, WorkflowConfig
from remediator.logs import configure

OWNER, PARTNER, STRANGER = "111122223333", "444455556666", "999999999999"
REGION = "eu-west-1"
BOUNDS = {"compliant": 0.3, "fix": 0.5}


def policy(*accounts: str) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"AWS": list(accounts)},
                                                               "Action": "execute-api:Invoke", "Resource": "execute-api:/*"}]})


def measure(flow: LocalWorkflow, kind: str) -> float:
    api_id = seed_rest_api(flow.clients, REGION, "api", policy(OWNER) if kind == "compliant" else policy(OWNER, STRANGER),
                           None, ("prod",))
    flow.later(60)  # each fix in its own deployment window
    flow.discard_pending()
    event = cloudtrail.api_call_event("UpdateRestApi", api_id, REGION, OWNER)
    started = time.perf_counter()
    answer = flow.deliver(event)
    if kind == "fix":
        assert answer["status"] == "started", answer
        result = flow.wait(answer["execution_name"])
        assert result.status == "SUCCEEDED", result
    else:
        assert answer["status"] == "not-started", answer
    return time.perf_counter() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=20)
    args = parser.parse_args()
    configure(level="WARNING")
    with emulated_account(account_id=OWNER) as account:
        flow = LocalWorkflow(account, WorkflowConfig(mode="auto", trusted_accounts=[PARTNER]), region=REGION)
        try:
            figures = {}
            for kind in ("compliant", "fix"):
                measure(flow, kind)  # warm containers
                times = [measure(flow, kind) for _ in range(args.events)]
                figures[kind] = {"median (s)": round(statistics.median(times), 3), "max (s)": round(max(times), 3),
                                 "bound (s)": BOUNDS[kind], "within": statistics.median(times) <= BOUNDS[kind]}
        finally:
            flow.close()
    print(json.dumps(figures, indent=1))
    return 0 if all(f["within"] for f in figures.values()) else 1


if __name__ == "__main__":
    raise SystemExit(main())
