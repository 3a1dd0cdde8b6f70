"""`scan`, `fix` and `rollback`: the account sweep from the command line.

Same conventions as `evaluate`: one JSON object per API with --format json, exit 0 when
nothing is left to fix, 1 when findings remain, 2 on errors.

With `--accounts` the same per-account run goes to several accounts of the organization, each through
the spoke role (sts:AssumeRole), a bounded number at once; each account's output is held until it is
done, so that lines of different accounts never interleave.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import sys
import threading
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from typing import Any, TextIO, TypeVar

import boto3
from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError, ProfileNotFound
from botocore.parsers import ResponseParserError

from remediator import cli_args as cli
from remediator.adapters.apigateway import ApiGatewayAdapter
from remediator.adapters.clients import ClientFactory
from remediator.adapters.dynamodb import DynamoJournal, DynamoLease
from remediator.adapters.ec2 import enabled_regions
from remediator.adapters.organizations import OrganizationsAdapter
from remediator.adapters.sts import CallerIdentity, assume_role, caller_identity, role_arn
from remediator.audit import AuditRecord, JsonLinesAuditLog, last_change
from remediator.journal import FileLease, JsonLinesJournal
from remediator.shared_journal import SharedJournal
from remediator.core import TrustConfig
from remediator.logs import configure, get_logger
from remediator.core.undeployed import UNDEPLOYED_SETTINGS
from remediator.transaction.outcomes import FixOutcome
from remediator.transaction.planning import DEFAULT_EXEMPT_TAG_KEY, StageSelection, SweepSettings, scan
from remediator.transaction.remediator import Remediator
from remediator.transaction.rollback import RollbackRefused

DEFAULT_AUDIT_LOG = "remediator-audit.jsonl"
DEFAULT_ROLE_NAME = "apigw-remediator-spoke"  # the spoke role the organization deployment creates in every member account
DEFAULT_MAX_ACCOUNTS = 8
MAX_ACCOUNTS = 64
T = TypeVar("T")
log = get_logger(__name__)


SCAN_EXAMPLES = """examples:
  apigw-remediator scan --regions us-east-1,eu-west-1 --trusted-accounts 444455556666
  apigw-remediator scan --profile security-audit --regions all --format json > findings.jsonl
  AWS_REGION=eu-west-1 apigw-remediator scan --trusted-org-ids o-a1b2c3d4e5
  apigw-remediator scan --accounts all --role-name apigw-remediator-spoke --regions us-east-1,eu-west-1
  apigw-remediator scan --accounts 111122223333,444455556666 --max-accounts 2 --regions all --format json

exit status: 0 nothing left to fix, 1 findings, 2 errors."""
FIX_EXAMPLES = """examples:
  apigw-remediator fix --regions all --trusted-accounts 444455556666            # dry run: prints the patches
  apigw-remediator fix --regions all --trusted-accounts 444455556666 --apply --audit-log audit.jsonl
  apigw-remediator fix --region eu-west-1 --apply --stages prod --exempt-api-ids a1b2c3d4e5
  apigw-remediator fix --accounts all --regions us-east-1 --apply --audit-log audit.jsonl   # every active account

exit status: 0 nothing left to fix, 1 findings remain (or only proposed), 2 errors."""
ROLLBACK_EXAMPLES = """examples:
  apigw-remediator rollback --audit-log audit.jsonl --api-id a1b2c3d4e5          # dry run: says what it would do
  apigw-remediator rollback --audit-log audit.jsonl --api-id a1b2c3d4e5 --apply
  apigw-remediator rollback --audit-log audit.jsonl --api-id a1b2c3d4e5 --accounts all --apply   # whichever account it is in

