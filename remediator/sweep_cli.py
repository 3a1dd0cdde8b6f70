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

import boto3
from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError, ProfileNotFound
from botocore.parsers import ResponseParserError

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


SCAN_EXAMPLES = """examples:
  apigw-remediator scan --regions us-east-1,eu-west-1 --trusted-accounts 444455556666
  apigw-remediator scan --profile security-audit --regions all --format json > findings.jsonl
  AWS_REGION=eu-west-1 apigw-remediator scan --trusted-org-ids o-a1b2c3d4e5

exit status: 0 nothing left to fix, 1 findings, 2 errors."""
FIX_EXAMPLES = """examples:
  apigw-remediator fix --regions all --trusted-accounts 444455556666            # dry run: prints the patches
  apigw-remediator fix --regions all --trusted-accounts 444455556666 --apply --audit-log audit.jsonl
  apigw-remediator fix --region eu-west-1 --apply --stages prod --exempt-api-ids a1b2c3d4e5

exit status: 0 nothing left to fix, 1 findings remain (or only proposed), 2 errors."""
ROLLBACK_EXAMPLES = """examples:
  apigw-remediator rollback --audit-log audit.jsonl --api-id a1b2c3d4e5          # dry run: says what it would do
  apigw-remediator rollback --audit-log audit.jsonl --api-id a1b2c3d4e5 --apply

exit status: 0 restored (or would be), 2 refused or failed."""


def add_commands(commands: Any) -> None:
    formatter = argparse.RawDescriptionHelpFormatter
    scan_parser = commands.add_parser("scan", help="report every REST API's findings in the given regions",
                                      description="Report every REST API's findings in the given regions; changes nothing.",
                                      epilog=SCAN_EXAMPLES, formatter_class=formatter)
    _add_sweep_arguments(scan_parser)
    scan_parser.set_defaults(run=run_scan)

    fix_parser = commands.add_parser("fix", help="propose (default) or --apply the fix to every REST API",
                                     description="Propose (default) or --apply the fix to every REST API in the given regions: "
                                                 "each change a transaction with one audit record.",
                                     epilog=FIX_EXAMPLES, formatter_class=formatter)
    _add_sweep_arguments(fix_parser)
    fix_parser.add_argument("--apply", action="store_true", help="change the APIs (without it: dry run)")
    fix_parser.add_argument("--stages", default="all", type=_stages, help="stages to redeploy: all (default), none, or name,name")
    fix_parser.add_argument("--audit-log", default=DEFAULT_AUDIT_LOG, metavar="FILE",
                            help=f"JSON Lines file that records every change and its intent (default: {DEFAULT_AUDIT_LOG})")
    fix_parser.add_argument("--lease-table", metavar="TABLE", type=cli.table_name,
                            help="take the account's deployment turns from the deployed stack's DynamoDB table "
                                 "(its audit table), so that this run and the stack never deploy at once")
    fix_parser.set_defaults(run=run_fix)

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
    rollback_parser.add_argument("--trusted-accounts", type=cli.account_ids, default=[],
                                 help="comma-separated trusted account IDs: re-granting any other account takes --force")
    rollback_parser.add_argument("--trusted-org-ids", type=cli.org_ids, default=[], help="comma-separated trusted organization IDs")
    _add_aws_arguments(rollback_parser)
    cli.add_format_argument(rollback_parser)
    rollback_parser.set_defaults(run=run_rollback)


def _stages(value: str) -> StageSelection:
    try:
        return StageSelection(value)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def _add_sweep_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--regions", "--region", type=cli.regions, metavar="REGIONS",
                        help="comma-separated regions, or 'all' for every enabled region "
                             "(default: $AWS_REGION, else the profile's region)")
    cli.add_trust_arguments(parser, owner_required=False)
    parser.add_argument("--exempt-tag-key", default=DEFAULT_EXEMPT_TAG_KEY, type=cli.tag_key, metavar="KEY",
                        help=f"APIs tagged KEY=true are never changed (default: {DEFAULT_EXEMPT_TAG_KEY})")
    parser.add_argument("--exempt-api-ids", type=cli.api_ids, default=[], metavar="IDS", help="comma-separated API IDs never changed")
    _add_aws_arguments(parser)


def _add_aws_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--profile", help="the named profile of your AWS configuration to use (default: $AWS_PROFILE, "
                                          "else the default credential chain)")
    parser.add_argument("--endpoint-url", type=cli.endpoint_url, metavar="URL",
                        help="send every AWS call here (a local emulator); checked first, so a dead one fails at once")


def _clients(args: argparse.Namespace) -> ClientFactory:
    """Clients for the chosen profile (or the default chain), against --endpoint-url when given."""
    if args.endpoint_url:
        _check_endpoint(args.endpoint_url)
    try:
        session = boto3.session.Session(profile_name=args.profile) if args.profile else boto3.session.Session()
    except ProfileNotFound as error:
        raise ValueError(f"{error}; profiles are listed by `aws configure list-profiles`") from None
    return ClientFactory(endpoint_url=args.endpoint_url, session=session)


ENDPOINT_TIMEOUT = 2.0  # seconds to wait for --endpoint-url to accept a connection


def _check_endpoint(url: str) -> None:
    """One TCP connection to --endpoint-url, so that a dead emulator fails in seconds, not after the SDK's retries."""
    reason = cli.unreachable(url, ENDPOINT_TIMEOUT)
    if reason:
        raise ValueError(f"nothing answers at {url} ({reason}); is the emulator running?")


def _regions(args: argparse.Namespace, clients: ClientFactory) -> list[str]:
    if args.regions:
        return _regions_of(args.regions, clients)
    default = os.environ.get("AWS_REGION") or clients.session.region_name
    if not default:
        raise ValueError("no region: pass --regions (or 'all'), set AWS_REGION, or give the profile a region")
    try:
        return _regions_of(cli.regions(default), clients)
    except argparse.ArgumentTypeError as error:
        raise ValueError(f"the default region: {error}") from None


def _regions_of(regions: list[str], clients: ClientFactory) -> list[str]:
    return enabled_regions(clients) if regions == ["all"] else regions


def _context(args: argparse.Namespace) -> tuple[ClientFactory, str, str, SweepSettings, list[str]]:
    configure(json_output=False, level=os.environ.get("REMEDIATOR_LOG_LEVEL", "WARNING"))
    clients = _clients(args)
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
    return clients, owner, identity.arn, settings, _regions(args, clients)


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
    clients = _clients(args)
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
    except ResponseParserError as error:  # something answered that is not AWS (a proxy, another server)
        print(f"error: the answer is not an AWS API's ({cli.one_line(str(error))[:200]})", file=err)
    except ValueError as error:
        print(f"error: {cli.one_line(str(error))}", file=err)
    except OSError as error:  # a log that is a directory, a file that cannot be read
        print(f"error: {cli.one_line(f'{error.filename or error}: {error.strerror or error}')}", file=err)
    return cli.EXIT_INVALID


def _progress(items: Iterable[T], err: TextIO, label: str, total: int | None = None) -> Iterator[T]:
    """A progress bar on stderr when it is a terminal (rich, which the Lambda bundle never holds); silent otherwise."""
    if not (hasattr(err, "isatty") and err.isatty()):
        yield from items
        return
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    columns = [TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn() if total else TextColumn("{task.completed} APIs"),
               TimeElapsedColumn()]
    with Progress(*columns, console=Console(file=err), transient=True) as progress:
        task = progress.add_task(label, total=total)
        for item in items:
            yield item
            progress.advance(task)


if __name__ == "__main__":  # pragma: no cover
    from remediator.cli import main

    sys.exit(main())
