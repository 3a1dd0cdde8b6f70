"""The command line, `apigw-remediator` (`python -m remediator`): one module per command.

Holds: this front door (`main`, `build_parser`), `args` (what every command shares: exit codes, argument
types, one-line errors), `evaluate` and `check` (offline), `scan`, `fix` and `rollback` (the account sweep),
`aws` (what those three share: credentials, regions, --accounts) and `report` (their output lines).
May import: the core, the records and values, the adapters, the transaction, `iac` and the command line's helpers
(`policy_forms`, `project_settings`, `shared_journal`); never the functions, `local`, the demos or infra. Nothing
outside this package imports it but `__main__`, the demos and `local.seed` (its endpoint check); the Lambda bundle
leaves it out (infra/asset.py).

Exit status: 0 all compliant, 1 findings, 2 invalid input or arguments (one line on stderr, never a
traceback). The only package that prints.
"""

from __future__ import annotations

import argparse
import io
import os
import sys
from collections.abc import Sequence
from typing import TextIO

from remediator import __version__
from remediator.cli.args import EXIT_INVALID, EXIT_OK, Parser, UsageError, one_line
from remediator.core import ConfigError

PROG = "apigw-remediator"
EXAMPLES = """examples:
  apigw-remediator evaluate examples/policy.json --owner-account 111122223333 --trusted-accounts 444455556666
  apigw-remediator check template.yaml cdk.out --owner-account 111122223333 --format sarif --output results.sarif
  apigw-remediator scan --regions us-east-1,eu-west-1 --trusted-accounts 444455556666
  apigw-remediator fix --regions all --trusted-accounts 444455556666 --apply --audit-log audit.jsonl
  apigw-remediator rollback --audit-log audit.jsonl --api-id a1b2c3d4e5 --apply

Each command has its own --help. `python -m remediator` is the same program."""


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(prog=PROG, description="Keeps API Gateway REST APIs from granting access to AWS accounts nobody trusts.",
                    epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"{PROG} {__version__}", help="print the version and exit")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=Parser, metavar="COMMAND")
    # Each command's module is imported here, not at the top: `import remediator.cli` stays light, and the
    # AWS commands (which need boto3) are left out where boto3 is not installed.
    from remediator.cli import check, evaluate

    evaluate.add_command(commands)
    check.add_command(commands)
    try:
        from remediator.cli import fix, rollback, scan
    except ImportError:  # the sweep needs boto3, which the pure evaluate and check commands do not
        pass
    else:
        scan.add_command(commands)
        fix.add_command(commands)
        rollback.add_command(commands)
    return parser


def main(argv: Sequence[str] | None = None, stdout: TextIO | None = None, stderr: TextIO | None = None) -> int:
    out = stdout or sys.stdout
    err = stderr or sys.stderr
    for stream in (out, err):  # text nobody can print (a lone surrogate in a Sid) is escaped, never fatal
        if isinstance(stream, io.TextIOWrapper):
            stream.reconfigure(errors="backslashreplace")
    parser = build_parser()
    arguments = list(sys.argv[1:] if argv is None else argv)
    if not arguments:  # a bare command: what it can do, and exit 2 as for any missing argument
        print(parser.format_help(), end="", file=err)
        return EXIT_INVALID
    try:
        args = parser.parse_args(arguments)
        return int(args.run(args, out, err))
    except UsageError as error:
        print(f"error: {one_line(str(error))}", file=err)
        return EXIT_INVALID
    except ConfigError as error:
        print(f"error: {one_line(str(error))}", file=err)
        return EXIT_INVALID
    except KeyboardInterrupt:
        print("error: interrupted", file=err)
        return 130
    except BrokenPipeError:  # the reader went away (| head): stop quietly, as other command-line tools do
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_OK
