"""Express child executions of a Distributed Map, as the local runner runs them.

The emulator's interpreter knows Distributed Map children of type STANDARD only (its grammar has no EXPRESS): it runs
each child inside the parent, its states in the parent's history. Step Functions runs a Map whose ItemProcessor says
`"ProcessorConfig": {"Mode": "DISTRIBUTED", "ExecutionType": "EXPRESS"}` as Express executions, which differ in what
the runner must keep apart (Step Functions developer guide, "Choosing workflow type in Step Functions",
https://docs.aws.amazon.com/step-functions/latest/dg/choosing-workflow-type.html):

- billing: Standard is billed per state transition; Express per request and per GB-second of duration, never per
  transition ("AWS Step Functions pricing", https://aws.amazon.com/step-functions/pricing/). So an Express child's
  states are not the parent's transitions: they are counted here, per child (`CHILDREN`), not in the parent's history;
- duration: an Express execution runs at most 5 minutes ("Maximum duration: 5 minutes"); a child that ran longer on the
  local clock fails with States.Timeout, and the parent's results list it as failed;
- semantics: at-least-once ("Execution semantics: at-least-once"): `REPEATS` runs each child that many times (its last
  run's output is the result), so a test can show that a second run changes nothing.

Its grammar has no `ItemBatcher` either. A Map's ItemBatcher is taken out of the text the grammar reads and applied
where the interpreter hands the items to the children, as Step Functions documents it (Step Functions developer guide,
"ItemBatcher (Map)", https://docs.aws.amazon.com/step-functions/latest/dg/input-output-itembatcher.html): the items go
in order into batches of at most `MaxItemsPerBatch` (or the number at `MaxItemsPerBatchPath` in the Map's input), and
each child's input is `{"Items": [...]}`, with `"BatchInput"` beside it when the Map has one.

Nothing here changes the definition: the runner gives the emulator the definition as the stack deploys it.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from typing import Any

from moto.stepfunctions.parser.asl.antlr.runtime.ASLParser import ASLParser
from moto.stepfunctions.parser.asl.component.state.exec.state_map.execution_type import ExecutionType
from moto.stepfunctions.parser.asl.component.state.exec.state_map.iteration.itemprocessor import (
    distributed_item_processor as processor_module,
)
from moto.stepfunctions.parser.asl.component.state.exec.state_map.iteration.itemprocessor.distributed_item_processor_worker import (
    DistributedItemProcessorWorker,
)
from moto.stepfunctions.parser.asl.component.state.exec.state_map.iteration.distributed_iteration_component import (
    DistributedIterationComponent,
)
from moto.stepfunctions.parser.asl.component.state.exec.state_map.state_map import StateMap
from moto.stepfunctions.parser.asl.eval.event.event_manager import EventManager
from moto.stepfunctions.parser.asl.parse.asl_parser import AmazonStateLanguageParser
from moto.stepfunctions.parser.asl.parse.preprocessor import Preprocessor
from moto.stepfunctions.parser.asl.utils.json_path import extract_json

EXPRESS = '"EXPRESS"'
MAX_SECONDS = 300.0  # "Maximum duration: 5 minutes"
REPEATS = 1  # how many times each Express child runs (at-least-once: set 2 to run each twice)


@dataclass
class ExpressChild:
    """One Express child execution: what Step Functions bills it on (a request and its duration), and what it did."""

    map_state: str
    input: Any
    states: list[str] = field(default_factory=list)  # the states it entered: not Standard transitions
    events: int = 0  # the history events it logged (Express logs them to CloudWatch Logs, at level ALL)
    log_bytes: int = 0  # those log lines' size, without execution data (the stack's include_execution_data=False)
    lambda_invocations: int = 0
    seconds: float = 0.0  # its duration on the local clock
    status: str = "RUNNING"
    run: int = 1  # 1, or the run's number when REPEATS runs it again


CHILDREN: list[ExpressChild] = []
_lock = threading.Lock()


class _ChildEvents(EventManager):
    """An Express child's history: counted for its record, never added to the parent's."""

    def __init__(self, record: ExpressChild) -> None:
        super().__init__(cloud_watch_logging_session=None)
        self.record = record

    def add_event(self, context: Any, event_type: Any, event_details: Any = None, timestamp: Any = None,
                  update_source_event_id: bool = True) -> int:
        name = getattr(event_type, "value", str(event_type))
        self.record.events += 1
        self.record.log_bytes += log_line_bytes(name, event_details)
        if name.endswith("StateEntered") and event_details is not None:
            self.record.states.append(event_details["stateEnteredEventDetails"]["name"])
        if name == "LambdaFunctionScheduled":
            self.record.lambda_invocations += 1
        return super().add_event(context, event_type, event_details, timestamp, update_source_event_id)


# A state machine's log line besides its details: id, previous_event_id, event_timestamp, execution_arn and type, as
# Step Functions writes them (Step Functions developer guide, "Logging Step Functions using CloudWatch Logs", its
# example log line: about 200 bytes of envelope with a 90-character execution ARN).
LOG_ENVELOPE_BYTES = 200
EXECUTION_DATA = ("input", "output", "inputDetails", "outputDetails", "parameters")


def log_line_bytes(event_type: str, details: Any) -> int:
    """One history event's CloudWatch Logs line, without execution data (include_execution_data=False)."""
    def without_data(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: without_data(v) for k, v in value.items() if k not in EXECUTION_DATA}
        return value

    return LOG_ENVELOPE_BYTES + len(event_type) + len(json.dumps(without_data(details or {}), default=str))


