"""Command line: `python -m remediator evaluate|scan|fix|rollback`.

Exit status: 0 all compliant, 1 findings, 2 invalid input or arguments (one line on
stderr, never a traceback). The only module that prints.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import sys
from collections.abc import Sequence
from typing import TextIO

from remediator.cli_args import (
    EXIT_FINDINGS,
    EXIT_INVALID,
    EXIT_OK,
    Parser,
    UsageError,
    add_trust_arguments,
    one_line,
    trust_config,
)
from remediator.core import ConfigError, Evaluation, evaluate_policy
from remediator.policy_forms import policy_forms


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(prog="python -m remediator", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True, parser_class=Parser)
    evaluate = commands.add_parser("evaluate", help="evaluate policy files against the trusted accounts")
    evaluate.add_argument("files", nargs="+", metavar="FILE",
                          help="a policy (JSON, API Gateway's escaped form, YAML), an OpenAPI document with "
                               "x-amazon-apigateway-policy, or a list of statements; - reads standard input")
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
    for stream in (out, err):  # text nobody can print (a lone surrogate in a Sid) is escaped, never fatal
        if isinstance(stream, io.TextIOWrapper):
            stream.reconfigure(errors="backslashreplace")
    try:
        args = build_parser().parse_args(argv)
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


def run_evaluate(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    config = trust_config(args)
    status = EXIT_OK
    for source in args.files:
        try:
            label, policy = policy_forms(_read(source), source)
            evaluation = evaluate_policy(policy, config)
        except (OSError, ValueError) as error:  # PolicyError is a ValueError, as is undecodable text
            print(f"error: {source}: {one_line(_describe(error))}", file=err)
            status = EXIT_INVALID
            continue
        source = label
        if not evaluation.compliant and status == EXIT_OK:
            status = EXIT_FINDINGS
        if args.format == "json":
            print(json.dumps({"source": source, **evaluation.to_dict()}, default=str), file=out)
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
