"""What `scan`, `fix` and `rollback` share: credentials and endpoint, regions, the account a run works on,
and with `--accounts` the same run in several accounts of the organization, each through the spoke role
(sts:AssumeRole), a bounded number at once; AWS errors as one line.

Each account's output is held until it is done (report.Output), so that lines of different accounts
never interleave.
"""

from __future__ import annotations

import argparse
import os
import threading
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from typing import Any, TextIO, TypeVar

from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError, ProfileNotFound
from botocore.parsers import ResponseParserError

from remediator.adapters.apigateway import ApiGatewayAdapter
from remediator.adapters.clients import ClientFactory, new_session
from remediator.adapters.ec2 import enabled_regions
from remediator.adapters.organizations import OrganizationsAdapter
from remediator.adapters.sts import CallerIdentity, assume_role, caller_identity, role_arn
from remediator.cli import args as cli
from remediator.cli.report import Output
from remediator.logs import configure, get_logger
from remediator.transaction.planning import DEFAULT_EXEMPT_TAG_KEY, StageSelection, SweepSettings

T = TypeVar("T")
log = get_logger(__name__)

DEFAULT_ROLE_NAME = "apigw-remediator-spoke"  # the spoke role the organization deployment creates in every member account
DEFAULT_MAX_ACCOUNTS = 8
MAX_ACCOUNTS = 64
ENDPOINT_TIMEOUT = 2.0  # seconds to wait for --endpoint-url to accept a connection


def add_sweep_arguments(parser: argparse.ArgumentParser, formats: tuple[str, ...] = ("text", "json")) -> None:
    parser.add_argument("--regions", "--region", type=cli.regions, metavar="REGIONS",
                        help="comma-separated regions, or 'all' for every enabled region "
                             "(default: $AWS_REGION, else the profile's region)")
    cli.add_trust_arguments(parser, owner_required=False, formats=formats)
    parser.add_argument("--exempt-tag-key", default=DEFAULT_EXEMPT_TAG_KEY, type=cli.tag_key, metavar="KEY",
                        help=f"APIs tagged KEY=true are never changed (default: {DEFAULT_EXEMPT_TAG_KEY})")
    parser.add_argument("--exempt-api-ids", type=cli.api_ids, default=[], metavar="IDS", help="comma-separated API IDs never changed")
    add_aws_arguments(parser)
    add_account_arguments(parser, "run in these accounts of the organization: ")


def add_account_arguments(parser: argparse.ArgumentParser, what: str) -> None:
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


def add_aws_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--profile", help="the named profile of your AWS configuration to use (default: $AWS_PROFILE, "
                                          "else the default credential chain)")
    parser.add_argument("--endpoint-url", type=cli.endpoint_url, metavar="URL",
                        help="send every AWS call here (a local emulator); checked first, so a dead one fails at once")


def _clients(args: argparse.Namespace) -> ClientFactory:
    """Clients for the chosen profile (or the default chain), against --endpoint-url when given."""
    if args.endpoint_url:
        _check_endpoint(args.endpoint_url)
    try:
        session = new_session(profile_name=args.profile) if args.profile else new_session()
    except ProfileNotFound as error:
        raise ValueError(f"{error}; profiles are listed by `aws configure list-profiles`") from None
    return ClientFactory(endpoint_url=args.endpoint_url, session=session)


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
class Target:
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

    def apigateway(self) -> ApiGatewayAdapter:
        """The account's API Gateway adapter: built in one place, which the tests replace to pace or fault it."""
        return ApiGatewayAdapter(self.clients)


def single_target(args: argparse.Namespace, with_regions: bool = True) -> Target:
    """The caller's own account, with the caller's credentials: the command as it always ran."""
    configure(json_output=False, level=os.environ.get("REMEDIATOR_LOG_LEVEL", "WARNING"))
    clients = _clients(args)
    identity = caller_identity(clients)
    # The owner is whoever's credentials these are: another account's ID would make this account's own
    # principals "untrusted" and write a fallback that grants the other account's root.
    _own_account(identity.account, getattr(args, "owner_account", None))
    if getattr(args, "partition", None) == "aws":
        args.partition = identity.partition
    return Target(clients, identity, identity, clients, _regions(args, clients) if with_regions else [])


def sweep_settings(args: argparse.Namespace, owner: str) -> SweepSettings:
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


# --- --accounts: the same run in several accounts of the organization ----------------------------------

class _SharedClients(ClientFactory):
    """The caller's clients, used from every account's thread: a boto3 session is not thread-safe, so its
    clients are made one at a time (the clients themselves are). ClientFactory.client already makes them under
    its own lock; taking that lock here too (it is not reentrant) would deadlock the first call."""


def organization_options(args: argparse.Namespace) -> bool:
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


def caller_home(args: argparse.Namespace) -> tuple[ClientFactory, CallerIdentity]:
    """The caller's own clients and identity, from which every account's role is assumed."""
    configure(json_output=False, level=os.environ.get("REMEDIATOR_LOG_LEVEL", "WARNING"))
    plain = _clients(args)
    home = _SharedClients(endpoint_url=plain.endpoint_url, session=plain.session, retry_mode=plain.retry_mode,
                          max_attempts=plain.max_attempts)
    caller = caller_identity(home)
    if getattr(args, "partition", None) == "aws":
        args.partition = caller.partition
    return home, caller


def accounts_of(args: argparse.Namespace, home: ClientFactory, caller: CallerIdentity) -> list[str]:
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


def assume(args: argparse.Namespace, home: ClientFactory, caller: CallerIdentity, account: str,
            regions: list[str]) -> Target:
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
    return Target(clients, identity, caller, home, regions, organization=True)


def _reason(error: ClientError) -> str:
    detail = error.response.get("Error", {})
    return cli.one_line(f"{detail.get('Code', 'error')}: {detail.get('Message') or error}")


def across(args: argparse.Namespace, out: TextIO, err: TextIO,
            run_one: Callable[[argparse.Namespace, Target, Output], int], with_regions: bool = True) -> int:
    """`run_one` in each account of --accounts, through the spoke role, at most --max-accounts at once."""
    home, caller = caller_home(args)
    accounts = accounts_of(args, home, caller)
    # The regions are resolved once, with the caller's credentials (`all`: those enabled in the caller's account).
    regions = _regions(args, home) if with_regions else []
    return in_pool(accounts, args.max_accounts, out, err,
                    lambda account, output: run_one(args, assume(args, home, caller, account, regions), output))


def in_pool(accounts: list[str], max_accounts: int, out: TextIO, err: TextIO,
             one: Callable[[str, Output], int]) -> int:
    """Each account in a bounded pool; its output written when it is done, under a lock; the worst status.
    An account that fails is one line naming it, and the others still run."""
    lock = threading.Lock()
    stop = threading.Event()

    def run(account: str) -> int:
        output = Output(out, err, account, stop)
        try:
            log.info("account_started", account=account)
            status = guard(output.err, lambda: one(account, output), account)
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


def guard(err: TextIO, action: Any, account: str | None = None) -> int:
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


def with_progress(items: Iterable[T], err: TextIO, label: str, total: int | None = None) -> Iterator[T]:
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
