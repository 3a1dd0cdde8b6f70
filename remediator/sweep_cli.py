"""`scan`, `fix` and `rollback`: the account sweep from the command line.

Same conventions as `evaluate`: one JSON object per API with --format json, exit 0 when
nothing is left to fix, 1 when findings remain, 2 on errors.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Iterable, Iterator
from typing import Any, TextIO, TypeVar

from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError

from remediator import cli_args as cli
from remediator.adapters.apigateway import ApiGatewayAdapter
from remediator.adapters.clients import ClientFactory
from remediator.adapters.dynamodb import DynamoLease
from remediator.adapters.ec2 import enabled_regions
from remediator.adapters.sts import caller_identity
from remediator.audit import JsonLinesAuditLog, last_change
from remediator.journal import JsonLinesJournal
from remediator.core import TrustConfig
from remediator.logs import configure
from remediator.remediation import (
    DEFAULT_EXEMPT_TAG_KEY,
    FixOutcome,
    Remediator,
    RollbackRefused,
    StageSelection,
    SweepSettings,
    scan,
)

DEFAULT_AUDIT_LOG = "remediator-audit.jsonl"
T = TypeVar("T")


def add_commands(commands: Any) -> None:
    scan_parser = commands.add_parser("scan", help="report every REST API's findings in the given regions")
    _add_sweep_arguments(scan_parser)
    scan_parser.set_defaults(run=run_scan)

    fix_parser = commands.add_parser("fix", help="propose (default) or --apply the fix to every REST API")
    _add_sweep_arguments(fix_parser)
    fix_parser.add_argument("--apply", action="store_true", help="change the APIs (without it: dry run)")
    fix_parser.add_argument("--stages", default="all", type=_stages, help="stages to redeploy: all (default), none, or name,name")
    fix_parser.add_argument("--audit-log", default=DEFAULT_AUDIT_LOG, help="JSON Lines file that records every change")
    fix_parser.add_argument("--lease-table", metavar="TABLE", type=cli.table_name,
                            help="take the account's deployment turns from the deployed stack's DynamoDB table "
                                 "(its audit table), so that this run and the stack never deploy at once")
    fix_parser.set_defaults(run=run_fix)

    rollback_parser = commands.add_parser("rollback", help="restore the policy from before the last remediation of an API")
    rollback_parser.add_argument("--audit-log", required=True)
    rollback_parser.add_argument("--api-id", required=True, type=cli.api_id)
    rollback_parser.add_argument("--region", type=cli.region, help="the API's region (default: the one in the audit record)")
    rollback_parser.add_argument("--apply", action="store_true", help="change the API (without it: dry run)")
    rollback_parser.add_argument("--force", action="store_true",
                                 help="restore even if the policy changed since, or if it re-grants what the trust settings "
                                      "below call untrusted, or if the record is older than its trust settings")
    rollback_parser.add_argument("--trusted-accounts", type=cli.account_ids, default=[],
                                 help="comma-separated trusted account IDs: re-granting any other account takes --force")
    rollback_parser.add_argument("--trusted-org-ids", type=cli.org_ids, default=[], help="comma-separated trusted organization IDs")
    rollback_parser.add_argument("--endpoint-url", type=cli.endpoint_url, help="send every AWS call here (a local emulator)")
    rollback_parser.add_argument("--format", choices=("text", "json"), default="text")
    rollback_parser.set_defaults(run=run_rollback)


def _stages(value: str) -> StageSelection:
    try:
        return StageSelection(value)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def _add_sweep_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--regions", required=True, type=cli.regions, help="comma-separated regions, or 'all' for every enabled region")
    cli.add_trust_arguments(parser, owner_required=False)
    parser.add_argument("--exempt-tag-key", default=DEFAULT_EXEMPT_TAG_KEY, type=cli.tag_key, help="APIs tagged KEY=true are never changed")
    parser.add_argument("--exempt-api-ids", type=cli.api_ids, default=[], help="comma-separated API IDs never changed")
    parser.add_argument("--endpoint-url", type=cli.endpoint_url, help="send every AWS call here (a local emulator)")


def _context(args: argparse.Namespace) -> tuple[ClientFactory, str, str, SweepSettings, list[str]]:
    configure(json_output=False, level=os.environ.get("REMEDIATOR_LOG_LEVEL", "WARNING"))
    clients = ClientFactory(endpoint_url=args.endpoint_url)
    identity = caller_identity(clients)
    # The owner is whoever's credentials these are: another account's ID would make this account's own
    # principals "untrusted" and write a fallback that grants the other account's root.
    owner = _own_account(identity.account, args.owner_account)
    if args.partition == "aws":
        args.partition = identity.partition
    stages = getattr(args, "stages", None) or StageSelection("all")
    settings = SweepSettings(
        trust=cli.trust_config(args, owner_account=owner),
        exempt_tag_key=args.exempt_tag_key,
        exempt_api_ids=frozenset(args.exempt_api_ids),
        stages=stages,
    )
    regions = enabled_regions(clients) if args.regions == ["all"] else args.regions
    return clients, owner, identity.arn, settings, regions


def _own_account(caller: str, given: str | None) -> str:
    if given and given != caller:
        raise ValueError(f"--owner-account {given} is not the account of these credentials ({caller}); "
                         "scan, fix and rollback work on the caller's own account only")
    return caller


def run_scan(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    return _guard(err, lambda: _scan(args, out, err))


def _scan(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    clients, _, _, settings, regions = _context(args)
    status = cli.EXIT_OK
    for report in _progress(scan(ApiGatewayAdapter(clients), regions, settings), err, "scanning"):
        if report.error:
            status = cli.EXIT_INVALID
        elif report.has_findings and status == cli.EXIT_OK:
            status = cli.EXIT_FINDINGS
        if args.format == "json":
            cli.emit_json(report.to_dict(), out)
        else:
            print(_report_line(report.to_dict()), file=out)
    return status


def run_fix(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    return _guard(err, lambda: _fix(args, out, err))


def _fix(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    audit = JsonLinesAuditLog(args.audit_log)
    if args.apply:  # before anything else, AWS included: no change is made that cannot be written down
        JsonLinesJournal(audit).check_writable()
    clients, owner, caller, settings, regions = _context(args)
    adapter = ApiGatewayAdapter(clients)
    remediator = Remediator.with_audit_log(adapter, settings, audit, owner, f"cli:{caller}")
    if args.lease_table:
        remediator.lease = DynamoLease(clients, args.lease_table, owner)
    if args.apply:
        # Changes a killed run left half-done are finished (or undone) before anything new begins.
        for line in remediator.recover(regions):
            print(f"recovered: {cli.one_line(line)}", file=err)
    reports = list(_progress(scan(adapter, regions, settings), err, "scanning"))
    outcomes = (remediator.fix(report, apply=args.apply) for report in reports)
    status = cli.EXIT_OK
    for outcome in _progress(outcomes, err, "fixing" if args.apply else "planning", total=len(reports)):
        status = max(status, _fix_status(outcome))
        _emit_outcome(outcome, args.format, out)
    return status


def run_rollback(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    return _guard(err, lambda: _rollback(args, out, err))


def _rollback(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    configure(json_output=False, level=os.environ.get("REMEDIATOR_LOG_LEVEL", "WARNING"))
    audit = JsonLinesAuditLog(args.audit_log)
    if args.apply:
        JsonLinesJournal(audit).check_writable()  # before anything else: nothing changes without its record
    record = last_change(audit, args.api_id, args.region)
    for skipped in audit.skipped:
        print(f"warning: {cli.one_line(skipped)}", file=err)
    if record is None:
        where = f" in {args.region}" if args.region else ""
        print(f"error: {args.audit_log}: no remediation of {args.api_id}{where} is recorded", file=err)
        return cli.EXIT_INVALID
    clients = ClientFactory(endpoint_url=args.endpoint_url)
    identity = caller_identity(clients)
    if record.account != identity.account:
        print(f"error: the record is of account {record.account}, but these credentials are of account "
              f"{identity.account}; nothing changed", file=err)
        return cli.EXIT_INVALID
    settings = SweepSettings(trust=TrustConfig(owner_account=record.account, trusted_accounts=frozenset(args.trusted_accounts),
                                               trusted_org_ids=frozenset(args.trusted_org_ids), partition=identity.partition))
    remediator = Remediator.with_audit_log(ApiGatewayAdapter(clients), settings, audit, record.account,
                                           f"cli-rollback:{identity.arn}")
    try:
        outcome = remediator.rollback(record, apply=args.apply, force=args.force)
    except RollbackRefused as refused:
        print(f"error: {cli.one_line(str(refused))}", file=err)
        return cli.EXIT_INVALID
    _emit_outcome(outcome, args.format, out)
    return cli.EXIT_INVALID if outcome.action in ("failed", "skipped") else cli.EXIT_OK


def _fix_status(outcome: FixOutcome) -> int:
    if outcome.action == "failed":
        return cli.EXIT_INVALID
    if outcome.action in ("proposed", "report-only"):
        return cli.EXIT_FINDINGS
    return cli.EXIT_OK


def _emit_outcome(outcome: FixOutcome, fmt: str, out: TextIO) -> None:
    record = outcome.to_dict()
    if fmt == "json":
        cli.emit_json(record, out)
        return
    print(f"{_report_line(record)} -> {record['action']}: {record['detail']}", file=out)
    if record["action"] == "proposed" and record["patch_operations"]:
        print("  patch: " + json.dumps(record["patch_operations"]), file=out)


def _report_line(record: dict[str, Any]) -> str:
    where = f"{record['region']} {record['api_id']} ({record['name']})"
    if record.get("error"):
        return f"{where}: error: {record['error']}"
    if record["exempt"]:
        return f"{where}: exempt"
    if record["compliant"]:
        return f"{where}: compliant"
    if not record["findings"]:
        return where
    findings = "; ".join(f"[{f['remediation']}] {f['kind']} {f['principal']}" for f in record["findings"])
    return f"{where}: {findings}"


def _guard(err: TextIO, action: Any) -> int:
    """AWS errors become one line on stderr and exit status 2, never a traceback."""
    try:
        return int(action())
    except NoCredentialsError:
        print("error: no AWS credentials found (configure a profile, or use --endpoint-url with an emulator)", file=err)
    except (ClientError, BotoCoreError) as error:
        print(f"error: {cli.one_line(str(error))}", file=err)
    except ValueError as error:
        print(f"error: {cli.one_line(str(error))}", file=err)
    except OSError as error:  # a log that is a directory, a file that cannot be read
        print(f"error: {cli.one_line(f'{error.filename or error}: {error.strerror or error}')}", file=err)
    return cli.EXIT_INVALID


def _progress(items: Iterable[T], err: TextIO, label: str, total: int | None = None) -> Iterator[T]:
    """A progress bar on stderr when it is a terminal; silent otherwise."""
    if not (hasattr(err, "isatty") and err.isatty()):
        yield from items
        return
    width = 30
    count = 0
    for item in items:
        count += 1
        if total:
            filled = int(width * count / total)
            err.write(f"\r{label} [{'#' * filled}{'.' * (width - filled)}] {count}/{total}")
        else:
            err.write(f"\r{label} {count} APIs")
        err.flush()
        yield item
    err.write("\r" + " " * (width + 40) + "\r")
    err.flush()


if __name__ == "__main__":  # pragma: no cover
    from remediator.cli import main

    sys.exit(main())
