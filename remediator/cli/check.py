"""`check PATH...`: the same engine and trust settings as `scan`, over infrastructure code, before it is
deployed (CloudFormation, SAM, a CDK cloud assembly, a Terraform plan, OpenAPI).

Exit status: 0 clean, 1 findings (or a policy that cannot be resolved before deployment: never a silent
"compliant"), 2 errors (one line on stderr, never a traceback). Settings: the flags `evaluate` takes, else
`[tool.apigw-remediator]` in pyproject.toml (remediator.project_settings); flags win.
"""

from __future__ import annotations

import argparse
import json
import os
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, TextIO

from remediator.cli import args as cli
from remediator import findings_formats as formats
from remediator.core import ConfigError, Evaluation, Finding, PolicyError, Remediation, TrustConfig, evaluate_policy
from remediator.core.principals import PARTITIONS
from remediator.iac.fixes import Edit, content_end, entry_of, source_fix
from remediator.iac.intrinsics import Deployment
from remediator.iac.located import Node
from remediator.iac.sources import FoundPolicy, files_of, policies_in, read_text
from remediator.project_settings import find_pyproject, read_settings

CHECK_FORMATS = ("text", "json", "sarif", "ocsf")
CHECK_EXAMPLES = """examples:
  apigw-remediator check template.yaml --owner-account 111122223333 --trusted-accounts 444455556666
  apigw-remediator check cdk.out --region eu-west-1 --format sarif --output results.sarif
  terraform show -json plan.tfplan > plan.json && apigw-remediator check plan.json
  apigw-remediator check .                      # settings from [tool.apigw-remediator] in pyproject.toml

exit status: 0 clean, 1 findings or policies that cannot be resolved, 2 errors."""


