"""`scan`: every REST API's findings in the given regions (and with --accounts, accounts); changes nothing.

Same conventions as `evaluate`: one JSON object per API with --format json (ocsf, asff: one finding per
line), exit 0 when nothing is left to fix, 1 when findings remain, 2 on errors.
"""

from __future__ import annotations

import argparse
from typing import Any, TextIO

from remediator.cli import args as cli
from remediator.cli.aws import (
    Output, Target, across, add_sweep_arguments, guard, organization_options, single_target, sweep_settings,
    with_progress,
)
from remediator.cli.report import report_line
from remediator.transaction.planning import scan

SCAN_EXAMPLES = """examples:
  apigw-remediator scan --regions us-east-1,eu-west-1 --trusted-accounts 444455556666
  apigw-remediator scan --profile security-audit --regions all --format json > findings.jsonl
  AWS_REGION=eu-west-1 apigw-remediator scan --trusted-org-ids o-a1b2c3d4e5
  apigw-remediator scan --accounts all --role-name apigw-remediator-spoke --regions us-east-1,eu-west-1
  apigw-remediator scan --accounts 111122223333,444455556666 --max-accounts 2 --regions all --format json

exit status: 0 nothing left to fix, 1 findings, 2 errors."""


def add_command(commands: Any) -> None:
    formatter = argparse.RawDescriptionHelpFormatter
    scan_parser = commands.add_parser("scan", help="report every REST API's findings in the given regions",
                                      description="Report every REST API's findings in the given regions; changes nothing.",
                                      epilog=SCAN_EXAMPLES, formatter_class=formatter)
    add_sweep_arguments(scan_parser, formats=("text", "json", "ocsf", "asff"))
    scan_parser.add_argument("--output", metavar="FILE", help="write the report to FILE instead of standard output")
    scan_parser.set_defaults(run=run_scan)


def run_scan(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    if getattr(args, "output", None):  # opened first: a report that cannot be written stops the run before any AWS call
        try:
            handle = open(args.output, "w", encoding="utf-8")
        except OSError as error:
            print(f"error: {cli.one_line(f'{args.output}: {error.strerror or error}')}", file=err)
            return cli.EXIT_INVALID
        with handle:
            return guard(err, lambda: _scan(args, handle, err))
    return guard(err, lambda: _scan(args, out, err))


def _scan(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    if organization_options(args):
        return across(args, out, err, _scan_in)
    return _scan_in(args, single_target(args), Output(out, err))


def _scan_in(args: argparse.Namespace, target: Target, output: Output) -> int:
    """One account's scan."""
    settings = sweep_settings(args, target.account)
    status = cli.EXIT_OK
    reports = scan(target.apigateway(), target.regions, settings, reachability=True)
    for report in with_progress(reports, output.err, "scanning"):
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
            output.text(report_line(report.to_dict()))
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
