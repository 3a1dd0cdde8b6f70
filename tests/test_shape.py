"""The code's shape: no import cycles in the package and the stack's code, one list of modes, one account-ID rule."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from remediator import demo, workflow

ROOT = Path(__file__).resolve().parents[1]


def _imports(path: Path, package: str) -> set[str]:
    """The package modules a module imports at run time anywhere (functions included), except under
    `if __name__ == "__main__"` and `if TYPE_CHECKING` (type hints only)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    skipped = {id(n) for node in ast.walk(tree)
               if isinstance(node, ast.If) and any(w in ast.dump(node.test) for w in ("__main__", "TYPE_CHECKING"))
               for n in ast.walk(node)}
    found = set()
    for node in ast.walk(tree):
        if id(node) in skipped:
            continue
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.startswith(package)}
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.startswith(package):
            found.add(node.module)
            found |= {f"{node.module}.{a.name}" for a in node.names}
    return found


def import_graph(packages: tuple[str, ...] = ("remediator", "infra")) -> dict[str, set[str]]:
    modules = {}
    for package in packages:
        for path in (ROOT / package).rglob("*.py"):
            parts = path.relative_to(ROOT).with_suffix("").parts
            name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
            modules[name] = path
    graph = {}
    for name, path in modules.items():
        targets = {t for package in packages for t in _imports(path, package) if t in modules and t != name}
        graph[name] = targets
    return graph


def test_the_package_has_no_import_cycles() -> None:
    graph = import_graph()
    done: set[str] = set()

    def visit(node: str, path: list[str]) -> None:
        if node in path:
            cycle = path[path.index(node):] + [node]
            pytest.fail("import cycle: " + " -> ".join(cycle))
        if node in done:
            return
        for target in sorted(graph.get(node, ())):
            # a package's __init__ importing its own submodules is how packages re-export
            if not target.startswith(node + "."):
                visit(target, path + [node])
        done.add(node)

    for module in sorted(graph):
        visit(module, [])
    # Each command's module takes what the commands share from its sibling modules (cli.args, cli.aws, cli.report),
    # never a name from the front door that lists the commands (that is what keeps them out of a circle).
    commands = {name for name in graph if name.startswith("remediator.cli.")}
    assert {"remediator.cli.evaluate", "remediator.cli.check", "remediator.cli.scan", "remediator.cli.fix",
            "remediator.cli.rollback"} <= commands
    for name in sorted(commands):
        imported = _imports(ROOT.joinpath(*name.split(".")).with_suffix(".py"), "remediator")
        from_front_door = {t for t in imported if t.startswith("remediator.cli.") and t.count(".") == 2 and t not in graph}
        assert not from_front_door, f"{name} imports {sorted(from_front_door)} from remediator.cli itself"


def test_one_list_of_modes() -> None:
    from infra import config

    assert set(demo.MODES) == set(workflow.MODES)
    assert config.MODES is workflow.MODES


@pytest.mark.parametrize("account", ["١١١١٢٢٢٢٣٣٣٣", "１１１１２２２２３３３３", "11112222333"])
def test_the_synth_refuses_account_ids_the_runtime_would_refuse(account: str) -> None:
    from infra.config import ConfigError, from_context

    from remediator.core import TrustConfig

    with pytest.raises(ConfigError, match="remediator:trustedAccounts"):
        from_context({"remediator:trustedAccounts": [account]}.get)
    with pytest.raises(ValueError):
        TrustConfig(owner_account="111122223333", trusted_accounts=frozenset({account}))


def test_the_definition_routes_on_the_verdicts_the_ladder_gives() -> None:
    import json

    from remediator.transaction.planning import Verdict

    choices = json.loads(workflow.definition_text())["States"]["IsActionNeeded"]["Choices"]
    routed = {c["StringEquals"] for c in choices if c["Variable"] == "$.evaluation.verdict"}
    # everything else ends the execution
    assert routed == {Verdict.FIX.value, Verdict.REPORT_ONLY.value, Verdict.RECOVER.value}
    assert {v for v in Verdict if v.needs_attention} == {Verdict.FIX, Verdict.REPORT_ONLY, Verdict.RECOVER}


def test_one_decision_ladder() -> None:
    from remediator.adapters.apigateway import RestApi
    from remediator.core import TrustConfig, evaluate_policy
    from remediator.transaction.planning import ApiReport, Verdict

    trust = TrustConfig(owner_account="111122223333")
    api = RestApi("eu-west-1", "abcde12345", "api", None, {})

    def report(statement: dict | None, exempt: bool = False, error: str | None = None) -> ApiReport:
        policy = {"Version": "2012-10-17", "Statement": [statement] if statement else []}
        return ApiReport(api, exempt, None if error else evaluate_policy(policy, trust), error)

    untrusted = {"Effect": "Allow", "Principal": {"AWS": "999999999999"}, "Action": "execute-api:Invoke", "Resource": "*"}
    wildcard = {**untrusted, "Principal": "*"}
    assert report(untrusted).verdict() is Verdict.FIX
    assert report(untrusted, exempt=True).verdict() is Verdict.EXEMPT
    assert report(untrusted).verdict(2, 3) is Verdict.FIX and report(untrusted).verdict(3, 3) is Verdict.HELD
    assert report(wildcard).verdict() is Verdict.REPORT_ONLY
    assert report(None).verdict() is Verdict.COMPLIANT
    assert report(None, error="policy cannot be read").verdict() is Verdict.REPORT_ONLY