exit status: 0 restored (or would be), 2 refused or failed."""


def add_commands(commands: Any) -> None:
    formatter = argparse.RawDescriptionHelpFormatter
    scan_parser = commands.add_parser("scan", help="report every REST API's findings in the given regions",
                                      description="Report every REST API's findings in the given regions; changes nothing.",
                                      epilog=SCAN_EXAMPLES, formatter_class=formatter)
    _add_sweep_arguments(scan_parser, formats=("text", "json", "ocsf", "asff"))
    scan_parser.add_argument("--output", metavar="FILE", help="write the report to FILE instead of standard output")
    scan_parser.set_defaults(run=run_scan)

    fix_parser = commands.add_parser("fix", help="propose (default) or --apply the fix to every REST API",
                                     description="Propose (default) or --apply the fix to every REST API in the given regions: "
                                                 "each change a transaction with one audit record.",
                                     epilog=FIX_EXAMPLES, formatter_class=formatter)
    _add_sweep_arguments(fix_parser)
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
    _add_account_arguments(rollback_parser, "restore the API in whichever of these accounts the audit log records it: ")
    cli.add_format_argument(rollback_parser)
    rollback_parser.set_defaults(run=run_rollback)


def _stages(value: str) -> StageSelection:
    try:
        return StageSelection(value)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def _add_sweep_arguments(parser: argparse.ArgumentParser, formats: tuple[str, ...] = ("text", "json")) -> None:
    parser.add_argument("--regions", "--region", type=cli.regions, metavar="REGIONS",
                        help="comma-separated regions, or 'all' for every enabled region "
                             "(default: $AWS_REGION, else the profile's region)")
    cli.add_trust_arguments(parser, owner_required=False, formats=formats)
    parser.add_argument("--exempt-tag-key", default=DEFAULT_EXEMPT_TAG_KEY, type=cli.tag_key, metavar="KEY",
                        help=f"APIs tagged KEY=true are never changed (default: {DEFAULT_EXEMPT_TAG_KEY})")
    parser.add_argument("--exempt-api-ids", type=cli.api_ids, default=[], metavar="IDS", help="comma-separated API IDs never changed")
    _add_aws_arguments(parser)
    _add_account_arguments(parser, "run in these accounts of the organization: ")


def _add_account_arguments(parser: argparse.ArgumentParser, what: str) -> None:
    parser.add_argument("--accounts", type=cli.account_selection, metavar="all|ID,ID",
                        help=what + "'all' (every ACTIVE account; the caller must be the management account or a delegated "
                                    "administrator) or comma-separated 12-digit IDs, each through --role-name, the caller's "
                                    "own account too, so that every account runs with the same permissions "
                                    "(default: the caller's own account only, no AssumeRole)")
    parser.add_argument("--role-name", type=cli.role_name, metavar="NAME",
                        help="with --accounts: the role assumed in each account, arn:<partition>:iam::<account>:role/NAME "
                             f"(default: {DEFAULT_ROLE_NAME}, the spoke role the organization deployment creates)")
    parser.add_argument("--max-accounts", type=cli.whole_number("number of accounts", 1, MAX_ACCOUNTS), metavar="N",
                        help=f"with --accounts: how many accounts run at once (1 to {MAX_ACCOUNTS}, default {DEFAULT_MAX_ACCOUNTS}); "
                             "each keeps its own deployment pacing; fix --apply and rollback --apply write their changes "
                             "one at a time, through the audit log's lock")


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


@dataclass(frozen=True)
class _Target:
    """The account one run works on: its clients and whose they are, and who runs the command."""

    clients: ClientFactory  # the account's: the caller's own, or (--accounts) the assumed role's in that account
    identity: CallerIdentity  # whose credentials `clients` hold; identity.account owns the APIs
    caller: CallerIdentity  # who runs the command (the same as `identity` without --accounts)
    home: ClientFactory  # the caller's own clients: a --lease-table is the stack's, in the caller's account
    regions: list[str]
    organization: bool = False  # --accounts: one of several accounts, through the spoke role

    @property
    def account(self) -> str:
        return self.identity.account

    @property
    def triggered_by(self) -> str:
        return f"cli:{self.caller.arn}" + (f" as {self.identity.arn}" if self.organization else "")


class _Output:
    """One account's output. Without --accounts it goes straight out, as it always did; with --accounts it
    is held until the account is done (accounts run at once, and their lines must never interleave) and
    every JSON record gains `account`, every text line starts with it, every stderr line names it."""

    def __init__(self, out: TextIO, err: TextIO, account: str | None = None, stop: threading.Event | None = None) -> None:
        self.account = account
        self._final = (out, err)
        self._stop = stop
        self.out: TextIO = io.StringIO() if account else out
        self.err: TextIO = io.StringIO() if account else err

    def record(self, data: dict[str, Any]) -> None:
        cli.emit_json({"account": self.account, **data} if self.account else data, self.out)

    def text(self, line: str) -> None:
        print(f"{self.account} {line}" if self.account else line, file=self.out)

    def note(self, label: str, message: str) -> None:
        """`error: ...`, `warning: ...`, `recovered: ...`: one line on stderr, naming the account with --accounts."""
        where = f"account {self.account}: " if self.account else ""
        print(f"{label}: {where}{cli.one_line(message)}", file=self.err)

    @property
    def stopping(self) -> bool:
        """The run was interrupted: an account still running stops before its next API."""
        return self._stop is not None and self._stop.is_set()

    def flush(self, lock: threading.Lock) -> None:
        if self.account is None:
            return
        out, err = self._final
        with lock:
            for held, final in ((self.out, out), (self.err, err)):
                text = held.getvalue()  # type: ignore[attr-defined]
                if text:
                    final.write(text)
                    final.flush()


def _single_target(args: argparse.Namespace, with_regions: bool = True) -> _Target:
    """The caller's own account, with the caller's credentials: the command as it always ran."""
    configure(json_output=False, level=os.environ.get("REMEDIATOR_LOG_LEVEL", "WARNING"))
    clients = _clients(args)
    identity = caller_identity(clients)
    # The owner is whoever's credentials these are: another account's ID would make this account's own
    # principals "untrusted" and write a fallback that grants the other account's root.
    _own_account(identity.account, getattr(args, "owner_account", None))
    if getattr(args, "partition", None) == "aws":
        args.partition = identity.partition
    return _Target(clients, identity, identity, clients, _regions(args, clients) if with_regions else [])


def _settings(args: argparse.Namespace, owner: str) -> SweepSettings:
    return SweepSettings(
        trust=cli.trust_config(args, owner_account=owner),
        exempt_tag_key=args.exempt_tag_key,
        exempt_api_ids=frozenset(args.exempt_api_ids),
        stages=getattr(args, "stages", None) or StageSelection("all"),
        undeployed=getattr(args, "undeployed_changes", None) or "ask",
    )


def _own_account(caller: str, given: str | None) -> str:
    if given and given != caller:
        raise ValueError(f"--owner-account {given} is not the account of these credentials ({caller}); "
                         "scan, fix and rollback work on the caller's own account only (or, with --accounts, on each "
                         "account named)")
    return caller


# --- --accounts: the same run in several accounts of the organization ------------------------------------

class _SharedClients(ClientFactory):
    """The caller's clients, used from every account's thread: a boto3 session is not thread-safe, so its
    clients are made one at a time (the clients themselves are)."""

    _lock = threading.Lock()

    def client(self, service: str, region: str | None = None) -> Any:
        with self._lock:
            return super().client(service, region)


def _organization_options(args: argparse.Namespace) -> bool:
    """Whether --accounts was given (then --role-name and --max-accounts get their defaults); without it, the
    options that only mean something with it are a usage error rather than silently ignored."""
    if args.accounts:
        if getattr(args, "owner_account", None):
            raise cli.UsageError("--owner-account cannot be combined with --accounts: each account owns its own APIs")
        args.role_name = args.role_name or DEFAULT_ROLE_NAME
        args.max_accounts = args.max_accounts or DEFAULT_MAX_ACCOUNTS
        return True
    given = [option for option, value in (("--role-name", args.role_name), ("--max-accounts", args.max_accounts)) if value]
    if given:
        raise cli.UsageError(f"{' and '.join(given)} only apply with --accounts")
    return False


def _home(args: argparse.Namespace) -> tuple[ClientFactory, CallerIdentity]:
    """The caller's own clients and identity, from which every account's role is assumed."""
    configure(json_output=False, level=os.environ.get("REMEDIATOR_LOG_LEVEL", "WARNING"))
    plain = _clients(args)
    home = _SharedClients(endpoint_url=plain.endpoint_url, session=plain.session, retry_mode=plain.retry_mode,
                          max_attempts=plain.max_attempts)
    caller = caller_identity(home)
    if getattr(args, "partition", None) == "aws":
        args.partition = caller.partition
    return home, caller


def _accounts(args: argparse.Namespace, home: ClientFactory, caller: CallerIdentity) -> list[str]:
    """The accounts named, or with `all` every ACTIVE account of the organization (read with the caller's own
    credentials: Organizations answers its management account and delegated administrators only)."""
    if args.accounts != ["all"]:
        return list(args.accounts)
    try:
        accounts = OrganizationsAdapter(home, caller.partition).active_accounts()
    except ClientError as error:
        raise ValueError(f"--accounts all: the organization's accounts cannot be listed with these credentials "
                         f"({_reason(error)}); run it as the management account or a delegated administrator, or name "
                         "the accounts (--accounts ID,ID)") from None
    if not accounts:
        raise ValueError("--accounts all: the organization lists no ACTIVE account")
    return accounts


def _assume(args: argparse.Namespace, home: ClientFactory, caller: CallerIdentity, account: str,
            regions: list[str]) -> _Target:
    """The account through its spoke role (its own account too: every account runs with the same permissions)."""
    arn = role_arn(caller.partition, account, args.role_name)
    try:
        # scan, and fix or rollback without --apply, only read: their sessions cannot write (a session policy)
        clients = assume_role(home, arn, f"apigw-remediator-cli-{caller.account}", read_only=not getattr(args, "apply", False))
        identity = caller_identity(clients)
    except ClientError as error:
        raise ValueError(f"cannot assume {arn} ({_reason(error)}); nothing done in this account") from None
    if identity.account != account:
        raise ValueError(f"{arn} gave credentials of account {identity.account}; nothing done in this account")
    return _Target(clients, identity, caller, home, regions, organization=True)


def _reason(error: ClientError) -> str:
    detail = error.response.get("Error", {})
    return cli.one_line(f"{detail.get('Code', 'error')}: {detail.get('Message') or error}")


def _across(args: argparse.Namespace, out: TextIO, err: TextIO,
            run_one: Callable[[argparse.Namespace, _Target, _Output], int], with_regions: bool = True) -> int:
    """`run_one` in each account of --accounts, through the spoke role, at most --max-accounts at once."""
    home, caller = _home(args)
    accounts = _accounts(args, home, caller)
    # The regions are resolved once, with the caller's credentials (`all`: those enabled in the caller's account).
    regions = _regions(args, home) if with_regions else []
    return _in_pool(accounts, args.max_accounts, out, err,
                    lambda account, output: run_one(args, _assume(args, home, caller, account, regions), output))


def _in_pool(accounts: list[str], max_accounts: int, out: TextIO, err: TextIO,
             one: Callable[[str, _Output], int]) -> int:
    """Each account in a bounded pool; its output written when it is done, under a lock; the worst status.
    An account that fails is one line naming it, and the others still run."""
    lock = threading.Lock()
    stop = threading.Event()

    def run(account: str) -> int:
        output = _Output(out, err, account, stop)
        try:
            log.info("account_started", account=account)
            status = _guard(output.err, lambda: one(account, output), account)
            log.info("account_done", account=account, status=status)
            return status
        finally:
            output.flush(lock)

    pool = ThreadPoolExecutor(max_workers=max_accounts, thread_name_prefix="apigw-remediator-account")
    try:
        futures = [pool.submit(run, account) for account in accounts]
        statuses = [future.result() for future in as_completed(futures)]
    except BaseException:  # interrupted: accounts not begun never begin, running ones stop before their next API
        stop.set()
        pool.shutdown(wait=False, cancel_futures=True)
        raise
    pool.shutdown()
    return max(statuses, default=cli.EXIT_OK)


# --- the commands ----------------------------------------------------------------------------------------

def run_scan(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    if getattr(args, "output", None):  # opened first: a report that cannot be written stops the run before any AWS call
        try:
            handle = open(args.output, "w", encoding="utf-8")
        except OSError as error:
            print(f"error: {cli.one_line(f'{args.output}: {error.strerror or error}')}", file=err)
            return cli.EXIT_INVALID
        with handle:
            return _guard(err, lambda: _scan(args, handle, err))
    return _guard(err, lambda: _scan(args, out, err))


def _scan(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    if _organization_options(args):
        return _across(args, out, err, _scan_in)
    return _scan_in(args, _single_target(args), _Output(out, err))


def _scan_in(args: argparse.Namespace, target: _Target, output: _Output) -> int:
    """One account's scan."""
    settings = _settings(args, target.account)
    status = cli.EXIT_OK
    reports = scan(ApiGatewayAdapter(target.clients), target.regions, settings, reachability=True)
    for report in _progress(reports, output.err, "scanning"):
        if output.stopping:
            break
        if report.error:
            status = cli.EXIT_INVALID
        elif report.has_findings and status == cli.EXIT_OK:
            status = cli.EXIT_FINDINGS
        if args.format == "json":
            output.record(report.to_dict())
        elif args.format in ("ocsf", "asff"):  # records of their own format: no `account` key added
            for record in _finding_records(args.format, report.to_dict(), target.account, args.partition):
                cli.emit_json(record, output.out)
        else:
            output.text(_report_line(report.to_dict()))
    return status


