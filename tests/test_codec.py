"""One codec (remediator.codec) for everything the bot stores or passes between steps: each shape is one Struct,
encoded to the JSON the stores and Step Functions carry and decoded strictly back; no hand-written pair remains."""

from __future__ import annotations

import copy
import importlib
import json
import pkgutil
import re
from pathlib import Path
from typing import Any

import pytest

import remediator
from remediator.approvals import ApprovalRequest
from remediator.audit import AuditRecord
from remediator.codec import Passed, Record, StoredError, decode, encode
from remediator.core.access import MethodReach
from remediator.core.undeployed import UndeployedChange
from remediator.events import ApiChange, Caller, EventError, parse_event
from remediator.journal import Intent, JournalError, PlannedStage
from remediator.local import cloudtrail
from remediator.workflow.state import Applied, Evaluation, Redeployed, StateError, WorkflowState
from tests.conftest import OWNER
from tests.test_untrusted_state import APPROVAL, INTENT, RECORD, UNDEPLOYED

ROOT = Path(__file__).resolve().parents[1]

# The methods named to_dict/from_dict that are not a per-type codec pair, and why.
NOT_PAIRS = {
    "remediator/codec.py": "the one pair every Record shares",
    "remediator/audit.py": "AuditRecord.from_dict words a record that is not an object as its readers always did",
    "remediator/workflow/state.py": "WorkflowState.from_dict checks the change first and keeps the whole state (raw)",
    "remediator/core/trust.py": "the engine's Finding (a NamedTuple on the hot path) and Evaluation: reports, never read back",
    "remediator/core/access.py": "Reach.to_dict: a report (methods listed up to a limit, a digest), never read back",
    "remediator/transaction/planning.py": "ApiReport.to_dict: a report of one API, never read back",
    "remediator/transaction/outcomes.py": "FixOutcome.to_dict: a report of one fix, never read back",
    "remediator/core/trust_config.py": "TrustConfig: the engine's configuration (frozensets, a memo), not a stored shape",
}

CHANGE = parse_event(cloudtrail.api_call_event("UpdateRestApi", "abcde12345", "eu-west-1", OWNER))
METHOD = {"path": "/", "http_method": "GET", "authorization_type": "NONE", "api_key_required": False, "caller": "anyone",
          "gates": ["anyone"], "conditions": [], "severity": "high"}
EVALUATION = Evaluation("fix", "auto", "{}", findings=[{"kind": "untrusted-account"}]).to_dict()
# Every Struct the codec decodes, with a good encoded value and a field whose type is wrong.
SAMPLES: dict[type, tuple[dict[str, Any], str]] = {
    Intent: (INTENT, "fence"),
    PlannedStage: (INTENT["stages"][0], "deployment_id"),
    AuditRecord: (RECORD, "stages_redeployed"),
    ApprovalRequest: (APPROVAL, "expires_at"),
    ApiChange: (CHANGE.to_dict(), "event_id"),
    Caller: (CHANGE.to_dict()["caller"], "type"),
    UndeployedChange: (UNDEPLOYED, "now"),
    MethodReach: (METHOD, "api_key_required"),
    Evaluation: (EVALUATION, "failures"),
    Applied: (Applied("patched", "written", True, "a", "b").to_dict(), "replanned"),
    Redeployed: (Redeployed("deployed", ["prod"], "abc123").to_dict(), "stages"),
    WorkflowState: ({"change": CHANGE.to_dict(), "source": "sweep", "evaluation": EVALUATION}, "source"),
}
ERRORS = {Intent: JournalError, PlannedStage: JournalError, ApiChange: EventError, Caller: EventError,
          Evaluation: StateError, Applied: StateError, Redeployed: StateError, WorkflowState: StateError}


def _records() -> set[type]:
    for module in pkgutil.walk_packages(remediator.__path__, "remediator."):
        if not module.name.startswith(("remediator.local", "remediator.cli")) and not module.name.endswith("__main__"):
            importlib.import_module(module.name)
    found: set[type] = set()
    todo = [Record]
    while todo:
        for sub in todo.pop().__subclasses__():
            todo.append(sub)
            if sub.__module__.startswith("remediator.") and sub.__struct_fields__:
                found.add(sub)
    return found


