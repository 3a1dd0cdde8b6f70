#!/usr/bin/env python
"""What the remediator costs a month at organization scale, from what the local runner counts.

    .venv/bin/python -m bench.bench_cost [--json] [--accounts 1000] [--regions 17]

A hub in organization mode (auto) over a local organization (remediator.local.organization, the strict local account:
the real definitions, the synthesized template's IAM, every call counted) runs three cases, each measured alone:

- a compliant event: a member account creates an API whose policy needs nothing; its CloudTrail event is forwarded to
  the hub and handed to the trigger, and whatever the trigger does (it may start an execution, or not) is counted;
- an automatic fix: the same for a policy granting an account nobody trusts, which the workflow fixes;
- the organization sweep: Plan, the Distributed Map of Express children (each a batch of accounts: ItemBatcher),
  Summarize, over the local organization (by default one full batch of accounts: the hub and its members).

For each: Standard state transitions (the executions' states entered, plus one per child a Distributed Map starts),
Express requests and GB-seconds, Lambda invocations and GB-seconds (durations on the local clock), DynamoDB read and
write request units (from the items read and written), CloudWatch Logs bytes (the functions' own log lines as Lambda
writes them, JSON, plus Lambda's START/END/REPORT lines; the state machines' lines at level ALL without execution data),
SNS publishes, forwarded events and the API calls of the product. They are priced with PRICES and scaled to
--accounts accounts x --regions regions, a 30-day month, at 0.5, 2 and 10 policy calls per account per day (1 event in
10 fixed, as docs/figures/cost.md assumes), plus one organization sweep a day. The sweep's children are counted by the runner (accounts per child
as the Map batched them); each account's per-region work (its calls, reads, log lines) is scaled by --regions / the
local organization's regions, and a child's time by the waves of threads its accounts x regions take.
"""

from __future__ import annotations

import argparse
import collections
import io
import json
import math
import sys
import threading
from dataclasses import dataclass, field
from typing import Any

# List prices, us-east-1, each with its unit and where it comes from (read 2026-12; free tiers ignored).
PRICES: dict[str, dict[str, Any]] = {
    "standard_transition": {"usd": 0.025 / 1000, "unit": "state transition",
                            "source": "AWS Step Functions pricing, https://aws.amazon.com/step-functions/pricing/ (Standard: "
                                      "$0.025 per 1,000 state transitions)"},
    "express_request": {"usd": 1.00 / 1e6, "unit": "Express execution",
                        "source": "AWS Step Functions pricing (Express: $1.00 per 1M requests)"},
    "express_gb_second": {"usd": 0.00001667, "unit": "GB-second (64 MB minimum, 100 ms increments)",
                          "source": "AWS Step Functions pricing (Express duration, first 1,000 hours GB: $0.06 per GB-hour)"},
    "lambda_request": {"usd": 0.20 / 1e6, "unit": "invocation",
                       "source": "AWS Lambda pricing, https://aws.amazon.com/lambda/pricing/ ($0.20 per 1M requests)"},
    "lambda_gb_second": {"usd": 0.0000133334, "unit": "GB-second, arm64",
                         "source": "AWS Lambda pricing (Arm: $0.0000133334 per GB-second, first 7.5 billion GB-s)"},
    "dynamodb_rru": {"usd": 0.125 / 1e6, "unit": "read request unit",
                     "source": "Amazon DynamoDB pricing, on-demand, https://aws.amazon.com/dynamodb/pricing/on-demand/"},
    "dynamodb_wru": {"usd": 0.625 / 1e6, "unit": "write request unit", "source": "Amazon DynamoDB pricing, on-demand"},
    "log_gb": {"usd": 0.50, "unit": "GB ingested", "source": "Amazon CloudWatch pricing, https://aws.amazon.com/cloudwatch/pricing/ "
                                                             "(Logs, standard: $0.50 per GB ingested)"},
    "sns_publish": {"usd": 0.50 / 1e6, "unit": "publish", "source": "Amazon SNS pricing, https://aws.amazon.com/sns/pricing/"},
    "event_forwarded": {"usd": 1.00 / 1e6, "unit": "event sent to another account's bus (paid by the member account)",
                        "source": "Amazon EventBridge pricing, https://aws.amazon.com/eventbridge/pricing/ (custom events)"},
    "kms_key_month": {"usd": 1.00, "unit": "customer managed key-month", "source": "AWS KMS pricing, https://aws.amazon.com/kms/pricing/"},
    "secret_month": {"usd": 0.40, "unit": "secret-month", "source": "AWS Secrets Manager pricing, https://aws.amazon.com/secrets-manager/pricing/"},
    "alarm_month": {"usd": 0.10, "unit": "standard-resolution alarm-month", "source": "Amazon CloudWatch pricing (alarms)"},
}
CALLS_PER_ACCOUNT_PER_DAY = ("0.5", "2", "10")
FIXED_SHARE = 0.1  # 1 event in 10 needs a fix (docs/figures/cost.md)
DAYS = 30
EXPRESS_MIN_GB = 64 / 1024  # Express bills at least 64 MB of memory (Step Functions pricing)
# Lambda's own lines per invocation, START, END and REPORT (Lambda developer guide, "Working with Lambda function
# logs"): about this many bytes with a request ID, durations and memory figures.
LAMBDA_PLATFORM_LOG_BYTES = 330
PARTNER, STRANGER = "210987654321", "999988887777"
# The harness's own requests (it polls executions, drains queues, stands in for EventBridge's deliveries).
HARNESS_CALLS = {("states", "StartExecution"), ("states", "DescribeExecution"), ("states", "GetExecutionHistory"),
                 ("states", "ListExecutions"), ("sqs", "ReceiveMessage"), ("sqs", "DeleteMessage"), ("events", "PutEvents"),
                 ("lambda", "Invoke")}