def _finding_records(fmt: str, record: dict[str, Any], account: str, partition: str) -> list[dict[str, Any]]:
    """OCSF: one Detection Finding per finding; ASFF: one finding per API (PASSED when compliant). An API
    whose policy could not be read has no verdict to report (its error goes to stderr's status)."""
    from datetime import datetime, timezone

    from remediator import findings_formats as formats

    moment = datetime.now(timezone.utc)
    if record.get("error"):
        return []
    arn = f"arn:{partition}:apigateway:{record['region']}::/restapis/{record['api_id']}"
    if fmt == "asff":
        return [formats.asff_finding(account=account, partition=partition, region=record["region"], api_id=record["api_id"],
                                     api_name=record["name"] or "", findings=record["findings"],
                                     compliant=record["compliant"], exempt=record["exempt"], moment=moment,
                                     access=record.get("access"))]
    reach = {item.get("finding"): item for item in record.get("access") or []}
    return [formats.ocsf_finding(kind=finding["kind"], title=formats.RULES.get(finding["kind"], finding["kind"]),
                                 detail=finding["detail"], resource_uid=arn, resource_type="AWS::ApiGateway::RestApi",
                                 resource_name=record["name"] or record["api_id"], moment=moment,
                                 remediation=(f"Remove {finding['principal']} from the resource policy: apigw-remediator fix "
                                              f"--regions {record['region']} --apply" if finding["remediation"] == "remove"
                                              else f"Review the resource policy: {finding['detail']}"),
                                 unmapped={"api_id": record["api_id"], "exempt": record["exempt"], **finding,
                                           **({"access": reach[index]} if index in reach else {})},
                                 account=account, region=record["region"], partition=partition, reach=reach.get(index))
            for index, finding in enumerate(record["findings"])]


