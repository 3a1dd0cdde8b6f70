"""What the command-line commands share: exit codes, argument parsing, one-line errors, JSON lines.

Its own module so that `cli` (which lists the commands) and `sweep_cli` (scan, fix, rollback) both
depend on it and not on each other.
"""

from __future__ import annotations

import argparse
import json
import re
from typing import Any, NoReturn, TextIO

from remediator.core import TrustConfig

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


def add_trust_arguments(parser: argparse.ArgumentParser, owner_required: bool) -> None:
    parser.add_argument("--owner-account", required=owner_required, help="the API owner's account ID (always trusted)")
    parser.add_argument("--trusted-accounts", type=csv_list, default=[], help="comma-separated trusted account IDs")
    parser.add_argument("--trusted-org-ids", type=csv_list, default=[], help="comma-separated trusted organization IDs (o-...)")
    parser.add_argument("--partition", default="aws", help="partition for the owner's root ARN (aws, aws-cn, aws-us-gov, ...)")
    parser.add_argument(
        "--remove-wildcard-principals",
        action="store_true",
        help="also strip '*' principals (off by default: private APIs rely on them)",
    )
    parser.add_argument("--format", choices=("text", "json"), default="text")


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