@dataclass
class Meter:
    """What one case cost, as counted."""

    transitions: int = 0  # Standard state transitions
    express_requests: int = 0
    express_gb_seconds: float = 0.0
    lambda_invocations: int = 0
    lambda_gb_seconds: float = 0.0
    rru: float = 0.0
    wru: float = 0.0
    log_bytes: int = 0
    sns_publishes: int = 0
    forwarded: int = 0
    api_calls: dict[str, int] = field(default_factory=dict)

    def scaled(self, factor: float) -> Meter:
        return Meter(*(getattr(self, n) * factor for n in ("transitions", "express_requests", "express_gb_seconds",
                                                          "lambda_invocations", "lambda_gb_seconds", "rru", "wru",
                                                          "log_bytes", "sns_publishes", "forwarded")),
                     api_calls={k: v * factor for k, v in self.api_calls.items()})  # type: ignore[arg-type]

    def plus(self, other: Meter) -> Meter:
        total = Meter(*(getattr(self, n) + getattr(other, n) for n in ("transitions", "express_requests", "express_gb_seconds",
                                                                      "lambda_invocations", "lambda_gb_seconds", "rru", "wru",
                                                                      "log_bytes", "sns_publishes", "forwarded")))
        total.api_calls = dict(collections.Counter(self.api_calls) + collections.Counter(other.api_calls))
        return total

    def usd(self) -> dict[str, float]:
        p = {k: v["usd"] for k, v in PRICES.items()}
        return {"step_functions": self.transitions * p["standard_transition"] + self.express_requests * p["express_request"]
                + self.express_gb_seconds * p["express_gb_second"],
                "lambda": self.lambda_invocations * p["lambda_request"] + self.lambda_gb_seconds * p["lambda_gb_second"],
                "dynamodb": self.rru * p["dynamodb_rru"] + self.wru * p["dynamodb_wru"],
                "logs": self.log_bytes / 1e9 * p["log_gb"], "sns": self.sns_publishes * p["sns_publish"],
                "eventbridge_member_accounts": self.forwarded * p["event_forwarded"]}

    def to_dict(self) -> dict[str, Any]:
        return {k: (round(v, 4) if isinstance(v, float) else v) for k, v in self.__dict__.items()}