def _execution_type(parser: Any) -> Any:
    """ASL's execution_type rule, taking "EXPRESS" besides "STANDARD"."""
    localctx = ASLParser.Execution_typeContext(parser, parser._ctx, parser.state)
    parser.enterRule(localctx, 138, ASLParser.RULE_execution_type)
    try:
        parser.enterOuterAlt(localctx, 1)
        parser.state = 824
        if parser._input.LT(1).text == EXPRESS:
            parser._errHandler.reportMatch(parser)
            parser.consume()
        else:
            parser.match(ASLParser.STANDARD)
    finally:
        parser.exitRule()
    return localctx


def _processor_config(original: Any) -> Any:
    def visit(self: Any, ctx: Any) -> Any:
        config = original(self, ctx)
        config.local_express = EXPRESS in ctx.getText()
        return config
    return visit


def _execution_decl(original: Any) -> Any:
    def visit(self: Any, ctx: Any) -> Any:
        if ctx.execution_type().getText() == EXPRESS:
            return ExecutionType.Standard  # the emulator runs it; the processor config remembers it is Express
        return original(self, ctx)
    return visit


def _create_worker(original: Any) -> Any:
    def create(self: Any, env: Any, eval_input: Any, job_pool: Any) -> Any:
        worker = original(self, env, eval_input, job_pool)
        worker.local_express = getattr(self._processor_config, "local_express", False)
        return worker
    return create


def _eval_job(original: Any) -> Any:
    def eval_job(self: Any, env: Any, job: Any) -> None:
        if not getattr(self, "local_express", False):
            original(self, env, job)
            return
        from remediator.local.strict import _installed  # the local clock, when the strict account runs

        clock = _installed[0].monotonic if _installed else None
        for run in range(1, REPEATS + 1):
            frame = env if run == REPEATS else env.open_inner_frame()
            record = ExpressChild(self._work_name, job.job_input, run=run)
            frame.event_manager = _ChildEvents(record)
            started = clock() if clock else 0.0
            original(self, frame, job)
            record.seconds = (clock() - started) if clock else 0.0
            record.status = "SUCCEEDED" if job.job_output is not None else "FAILED"
            if record.seconds > MAX_SECONDS:  # past Express's maximum duration: the execution fails
                record.status = "TIMED_OUT"
                job.job_output = {LOCAL_FAILURE: {"Error": "States.Timeout", "Input": job.job_input,
                                                  "Cause": f"the Express child ran {record.seconds:.0f} s, past its "
                                                           f"{MAX_SECONDS:.0f} s maximum duration"}}
            with _lock:
                CHILDREN.append(record)
    return eval_job


# ItemBatcher (Map): what the local interpreter applies; "MaxInputBytesPerBatch(Path)" is not (refused at parse time).
BATCHER_FIELDS = frozenset({"MaxItemsPerBatch", "MaxItemsPerBatchPath", "BatchInput"})


