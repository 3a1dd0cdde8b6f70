"""What every command shares: exit codes, argument parsing and the argument types, one-line errors, JSON lines.

Its own module so that the package's front door (`remediator.cli`, which lists the commands) and each
command's module depend on it and not on each other.
"""

from __future__ import annotations

import argparse
import json
import re
import socket
import urllib.parse
from typing import Any, NoReturn, TextIO

from remediator.core import TrustConfig
from remediator.core.principals import ACCOUNT_ID, PARTITIONS
from remediator.core.trust_config import ORG_ID
from remediator.events import REGION, REST_API_ID

EXIT_OK = 0
EXIT_FINDINGS = 1
EXIT_INVALID = 2


class UsageError(Exception):
    """A wrong argument; reported as one line with exit status 2."""


class Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise UsageError(message)


def csv_list(value: str) -> list[str]:
    return [item.strip() for item in value.split(",") if item.strip()]


def _a(what: str) -> str:
    return ("an " if what[0].lower() in "aeiou" else "a ") + what


def _checked_list(what: str, pattern: re.Pattern[str], allow_empty: bool = True) -> Any:
    """An argparse type: a comma-separated list whose every item has the given form (else exit 2, one line)."""

    def parse(value: str) -> list[str]:
        items = csv_list(value)
        if not items and not allow_empty:
            raise argparse.ArgumentTypeError(f"{value!r} names no {what}")
        bad = [item for item in items if not pattern.fullmatch(item)]
        if bad:
            raise argparse.ArgumentTypeError(f"{', '.join(repr(b) for b in bad[:3])} is not {_a(what)}")
        return items

    return parse


def _checked(what: str, pattern: re.Pattern[str]) -> Any:
    def parse(value: str) -> str:
        if not pattern.fullmatch(value):
            raise argparse.ArgumentTypeError(f"{value!r} is not {_a(what)}")
        return value

    return parse


# The forms the arguments must have, the same validators the runtime and the stack use ([0-9] is ASCII only).
regions = _checked_list("region (like us-east-1, or 'all')", re.compile(rf"all|{REGION.pattern}"), allow_empty=False)
api_ids = _checked_list("REST API ID (10 lowercase letters and digits)", REST_API_ID)
account_ids = _checked_list("12-digit account ID", ACCOUNT_ID)
org_ids = _checked_list("organization ID (o- and 10 to 32 lowercase letters and digits)", ORG_ID)
api_id = _checked("REST API ID (10 lowercase letters and digits)", REST_API_ID)
region = _checked("region (like us-east-1)", REGION)
account_id = _checked("12-digit account ID", ACCOUNT_ID)
endpoint_url = _checked("http:// or https:// URL", re.compile(r"https?://[^\s/]+(/\S*)?", re.ASCII))
table_name = _checked("DynamoDB table name", re.compile(r"[A-Za-z0-9_.-]{3,255}", re.ASCII))
tag_key = _checked("tag key (1 to 128 characters)", re.compile(r"\S.{0,127}", re.DOTALL))
role_name = _checked("IAM role name (1 to 64 letters, digits and +=,.@_-)", re.compile(r"[\w+=,.@-]{1,64}", re.ASCII))


def account_selection(value: str) -> list[str]:
    """--accounts: ['all'], or the 12-digit IDs named (each checked; a repeated one is run once, in the order given)."""
    items = list(dict.fromkeys(csv_list(value)))
    if not items:
        raise argparse.ArgumentTypeError(f"{value!r} names no account ('all', or 12-digit account IDs)")
    if "all" in items:
        if len(items) > 1:
            raise argparse.ArgumentTypeError("'all' cannot be combined with account IDs")
        return items
    return account_ids(",".join(items))


def whole_number(what: str, low: int, high: int) -> Any:
    """An argparse type: a whole number from `low` to `high` (else exit 2, one line)."""

    def parse(value: str) -> int:
        if not re.fullmatch(r"[0-9]{1,6}", value.strip(), re.ASCII) or not low <= int(value) <= high:
            raise argparse.ArgumentTypeError(f"{value!r} is not {_a(what)} from {low} to {high}")
        return int(value)

    return parse


def add_trust_arguments(parser: argparse.ArgumentParser, owner_required: bool,
                        formats: tuple[str, ...] = ("text", "json")) -> None:
    parser.add_argument("--owner-account", required=owner_required, type=account_id,
                        help="the API owner's account ID (always trusted)")
    parser.add_argument("--trusted-accounts", type=account_ids, default=[], help="comma-separated trusted account IDs")
    parser.add_argument("--trusted-org-ids", type=org_ids, default=[], help="comma-separated trusted organization IDs (o-...)")
    parser.add_argument("--partition", default="aws", choices=sorted(PARTITIONS),
                        help="partition for the owner's root ARN (aws, aws-cn, aws-us-gov, ...)")
    parser.add_argument(
        "--remove-wildcard-principals",
        action="store_true",
        help="also strip '*' principals (off by default: private APIs rely on them)",
    )
    add_format_argument(parser, formats)


FORMAT_HELP = {"text": "text (default): one line per finding or API", "json": "json: one JSON object per input or API",
               "ocsf": "ocsf: one OCSF Detection Finding per finding and line",
               "asff": "asff: one AWS Security Finding Format finding per API and line"}


def add_format_argument(parser: argparse.ArgumentParser, formats: tuple[str, ...] = ("text", "json")) -> None:
    parser.add_argument("--format", choices=formats, default="text", help="; ".join(FORMAT_HELP[f] for f in formats))


def trust_config(args: argparse.Namespace, owner_account: str | None = None) -> TrustConfig:
    return TrustConfig(
        owner_account=owner_account or args.owner_account,
        trusted_accounts=frozenset(args.trusted_accounts),
        trusted_org_ids=frozenset(args.trusted_org_ids),
        partition=args.partition,
        remove_wildcard_principals=args.remove_wildcard_principals,
    )


_WHITESPACE = re.compile(r"\s+")


def one_line(message: str) -> str:
    return _WHITESPACE.sub(" ", message).strip()


def emit_json(record: dict[str, Any], out: TextIO) -> None:
    print(json.dumps(record, default=str), file=out)


def endpoint_address(url: str) -> tuple[str, int]:
    parsed = urllib.parse.urlsplit(url)
    return parsed.hostname or "127.0.0.1", parsed.port or (443 if parsed.scheme == "https" else 80)


def unreachable(url: str, timeout: float) -> str | None:
    """Why nothing accepts a connection at `url` within `timeout` seconds; None when something does."""
    try:
        socket.create_connection(endpoint_address(url), timeout=timeout).close()
    except OSError as error:
        return f"no answer within {timeout:g} s" if isinstance(error, TimeoutError) else (error.strerror or str(error)).lower()
    return None
