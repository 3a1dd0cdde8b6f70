"""The documentation site's generated parts, and the MkDocs hook that puts them in (mkdocs.yml, `hooks:`).

A page asks for a generated part with a marker on a line of its own, e.g. ``<!-- docs-gen: cli -->``:

- ``cli``: every command of `apigw-remediator`, from the argument parser `remediator.cli.build_parser` builds
  (usage, description, options, epilog), so the reference is never written twice;
- ``settings``: every ``remediator:*`` key of ``cdk.json`` with its default, and the meaning the table in
  ``infra/config.py``'s docstring gives it;
- ``state-machine`` / ``org-sweep``: Mermaid ``stateDiagram-v2`` drawings of ``remediator/workflow/definition.json``
  and ``org_sweep.json`` (States, Next, Choices, Default, Catch), each with a table of its states;
- ``infra-readme``: ``infra/README.md`` itself (what the stack creates, its permissions, its checks);
- ``notice-fields:<kind>``: nothing is inserted; the hook checks that the page names every field the code puts
  in that notice (``notice_fields``), and warns (an error under ``--strict``) when one is missing.

Run it as a script to print one part: ``python tools/docs_gen.py cli|settings|state-machine|org-sweep|notices``.
"""

from __future__ import annotations

import argparse
import ast
import json
import logging
import os
import re
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

MARKER = re.compile(r"^<!-- docs-gen: (?P<name>[a-z-]+)(?::(?P<arg>[a-z-]+))? -->$", re.M)
log = logging.getLogger("mkdocs.hooks.docs_gen")


# ---- the command-line reference ------------------------------------------------------------------------------


def _cell(text: str) -> str:
    """Text for a Markdown table cell: one line, pipes escaped, angle brackets as entities."""
    text = " ".join(str(text).split())
    return text.replace("|", "\\|").replace("<", "&lt;").replace(">", "&gt;")


def _subcommands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in parser._actions:  # argparse keeps them nowhere public
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def _help(parser: argparse.ArgumentParser, action: argparse.Action) -> str:
    if not action.help or action.help == argparse.SUPPRESS:
        return ""
    return parser._get_formatter()._expand_help(action)


def _options(parser: argparse.ArgumentParser) -> list[str]:
    lines: list[str] = []
    for group in parser._action_groups:
        actions = [a for a in group._group_actions if a.help != argparse.SUPPRESS
                   and not isinstance(a, argparse._SubParsersAction)]
        if not actions:
            continue
        title = group.title or "options"
        lines += ["", f"**{title[0].upper()}{title[1:]}**", "", "| argument | value | default | meaning |",
                  "|---|---|---|---|"]
        for action in actions:
            names = ", ".join(f"`{name}`" for name in action.option_strings) or f"`{action.metavar or action.dest}`"
            if action.option_strings and action.nargs != 0:
                if action.choices and not action.metavar:
                    value = " \\| ".join(f"`{c}`" for c in action.choices)
                else:
                    value = f"`{action.metavar or action.dest.upper()}`"
            elif not action.option_strings:
                value = {"+": "one or more", "*": "any number", "?": "optional"}.get(str(action.nargs), "one")
            else:
                value = ""
            default = action.default
            shown = "" if default in (None, False, argparse.SUPPRESS) or action.nargs == 0 else f"`{default}`"
            if isinstance(default, list):
                shown = f"`{','.join(map(str, default))}`" if default else ""
            lines.append(f"| {names} | {value} | {shown} | {_cell(_help(parser, action))} |")
    return lines


def cli_markdown() -> str:
    """Each command's usage, description, options and epilog, as argparse has them."""
    os.environ["COLUMNS"] = "100"  # argparse wraps usage at the terminal's width; the same width every build
    from remediator.cli import build_parser

    parser = build_parser()
    commands = _subcommands(parser)
    out = ["```text", parser.format_usage().strip(), "```", "", parser.description or "", "",
           "| command | what it does |", "|---|---|"]
    helps = {}
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            helps = {choice.dest: choice.help for choice in action._choices_actions}
    out += [f"| [`{name}`](#{name}) | {_cell(helps.get(name) or '')} |" for name in commands]
    out += _options(parser)
    if parser.epilog:
        out += ["", "```text", parser.epilog.strip(), "```"]
    for name, sub in commands.items():
        out += ["", f"## {name}", "", "```text", sub.format_usage().strip(), "```", ""]
        if sub.description:
            out += [sub.description.strip(), ""]
        out += _options(sub)
        if sub.epilog:
            out += ["", "```text", sub.epilog.strip(), "```"]
    return "\n".join(out) + "\n"


