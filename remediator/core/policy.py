"""Parse API Gateway resource policies in every form the product meets them.

API Gateway returns a policy as the body of a JSON string (quotes and slashes
backslash-escaped); the CLI's JSON output wraps that once more. Each form is decoded
as what it is (a JSON string), never by deleting backslashes, because a policy value
may legitimately contain an escaped character.
"""

from __future__ import annotations

import hashlib
import json
import re
import secrets
import threading
from typing import Any

try:  # decodes and encodes policies several times faster; the stdlib path below is complete without it
    import msgspec
except ImportError:  # pragma: no cover - the Lambda asset and the dev environment both have it
    msgspec = None

Policy = dict[str, Any]
Statement = dict[str, Any]

_MAX_DECODE_DEPTH = 4


class PolicyError(ValueError):
    """A policy that cannot be read; the message says what is wrong, in one line."""


def parse_policy(value: str | bytes | Policy) -> Policy:
    """Return the policy document from a dict, JSON text, or API Gateway's escaped string."""
    document = _document(value)
    _validate(document)
    return document


def _utf8(value: bytes) -> str:
    try:
        return value.decode("utf-8")
    except UnicodeDecodeError as error:
        raise PolicyError(f"policy is not UTF-8 text: {error.reason}") from None


def _document(value: str | bytes | Policy) -> Policy:
    """The JSON object, by the stdlib path (the oracle), not yet validated as a policy."""
    if isinstance(value, bytes):
        value = _utf8(value)
    if isinstance(value, str):
        try:
            value = _decode(value)
        except RecursionError:
            raise PolicyError("policy is nested too deeply to be a resource policy") from None
    if not isinstance(value, dict):
        raise PolicyError(f"policy is not a JSON object (got {_json_type(value)})")
    return value


class _Ambiguous(dict):  # type: ignore[type-arg]
    """A JSON object in which some key appears more than once (Python keeps the last value; AWS does not
    document which one it uses)."""

    duplicates: list[str]


_seen = threading.local()


def _object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    built = dict(pairs)
    if len(built) == len(pairs):
        return built
    seen: set[str] = set()
    ambiguous = _Ambiguous(built)
    ambiguous.duplicates = [key for key, _ in pairs if key in seen or seen.add(key)]  # type: ignore[func-returns-value]
    _seen.ambiguous = True
    return ambiguous


class JsonNumber:
    """A JSON number kept as the text it was written in, so that a fix writes it back byte for byte:
    Python would turn `1e999` into infinity (and write `Infinity`, which is not JSON), `1.50` into `1.5`,
    and refuse an integer of more than 4,300 digits. The trust engine never computes with numbers."""

    __slots__ = ("text",)

    def __init__(self, text: str) -> None:
        self.text = text

    def __eq__(self, other: object) -> bool:
        return isinstance(other, JsonNumber) and other.text == self.text

    def __hash__(self) -> int:
        return hash(self.text)

    def __repr__(self) -> str:
        return self.text

    __str__ = __repr__


_numbers_made = [0]  # how many JsonNumbers this process made: none, and encoding takes the fast path


def _number(text: str) -> JsonNumber:
    _numbers_made[0] += 1
    return JsonNumber(text)


def _integer(text: str) -> int | JsonNumber:
    """An int where Python writes it back the same: every JSON integer but -0 and those longer than Python
    converts (sys.get_int_max_str_digits(), 4,300 digits by default; msgspec keeps the same limit)."""
    if text == "-0":
        return _number(text)
    try:
        return int(text)
    except ValueError:
        return _number(text)


def _constant(name: str) -> Any:
    raise PolicyError(f"policy holds {name}, which is not JSON")


# Built once: json.loads with an argument builds a new decoder on every call.
_DECODE = json.JSONDecoder(object_pairs_hook=_object, parse_float=_number, parse_int=_integer, parse_constant=_constant).decode