# --- DynamoDB request units, from the items the product's clients read and wrote -----------------------------------

def _item_bytes(item: Any) -> int:
    """An item's size as DynamoDB counts it, near enough: attribute names and values (their JSON text)."""
    return len(json.dumps(item, separators=(",", ":"))) if item else 0


class CapacityMeter:
    """Request units (DynamoDB developer guide, "Read/write capacity mode": a strongly consistent read takes 1 RRU per
    4 KB, an eventually consistent one half; a write 1 WRU per 1 KB; a transaction twice as many), summed per call
    from the request and the answer."""

    def __init__(self) -> None:
        self.rru = self.wru = 0.0
        self._lock = threading.Lock()

    def remember(self, params: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
        context["cost_params"] = params

    def count(self, parsed: dict[str, Any], model: Any, context: dict[str, Any], **_: Any) -> None:
        params, op = context.get("cost_params") or {}, model.name
        rru = wru = 0.0
        consistent = 1.0 if params.get("ConsistentRead") else 0.5
        if op == "GetItem":
            rru = max(1, math.ceil(_item_bytes(parsed.get("Item")) / 4096)) * consistent
        elif op in ("Query", "Scan"):
            rru = max(1, math.ceil(sum(_item_bytes(i) for i in parsed.get("Items", [])) / 4096)) * consistent
        elif op == "PutItem":
            wru = max(1, math.ceil(_item_bytes(params.get("Item")) / 1024))
        elif op in ("UpdateItem", "DeleteItem"):  # the item's larger size is not known here: its key and new values
            wru = max(1, math.ceil((_item_bytes(params.get("Key")) + _item_bytes(params.get("ExpressionAttributeValues"))) / 1024))
        elif op == "TransactWriteItems":
            wru = 2 * sum(max(1, math.ceil(_item_bytes(next(iter(i.values())).get("Item") or next(iter(i.values())).get("Key")) / 1024))
                          for i in params.get("TransactItems", []))
        elif op == "BatchWriteItem":
            wru = sum(max(1, math.ceil(_item_bytes(next(iter(r.values())).get("Item") or next(iter(r.values())).get("Key")) / 1024))
                      for rs in params.get("RequestItems", {}).values() for r in rs)
        with self._lock:
            self.rru += rru
            self.wru += wru


def _meter_dynamodb(meter: CapacityMeter) -> None:
    """Every DynamoDB client the product makes reports its calls to `meter`."""
    from remediator.adapters.clients import ClientFactory

    original = ClientFactory.client
    if getattr(original, "_cost_meter", False):
        return

    def client(self: Any, service: str, region: str | None = None) -> Any:
        made = original(self, service, region)
        if service == "dynamodb" and not getattr(made, "_cost_meter", False):
            made.meta.events.register("provide-client-params.dynamodb.*", meter.remember)
            made.meta.events.register("after-call.dynamodb.*", meter.count)
            made._cost_meter = True
        return made

    client._cost_meter = True  # type: ignore[attr-defined]
    ClientFactory.client = client  # type: ignore[method-assign]


class LogBytes(io.TextIOBase):
    """The functions' log lines (JSON, as in Lambda), counted and dropped."""

    def __init__(self) -> None:
        self.bytes = 0

    def write(self, text: str) -> int:
        self.bytes += len(text.encode())
        return len(text)


# --- the cases ------------------------------------------------------------------------------------------------------

class Bench:
    def __init__(self, flow: Any, account: Any) -> None:
        from remediator.local import express, runner

        self.flow, self.account, self.runner, self.express = flow, account, runner, express
        self.capacity = CapacityMeter()
        _meter_dynamodb(self.capacity)
        self.logs = LogBytes()
        import structlog

        from remediator import logs

        logs.configure(json_output=True)
        structlog.configure(logger_factory=structlog.PrintLoggerFactory(file=self.logs))  # type: ignore[arg-type]
        self.memory: dict[str, int] = {}  # each function's MemorySize, from the template
        for function in flow.template["Resources"].values():
            if function["Type"] == "AWS::Lambda::Function":
                from remediator import functions

                name = "apigw-remediator-" + functions.name_of(function["Properties"]["Handler"])
                self.memory[name] = int(function["Properties"].get("MemorySize", 128))

    def start(self) -> None:
        self.account.server.counts.clear()
        self.capacity.rru = self.capacity.wru = 0.0
        self.logs.bytes = 0
        self.first_invocation = len(self.runner.INVOCATIONS)
        self.first_child = len(self.express.CHILDREN)

    def stop(self, executions: list[Any], forwarded: int = 0, extra_transitions: int = 0) -> Meter:
        invocations = self.runner.INVOCATIONS[self.first_invocation:]
        children = self.express.CHILDREN[self.first_child:]
        requests = collections.Counter({k: v for k, v in self.account.server.aws_requests().items() if k not in HARNESS_CALLS})
        machine_log = sum(self._history_log_bytes(e) for e in executions)
        return Meter(
            transitions=sum(e.transitions for e in executions) + extra_transitions,
            express_requests=len(children),
            express_gb_seconds=sum(EXPRESS_MIN_GB * math.ceil(c.seconds * 10) / 10 for c in children),
            lambda_invocations=len(invocations),
            lambda_gb_seconds=sum(self.memory.get(n, 256) / 1024 * max(0.001, s) for n, s in invocations),
            rru=self.capacity.rru, wru=self.capacity.wru,
            log_bytes=self.logs.bytes + LAMBDA_PLATFORM_LOG_BYTES * len(invocations) + machine_log + sum(c.log_bytes for c in children),
            sns_publishes=requests.get(("sns", "Publish"), 0), forwarded=forwarded,
            api_calls={f"{s}:{o}": n for (s, o), n in sorted(requests.items())})

    def _history_log_bytes(self, execution: Any) -> int:
        arn = execution.arn
        events = self.flow.clients.client("stepfunctions", self.flow.region).get_execution_history(executionArn=arn)["events"]
        total = 0
        for event in events:
            details = {k: v for k, v in event.items() if k.endswith("EventDetails")}
            total += self.express.log_line_bytes(event["type"], details)
        return total

    def event(self, policy: dict[str, Any], name: str) -> tuple[Meter, list[str]]:
        """One member account's change, from its CloudTrail event to the end of whatever it started."""
        from remediator.local.emulator import seed_rest_api

        assert self.flow.organization is not None
        member = next(iter(self.flow.organization.members.values()))
        self.flow.discard_pending()
        seed_rest_api(member.clients, self.flow.region, name, json.dumps(policy), stages=("prod",))
        self.start()
        forwarded = self.flow.forward()["forwarded"]
        executions, statuses = [], []
        for _ in range(5):  # what the fix writes is matched in turn, if the rule matches it
            batch = self.flow.matched()
            self.flow.pending.clear()
            if not batch:
                break
            for delivered in batch:
                answer = self.flow.invoke_trigger(delivered)
                statuses.append(answer.get("status"))
                if answer.get("status") == "started":
                    result = self.flow.wait(answer["execution_name"])
                    result.arn = self._arn(self.flow.state_machine_arn, answer["execution_name"])
                    executions.append(result)
            forwarded += self.flow.forward()["forwarded"]
        return self.stop(executions, forwarded), statuses

    def sweep(self) -> tuple[Meter, dict[str, Any]]:
        self.start()
        result = self.flow.run_org_sweep()
        result.arn = self._arn(self.flow.org_sweep_arn, result.name)
        # A Distributed Map bills one state transition per child execution it starts (Step Functions developer guide,
        # "Transitions", https://docs.aws.amazon.com/step-functions/latest/dg/concepts-transitions.html).
        function_log_bytes = self.logs.bytes
        meter = self.stop([result], extra_transitions=len(result.express))
        invocations = self.runner.INVOCATIONS[self.first_invocation:]
        split = {"child": [self.memory.get(n, 256) / 1024 * max(0.001, s) for n, s in invocations if n.endswith("-sweep")],
                 "once": [self.memory.get(n, 256) / 1024 * max(0.001, s) for n, s in invocations if not n.endswith("-sweep")]}
        # The log bytes by who writes them: the functions' own lines (per account and region swept), the children's
        # state machine lines and Lambda's lines per invocation (per child), the parent's (once a sweep).
        logs = {"functions": function_log_bytes, "children": sum(c.log_bytes for c in result.express),
                "child_platform": LAMBDA_PLATFORM_LOG_BYTES * len(split["child"]),
                "once": meter.log_bytes - function_log_bytes - sum(c.log_bytes for c in result.express)
                - LAMBDA_PLATFORM_LOG_BYTES * len(split["child"])}
        return meter, {"invocations": split, "log_bytes": logs, "status": result.status, "parent_states": result.states,
                       "children": len(result.express), "items_per_child": [len(c.input.get("Items", [])) for c in result.express],
                       "child_states": [c.states for c in result.express], "child_seconds": [round(c.seconds, 3) for c in result.express],
                       "output": result.output}

    @staticmethod
    def _arn(machine: str, name: str) -> str:
        from remediator.adapters.stepfunctions import execution_arn

        return execution_arn(machine, name)


def allow(*accounts: str) -> dict[str, Any]:
    return {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"AWS": [f"arn:aws:iam::{a}:root" for a in accounts]},
                                                    "Action": "execute-api:Invoke", "Resource": "execute-api:/*"}]}