def cli_commands() -> list[str]:
    os.environ.setdefault("COLUMNS", "100")
    from remediator.cli import build_parser

    return list(_subcommands(build_parser()))


# ---- the settings reference ----------------------------------------------------------------------------------


def settings() -> list[dict[str, Any]]:
    """cdk.json's remediator:* keys with their defaults; meanings from infra/config.py's docstring table (read,
    never imported: the table is documentation), and whether the key belongs to organization mode."""
    context = json.loads((REPO / "cdk.json").read_text(encoding="utf-8")).get("context", {})
    tree = ast.parse((REPO / "infra" / "config.py").read_text(encoding="utf-8"))
    meanings: dict[str, str] = {}
    current = None
    for line in (ast.get_docstring(tree) or "").splitlines():
        row = re.match(r"(remediator:\S+)\s+(.*)$", line)
        if row:
            parts = re.split(r"\s{2,}", row.group(2).strip(), maxsplit=1)
            current = row.group(1)
            meanings[current] = parts[1] if len(parts) > 1 else ""
        elif current and line.startswith(" ") and line.strip() and not line.strip().startswith("="):
            meanings[current] += " " + line.strip()
        else:
            current = None
    defaults: dict[str, Any] = {}
    organization: tuple[str, ...] = ()
    for node in tree.body:
        target = node.targets[0] if isinstance(node, ast.Assign) else getattr(node, "target", None)
        value = getattr(node, "value", None)
        if isinstance(target, ast.Name) and value is not None:
            if target.id == "DEFAULTS":
                defaults = ast.literal_eval(value)
            elif target.id == "ORGANIZATION_KEYS":
                organization = ast.literal_eval(value)
    keys = [k for k in context if k.startswith("remediator:")]
    keys += [k for k in defaults if k not in keys]
    return [{"key": k, "default": context.get(k, defaults.get(k)), "meaning": meanings.get(k, ""),
             "organization": k in organization or k == "remediator:deployment"} for k in keys]


def settings_markdown() -> str:
    rows = ["| key | default (`cdk.json`) | meaning |", "|---|---|---|"]
    for setting in settings():
        default = "unset" if setting["default"] is None else json.dumps(setting["default"])
        where = " *(organization mode)*" if setting["organization"] and setting["key"] != "remediator:deployment" else ""
        rows.append(f"| `{setting['key']}` | `{_cell(default)}` | {_cell(setting['meaning'])}{where} |")
    return "\n".join(rows) + "\n"


# ---- the state machines --------------------------------------------------------------------------------------


def _condition(rule: dict[str, Any]) -> str:
    """A Choice rule in a few words: `verdict = fix`."""
    for combinator in ("And", "Or"):
        if combinator in rule:
            return f" {combinator.lower()} ".join(_condition(r) for r in rule[combinator])
    if "Not" in rule:
        return "not " + _condition(rule["Not"])
    variable = str(rule.get("Variable", "")).split(".")[-1]
    for key, value in rule.items():
        if key in ("Variable", "Next"):
            continue
        operator = {"Equals": "=", "LessThan": "<", "GreaterThan": ">", "LessThanEquals": "≤",
                    "GreaterThanEquals": "≥"}
        for suffix, symbol in operator.items():
            if key.endswith(suffix) and not key.endswith("Path"):
                return f"{variable} {symbol} {value}"
        if key == "IsPresent":
            return f"{variable} {'present' if value else 'absent'}"
        return f"{variable} {key} {value}"
    return variable


def _label(text: str) -> str:
    """A transition label Mermaid takes: no colons, semicolons or quotes."""
    return re.sub(r"[:;\"#]", " ", text).strip()


def _diagram_lines(states: dict[str, Any], start: str, indent: str = "    ") -> list[str]:
    lines = [f"{indent}[*] --> {start}"]
    for name, state in states.items():
        kind = state.get("Type")
        if kind == "Map":
            inner = state.get("ItemProcessor") or state.get("Iterator") or {}
            lines.append(f"{indent}state {name} {{")
            lines += _diagram_lines(inner.get("States", {}), inner.get("StartAt", ""), indent + "    ")
            lines.append(f"{indent}}}")
        for rule in state.get("Choices", []):
            lines.append(f"{indent}{name} --> {rule['Next']}: {_label(_condition(rule))}")
        if "Default" in state:
            lines.append(f"{indent}{name} --> {state['Default']}: otherwise")
        if "Next" in state:
            lines.append(f"{indent}{name} --> {state['Next']}")
        for catch in state.get("Catch", []):
            lines.append(f"{indent}{name} --> {catch['Next']}: {_label('error ' + ', '.join(catch['ErrorEquals']))}")
        if state.get("End") or kind in ("Succeed", "Fail"):
            lines.append(f"{indent}{name} --> [*]")
    return lines


