"""The demo's shift-left part: `apigw-remediator check` fails a template whose policy lets in an untrusted account,
and passes the same template with the fix applied, before anything is deployed."""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from pathlib import Path

from rich.console import Console

EXAMPLES = Path(__file__).resolve().parents[1] / "examples" / "iac"
TEMPLATES = ("orders-api.yaml", "orders-api-fixed.yaml")


def show(console: Console, say: Callable[..., None], owner: str, partner: str, region: str) -> list[str]:
    """Run `check` on the example template and its fixed version; returns what did not go as expected."""
    from remediator import cli

    console.print()
    console.rule("[bold]before deployment: check the template[/]")
    say(console, "The same engine and trust settings, on infrastructure code: a CloudFormation template is checked "
                 "before it is deployed (as a pre-commit hook or in CI, with SARIF for code scanning).")
    wrong: list[str] = []
    for name, expected in zip(TEMPLATES, (1, 0)):
        path = EXAMPLES / name
        if not path.is_file():
            return [f"check: {path} is missing"]
        out, err = io.StringIO(), io.StringIO()
        status = cli.main(["check", str(path), "--owner-account", owner, "--trusted-accounts", partner, "--region", region,
                           "--format", "json"], out, err)
        say(console, f"$ apigw-remediator check examples/iac/{name} --owner-account {owner} --trusted-accounts {partner} "
                     f"--region {region}", style="dim")
        for line in out.getvalue().splitlines():
            result = json.loads(line)
            for finding in result.get("findings", []):
                say(console, f"  {name}:{finding.get('line')} {result.get('resource')}: {finding['kind']} "
                             f"{finding['principal']} ({finding['remediation']}; the fix is offered as an edit of the file)")
        for line in err.getvalue().splitlines():
            say(console, f"  {line}", style="red")
        verdict = {0: "passes (exit 0)", 1: "fails (exit 1): the untrusted account is found before anything is deployed"}
        say(console, f"{name}: {verdict.get(status, f'exit {status}')}", style="green" if status == expected else "red")
        if status != expected:
            wrong.append(f"check {name}: exit {status}, expected {expected}")
    return wrong