def measure(members: int | None = None) -> dict[str, Any]:
    """The three cases on a fresh local organization: what each cost, as counted. By default the organization's swept
    accounts (the hub and its members) make one full batch of the sweep's Map (ACCOUNTS_PER_CHILD), as all but the
    last batch are at 1,000 accounts."""
    from remediator.functions.sweep import ACCOUNTS_PER_CHILD
    from remediator.local import runner
    from remediator.local.emulator import emulated_account

    members = ACCOUNTS_PER_CHILD - 1 if members is None else members

    with emulated_account(account_id="111122223333") as account:
        flow = runner.LocalWorkflow(account, runner.WorkflowConfig(
            mode="auto", organization=True, members=members, trusted_accounts=[PARTNER], slack_channel=""), region="us-east-1")
        try:
            flow.refresh_roster()
            bench = Bench(flow, account)
            assert flow.organization is not None
            owner = next(iter(flow.organization.members))
            compliant, compliant_answers = bench.event(allow(owner, PARTNER), "compliant")
            fix, fix_answers = bench.event(allow(owner, STRANGER), "fixed")
            flow.later(3600)
            sweep, details = bench.sweep()
            template = flow.template["Resources"]
            fixed = {"kms_keys": sum(r["Type"] == "AWS::KMS::Key" for r in template.values()),
                     "secrets": sum(r["Type"] == "AWS::SecretsManager::Secret" for r in template.values()),
                     "alarms": sum(r["Type"] == "AWS::CloudWatch::Alarm" for r in template.values())}
            accounts = details["output"]["accounts"] if details["output"] else 0
            invocations = details.pop("invocations")
            return {"compliant": compliant, "compliant_answers": compliant_answers, "fix": fix, "fix_answers": fix_answers,
                    "sweep": sweep, "sweep_details": details, "accounts_swept": accounts, "fixed": fixed,
                    "sweep_invocations": invocations,
                    "local_regions": len(flow.environment["SWEEP_REGIONS"].split(","))}
        finally:
            flow.close()


