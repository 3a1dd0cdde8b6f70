"""`rollback`: restore the policy recorded before the last remediation of an API (from the audit log
`fix --apply` wrote) and redeploy its stages; refuses if the policy changed since.

Exit status: 0 restored (or would be), 2 refused, blocked or failed.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, TextIO

from remediator.audit import AuditRecord, JsonLinesAuditLog, last_change
from remediator.cli import args as cli
from remediator.cli.aws import (
    Output, Target, add_account_arguments, add_aws_arguments, caller_home, accounts_of, assume, guard, in_pool,
    organization_options, single_target,
)
from remediator.cli.report import emit_outcome
from remediator.core import TrustConfig
from remediator.core.undeployed import UNDEPLOYED_SETTINGS
from remediator.journal import JsonLinesJournal
from remediator.logs import configure
from remediator.transaction.planning import SweepSettings
from remediator.transaction.remediator import Remediator
from remediator.transaction.rollback import RollbackRefused

ROLLBACK_EXAMPLES = """examples:
  apigw-remediator rollback --audit-log audit.jsonl --api-id a1b2c3d4e5          # dry run: says what it would do
  apigw-remediator rollback --audit-log audit.jsonl --api-id a1b2c3d4e5 --apply
  apigw-remediator rollback --audit-log audit.jsonl --api-id a1b2c3d4e5 --accounts all --apply   # whichever account it is in

exit status: 0 restored (or would be), 2 refused, blocked (its redeploy would publish undeployed edits) or failed."""


def add_command(commands: Any) -> None:
    formatter = argparse.RawDescriptionHelpFormatter
    rollback_parser = commands.add_parser("rollback", help="restore the policy from before the last remediation of an API",
                                          description="Restore the policy recorded before the last remediation of an API, "
                                                      "and redeploy its stages; refuses if the policy changed since.",
                                          epilog=ROLLBACK_EXAMPLES, formatter_class=formatter)
    rollback_parser.add_argument("--audit-log", required=True, metavar="FILE", help="the audit log `fix --apply` wrote")
    rollback_parser.add_argument("--api-id", required=True, type=cli.api_id, help="the REST API to restore (its ID)")
    rollback_parser.add_argument("--region", type=cli.region, help="the API's region (default: the one in the audit record)")
    rollback_parser.add_argument("--apply", action="store_true", help="change the API (without it: dry run)")
    rollback_parser.add_argument("--force", action="store_true",
                                 help="restore even if the policy changed since, or if it re-grants what the trust settings "
                                      "below call untrusted, or if the record is older than its trust settings")
    rollback_parser.add_argument("--undeployed-changes", default="ask", choices=UNDEPLOYED_SETTINGS,
                                 help="when the redeploy would also publish edits of the API its stages do not serve yet: "
                                      "ask (default; the command line asks nobody, so nothing is restored, exit 2), "
                                      "publish them with the rollback, or report the API")
    rollback_parser.add_argument("--trusted-accounts", type=cli.account_ids, default=[],
                                 help="comma-separated trusted account IDs: re-granting any other account takes --force")
    rollback_parser.add_argument("--trusted-org-ids", type=cli.org_ids, default=[], help="comma-separated trusted organization IDs")
    add_aws_arguments(rollback_parser)
    add_account_arguments(rollback_parser, "restore the API in whichever of these accounts the audit log records it: ")
    cli.add_format_argument(rollback_parser)
    rollback_parser.set_defaults(run=run_rollback)


def run_rollback(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    return guard(err, lambda: _rollback(args, out, err))


def _rollback(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    configure(json_output=False, level=os.environ.get("REMEDIATOR_LOG_LEVEL", "WARNING"))
    organization = organization_options(args)
    audit = JsonLinesAuditLog(args.audit_log)
    if args.apply:
        JsonLinesJournal(audit).check_writable()  # before anything else: nothing changes without its record
    if organization:
        return _rollback_across(args, audit, out, err)
    output = Output(out, err)
    record = last_change(audit, args.api_id, args.region)
    for skipped in audit.skipped:
        output.note("warning", skipped)
    if record is None:
        where = f" in {args.region}" if args.region else ""
        output.note("error", f"{args.audit_log}: no remediation of {args.api_id}{where} is recorded")
        return cli.EXIT_INVALID
    return _rollback_in(args, single_target(args, with_regions=False), record, output)


@dataclass(frozen=True)
class _Records:
    """Audit records already read (an AuditSink), so that the log is read once for every account."""

    listed: list[AuditRecord]

    def records(self) -> Iterator[AuditRecord]:
        return iter(self.listed)


def _rollback_across(args: argparse.Namespace, audit: JsonLinesAuditLog, out: TextIO, err: TextIO) -> int:
    """The API's last remediation in each account of --accounts that the log records one for, restored there.
    A named account with none is an error; with `all`, only the account(s) holding the API count."""
    records = list(audit.records())
    for skipped in audit.skipped:
        print(f"warning: {cli.one_line(skipped)}", file=err)
    where = f" in {args.region}" if args.region else ""
    if not any(r.api_id == args.api_id for r in records):
        print(f"error: {cli.one_line(args.audit_log)}: no remediation of {args.api_id}{where} is recorded", file=err)
        return cli.EXIT_INVALID
    home, caller = caller_home(args)
    accounts = accounts_of(args, home, caller)
    found = {account: last_change(_Records([r for r in records if r.account == account]), args.api_id, args.region)
             for account in accounts}
    status = cli.EXIT_OK
    missing = [account for account, record in found.items() if record is None]
    if args.accounts == ["all"] and len(missing) == len(accounts):
        print(f"error: {cli.one_line(args.audit_log)}: no remediation of {args.api_id}{where} is recorded for any of the "
              f"organization's {len(accounts)} active accounts", file=err)
        return cli.EXIT_INVALID
    if args.accounts != ["all"]:
        for account in missing:
            print(f"error: account {account}: {cli.one_line(args.audit_log)}: no remediation of {args.api_id}{where} "
                  "is recorded", file=err)
            status = cli.EXIT_INVALID
    chosen = {account: record for account, record in found.items() if record is not None}
    return max(status, in_pool(list(chosen), args.max_accounts, out, err, lambda account, output: _rollback_in(
        args, assume(args, home, caller, account, []), chosen[account], output)))


def _rollback_in(args: argparse.Namespace, target: Target, record: AuditRecord, output: Output) -> int:
    """One account's rollback of one recorded remediation."""
    if record.account != target.account:
        output.note("error", f"the record is of account {record.account}, but these credentials are of account "
                             f"{target.account}; nothing changed")
        return cli.EXIT_INVALID
    settings = SweepSettings(trust=TrustConfig(owner_account=record.account, trusted_accounts=frozenset(args.trusted_accounts),
                                               trusted_org_ids=frozenset(args.trusted_org_ids), partition=target.identity.partition),
                             undeployed=args.undeployed_changes)
    triggered_by = target.triggered_by.replace("cli:", "cli-rollback:", 1)
    remediator = Remediator.with_audit_log(target.apigateway(), settings, JsonLinesAuditLog(args.audit_log),
                                           record.account, triggered_by)
    try:
        outcome = remediator.rollback(record, apply=args.apply, force=args.force)
    except RollbackRefused as refused:
        output.note("error", str(refused))
        return cli.EXIT_INVALID
    emit_outcome(outcome, args.format, output)
    # blocked: undeployed edits stand in the rollback's way (nothing restored; the outcome says which, and how to go on)
    return cli.EXIT_INVALID if outcome.action in ("failed", "skipped", "refused", "stale", "blocked") else cli.EXIT_OK
