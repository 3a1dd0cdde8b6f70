"""The local interpreter's ItemBatcher (remediator/local/express.py), held to what Step Functions documents (Step
Functions developer guide, "ItemBatcher (Map)", https://docs.aws.amazon.com/step-functions/latest/dg/
input-output-itembatcher.html): the items in order, at most MaxItemsPerBatch (or the number at MaxItemsPerBatchPath)
a batch, each child's input {"Items": [...]} with "BatchInput" beside it when the Map has one. What it does not
apply is refused, never ignored."""

from __future__ import annotations

import json
import re

import pytest
from moto.stepfunctions.parser.asl.parse.asl_parser import AmazonStateLanguageParser

from remediator import workflow
from remediator.functions import plan, sweep
from remediator.local import express

express.install()


def test_items_go_in_order_into_batches_of_at_most_the_size() -> None:
    items = [{"account": f"{n:012d}"} for n in range(23)]
    made = express.batches(items, {"MaxItemsPerBatch": 10}, {})
    assert [len(b["Items"]) for b in made] == [10, 10, 3]
    assert [i for b in made for i in b["Items"]] == items and all(set(b) == {"Items"} for b in made)
    by_path = express.batches(items, {"MaxItemsPerBatchPath": "$.plan.accounts_per_child", "BatchInput": {"k": "v"}},
                              {"plan": {"accounts_per_child": 5}})
    assert [len(b["Items"]) for b in by_path] == [5, 5, 5, 5, 3] and all(b["BatchInput"] == {"k": "v"} for b in by_path)
    assert express.batches([], {"MaxItemsPerBatch": 10}, {}) == []
    for size in (0, -1, "10", True, 2.5):
        with pytest.raises(ValueError, match="positive integer"):
            express.batches(items, {"MaxItemsPerBatchPath": "$.n"}, {"n": size})


def _machine(map_fields: dict) -> str:
    return json.dumps({"StartAt": "M", "States": {"M": {
        "Type": "Map", "ItemReader": {"Resource": "arn:aws:states:::s3:getObject", "ReaderConfig": {"InputType": "JSON"},
                                      "Parameters": {"Bucket": "b", "Key": "k"}},
        **map_fields,
        "ItemProcessor": {"ProcessorConfig": {"Mode": "DISTRIBUTED", "ExecutionType": "EXPRESS"}, "StartAt": "P",
                          "States": {"P": {"Type": "Pass", "End": True}}},
        "End": True}}})


def test_the_organization_sweep_batches_the_plans_accounts() -> None:
    """The deployed definition parses, its Map carrying the batcher; the size is the plan's (sweep.ACCOUNTS_PER_CHILD)."""
    text = re.sub(r"\$\{(\w+)\}", "arn:aws:lambda:us-east-1:111122223333:function:f", workflow.definition_text("org_sweep.json"))
    program, _ = AmazonStateLanguageParser.parse(text)
    state = program.states.states["SweepEachAccount"]
    assert state.iteration_component.local_item_batcher == {"MaxItemsPerBatchPath": "$.plan.accounts_per_child"}
    assert plan.ACCOUNTS_PER_CHILD == sweep.ACCOUNTS_PER_CHILD <= sweep.MAX_ACCOUNTS_PER_CHILD
    assert "ItemSelector" not in json.loads(text)["States"]["SweepEachAccount"]


@pytest.mark.parametrize("fields, refused", [
    ({"ItemBatcher": {"MaxItemsPerBatch": 2}, "ItemSelector": {"a.$": "$$.Map.Item.Value"}}, "no ItemSelector"),
    ({"ItemBatcher": {"MaxInputBytesPerBatch": 1024}}, "one of MaxItemsPerBatch"),
    ({"ItemBatcher": {"MaxItemsPerBatch": 2, "MaxItemsPerBatchPath": "$.n"}}, "one of MaxItemsPerBatch"),
])
def test_what_the_local_interpreter_does_not_apply_is_refused(fields: dict, refused: str) -> None:
    with pytest.raises(ValueError, match=refused):
        AmazonStateLanguageParser.parse(_machine(fields))
    nested = json.loads(_machine({}))
    nested["States"]["M"]["ItemProcessor"]["States"]["P"] = json.loads(_machine({"ItemBatcher": {"MaxItemsPerBatch": 2}}))["States"]["M"]
    with pytest.raises(ValueError, match="top-level Map states only"):
        AmazonStateLanguageParser.parse(json.dumps(nested))
