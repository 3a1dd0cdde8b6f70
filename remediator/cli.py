"""Command line: `python -m remediator evaluate|check|scan|fix|rollback`.

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
from typing import Any, TextIO

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
from remediator import __version__
from remediator.core import ConfigError, Evaluation, PolicyError, evaluate_policy
from remediator.policy_forms import MAX_DOCUMENT_CHARS, policy_forms


PROG = "apigw-remediator"
EXAMPLES = """examples:
  apigw-remediator evaluate examples/policy.json --owner-account 111122223333 --trusted-accounts 444455556666
  apigw-remediator check template.yaml cdk.out --owner-account 111122223333 --format sarif --output results.sarif
  apigw-remediator scan --regions us-east-1,eu-west-1 --trusted-accounts 444455556666
  apigw-remediator fix --regions all --trusted-accounts 444455556666 --apply --audit-log audit.jsonl
  apigw-remediator rollback --audit-log audit.jsonl --api-id a1b2c3d4e5 --apply

Each command has its own --help. `python -m remediator` is the same program."""
EVALUATE_EXAMPLES = """examples:
  apigw-remediator evaluate examples/policy.json --owner-account 111122223333 \\
      --trusted-accounts 444455556666 --trusted-org-ids o-a1b2c3d4e5
  aws apigateway get-rest-api --rest-api-id a1b2c3d4e5 --query policy --output text \\
      | apigw-remediator evaluate - --owner-account 111122223333 --format json
  apigw-remediator evaluate template.yaml openapi.json --owner-account 111122223333

exit status: 0 all compliant, 1 findings, 2 invalid input or arguments."""


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(prog=PROG, description="Keeps API Gateway REST APIs from granting access to AWS accounts nobody trusts.",
                    epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"{PROG} {__version__}", help="print the version and exit")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=Parser, metavar="COMMAND")
    evaluate = commands.add_parser("evaluate", help="evaluate policy files against the trusted accounts",
                                   description="Evaluate resource policies against the trusted accounts and organizations, "
                                               "offline: no AWS call.",
                                   epilog=EVALUATE_EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    evaluate.add_argument("files", nargs="+", metavar="FILE",
                          help="a policy (JSON, API Gateway's escaped form, YAML), an OpenAPI document with "
                               "x-amazon-apigateway-policy, or a list of statements; - reads standard input")
    add_trust_arguments(evaluate, owner_required=True)
    evaluate.set_defaults(run=run_evaluate)
    from remediator import check_cli

    check_cli.add_command(commands)
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


def run_evaluate(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    config = trust_config(args)
    status = EXIT_OK
    for source in args.files:
        try:
            # Each policy as JSON text, read by the engine exactly as the library reads it: one verdict on every path.
            evaluations = [(label, evaluate_policy(text, config)) for label, text in policy_forms(_read(source), source)]
        except (OSError, ValueError, RecursionError) as error:  # PolicyError is a ValueError, as is undecodable text
            print(f"error: {source}: {one_line(_describe(error))}", file=err)
            status = EXIT_INVALID
            continue
        for label, evaluation in evaluations:
            if not evaluation.compliant and status == EXIT_OK:
                status = EXIT_FINDINGS
            if args.format == "json":
                print(json.dumps({"source": label, **evaluation.to_dict(), **_policy_only(evaluation)}, default=str), file=out)
            else:
                print(render_text(label, evaluation), file=out)
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
    lines.append(f"  severity: {_policy_only(evaluation)['severity']} (from the policy alone: the API's methods are unknown, "
                 "so who can actually call is not known; `scan` reads them)")
    return "\n".join(lines)


def _policy_only(evaluation: Evaluation) -> dict[str, Any]:
    """A file has no methods: the policy-only grade (by finding kind), each finding's reachability unknown."""
    if evaluation.compliant:
        return {}
    from remediator.core.access import effective_access
    from remediator.findings_formats import worst_graded

    access = effective_access(evaluation.findings, evaluation.policy, "", None, None).to_list()
    findings = [finding.to_dict() for finding in evaluation.findings]
    return {"severity": worst_graded(findings, access).name.lower(), "access": access}


def _read(source: str) -> str:
    """The file's text, refused past MAX_DOCUMENT_CHARS before it is all in memory."""
    if source == "-":
        text = sys.stdin.read(MAX_DOCUMENT_CHARS + 1)
    else:
        with open(source, encoding="utf-8") as handle:
            text = handle.read(MAX_DOCUMENT_CHARS + 1)
    if len(text) > MAX_DOCUMENT_CHARS:
        raise PolicyError(f"document is larger than {MAX_DOCUMENT_CHARS} characters")
    return text


def _describe(error: Exception) -> str:
    if isinstance(error, OSError):
        return error.strerror or str(error)
    return str(error)
