"""`evaluate FILE...`: policy files against the trusted accounts, offline (no AWS call, no boto3 imported).

Exit status: 0 all compliant, 1 findings, 2 invalid input or arguments.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any, TextIO

from remediator.cli.args import EXIT_FINDINGS, EXIT_INVALID, EXIT_OK, add_trust_arguments, one_line, trust_config
from remediator.core import Evaluation, PolicyError, evaluate_policy
from remediator.policy_forms import MAX_DOCUMENT_CHARS, policy_forms

EVALUATE_EXAMPLES = """examples:
  apigw-remediator evaluate examples/policy.json --owner-account 111122223333 \\
      --trusted-accounts 444455556666 --trusted-org-ids o-a1b2c3d4e5
  aws apigateway get-rest-api --rest-api-id a1b2c3d4e5 --query policy --output text \\
      | apigw-remediator evaluate - --owner-account 111122223333 --format json
  apigw-remediator evaluate template.yaml openapi.json --owner-account 111122223333

exit status: 0 all compliant, 1 findings, 2 invalid input or arguments."""


def add_command(commands: Any) -> None:
    evaluate = commands.add_parser("evaluate", help="evaluate policy files against the trusted accounts",
                                   description="Evaluate resource policies against the trusted accounts and organizations, "
                                               "offline: no AWS call.",
                                   epilog=EVALUATE_EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    evaluate.add_argument("files", nargs="+", metavar="FILE",
                          help="a policy (JSON, API Gateway's escaped form, YAML), an OpenAPI document with "
                               "x-amazon-apigateway-policy, or a list of statements; - reads standard input")
    add_trust_arguments(evaluate, owner_required=True)
    evaluate.set_defaults(run=run_evaluate)


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