def _parse(original: Any) -> Any:
    """The definition's Map states' ItemBatcher taken out before the grammar reads it, and put on their item
    processors once it is parsed (top-level Map states only: a nested one's batcher is refused, never ignored)."""
    def parse(definition: str) -> Any:
        try:
            document = json.loads(definition)
        except ValueError:
            return original(definition)
        batchers: dict[str, dict[str, Any]] = {}
        for name, state in (document.get("States") or {}).items() if isinstance(document, dict) else ():
            if isinstance(state, dict) and "ItemBatcher" in state:
                batchers[name] = state.pop("ItemBatcher")
        if _has_key(document, "ItemBatcher"):
            raise ValueError("the local interpreter applies ItemBatcher to top-level Map states only")
        for name, batcher in batchers.items():
            if "ItemSelector" in document["States"][name]:  # applied to each item before batching: not done here
                raise ValueError(f"{name}: the local interpreter takes no ItemSelector beside an ItemBatcher")
            unknown = set(batcher) - BATCHER_FIELDS
            sizes = {"MaxItemsPerBatch", "MaxItemsPerBatchPath"} & set(batcher)
            if unknown or len(sizes) != 1:
                raise ValueError(f"{name}: the local interpreter takes an ItemBatcher with one of MaxItemsPerBatch or "
                                 f"MaxItemsPerBatchPath (and BatchInput); got {sorted(batcher)}")
        program, tree = _parsed(original, json.dumps(document) if batchers else definition)
        for name, batcher in batchers.items():
            state = program.states.states[name]
            if not isinstance(state, StateMap):
                raise ValueError(f"{name}: ItemBatcher belongs to a Map state")
            state.iteration_component.local_item_batcher = batcher
        return program, tree
    return parse


# The grammar's parse tree of each definition text, read once: the interpreter parses the definition again at every
# execution's start, and the tree (which nothing changes) is most of that time. The program built from it is made new
# for each execution, since its states keep each run's own counters (a Retrier's attempts).
_trees: dict[str, Any] = {}


def _parsed(original: Any, definition: str) -> Any:
    tree = _trees.get(definition)
    if tree is None:
        program, tree = original(definition)
        with _lock:
            _trees[definition] = tree
        return program, tree
    return Preprocessor().visit(tree), tree


def _has_key(value: Any, key: str) -> bool:
    if isinstance(value, dict):
        return key in value or any(_has_key(v, key) for v in value.values())
    return isinstance(value, list) and any(_has_key(v, key) for v in value)


def batches(items: list[Any], batcher: dict[str, Any], state_input: Any) -> list[dict[str, Any]]:
    """The children's inputs: the items in order, at most MaxItemsPerBatch a batch ("ItemBatcher (Map)")."""
    size = batcher.get("MaxItemsPerBatch")
    if "MaxItemsPerBatchPath" in batcher:
        size = extract_json(batcher["MaxItemsPerBatchPath"], state_input)
    if not isinstance(size, int) or isinstance(size, bool) or size < 1:
        raise ValueError(f"ItemBatcher: the batch size must be a positive integer; got {size!r:.40}")
    extra = {"BatchInput": batcher["BatchInput"]} if "BatchInput" in batcher else {}
    return [{"Items": items[start:start + size], **extra} for start in range(0, len(items), size)]


def _map_run(original: Any) -> Any:
    def map_run(self: Any, env: Any, eval_input: Any) -> None:
        batcher = getattr(self, "local_item_batcher", None)
        if batcher is not None:
            items = env.stack.pop()
            env.stack.append(batches(list(items), batcher, env.states.get_input()))
        original(self, env, eval_input)
    return map_run


LOCAL_FAILURE = "__local_express_failure__"  # a child's output that stands for its failure (the ResultWriter lists it)


def install() -> None:
    """Once per process."""
    if getattr(ASLParser, "_local_express", False):
        return
    ASLParser.execution_type = _execution_type  # type: ignore[method-assign]
    Preprocessor.visitProcessor_config_decl = _processor_config(Preprocessor.visitProcessor_config_decl)  # type: ignore[method-assign]
    Preprocessor.visitExecution_decl = _execution_decl(Preprocessor.visitExecution_decl)  # type: ignore[method-assign]
    processor_module.DistributedItemProcessor._create_worker = _create_worker(  # type: ignore[method-assign]
        processor_module.DistributedItemProcessor._create_worker)
    DistributedItemProcessorWorker._eval_job = _eval_job(DistributedItemProcessorWorker._eval_job)  # type: ignore[method-assign]
    AmazonStateLanguageParser.parse = staticmethod(_parse(AmazonStateLanguageParser.parse))  # type: ignore[method-assign]
    DistributedIterationComponent._map_run = _map_run(DistributedIterationComponent._map_run)  # type: ignore[method-assign]
    ASLParser._local_express = True  # type: ignore[attr-defined]