def _state_rows(states: dict[str, Any], prefix: str = "") -> list[str]:
    rows: list[str] = []
    for name, state in states.items():
        goes = []
        for rule in state.get("Choices", []):
            goes.append(f"{_condition(rule)} → `{rule['Next']}`")
        if "Default" in state:
            goes.append(f"otherwise → `{state['Default']}`")
        if "Next" in state:
            goes.append(f"`{state['Next']}`")
        if state.get("End"):
            goes.append("end")
        retries = sorted({e for r in state.get("Retry", []) for e in r["ErrorEquals"]})
        catches = [f"{', '.join(c['ErrorEquals'])} → `{c['Next']}`" for c in state.get("Catch", [])]
        param = state.get("Parameters") or {}
        kind = state.get("Type", "")
        if "kind" in param:
            kind += f" (notice `{param['kind']}`)"
        timeout = state.get("TimeoutSeconds") or state.get("TimeoutSecondsPath") or ""
        rows.append(f"| `{prefix}{name}` | {_cell(kind)} | {_cell('; '.join(goes))} | {_cell(', '.join(retries))} | "
                    f"{_cell('; '.join(catches))} | {_cell(str(timeout))} | {_cell(state.get('Comment', ''))} |")
        inner = state.get("ItemProcessor") or state.get("Iterator")
        if inner:
            rows += _state_rows(inner.get("States", {}), prefix=f"{name} / ")
    return rows


def workflow(name: str) -> dict[str, Any]:
    return json.loads((REPO / "remediator" / "workflow" / name).read_text(encoding="utf-8"))


def all_states(definition: dict[str, Any]) -> list[str]:
    names: list[str] = []
    for name, state in definition.get("States", {}).items():
        names.append(name)
        inner = state.get("ItemProcessor") or state.get("Iterator")
        if inner:
            names += all_states(inner)
    return names


def state_machine_markdown(name: str = "definition.json") -> str:
    definition = workflow(name)
    lines = ["```mermaid", "stateDiagram-v2", "    direction TB",
             "    classDef choice fill:#fff3cd,stroke:#b58900",
             "    classDef failure fill:#f8d7da,stroke:#a00"]
    lines += _diagram_lines(definition["States"], definition["StartAt"])
    lines += [f"    class {n} choice" for n, s in definition["States"].items() if s.get("Type") == "Choice"]
    lines += [f"    class {n} failure" for n, s in definition["States"].items() if s.get("Type") == "Fail"]
    lines += ["```", "", f"Drawn from `remediator/workflow/{name}` when the site is built. Choice states are yellow.", "",
              "| state | type | next | retried on | caught | timeout (s) | comment |", "|---|---|---|---|---|---|---|"]
    lines += _state_rows(definition["States"])
    return "\n".join(lines) + "\n"


# ---- the notices --------------------------------------------------------------------------------------------


def _dict_keys(node: ast.Dict) -> list[str]:
    """The constant keys of a dict literal, those of a `**{...}` (or `**({...} if ... else {})`) inside it too."""
    keys: list[str] = []
    for key, value in zip(node.keys, node.values):
        if isinstance(key, ast.Constant) and isinstance(key.value, str):
            keys.append(key.value)
        elif key is None:  # ** unpacking: whichever dict literals it may unpack
            keys += [k for sub in ast.walk(value) if isinstance(sub, ast.Dict) for k in _dict_keys(sub)]
    return keys


def _subscript_keys(nodes: Iterable[ast.AST], names: tuple[str, ...]) -> list[str]:
    keys = []
    for node in nodes:
        for sub in ast.walk(node):
            if (isinstance(sub, ast.Assign) and isinstance(sub.targets[0], ast.Subscript)
                    and isinstance(sub.targets[0].value, ast.Name) and sub.targets[0].value.id in names
                    and isinstance(sub.targets[0].slice, ast.Constant)):
                keys.append(sub.targets[0].slice.value)
    return keys


def _kinds_of(test: ast.expr) -> tuple[str, ...]:
    """The kinds an `if kind == "x"` / `if kind in ("x", "y")` test names."""
    if isinstance(test, ast.Compare) and isinstance(test.left, ast.Name) and test.left.id == "kind":
        right = test.comparators[0]
        if isinstance(right, ast.Constant):
            return (right.value,)
        if isinstance(right, (ast.Tuple, ast.List)):
            return tuple(e.value for e in right.elts if isinstance(e, ast.Constant))
    return ()


def _module(*parts: str) -> ast.Module:
    return ast.parse(REPO.joinpath(*parts).read_text(encoding="utf-8"))


