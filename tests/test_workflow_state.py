"""The execution's typed state: what each state writes reads back the same, and what is not a state is refused."""

from __future__ import annotations

import pytest

from remediator.functions import record
from remediator.local import cloudtrail
from remediator.events import parse_event
from remediator.workflow.errors import RemediationFailed
from remediator.workflow.state import Applied, Evaluation, Redeployed, StateError, WorkflowState
from tests.conftest import OWNER


def change() -> dict:
    return parse_event(cloudtrail.api_call_event("UpdateRestApi", "abcde12345", "eu-west-1", OWNER)).to_dict()


def test_every_part_reads_back_as_written() -> None:
    evaluation = Evaluation("fix", "auto", '{"Statement":[]}', 1, 3600, "eu-west-1", "abcde12345", "api", False, False,
                            [{"kind": "untrusted-account"}], [{"op": "replace", "path": "/policy", "value": "{}"}])
    applied = Applied("patched", "policy written", True, "before", "after", evaluation.patch_operations, {"findings": [{"k": 1}]})
    redeployed = Redeployed("deployed", ["prod", "dev"], "d1", ["gone"])
    raw = {"change": change(), "source": "sweep", "evaluation": evaluation.to_dict(), "applied": applied.to_dict(),
           "redeploy": redeployed.to_dict(), "error": {"Error": "X"}, "later": "a newer writer's key"}
    state = WorkflowState.from_dict(raw)
    assert (state.evaluation, state.applied, state.redeploy, state.source) == (evaluation, applied, redeployed, "sweep")
    assert state.get("error") == {"Error": "X"} and applied.findings == [{"k": 1}]
    assert Applied("stale").findings is None


@pytest.mark.parametrize("raw, message", [
    (None, "not an object"),
    ({}, "no valid change"),
    ({"change": {"api_id": "x"}}, "no valid change"),
    ({"change": change(), "evaluation": {"mode": "auto"}}, r"state: evaluation: Object missing required field `verdict`"),
    ({"change": change(), "applied": {"detail": "x"}}, r"state: applied: Object missing required field `outcome`"),
    ({"change": change(), "redeploy": ["prod"]}, r"redeploy: Expected `object | null`, got `array`"),
])
def test_what_is_not_a_state_is_refused_in_one_line(raw, message: str) -> None:
    with pytest.raises(StateError, match=message) as refused:
        WorkflowState.from_dict(raw)
    assert "\n" not in str(refused.value)


def test_a_handler_given_no_state_fails_cleanly() -> None:
    with pytest.raises(RemediationFailed, match="not a workflow state"):
        record.handler({"input": {"change": {"api_id": "x"}}, "execution": "e"})