def model(measured: dict[str, Any], accounts: int = 1000, regions: int = 17) -> dict[str, Any]:
    """The month, priced: events at each rate, the daily sweep, the fixed costs."""
    compliant, fix, sweep = measured["compliant"], measured["fix"], measured["sweep"]
    swept = max(1, measured["accounts_swept"])
    children = max(1, measured["sweep_details"]["children"])  # counted by the runner: the Map's batches (ItemBatcher)
    child_invocations = measured["sweep_invocations"]["child"]  # the sweep function's: one per child (and retry)
    once = measured["sweep_invocations"]["once"]  # Plan's and Summarize's: once a sweep
    logs = measured["sweep_details"]["log_bytes"]
    # Per child, as measured: its Express request and duration, its sweep invocation(s), its state machine's and
    # Lambda's log lines. Per account: the DynamoDB units, the functions' log lines and the calls (Plan's and
    # Summarize's share with them: an overestimate).
    per_child = Meter(express_requests=1, express_gb_seconds=sweep.express_gb_seconds / children,
                      lambda_invocations=len(child_invocations) / children,  # type: ignore[arg-type]
                      lambda_gb_seconds=sum(child_invocations) / children,
                      log_bytes=(logs["children"] + logs["child_platform"]) / children)  # type: ignore[arg-type]
    per_account = Meter(rru=sweep.rru / swept, wru=sweep.wru / swept, log_bytes=logs["functions"] / swept,  # type: ignore[arg-type]
                        api_calls={k: v / swept for k, v in sweep.api_calls.items()})  # type: ignore[misc]
    # At --regions: the per-region work grows with the regions; a child's time with the waves of REGION_THREADS
    # threads its batch of accounts x regions takes (the child as measured: its accounts x the local regions).
    from remediator.functions.sweep import REGION_THREADS

    local = measured["local_regions"]
    region_scale = regions / local
    accounts_per_child = swept / children
    time_scale = (math.ceil(accounts_per_child * regions / REGION_THREADS)
                  / math.ceil(accounts_per_child * local / REGION_THREADS))
    child_month = Meter(transitions=1, express_requests=1, express_gb_seconds=per_child.express_gb_seconds * time_scale,
                        lambda_invocations=per_child.lambda_invocations, lambda_gb_seconds=per_child.lambda_gb_seconds * time_scale,
                        log_bytes=per_child.log_bytes)  # type: ignore[arg-type]
    account_month = Meter(rru=per_account.rru * region_scale, wru=per_account.wru * region_scale,
                          log_bytes=int(per_account.log_bytes * region_scale))  # type: ignore[arg-type]
    children_per_account = children / swept
    sweep_day = child_month.scaled(accounts * children_per_account).plus(account_month.scaled(accounts)).plus(
        Meter(transitions=sweep.transitions - children, lambda_invocations=len(once), lambda_gb_seconds=sum(once),
              log_bytes=logs["once"]))  # type: ignore[arg-type]
    sweep_month = sweep_day.scaled(DAYS).usd()
    fixed_items = measured["fixed"]
    fixed = (fixed_items["kms_keys"] * PRICES["kms_key_month"]["usd"] + fixed_items["secrets"] * PRICES["secret_month"]["usd"]
             + fixed_items["alarms"] * PRICES["alarm_month"]["usd"])
    months: dict[str, float] = {}
    events_month: dict[str, dict[str, float]] = {}
    for rate in CALLS_PER_ACCOUNT_PER_DAY:
        per_day = float(rate) * accounts
        day = compliant.scaled(per_day * (1 - FIXED_SHARE)).plus(fix.scaled(per_day * FIXED_SHARE))
        events_month[rate] = {k: round(v, 2) for k, v in day.scaled(DAYS).usd().items()}
        hub = sum(v for k, v in day.scaled(DAYS).usd().items() if k != "eventbridge_member_accounts")
        months[rate] = round(hub + sum(sweep_month.values()) + fixed, 2)
    return {"accounts": accounts, "regions": regions, "month_usd": months,
            "events_month_usd": events_month, "sweep_month_usd": {k: round(v, 2) for k, v in sweep_month.items()},
            "sweep_month_total_usd": round(sum(sweep_month.values()), 2), "fixed_month_usd": round(fixed, 2), "fixed": fixed_items,
            "compliant_event_transitions": compliant.transitions, "fix_transitions": fix.transitions,
            "sweep_children_per_account": round(children_per_account, 3),
            "sweep_parent_transitions": sweep.transitions, "sweep_children": children,
            "per_compliant_event": compliant.to_dict(), "per_fix": fix.to_dict(), "per_sweep_child_measured": per_child.to_dict(),
            "per_swept_account_measured": per_account.to_dict(), "sweep_accounts_per_child": round(accounts_per_child, 3),
            "sweep_log_bytes_measured": logs,
            "compliant_event_trigger": measured["compliant_answers"], "fix_trigger": measured["fix_answers"],
            "sweep_child_states": measured["sweep_details"]["child_states"][:1],
            "assumptions": {"fixed_share": FIXED_SHARE, "days": DAYS, "local_regions": local, "region_scale": round(region_scale, 3),
                            "time_scale": round(time_scale, 3), "region_threads": REGION_THREADS,
                            "member_accounts_pay_eventbridge": True},
            "prices": PRICES}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.bench_cost", description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print the figures as one JSON object")
    parser.add_argument("--accounts", type=int, default=1000)
    parser.add_argument("--regions", type=int, default=17)
    args = parser.parse_args(argv)
    figures = model(measure(), args.accounts, args.regions)
    if args.json:
        print(json.dumps(figures, indent=2, default=str))
        return 0
    c, f = figures["per_compliant_event"], figures["per_fix"]
    print(f"cost model: {args.accounts} accounts x {args.regions} regions, us-east-1 list prices, {DAYS}-day month, "
          f"1 event in {round(1 / FIXED_SHARE)} fixed; measured on the local runner")
    for label, m in (("compliant event", c), ("automatic fix", f)):
        print(f"  {label:16s} {m['transitions']} transitions, {m['lambda_invocations']} Lambda invocations "
              f"({m['lambda_gb_seconds']:.3f} GB-s), {m['rru']:.1f} RRU / {m['wru']:.1f} WRU, {m['log_bytes'] / 1024:.1f} KB of logs, "
              f"{m['sns_publishes']} SNS publishes, {sum(m['api_calls'].values())} API calls")
    s, a = figures["per_sweep_child_measured"], figures["per_swept_account_measured"]
    print(f"  sweep            {figures['sweep_children_per_account']} Express child per account "
          f"({figures['sweep_accounts_per_child']:g} accounts a child); parent {figures['sweep_parent_transitions']} "
          f"transitions (its states and one per child started); per child as measured: {s['express_gb_seconds']:.4f} "
          f"Express GB-s, {s['lambda_invocations']:.1f} Lambda invocations ({s['lambda_gb_seconds']:.3f} GB-s), "
          f"{s['log_bytes'] / 1024:.1f} KB of logs; per account: {a['rru']:.1f} RRU / {a['wru']:.1f} WRU, "
          f"{a['log_bytes'] / 1024:.1f} KB of logs")
    print(f"  sweep per month  ${figures['sweep_month_total_usd']:.2f} {figures['sweep_month_usd']}")
    print(f"  fixed per month  ${figures['fixed_month_usd']:.2f} {figures['fixed']}")
    for rate in CALLS_PER_ACCOUNT_PER_DAY:
        print(f"  {rate:>4} calls/account/day: events {figures['events_month_usd'][rate]}; total ${figures['month_usd'][rate]:.2f}/month")
    return 0


if __name__ == "__main__":
    sys.exit(main())
