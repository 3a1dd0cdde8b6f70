"""The engine's fix written as edits of the file the policy came from: the untrusted entries deleted where
they were written (and a principal, a statement, left with nothing, deleted with them), so that `!Sub`s,
comments and layout elsewhere stay as they were.

An edit set is offered only when it is the engine's fix: the edited file is read again and the policy it
then holds must be exactly the engine's `remediated_policy`; otherwise there is no source fix (the finding
still says what to remove).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from remediator.core import Evaluation, Remediation, compact_json
from remediator.iac.located import MAP, SEQ, Node
from remediator.iac.sources import Entry, FoundPolicy, Link, policies_in


@dataclass(frozen=True)
class Edit:
    """Replace the characters [start, end) of the file with `text`."""

    start: int
    end: int
    text: str


def entry_of(found: FoundPolicy, statement_index: int, principal: str, used: set[int]) -> Entry | None:
    """The entry a finding names: in its statement, the first not yet claimed whose text is the principal."""
    if not 0 <= statement_index < len(found.statements):
        return None
    for entry in found.statements[statement_index].entries:
        if id(entry) not in used and entry.value == principal:
            used.add(id(entry))
            return entry
    return None


def source_fix(found: FoundPolicy, evaluation: Evaluation) -> list[Edit] | None:
    """The edits that make the file hold the engine's fix; None when there is no fix or none can be written."""
    if not found.editable or evaluation.remediated_policy is None:
        return None
    used: set[int] = set()
    entries: dict[int, Entry] = {}
    for finding in evaluation.findings:
        if finding.remediation != Remediation.REMOVE:
            continue
        entry = entry_of(found, finding.statement_index, finding.principal, used)
        if entry is None or not entry.chain:
            return None
        entries.setdefault(id(entry.node), entry)  # SAM: one list item behind a statement per path
    plan = _Plan(found)
    for entry in entries.values():
        plan.remove(entry.chain, 0)
    edits = plan.edits(evaluation.remediated_policy)
    if edits is None or not _reproduces(found, edits, evaluation.remediated_policy):
        return None
    return edits


class _Plan:
    def __init__(self, found: FoundPolicy) -> None:
        self.found = found
        self.document = found.document
        self.removed: dict[int, tuple[Node, set[int]]] = {}
        self.emptied: dict[int, Node] = {}
        self.owner = False  # every statement went: the engine writes the owner's statement instead

    def remove(self, chain: list[Link], level: int) -> None:
        link = chain[level]
        if link.container is self.found.policy_node:
            self.owner = True
            return
        _, indices = self.removed.setdefault(id(link.container), (link.container, set()))
        indices.add(link.index)
        if len(indices) == len(link.container.value):
            if level + 1 < len(chain):
                self.remove(chain, level + 1)
            else:
                self.emptied[id(link.container)] = link.container

    def edits(self, remediated: Any) -> list[Edit] | None:
        edits: list[Edit] = []
        text = self.document.text
        if self.owner:
            policy = self.found.policy_node
            index = next(i for i, (key, _) in enumerate(policy.value) if key.value == "Statement")  # type: ignore[union-attr]
            key, value = policy.value[index]  # type: ignore[union-attr]
            edits.append(Edit(key.end, content_end(value), ": " + compact_json(remediated["Statement"])))  # numbers as written
        for node in self.emptied.values():
            edits.append(Edit(node.start, content_end(node), "[]" if node.kind == SEQ else "{}"))
        for container, indices in self.removed.values():
            if len(indices) == len(container.value):
                continue  # removed whole, by its parent or emptied
            made = self._deletions(container, sorted(indices))
            if made is None:
                return None
            edits += made
        edits.sort(key=lambda edit: (edit.start, -edit.end))
        kept: list[Edit] = []
        for edit in edits:  # an edit inside another (a statement's entry inside the statement) is already done
            if kept and edit.start >= kept[-1].start and edit.end <= kept[-1].end:
                continue
            if kept and edit.start < kept[-1].end:
                return None  # overlapping edits: no safe rewrite
            kept.append(edit)
        if any(not 0 <= edit.start <= edit.end <= len(text) for edit in kept):
            return None
        return kept

    def _deletions(self, container: Node, indices: list[int]) -> list[Edit] | None:
        spans = [(item.start, content_end(item)) for item in container.value] if container.kind == SEQ else \
            [(key.start, content_end(value)) for key, value in container.value]
        document = self.document
        if not container.flow:  # YAML block style: each child's whole lines
            edits = []
            for index in indices:
                start = document.line_start(spans[index][0])
                lead = document.text[start:spans[index][0]].strip()
                if lead not in (("-",) if container.kind == SEQ else ("",)):
                    return None
                edits.append(Edit(start, document.line_end(max(spans[index][1] - 1, spans[index][0])), ""))
            return edits
        edits = []
        runs: list[list[int]] = []
        for index in indices:
            if runs and runs[-1][-1] == index - 1:
                runs[-1].append(index)
            else:
                runs.append([index])
        last = len(spans) - 1
        for run in runs:
            if run[-1] < last:  # up to the next kept child: the run and the commas after it
                edits.append(Edit(spans[run[0]][0], spans[run[-1] + 1][0], ""))
            else:  # the run ends the list: from the end of the kept child before it
                edits.append(Edit(spans[run[0] - 1][1], spans[run[-1]][1], ""))
        return edits


def content_end(node: Node) -> int:
    """Where a node's own text ends: a YAML block collection's end mark is the next token's start."""
    if node.kind in (MAP, SEQ) and not node.flow and node.value:
        last = node.value[-1]
        return content_end(last[1] if node.kind == MAP else last)
    return node.end


def apply(text: str, edits: list[Edit]) -> str:
    for edit in sorted(edits, key=lambda e: e.start, reverse=True):
        text = text[:edit.start] + edit.text + text[edit.end:]
    return text


def _reproduces(found: FoundPolicy, edits: list[Edit], remediated: Any) -> bool:
    """Whether the edited file holds exactly the engine's fixed policy, read the way the original was."""
    if found.deployment is None:
        return False
    try:
        again = policies_in(found.path, apply(found.document.text, edits), found.deployment)
    except Exception:  # noqa: BLE001 - an edit that breaks the file is no fix
        return False
    match = [policy for policy in again if policy.key == found.key]
    if len(match) != 1 or match[0].policy_text is None:
        return False
    try:
        return bool(json.loads(match[0].policy_text) == json.loads(compact_json(remediated)))
    except ValueError:
        return False
