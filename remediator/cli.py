"""Command line: `python -m remediator evaluate|scan|fix|rollback`.

Exit status: 0 all compliant, 1 findings, 2 invalid input or arguments (one line on
stderr, never a traceback). The only module that prints.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
from collections.abc import Sequence
from typing import Any, NoReturn, TextIO

from remediator.core import ConfigError, Evaluation, TrustConfig, evaluate_policy

EXIT_OK = 0
EXIT_FINDINGS = 1
EXIT_INVALID = 2


class UsageError(Exception):
    """A wrong argument; reported as one line with exit status 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise UsageError(message)


def _csv(value: str) -> list[str]:
    return [item.strip() for item in value.split(",") if item.strip()]


def add_trust_arguments(parser: argparse.ArgumentParser, owner_required: bool) -> None:
    parser.add_argument("--owner-account", required=owner_required, help="the API owner's account ID (always trusted)")
    parser.add_argument("--trusted-accounts", type=_csv, default=[], help="comma-separated trusted account IDs")
    parser.add_argument("--trusted-org-ids", type=_csv, default=[], help="comma-separated trusted organization IDs (o-...)")
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


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="python -m remediator", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    evaluate = commands.add_parser("evaluate", help="evaluate policy files against the trusted accounts")
    evaluate.add_argument("files", nargs="+", metavar="FILE", help="a policy in any accepted form; - reads standard input")
    add_trust_arguments(evaluate, owner_required=True)
    evaluate.set_defaults(run=run_evaluate)
    try:
        from remediator import sweep_cli
    except ImportError:  # the sweep needs boto3, which the pure evaluate command does not
        pass
    else:
        sweep_cli.add_commands(commands)
    return parser


def main(argv: Sequence[str] | None = None, stdout: TextIO | None = None, stderr: TextIO | None = None) -> int:
    out = stdout or sys.stdout
    err = stderr or sys.stderr
    try:
        args = build_parser().parse_args(argv)
        return int(args.run(args, out, err))
    except UsageError as error:
        print(f"error: {_one_line(str(error))}", file=err)
        return EXIT_INVALID
    except ConfigError as error:
        print(f"error: {_one_line(str(error))}", file=err)
        return EXIT_INVALID
    except KeyboardInterrupt:
        print("error: interrupted", file=err)
        return 130
    except BrokenPipeError:  # the reader went away (| head): stop quietly, as other command-line tools do
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_OK


def run_evaluate(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    config = trust_config(args)
    status = EXIT_OK
    for source in args.files:
        try:
            evaluation = evaluate_policy(_read(source), config)
        except (OSError, ValueError) as error:  # PolicyError is a ValueError, as is undecodable text
            print(f"error: {source}: {_one_line(_describe(error))}", file=err)
            status = EXIT_INVALID
            continue
        if not evaluation.compliant and status == EXIT_OK:
            status = EXIT_FINDINGS
        if args.format == "json":
            print(json.dumps({"source": source, **evaluation.to_dict()}), file=out)
        else:
            print(render_text(source, evaluation), file=out)
    return status


def render_text(source: str, evaluation: Evaluation) -> str:
    """One line per finding, then the proposed patch: for people, not for parsing."""
    if evaluation.compliant:
        return f"{source}: compliant"
    lines = [f"{source}: {len(evaluation.findings)} finding(s)"]
    for finding in evaluation.findings:
        where = f"statement {finding.statement_index}" + (f" ({finding.sid})" if finding.sid else "")
        lines.append(f"  [{finding.remediation.value}] {finding.kind.value} {finding.principal} in {where}: {finding.detail}")
    operations = evaluation.patch_operations
    if operations:
        lines.append("  patch: " + json.dumps(operations))
    else:
        lines.append("  patch: none (nothing to remove automatically; review the findings above)")
    return "\n".join(lines)


def _read(source: str) -> str:
    if source == "-":
        return sys.stdin.read()
    with open(source, encoding="utf-8") as handle:
        return handle.read()


def _describe(error: Exception) -> str:
    if isinstance(error, OSError):
        return error.strerror or str(error)
    return str(error)


_WHITESPACE = re.compile(r"\s+")


def _one_line(message: str) -> str:
    return _WHITESPACE.sub(" ", message).strip()


def emit_json(record: dict[str, Any], out: TextIO) -> None:
    print(json.dumps(record, default=str), file=out)
