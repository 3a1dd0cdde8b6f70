"""`fix`: propose (default) or --apply the fix to every REST API in the given regions (and with --accounts,
accounts), each change a transaction with one audit record; a killed run's changes are finished first.

Exit status: 0 nothing left to fix, 1 findings remain (or only proposed), 2 errors.
"""

from __future__ import annotations

import argparse
from typing import Any, TextIO

from remediator.adapters.dynamodb import DynamoJournal, DynamoLease
from remediator.audit import JsonLinesAuditLog
from remediator.cli import args as cli
from remediator.cli.aws import (
    Output, Target, across, add_sweep_arguments, guard, organization_options, single_target, sweep_settings,
    with_progress,
)
from remediator.cli.report import emit_outcome
from remediator.core.undeployed import UNDEPLOYED_SETTINGS
from remediator.journal import FileLease, JsonLinesJournal
from remediator.shared_journal import SharedJournal
from remediator.transaction.outcomes import FixOutcome
from remediator.transaction.planning import StageSelection, scan
from remediator.transaction.remediator import Remediator

DEFAULT_AUDIT_LOG = "remediator-audit.jsonl"
FIX_EXAMPLES = """examples:
  apigw-remediator fix --regions all --trusted-accounts 444455556666            # dry run: prints the patches
  apigw-remediator fix --regions all --trusted-accounts 444455556666 --apply --audit-log audit.jsonl
  apigw-remediator fix --region eu-west-1 --apply --stages prod --exempt-api-ids a1b2c3d4e5
  apigw-remediator fix --accounts all --regions us-east-1 --apply --audit-log audit.jsonl   # every active account

exit status: 0 nothing left to fix, 1 findings remain (or only proposed), 2 errors."""


def add_command(commands: Any) -> None:
    formatter = argparse.RawDescriptionHelpFormatter
    fix_parser = commands.add_parser("fix", help="propose (default) or --apply the fix to every REST API",
                                     description="Propose (default) or --apply the fix to every REST API in the given regions: "
                                                 "each change a transaction with one audit record.",
                                     epilog=FIX_EXAMPLES, formatter_class=formatter)
    add_sweep_arguments(fix_parser)
    fix_parser.add_argument("--apply", action="store_true", help="change the APIs (without it: dry run)")
    fix_parser.add_argument("--stages", default="all", type=_stages, help="stages to redeploy: all (default), none, or name,name")
    fix_parser.add_argument("--undeployed-changes", default="ask", choices=UNDEPLOYED_SETTINGS,
                            help="when a redeploy would also publish edits of the API its stages do not serve yet: "
                                 "ask (default; the command line asks nobody, so the API is reported, exit 1), "
                                 "publish them with the fix, or report the API")
    fix_parser.add_argument("--audit-log", default=DEFAULT_AUDIT_LOG, metavar="FILE",
                            help=f"JSON Lines file that records every change and its intent (default: {DEFAULT_AUDIT_LOG})")
    fix_parser.add_argument("--lease-table", metavar="TABLE", type=cli.table_name,
                            help="take the account's deployment turns from the deployed stack's DynamoDB table "
                                 "(its audit table), so that this run and the stack never deploy at once")
    fix_parser.set_defaults(run=run_fix)


def _stages(value: str) -> StageSelection:
    try:
        return StageSelection(value)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def run_fix(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    return guard(err, lambda: _fix(args, out, err))


def _fix(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    organization = organization_options(args)
    if args.apply:  # before anything else, AWS included: no change is made that cannot be written down
        JsonLinesJournal(JsonLinesAuditLog(args.audit_log)).check_writable()
    if organization:
        return across(args, out, err, _fix_in)
    return _fix_in(args, single_target(args), Output(out, err))


def _fix_in(args: argparse.Namespace, target: Target, output: Output) -> int:
    """One account's fix: its own audit records (the account in each), deployment turns and recovery."""
    settings = sweep_settings(args, target.account)
    adapter = target.apigateway()
    remediator = Remediator.with_audit_log(adapter, settings, JsonLinesAuditLog(args.audit_log), target.account,
                                           target.triggered_by)
    if target.organization and isinstance(remediator.lease, FileLease):
        # The turn file beside the audit log is per account: CreateDeployment's quota is, so no account waits for another's.
        remediator.lease.path = remediator.lease.path.with_name(f"{remediator.lease.path.name}.{target.account}")
    if args.lease_table:  # the stack's table, in the caller's account, keyed by the API's account
        remediator.lease = DynamoLease(target.home, args.lease_table, target.account)
        # One claim per API with the stack's executions: the intents live in its table (the log keeps a copy).
        assert isinstance(remediator.journal, JsonLinesJournal)
        remediator.journal = SharedJournal(remediator.journal, DynamoJournal(target.home, args.lease_table))
    if args.apply:
        # Changes a killed run left half-done are finished (or undone) before anything new begins.
        for line in remediator.recover(target.regions):
            output.note("recovered", line)
    reports = list(with_progress(scan(adapter, target.regions, settings), output.err, "scanning"))
    outcomes = (remediator.fix(report, apply=args.apply) for report in reports if not output.stopping)
    status = cli.EXIT_OK
    for outcome in with_progress(outcomes, output.err, "fixing" if args.apply else "planning", total=len(reports)):
        status = max(status, _fix_status(outcome))
        emit_outcome(outcome, args.format, output)
    return status


def _fix_status(outcome: FixOutcome) -> int:
    if outcome.action in ("failed", "refused", "stale"):  # refused by the guard, or raced three times: nothing fixed
        return cli.EXIT_INVALID
    if outcome.action == "busy":  # the stack (or another run) is changing this API now: not fixed by this run
        return cli.EXIT_FINDINGS
    if outcome.action in ("proposed", "report-only", "blocked"):  # blocked: undeployed edits stand in the fix's way
        return cli.EXIT_FINDINGS
    return cli.EXIT_OK