def _function(tree: ast.Module, name: str) -> ast.FunctionDef:
    return next(n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef) and n.name == name)


def _kinded_dicts(tree: ast.AST) -> dict[str, list[str]]:
    """Dict literals with a constant "kind": that kind's fields."""
    found: dict[str, list[str]] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Dict):
            for key, value in zip(node.keys, node.values):
                if isinstance(key, ast.Constant) and key.value == "kind" and isinstance(value, ast.Constant):
                    found.setdefault(value.value, []).extend(_dict_keys(node))
    return found


def notice_fields() -> dict[str, list[str]]:
    """Every field the code puts in each notice, read from the code that builds it."""
    fields: dict[str, list[str]] = {}
    handler = _function(_module("remediator", "functions", "notify.py"), "handler")
    subjects = next(n for n in ast.walk(handler) if isinstance(n, ast.Assign)
                    and isinstance(n.targets[0], ast.Name) and n.targets[0].id == "subjects")
    kinds = _dict_keys(subjects.value)  # type: ignore[arg-type]
    body = next(n for n in ast.walk(handler) if isinstance(n, ast.Assign)
                and isinstance(n.targets[0], ast.Name) and n.targets[0].id == "body")
    common = _dict_keys(body.value)  # type: ignore[arg-type]
    per_kind: dict[str, list[str]] = {kind: [] for kind in kinds}
    for node in handler.body:
        if isinstance(node, ast.If):
            named = _kinds_of(node.test)
            keys = [k for k in _subscript_keys([node], ("body",)) if k != "lost_update"]
            for kind in named or ():
                per_kind.setdefault(kind, []).extend(keys)
            if not named:
                common += keys
    for kind in kinds:
        fields[kind] = list(dict.fromkeys([k for k in common if k != "lost_update"] + per_kind[kind]))
    sweep = _kinded_dicts(_module("remediator", "functions", "sweep.py"))
    fields["summary"] = list(dict.fromkeys(sweep.get("summary", [])))
    summarize = _module("remediator", "functions", "summarize.py")
    kinded = _kinded_dicts(summarize)
    fields["organization-summary"] = list(dict.fromkeys(
        kinded.get("organization-summary", []) + _subscript_keys([_function(summarize, "handler")], ("summary",))
        + [k for k in _subscript_keys([_function(summarize, "bounded")], ("message",))]
        + ["full_summary"]))
    fields["not-enrolled"] = list(dict.fromkeys(kinded.get("not-enrolled", [])))
    written_over = _function(_module("remediator", "functions", "evaluate.py"), "_written_over")
    lost = next(n for n in ast.walk(written_over) if isinstance(n, ast.Assign)
                and isinstance(n.targets[0], ast.Name) and n.targets[0].id == "lost")
    fields["lost-update"] = ["lost_update"] + _dict_keys(lost.value)  # type: ignore[arg-type]
    return fields


def missing_fields(kind: str, page: str) -> list[str]:
    """The fields of a notice that a page never names (as `field`)."""
    return [f for f in notice_fields().get(kind, []) if f"`{f}`" not in page]


# ---- MkDocs hook ---------------------------------------------------------------------------------------------

def infra_readme_markdown() -> str:
    """infra/README.md as it is: the stack's own reference, kept beside the code it describes."""
    return (REPO / "infra" / "README.md").read_text(encoding="utf-8")


GENERATORS = {
    "cli": cli_markdown,
    "infra-readme": infra_readme_markdown,
    "settings": settings_markdown,
    "state-machine": lambda: state_machine_markdown("definition.json"),
    "org-sweep": lambda: state_machine_markdown("org_sweep.json"),
}


def render(markdown: str, where: str = "") -> str:
    """Replace each marker of a page by its generated part; a notice-fields marker is checked and removed."""

    def replace(match: re.Match[str]) -> str:
        name, arg = match["name"], match["arg"]
        if name == "notice-fields":
            if arg not in notice_fields():
                log.warning("%s: no notice of kind %r is sent by the code", where, arg)
            for field in missing_fields(arg or "", markdown):
                log.warning("%s: the %s notice's field `%s` is not documented on this page", where, arg, field)
            return ""
        if name not in GENERATORS:
            log.warning("%s: unknown docs-gen marker %r", where, name)
            return match.group(0)
        return GENERATORS[name]()

    return MARKER.sub(replace, markdown)


def on_page_markdown(markdown: str, page: Any, config: Any, files: Any) -> str:
    return render(markdown, page.file.src_path)


if __name__ == "__main__":
    what = sys.argv[1] if len(sys.argv) > 1 else "cli"
    if what == "notices":
        print(json.dumps(notice_fields(), indent=2))
    else:
        print(GENERATORS[what](), end="")
