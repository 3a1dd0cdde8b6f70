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


# The rooms and what each may import (each package's __init__ docstring says the same in words). A module of ours
# belongs to exactly one room, by its name or its package's; `remediator` itself holds only the version.
RECORDS = ("remediator.stored", "remediator.audit", "remediator.journal", "remediator.approvals", "remediator.organization",
           "remediator.events", "remediator.clock", "remediator.containers", "remediator.safe_files", "remediator.logs",
           "remediator.findings_formats", "remediator.workflow")
ROOMS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {  # room -> (its modules, the rooms it may import)
    "version": (("remediator",), ()),
    # the codec is pure (msgspec, no I/O, nothing of ours): the core may use it, as may everyone above
    "codec": (("remediator.codec",), ()),
    "core": (("remediator.core",), ("codec",)),
    # records and values: what is stored, passed between steps or logged, and the small helpers they need
    "records": (RECORDS, ("version", "codec", "core")),
    "adapters": (("remediator.adapters",), ("version", "codec", "core", "records")),
    "transaction": (("remediator.transaction", "remediator.guard"), ("version", "codec", "core", "records", "adapters")),
    "functions": (("remediator.functions",), ("version", "codec", "core", "records", "adapters", "transaction")),
    "cli helpers": (("remediator.policy_forms", "remediator.project_settings", "remediator.shared_journal"),
                    ("version", "codec", "core", "records", "adapters")),
    "iac": (("remediator.iac",), ("version", "core", "cli helpers")),
    "cli": (("remediator.cli", "remediator.__main__"),
            ("version", "codec", "core", "records", "adapters", "transaction", "cli helpers", "iac")),
    "local": (("remediator.local",), ("version", "codec", "core", "records", "adapters", "transaction", "functions",
                                      "cli helpers", "iac", "cli", "demo")),
    "demo": (("remediator.demo", "remediator.demo_check", "remediator.demo_organization"),
             ("version", "codec", "core", "records", "adapters", "transaction", "functions", "cli helpers", "iac", "cli",
              "local")),
    "infra": (("infra",), ("core", "records", "functions")),
}
# infra takes the settings' rules (core, events), the workflow's definition and each function's needs: nothing else
INFRA_MAY_IMPORT = ("remediator.core", "remediator.events", "remediator.workflow", "remediator.functions.needs")


def room_of(module: str) -> str:
    """The room a module is in: the longest of the rooms' names that is the module or one of its packages."""
    found = [(len(prefix), room) for room, (members, _) in ROOMS.items() for prefix in members
             if module == prefix or (module.startswith(prefix + ".") and prefix != "remediator")]
    if not found:
        pytest.fail(f"{module} is in no room: add it to ROOMS in tests/test_shape.py (and say so in its package's docstring)")
    return max(found)[1]


def layering_violations(graph: dict[str, set[str]]) -> list[str]:
    wrong = []
    for module in sorted(graph):
        room = room_of(module)
        allowed = {room, *ROOMS[room][1]}
        for target in sorted(graph[module]):
            if room == "infra" and target != "remediator.functions" and room_of(target) != "infra" \
                    and not target.startswith(INFRA_MAY_IMPORT):
                wrong.append(f"{module} ({room}) imports {target}")
            elif room_of(target) not in allowed:
                wrong.append(f"{module} ({room}) imports {target} ({room_of(target)})")
    return wrong


def test_each_room_imports_only_what_it_may() -> None:
    """The layering: the core imports nothing of ours but the codec; the adapters only the core and the records;
    the functions neither the command line nor the local account; infra only what the stack is built from."""
    assert layering_violations(import_graph()) == []


@pytest.mark.parametrize("module, target", [
    ("remediator.core.trust", "remediator.audit"),  # the core reading a record
    ("remediator.adapters.dynamodb", "remediator.guard"),  # an adapter using the write's logic
    ("remediator.functions.apply", "remediator.cli.args"),  # a function using the command line
    ("remediator.functions.apply", "remediator.local.strict"),  # or the local account
    ("remediator.audit", "remediator.adapters.dynamodb"),  # a record that talks to AWS
    ("infra.stack", "remediator.functions.apply"),  # the stack importing a handler rather than its needs
    ("remediator.codec", "remediator.stored"),  # the codec leaning on something of ours
    ("remediator.new_module", "remediator.core"),  # a module nobody placed in a room
])
def test_the_layering_rule_catches_a_real_violation(module: str, target: str) -> None:
    with pytest.raises(pytest.fail.Exception if module == "remediator.new_module" else AssertionError):
        assert not layering_violations({module: {target}}), f"{module} -> {target} breaks the layering"


def test_nothing_in_the_lambda_bundle_imports_what_it_leaves_out() -> None:
    """Every module the bundle holds imports only modules the bundle holds (the command line, the template readers,
    the local account and the demos stay out: infra/asset.py)."""
    from infra.asset import EXCLUDED_MODULES, EXCLUDED_SUBPACKAGES

    graph = import_graph(("remediator",))

    def bundled(module: str) -> bool:
        parts = module.split(".")
        if len(parts) > 1 and parts[1] in EXCLUDED_SUBPACKAGES:
            return False
        path = ROOT.joinpath(*parts)
        return not (len(parts) == 2 and not path.is_dir() and f"{parts[1]}.py" in EXCLUDED_MODULES)

    assert {"cli", "iac", "local"} <= EXCLUDED_SUBPACKAGES and {"demo.py", "demo_check.py"} <= EXCLUDED_MODULES
    leaks = sorted(f"{m} imports {t}" for m in graph if bundled(m) for t in graph[m] if not bundled(t))
    assert leaks == []


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
    attention = {Verdict.FIX, Verdict.REPORT_ONLY, Verdict.RECOVER, Verdict.BLOCKED}
    assert routed == {v.value for v in attention}
    assert {v for v in Verdict if v.needs_attention} == attention


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