def run_fix(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    return _guard(err, lambda: _fix(args, out, err))


def _fix(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    organization = _organization_options(args)
    if args.apply:  # before anything else, AWS included: no change is made that cannot be written down
        JsonLinesJournal(JsonLinesAuditLog(args.audit_log)).check_writable()
    if organization:
        return _across(args, out, err, _fix_in)
    return _fix_in(args, _single_target(args), _Output(out, err))


def _fix_in(args: argparse.Namespace, target: _Target, output: _Output) -> int:
    """One account's fix: its own audit records (the account in each), deployment turns and recovery."""
    settings = _settings(args, target.account)
    adapter = ApiGatewayAdapter(target.clients)
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
    reports = list(_progress(scan(adapter, target.regions, settings), output.err, "scanning"))
    outcomes = (remediator.fix(report, apply=args.apply) for report in reports if not output.stopping)
    status = cli.EXIT_OK
    for outcome in _progress(outcomes, output.err, "fixing" if args.apply else "planning", total=len(reports)):
        status = max(status, _fix_status(outcome))
        _emit_outcome(outcome, args.format, output)
    return status


def run_rollback(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    return _guard(err, lambda: _rollback(args, out, err))


def _rollback(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    configure(json_output=False, level=os.environ.get("REMEDIATOR_LOG_LEVEL", "WARNING"))
    organization = _organization_options(args)
    audit = JsonLinesAuditLog(args.audit_log)
    if args.apply:
        JsonLinesJournal(audit).check_writable()  # before anything else: nothing changes without its record
    if organization:
        return _rollback_across(args, audit, out, err)
    output = _Output(out, err)
    record = last_change(audit, args.api_id, args.region)
    for skipped in audit.skipped:
        output.note("warning", skipped)
    if record is None:
        where = f" in {args.region}" if args.region else ""
        output.note("error", f"{args.audit_log}: no remediation of {args.api_id}{where} is recorded")
        return cli.EXIT_INVALID
    return _rollback_in(args, _single_target(args, with_regions=False), record, output)


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
    home, caller = _home(args)
    accounts = _accounts(args, home, caller)
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
    return max(status, _in_pool(list(chosen), args.max_accounts, out, err, lambda account, output: _rollback_in(
        args, _assume(args, home, caller, account, []), chosen[account], output)))


def _rollback_in(args: argparse.Namespace, target: _Target, record: AuditRecord, output: _Output) -> int:
    """One account's rollback of one recorded remediation."""
    if record.account != target.account:
        output.note("error", f"the record is of account {record.account}, but these credentials are of account "
                             f"{target.account}; nothing changed")
        return cli.EXIT_INVALID
    settings = SweepSettings(trust=TrustConfig(owner_account=record.account, trusted_accounts=frozenset(args.trusted_accounts),
                                               trusted_org_ids=frozenset(args.trusted_org_ids), partition=target.identity.partition))
    triggered_by = target.triggered_by.replace("cli:", "cli-rollback:", 1)
    remediator = Remediator.with_audit_log(ApiGatewayAdapter(target.clients), settings, JsonLinesAuditLog(args.audit_log),
                                           record.account, triggered_by)
    try:
        outcome = remediator.rollback(record, apply=args.apply, force=args.force)
    except RollbackRefused as refused:
        output.note("error", str(refused))
        return cli.EXIT_INVALID
    _emit_outcome(outcome, args.format, output)
    return cli.EXIT_INVALID if outcome.action in ("failed", "skipped", "refused", "stale") else cli.EXIT_OK


def _fix_status(outcome: FixOutcome) -> int:
    if outcome.action in ("failed", "refused", "stale"):  # refused by the guard, or raced three times: nothing fixed
        return cli.EXIT_INVALID
    if outcome.action == "busy":  # the stack (or another run) is changing this API now: not fixed by this run
        return cli.EXIT_FINDINGS
    if outcome.action in ("proposed", "report-only", "blocked"):  # blocked: undeployed edits stand in the fix's way
        return cli.EXIT_FINDINGS
    return cli.EXIT_OK


def _emit_outcome(outcome: FixOutcome, fmt: str, output: _Output) -> None:
    record = outcome.to_dict()
    if fmt == "json":
        output.record(record)
        return
    output.text(f"{_report_line(record)} -> {record['action']}: {record['detail']}")
    if record["action"] == "proposed" and record["patch_operations"]:
        output.text("  patch: " + json.dumps(record["patch_operations"]))


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
    reach = {item.get("finding"): item for item in record.get("access") or []}
    findings = "; ".join(f"[{f['remediation']}] {f['kind']} {f['principal']}{_reach_text(reach.get(i))}"
                         for i, f in enumerate(record["findings"]))
    severity = f" [{record['severity']}]" if record.get("severity") else ""
    return f"{where}{severity}: {findings}"


def _reach_text(reach: dict[str, Any] | None) -> str:
    """Who can call, in a few words: the methods the finding's principal reaches and what stands in front."""
    if not reach:
        return ""
    status = reach.get("reachability")
    methods = reach.get("reachable_methods") or []
    listed = ", ".join(f"{m['http_method']} {m['path']} ({m['authorization_type']}"
                       + (", API key" if m.get("api_key_required") else "")
                       + (f", if {'; '.join(m['conditions'])}" if m.get("conditions") else "") + ")"
                       for m in methods[:5]) + (f" and {len(methods) - 5} more" if len(methods) > 5 else "")
    if status == "reachable":
        return f" -> {reach.get('severity')}, reaches {listed}"
    if status == "unreachable":
        return f" -> {reach.get('severity')}, no method reachable"
    return f" -> {status}: {reach.get('reason', '')}" + (f"; reaches at least {listed}" if methods else "")


def _guard(err: TextIO, action: Any, account: str | None = None) -> int:
    """AWS errors become one line on stderr and exit status 2, never a traceback (naming the account, with --accounts)."""
    where = f"account {account}: " if account else ""
    try:
        return int(action())
    except NoCredentialsError:
        print(f"error: {where}no AWS credentials found (configure a profile, or use --endpoint-url with an emulator)", file=err)
    except (ClientError, BotoCoreError) as error:
        print(f"error: {where}{cli.one_line(str(error))}", file=err)
    except ResponseParserError as error:  # something answered that is not AWS (a proxy, another server)
        print(f"error: {where}the answer is not an AWS API's ({cli.one_line(str(error))[:200]})", file=err)
    except ValueError as error:
        print(f"error: {where}{cli.one_line(str(error))}", file=err)
    except OSError as error:  # a log that is a directory, a file that cannot be read
        print(f"error: {where}{cli.one_line(f'{error.filename or error}: {error.strerror or error}')}", file=err)
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