def add_command(commands: Any) -> None:
    parser = commands.add_parser(
        "check", help="check infrastructure code (CloudFormation, SAM, cdk.out, Terraform plan JSON, OpenAPI)",
        description="Check the REST API resource policies in infrastructure code before it is deployed, with the "
                    "engine and trust settings of scan; offline: no AWS call.",
        epilog=CHECK_EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("paths", nargs="+", metavar="PATH",
                        help="a template, plan or OpenAPI file, or a folder (a cdk.out: its *.template.json)")
    parser.add_argument("--owner-account", type=cli.account_id,
                        help="the deploying account: AWS::AccountId, and always trusted (or ownerAccount in pyproject)")
    parser.add_argument("--trusted-accounts", type=cli.account_ids, help="comma-separated trusted account IDs")
    parser.add_argument("--trusted-org-ids", type=cli.org_ids, help="comma-separated trusted organization IDs (o-...)")
    parser.add_argument("--partition", choices=sorted(PARTITIONS), help="the deploying partition: AWS::Partition (default aws)")
    parser.add_argument("--region", type=cli.region, help="the deploying region: AWS::Region (unset: policies using it "
                                                          "are indeterminate)")
    parser.add_argument("--remove-wildcard-principals", action=argparse.BooleanOptionalAction, default=None,
                        help="also strip '*' principals (off by default: private APIs rely on them)")
    parser.add_argument("--format", choices=CHECK_FORMATS, default="text",
                        help="text (default): a table; json: one object per policy; sarif: SARIF 2.1.0; "
                             "ocsf: one OCSF Detection Finding per line")
    parser.add_argument("--output", metavar="FILE", help="write the report to FILE instead of standard output")
    parser.set_defaults(run=run_check)


@dataclass(frozen=True)
class Settings:
    trust: TrustConfig
    deployment: Deployment


def settings(args: argparse.Namespace, cwd: Path | None = None) -> Settings:
    """Flags first, then [tool.apigw-remediator] from the nearest pyproject.toml, then the defaults."""
    pyproject = find_pyproject((cwd or Path.cwd()).resolve())
    stored = read_settings(pyproject) if pyproject else {}

    def pick(flag: Any, key: str, default: Any) -> Any:
        return flag if flag is not None else stored.get(key, default)

    owner = pick(args.owner_account, "ownerAccount", None)
    if owner is None:
        raise cli.UsageError("no owner account: pass --owner-account, or set ownerAccount in [tool.apigw-remediator] "
                             "of pyproject.toml")
    partition = pick(args.partition, "partition", "aws")
    trust = TrustConfig(owner_account=owner, trusted_accounts=frozenset(pick(args.trusted_accounts, "trustedAccounts", [])),
                        trusted_org_ids=frozenset(pick(args.trusted_org_ids, "trustedOrgIds", [])), partition=partition,
                        remove_wildcard_principals=bool(pick(args.remove_wildcard_principals, "removeWildcardPrincipals", False)))
    return Settings(trust, Deployment(owner, partition, pick(args.region, "region", None)))


@dataclass
class Checked:
    """One policy found and its verdict."""

    found: FoundPolicy
    evaluation: Evaluation | None = None  # None: indeterminate
    edits: list[Edit] | None = None
    located: list[tuple[Finding, Node]] = field(default_factory=list)

    @property
    def status(self) -> str:
        if self.evaluation is None:
            return "indeterminate"
        return "compliant" if self.evaluation.compliant else "findings"


def run_check(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    chosen = settings(args)
    checked, status, files = check_paths(args.paths, chosen, err)
    if args.output:
        try:
            with open(args.output, "w", encoding="utf-8") as handle:
                write_report(args.format, checked, files, handle)
        except OSError as error:
            print(f"error: {cli.one_line(f'{args.output}: {error.strerror or error}')}", file=err)
            return cli.EXIT_INVALID
    else:
        write_report(args.format, checked, files, out)
    if status == cli.EXIT_OK and any(item.status != "compliant" for item in checked):
        status = cli.EXIT_FINDINGS
    return status


def check_paths(paths: list[str], chosen: Settings, err: TextIO) -> tuple[list[Checked], int, int]:
    """Every policy in the paths, evaluated and located; (results, EXIT_INVALID or EXIT_OK, files read)."""
    checked: list[Checked] = []
    status = cli.EXIT_OK
    files = 0
    for path, named in files_of(paths):
        try:
            found = policies_in(path, read_text(path), chosen.deployment)
        except (OSError, ValueError, RecursionError) as error:  # PolicyError is a ValueError, as is undecodable text
            reason = error.strerror or str(error) if isinstance(error, OSError) else str(error)
            if named:
                print(f"error: {cli.one_line(f'{path}: {reason}')}", file=err)
                status = cli.EXIT_INVALID
            else:  # a file found in a folder that is no template: said, not fatal
                print(f"warning: skipped {cli.one_line(f'{path}: {reason}')}", file=err)
            continue
        files += 1
        for policy in found:
            item = Checked(policy)
            if policy.policy_text is not None:
                try:
                    item.evaluation = evaluate_policy(policy.policy_text, chosen.trust)
                except (PolicyError, ConfigError) as error:
                    print(f"error: {cli.one_line(f'{path}: {policy.resource}: {error}')}", file=err)
                    status = cli.EXIT_INVALID
                    continue
                used: set[int] = set()
                for finding in item.evaluation.findings:
                    entry = entry_of(policy, finding.statement_index, finding.principal, used)
                    statement = policy.statements[finding.statement_index].node \
                        if 0 <= finding.statement_index < len(policy.statements) else None
                    item.located.append((finding, entry.node if entry else statement or policy.anchor))
                item.edits = source_fix(policy, item.evaluation)
            checked.append(item)
    return checked, status, files


# --- reports ---------------------------------------------------------------------------------------------------

def write_report(fmt: str, checked: list[Checked], files: int, out: TextIO) -> None:
    moment = datetime.now(timezone.utc)
    if fmt == "json":
        for item in checked:
            cli.emit_json(json_record(item), out)
    elif fmt == "sarif":
        out.write(json.dumps(formats.sarif_log(sarif_results(checked)), indent=2) + "\n")
    elif fmt == "ocsf":
        for record in ocsf_records(checked, moment):
            cli.emit_json(record, out)
    else:
        render_table(checked, files, out)


def _uri(path: str) -> str:
    """The artifact's URI: relative to the current folder when inside it (code scanning wants repository paths)."""
    relative = os.path.relpath(path)
    if not relative.startswith(".."):
        return Path(relative).as_posix()
    return Path(path).resolve().as_uri()


def _region(found: FoundPolicy, start: int, end: int) -> formats.Region:
    document = found.document
    (line, column), (end_line, end_column) = document.position(start), document.position(end)
    return formats.Region(line, column, end_line, end_column, start, end - start)


def _span(found: FoundPolicy, node: Node) -> formats.Region:
    return _region(found, node.start, max(content_end(node), node.start))


def json_record(item: Checked) -> dict[str, Any]:
    found = item.found
    line = found.document.position(found.anchor.start)[0]
    record: dict[str, Any] = {"file": found.path, "line": line, "resource": found.resource, "type": found.resource_type,
                              "status": item.status}
    if item.evaluation is None:
        record["reason"] = found.reason
        return record
    findings = []
    for finding, node in item.located:
        region = _span(found, node)
        findings.append({**finding.to_dict(), "line": region.start_line, "column": region.start_column})
    record["findings"] = findings
    record["remediated_policy"] = item.evaluation.remediated_policy
    record["source_fix"] = [{**_region(found, edit.start, edit.end).to_sarif(), "text": edit.text}
                            for edit in item.edits] if item.edits is not None else None
    return record


def sarif_results(checked: list[Checked]) -> list[formats.SarifResult]:
    results: list[formats.SarifResult] = []
    for item in checked:
        found = item.found
        uri = _uri(found.path)
        if item.evaluation is None:
            results.append(formats.SarifResult(formats.INDETERMINATE, f"{found.resource} ({found.resource_type}): the policy "
                                               f"cannot be checked before deployment: {found.reason}", uri,
                                               _span(found, found.anchor), properties={"resource": found.resource}))
            continue
        fix_given = False
        for finding, node in item.located:
            fix = None
            if item.edits and finding.remediation == Remediation.REMOVE and not fix_given:
                fix_given = True
                fix = (f"Remove what {found.resource}'s policy grants to principals nobody trusts "
                       f"({len(item.edits)} edit(s) in this file)",
                       [(_region(found, edit.start, edit.end), edit.text) for edit in item.edits])
            where = f"statement {finding.statement_index}" + (f" ({finding.sid})" if finding.sid else "")
            results.append(formats.SarifResult(
                finding.kind.value, f"{found.resource}: {finding.principal} in {where}: {finding.detail} "
                                    f"[{finding.remediation.value}]", uri, _span(found, node), fix,
                {"resource": found.resource, "principal": finding.principal, "remediation": finding.remediation.value}))
    return results


def ocsf_records(checked: list[Checked], moment: datetime) -> list[dict[str, Any]]:
    records = []
    for item in checked:
        found = item.found
        uid = f"{_uri(found.path)}#{found.resource}"
        common = {"resource_uid": uid, "resource_type": found.resource_type, "resource_name": found.resource, "moment": moment,
                  "account": found.deployment.account if found.deployment else None,
                  "region": found.deployment.region if found.deployment else None,
                  "partition": found.deployment.partition if found.deployment else None}
        if item.evaluation is None:
            line = found.document.position(found.anchor.start)[0]
            records.append(formats.ocsf_finding(kind=formats.INDETERMINATE, title="Resource policy cannot be checked before "
                                                "deployment", detail=str(found.reason), remediation="Give the values the "
                                                "policy depends on (parameter defaults, --region), or check the deployed API "
                                                "with `apigw-remediator scan`.",
                                                unmapped={"file": found.path, "line": line}, **common))
            continue
        for finding, node in item.located:
            line = found.document.position(node.start)[0]
            records.append(formats.ocsf_finding(
                kind=finding.kind.value, title=formats.RULES.get(finding.kind.value, finding.kind.value), detail=finding.detail,
                remediation=_advice(finding), unmapped={"file": found.path, "line": line, **finding.to_dict()}, **common))
    return records


def _advice(finding: Finding) -> str:
    if finding.remediation == Remediation.REMOVE:
        return f"Remove {finding.principal} from statement {finding.statement_index} of the resource policy."
    return f"Review statement {finding.statement_index}: {finding.detail}."


def render_table(checked: list[Checked], files: int, out: TextIO) -> None:
    """A table for people (rich); colours only on a terminal."""
    from rich.console import Console
    from rich.table import Table

    terminal = hasattr(out, "isatty") and out.isatty()
    console = Console(file=out, width=None if terminal else 160, highlight=False, no_color=not terminal,
                      force_terminal=terminal)
    table = Table(show_lines=False, header_style="bold")
    table.add_column("where", no_wrap=True)  # file:line whole, so that editors and terminals can open it
    for column in ("resource", "finding", "principal", "action"):
        table.add_column(column, overflow="fold")
    rows = 0
    for item in checked:
        found = item.found
        if item.evaluation is None:
            line = found.document.position(found.anchor.start)[0]
            table.add_row(f"{found.path}:{line}", found.resource, formats.INDETERMINATE, "", str(found.reason))
            rows += 1
            continue
        for finding, node in item.located:
            line = found.document.position(node.start)[0]
            action = finding.remediation.value + (" (fix in SARIF/JSON)" if item.edits and finding.remediation == Remediation.REMOVE else "")
            table.add_row(f"{found.path}:{line}", found.resource, finding.kind.value, finding.principal, action)
            rows += 1
    if rows:
        console.print(table)
    counts = {status: sum(1 for item in checked if item.status == status) for status in ("findings", "indeterminate", "compliant")}
    console.print(f"{len(checked)} polic{'y' if len(checked) == 1 else 'ies'} in {files} file(s): {counts['findings']} with "
                  f"findings, {counts['indeterminate']} indeterminate, {counts['compliant']} compliant")