def test_no_hand_written_pair_remains() -> None:
    """to_dict/from_dict only where a stated reason says it is not a codec pair (NOT_PAIRS)."""
    pair = re.compile(r"^\s+def (to_dict|from_dict)\(", re.M)
    defined = {str(path.relative_to(ROOT)) for path in (ROOT / "remediator").rglob("*.py") if pair.search(path.read_text())}
    assert defined <= set(NOT_PAIRS), sorted(defined - set(NOT_PAIRS))


def test_every_struct_the_codec_decodes_has_a_sample() -> None:
    assert _records() == set(SAMPLES), "a new Record needs a sample here (and a reader that refuses what is wrong)"


@pytest.mark.parametrize("kind", list(SAMPLES), ids=lambda kind: kind.__name__)
def test_each_struct_reads_back_as_written_and_refuses_a_wrong_type(kind: type) -> None:
    good, field = SAMPLES[kind]
    value = kind.from_dict(copy.deepcopy(good))
    assert json.loads(json.dumps(value.to_dict())) == value.to_dict()
    assert kind.from_dict(value.to_dict()) == (value if kind is not WorkflowState else kind.from_dict(value.to_dict()))
    error = ERRORS.get(kind, StoredError)
    wrong = {**good, field: {"not": "this"}}
    with pytest.raises(error) as refused:
        kind.from_dict(wrong)
    assert "\n" not in str(refused.value) and field in str(refused.value), str(refused.value)


@pytest.mark.parametrize("kind", [k for k in SAMPLES if not issubclass(k, Passed)], ids=lambda kind: kind.__name__)
def test_each_stored_struct_refuses_an_unknown_field(kind: type) -> None:
    good, _ = SAMPLES[kind]
    with pytest.raises(ERRORS.get(kind, StoredError), match="unknown field `planted`"):
        kind.from_dict({**good, "planted": 1})


@pytest.mark.parametrize("kind", [k for k in SAMPLES if issubclass(k, Passed)], ids=lambda kind: kind.__name__)
def test_the_workflows_parts_ignore_a_key_another_version_wrote(kind: type) -> None:
    """An execution in flight across a deploy reads what the other version wrote (remediator.codec.Passed)."""
    good, _ = SAMPLES[kind]
    assert kind.from_dict({**good, "later": 1}) == kind.from_dict(good) or kind is WorkflowState
    assert "later" not in kind.from_dict({**good, "later": 1}).to_dict() or kind is WorkflowState


@pytest.mark.parametrize("part, value, message", [
    ("findings", [{**RECORD["findings"][0], "statement_index": "0"}], "findings[0].statement_index: Expected `int`, got `str`"),
    ("trust", {**RECORD["trust"], "partition": "mars"}, "trust.partition: Invalid enum value 'mars'"),
    ("undeployed", [UNDEPLOYED, {**UNDEPLOYED, "planted": 1}], "undeployed[1]: Object contains unknown field `planted`"),
    ("patch_operations", [{"op": "steal", "path": "/policy"}], "patch_operations[0].op: Invalid enum value 'steal'"),
])
def test_a_nested_part_is_checked_against_its_struct_and_named_by_its_path(part: str, value: Any, message: str) -> None:
    with pytest.raises(StoredError) as refused:
        AuditRecord.from_dict({**RECORD, part: value}, "audit.jsonl:3")
    assert str(refused.value).startswith(f"audit.jsonl:3: {message}"), str(refused.value)


def test_encoded_is_what_json_carries() -> None:
    """Tuples become lists, nested parts plain dicts: the value in hand equals what a store gives back."""
    assert MethodReach.from_dict(METHOD).gates == ("anyone",)  # as the type says; encoded, a list
    encoded = encode(MethodReach("/", "GET", "NONE", False, "anyone", ("anyone",)))
    assert encoded["gates"] == ["anyone"] and type(encoded["gates"]) is list
    record = AuditRecord.from_dict(RECORD)
    assert [type(f) for f in record.to_dict()["findings"]] == [dict] and record.to_dict() == RECORD


def test_a_policy_keeps_its_lone_surrogates() -> None:
    """A policy is kept exactly as API Gateway returned it, even with an unpaired escape in it."""
    policy = json.loads('"{\\"Statement\\": \\"\\ud800\\"}"')
    assert decode({**RECORD, "policy_before": policy}, AuditRecord, "x").to_dict()["policy_before"] == policy