def duplicate_keys(value: Any, path: str = "") -> list[str]:
    """Where a key appears twice, at any depth: ["Statement[0].Effect", ...] (empty for a dict built in code)."""
    found: list[str] = []
    if isinstance(value, dict):
        for key in getattr(value, "duplicates", ()):
            found.append(f"{path}.{key}" if path else key)
        for key, item in value.items():
            found.extend(duplicate_keys(item, f"{path}.{key}" if path else key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found.extend(duplicate_keys(item, f"{path}[{index}]"))
    return found


def parse_policy_checked(value: str | bytes | Policy) -> tuple[Policy, list[str]]:
    """The policy, and the paths of the keys it repeats (an ambiguous policy, never to be fixed automatically)."""
    document, repeated = read_policy(value)
    _validate(document)
    return document, repeated


def read_policy(value: str | bytes | Policy) -> tuple[Policy, list[str]]:
    """The JSON object by the stdlib path, and the paths of the keys it repeats. Not validated as a policy:
    the engine validates in its own pass (where msgspec could not read the text, it reads it with this)."""
    _seen.ambiguous = False
    document = _document(value)
    return document, (duplicate_keys(document) if _seen.ambiguous else [])


if msgspec is not None:
    def _refuse_float(text: str) -> Any:
        raise ValueError(text)  # a float must keep its text (1.50, 1e16): the stdlib path makes a JsonNumber

    _FAST_DECODE = msgspec.json.Decoder(float_hook=_refuse_float).decode
    _FAST_ENCODE = msgspec.json.Encoder().encode
    _FAST_ERRORS = (msgspec.DecodeError, ValueError, RecursionError)  # ValidationError is a ValueError


def fast_document(text: str) -> Policy | None:
    """The document msgspec reads from `text` when it is provably what the stdlib path returns; else None.

    The proof is a round trip: msgspec writes the document back byte for byte as `text` (or as the
    escaped form's body). A repeated key could not survive that (the document holds one pair fewer),
    nor could whitespace, a `\\u` or `\\/` escape, `-0`, or anything else the two paths might read
    differently; every such text takes the stdlib path, which also gives the same errors.
    """
    if msgspec is None:
        return None
    try:
        if text[:2] != '{"':  # not plain JSON text: the SDK form's second character is a backslash
            if text[:3] != '{\\"' or text[-1:] != "}":
                return None
            text = _FAST_DECODE(f'"{text}"')  # the SDK form: the body of a JSON string
            if type(text) is not str or text[:2] != '{"':
                return None
        document = _FAST_DECODE(text)
    except _FAST_ERRORS:
        return None
    if type(document) is dict and _FAST_ENCODE(document) == text.encode():
        return document
    return None


def exact_json(policy: Policy) -> str:
    """compact_json of a document `read_policy` got from msgspec (the same text, several times faster)."""
    return _FAST_ENCODE(policy).decode() if msgspec is not None else compact_json(policy)


def _decode(text: str) -> Any:
    if text[:1] == "{" and text[1:3] != '\\"':
        try:  # the common case, plain JSON text, in one step
            return _DECODE(text)
        except ValueError:  # not JSON (JSONDecodeError), or a number Python refuses to convert
            pass
    return _decode_text(text)


def _decode_text(text: str) -> Any:
    current: Any = text
    for _ in range(_MAX_DECODE_DEPTH):
        stripped = current.strip()
        if not stripped:
            raise PolicyError("policy is empty")
        if stripped.startswith('{\\"'):
            # The SDK form, recognised up front: plain JSON can never start with a backslash after "{".
            current = _string_body(stripped)
            continue
        try:
            current = _DECODE(stripped)
        except json.JSONDecodeError as error:
            # The SDK form: a JSON string body such as {\"Version\":...\/*}.
            if '\\"' not in stripped:
                raise PolicyError(f"policy is not JSON: {error.msg} (line {error.lineno}, column {error.colno})") from None
            current = _string_body(stripped)
        except ValueError as error:
            raise PolicyError(f"policy is not JSON Python can read: {error}") from None
        if not isinstance(current, str):
            return current
    raise PolicyError("policy is escaped more deeply than API Gateway ever returns it")


_LENIENT_DECODE = json.JSONDecoder(strict=False).decode


def _string_body(text: str) -> str:
    """Decode `text` as the body of a JSON string (raw line breaks allowed, as a pretty-printed policy has them)."""
    try:
        return _LENIENT_DECODE(f'"{text}"')
    except json.JSONDecodeError as error:
        raise PolicyError(f"policy is not JSON nor an escaped JSON string: {error.msg}") from None


def _validate(policy: Policy) -> None:
    if "Statement" not in policy:
        raise PolicyError("policy has no 'Statement'")
    statements = policy["Statement"]
    if isinstance(statements, dict):
        statements = [statements]
    elif not isinstance(statements, list):
        raise PolicyError(f"'Statement' must be an object or a list (got {_json_type(statements)})")
    for index, statement in enumerate(statements):
        if not isinstance(statement, dict):
            raise PolicyError(f"statement {index} is not a JSON object (got {_json_type(statement)})")
        if "Principal" in statement and "NotPrincipal" in statement:
            raise PolicyError(f"statement {index} has both 'Principal' and 'NotPrincipal'")
        condition = statement.get("Condition")
        if condition is not None and not isinstance(condition, dict):
            raise PolicyError(f"statement {index}: 'Condition' must be an object (got {_json_type(condition)})")


def aws_principals(policy: Policy) -> list[str]:
    """Every AWS principal the Allow statements name, in order, once each."""
    seen: list[str] = []
    for statement in statements_of(policy):
        if statement.get("Effect") != "Allow":
            continue
        principal = statement.get("Principal")
        entries: list[Any]
        if isinstance(principal, dict):
            value = principal.get("AWS", [])
            entries = value if isinstance(value, list) else [value]
        elif isinstance(principal, list):
            entries = principal
        else:
            entries = [principal] if principal is not None else []
        seen.extend(str(e) for e in entries if str(e) not in seen)
    return seen


def statements_of(policy: Policy) -> list[Statement]:
    """The statements of a parsed policy, whether `Statement` is one object or a list."""
    statements = policy["Statement"]
    return [statements] if isinstance(statements, dict) else statements


# One encoder for every call: json.dumps with non-default arguments builds a new one each time.
_COMPACT = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode


def compact_json(policy: Policy) -> str:
    """The policy as API Gateway stores it best: compact, key order kept, every number as it was written."""
    if not _numbers_made[0]:
        return _COMPACT(policy)
    numbers: list[str] = []
    nonce = secrets.token_hex(8)

    def swap(value: Any) -> Any:
        if isinstance(value, JsonNumber):
            numbers.append(value.text)
            return f"\0{nonce}:{len(numbers) - 1}\0"
        if isinstance(value, dict):
            return {key: swap(item) for key, item in value.items()}
        if isinstance(value, list):
            return [swap(item) for item in value]
        return value

    swapped = swap(policy)
    text = _COMPACT(swapped)
    if not numbers:
        return text
    marker = re.compile(r'"\\u0000' + nonce + r':(\d+)\\u0000"')
    return marker.sub(lambda match: numbers[int(match.group(1))], text)


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


def policy_digest(policy: str | None) -> str:
    """One digest per policy document, whatever form API Gateway returned it in (escaped or not)."""
    if policy is None or policy == "":
        return "none"
    try:
        text = compact_json(parse_policy(policy))
    except PolicyError:
        text = policy
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()
