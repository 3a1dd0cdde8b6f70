"""EventBridge's rule matching, for the local account: which events a rule's pattern delivers.

Pure: no AWS calls. moto's events backend has a matcher (moto.events.models.EventPattern) but it does not
descend into arrays of objects (a CloudTrail record's `patchOperations` is one), so a pattern on
`patchOperations.path` would match every event there; `install()` puts this one in its place, so that the local
runner delivers to the trigger exactly what the stack's rule would.

The semantics are EventBridge's, as its user guide states them ("Content filtering in Amazon EventBridge event
patterns", https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-event-patterns-content-based-filtering.html;
"Arrays in Amazon EventBridge event patterns",
https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-event-patterns-arrays.html;
"Comparison operators for use in event patterns",
https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-create-pattern-operators.html):

- every field the pattern names must be in the event, with the same nesting, and match one of the pattern's values;
- "If the value in the event is an array, then the event pattern matches if the intersection of the pattern value
  array and the event array is non-empty"; an array of objects is matched field by field, each field's values being
  those of every element (the event is flattened);
- comparison operators (`prefix`, `exists`, ...) "only work on leaf nodes": `exists` on an object is not a match;
  `exists: false` matches a field with no value at all; every other filter needs a value;
- `$or`: any of its alternatives.

Only the filters below are modelled; any other fails loudly (a pattern this cannot judge is never passed as matching).
Two fields of one array of objects in one pattern object are refused too: EventBridge matches them within one element,
which the flattening here does not model.
"""

from __future__ import annotations

import json
from typing import Any

_MISSING: tuple[Any, ...] = ()


class PatternUnsupported(ValueError):
    """A pattern this matcher does not model; nothing is decided from it."""


def matches(pattern: dict[str, Any], event: dict[str, Any]) -> bool:
    """Whether EventBridge would deliver `event` to a rule with `pattern`."""
    if not isinstance(pattern, dict):
        raise PatternUnsupported(f"a pattern is a JSON object, not {type(pattern).__name__}")
    flat: dict[str, list[Any]] = {}
    arrays: set[str] = set()
    _flatten(event, "", flat, arrays)
    return _object(pattern, "", flat, arrays)


def _flatten(node: Any, path: str, flat: dict[str, list[Any]], arrays: set[str]) -> None:
    """Every leaf value by its dotted path; an array's elements are values of the array's own path."""
    if isinstance(node, dict):
        for key, value in node.items():
            _flatten(value, f"{path}.{key}" if path else key, flat, arrays)
    elif isinstance(node, list):
        if any(isinstance(item, dict) for item in node):
            arrays.add(path)
        for item in node:
            _flatten(item, path, flat, arrays)
    else:
        flat.setdefault(path, []).append(node)


def _object(pattern: dict[str, Any], path: str, flat: dict[str, list[Any]], arrays: set[str]) -> bool:
    fields = [key for key in pattern if key != "$or"]
    if len(fields) > 1 and any(path == a or path.startswith(a + ".") for a in arrays):
        raise PatternUnsupported(f"the pattern names {len(fields)} fields of the array of objects at {path!r}")
    for key, value in pattern.items():
        if key == "$or":
            if not isinstance(value, list) or len(value) < 2:
                raise PatternUnsupported("$or takes a list of at least two patterns")
            if not any(_object(alternative, path, flat, arrays) for alternative in value):
                return False
            continue
        where = f"{path}.{key}" if path else key
        if isinstance(value, dict):
            if not _object(value, where, flat, arrays):
                return False
        elif isinstance(value, list) and value:
            if not any(_filter(f, flat.get(where, _MISSING)) for f in value):
                return False
        else:
            raise PatternUnsupported(f"the pattern's {where!r} is neither an object nor a non-empty list")
    return True


def _filter(wanted: Any, values: Any) -> bool:
    """One filter of a field's list against the field's values in the event (none: the field is not there)."""
    if not isinstance(wanted, dict):
        return any(_equal(wanted, value) for value in values)
    if len(wanted) != 1:
        raise PatternUnsupported(f"a filter has exactly one operator: {json.dumps(wanted)[:100]}")
    ((operator, operand),) = wanted.items()
    if operator == "exists":
        if not isinstance(operand, bool):
            raise PatternUnsupported("exists takes true or false")
        return bool(values) is operand
    if operator == "anything-but":  # a missing field is not "anything but": EventBridge needs a value
        return any(not _anything(operand, value) for value in values)
    return any(_compare(operator, operand, value) for value in values)


def _anything(operand: Any, value: Any) -> bool:
    """Whether `value` is among what `anything-but` excludes."""
    if isinstance(operand, list):
        return any(_equal(item, value) for item in operand)
    if isinstance(operand, dict):
        if len(operand) != 1:
            raise PatternUnsupported("anything-but takes one operator")
        ((operator, inner),) = operand.items()
        inners = inner if isinstance(inner, list) else [inner]
        return any(_compare(operator, item, value) for item in inners)
    return _equal(operand, value)


def _compare(operator: str, operand: Any, value: Any) -> bool:
    if operator in ("prefix", "suffix"):
        ignore_case = isinstance(operand, dict)
        if ignore_case:
            if list(operand) != ["equals-ignore-case"] or not isinstance(operand["equals-ignore-case"], str):
                raise PatternUnsupported(f"{operator} takes a string or {{\"equals-ignore-case\": string}}")
            operand = operand["equals-ignore-case"]
        if not isinstance(operand, str):
            raise PatternUnsupported(f"{operator} takes a string")
        if not isinstance(value, str):
            return False
        text, part = (value.lower(), operand.lower()) if ignore_case else (value, operand)
        return text.startswith(part) if operator == "prefix" else text.endswith(part)
    if operator == "equals-ignore-case":
        if not isinstance(operand, str):
            raise PatternUnsupported("equals-ignore-case takes a string")
        return isinstance(value, str) and value.lower() == operand.lower()
    raise PatternUnsupported(f"the filter {operator!r} is not modelled by the local matcher")


def _equal(wanted: Any, value: Any) -> bool:
    """Exact matching: strings with strings, numbers with numbers (by value), true/false and null with themselves."""
    if isinstance(wanted, bool) or isinstance(value, bool) or wanted is None or value is None:
        return wanted is value if isinstance(wanted, bool) or wanted is None else False
    if isinstance(wanted, (int, float)) and isinstance(value, (int, float)):
        return float(wanted) == float(value)
    if isinstance(wanted, str) and isinstance(value, str):
        return wanted == value
    if isinstance(wanted, (dict, list)):
        raise PatternUnsupported(f"a filter value {json.dumps(wanted)[:60]} is not a scalar")
    return False


def install() -> None:
    """moto's rules match with this matcher from now on (the emulator's, for every rule of every bus)."""
    from moto.events.models import EventPattern

    def matches_event(self: Any, event: Any) -> bool:
        pattern = self.get_pattern()
        return True if not pattern else matches(pattern, json.loads(json.dumps(event)))

    EventPattern.matches_event = matches_event  # type: ignore[method-assign]
