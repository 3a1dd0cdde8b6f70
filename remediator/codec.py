"""One codec for everything the bot stores or passes between steps: intents, audit records, approval requests,
the change an execution is about and the workflow's state.

Each of those shapes is described once, as a msgspec Struct beside the code that uses it, with its field
constraints (remediator.stored holds the constrained types). `encode` gives the JSON-ready builtins the stores
and Step Functions carry; `decode` takes them back strictly (a bool is not an int, an int is not a str, no
field the shape does not have where the format is ours) and turns whatever is wrong into one line naming the
source and the field. Parts that the rest of the code reads as plain dicts (a finding, a patch operation, the
trust settings, an undeployed edit) stay dicts in memory: they are typed as a `Checked` dict, which decoding
checks against its Struct before keeping it.

msgspec is a pure library (no I/O), so the core may use it too.
"""

from __future__ import annotations

import importlib
import re
from typing import Any, ClassVar, TypeVar

import msgspec

T = TypeVar("T")


class StoredError(ValueError):
    """Something read back is not what the bot writes; nothing is taken from it. The message is one line."""


class Checked(dict[str, Any]):
    """A nested part kept as the plain dict the rest of the code reads, checked against `schema` (a Struct)
    when decoded: a subclass names the schema, or where it lives (`schema_at`, "module:Name", imported on the
    first decode: a function that never reads one never imports its module). Encoding sees a dict."""

    schema: ClassVar[type[Any]]
    schema_at: ClassVar[str] = ""

    @classmethod
    def resolved(cls) -> type[Any]:
        if "schema" not in cls.__dict__ and cls.schema_at:
            module, name = cls.schema_at.split(":")
            cls.schema = getattr(importlib.import_module(module), name)
        return cls.schema


def _check(kind: type, value: Any) -> Any:
    """msgspec's dec_hook: a Checked part is decoded strictly as its schema, then kept as the dict it was
    (with the schema's defaults filled in, as the bot writes them)."""
    if isinstance(kind, type) and issubclass(kind, Checked):
        try:
            decoded = msgspec.convert(value, kind.resolved(), strict=True, dec_hook=_check)
        except msgspec.ValidationError as invalid:
            # The path inside the part, marked so that problem() can join it to the part's own path.
            raise ValueError(_INNER.join(_split(str(invalid)))) from None
        return kind(msgspec.to_builtins(decoded))
    raise NotImplementedError(f"no decoder for {kind!r}")


_INNER = " @inner:"
_AT = re.compile(r" - at `\$\.?([^`]*)`\Z")


def _split(text: str) -> tuple[str, str]:
    found = _AT.search(text)
    return (text[:found.start()], found.group(1)) if found else (text, "")


def problem(error: Exception) -> str:
    """msgspec's message on one line, bounded, the field first: "stages[0].name: Expected `str` ..."."""
    text, path = _split(" ".join(str(error).split()))
    if _INNER in text:
        text, inner = text.rsplit(_INNER, 1)
        path = f"{path}{inner}" if inner.startswith("[") or not path or not inner else f"{path}.{inner}"
    return (f"{path}: {text}" if path else text)[:300]


def decode(data: Any, kind: type[T], where: str, error: type[ValueError] = StoredError) -> T:
    """`data` (already parsed JSON, or a Python value) as `kind`, or `error` naming `where` and what is wrong."""
    try:
        return msgspec.convert(data, kind, strict=True, dec_hook=_check)
    except msgspec.ValidationError as invalid:
        raise error(f"{where}: {problem(invalid)}") from None


def encode(value: Any) -> Any:
    """A Struct (or anything holding them) as what JSON carries: dicts, lists (a tuple is a list), strings,
    numbers, booleans and nulls (unset fields left out). msgspec.to_builtins would keep tuples, which the stores and
    Step Functions would then see as lists while the value in hand compares unequal to what is read back. (Not
    a JSON round trip: a policy is kept exactly as API Gateway returned it, lone surrogates included.)"""
    return _lists(msgspec.to_builtins(value))


def _lists(value: Any) -> Any:
    kind = type(value)
    if kind is dict:
        for key, item in value.items():
            if type(item) in _CONTAINERS:
                value[key] = _lists(item)
        return value
    if kind is list or kind is tuple:
        return [_lists(item) if type(item) in _CONTAINERS else item for item in value]
    return value


_CONTAINERS = frozenset({dict, list, tuple})


class Record(msgspec.Struct, forbid_unknown_fields=True):
    """A shape of our own: a field nobody wrote is refused, not ignored.

    The one to_dict/from_dict pair: every stored shape is encoded and decoded by this codec, with the
    error type and source its readers expect (`codec_error`, `codec_where`) and the None-valued fields it
    has always left out (`codec_omit_none`)."""

    codec_error: ClassVar[type[ValueError]] = StoredError
    codec_where: ClassVar[str] = "record"
    codec_omit_none: ClassVar[frozenset[str]] = frozenset()

    def to_dict(self) -> dict[str, Any]:
        encoded: dict[str, Any] = encode(self)
        if self.codec_omit_none:
            return {key: value for key, value in encoded.items() if not (value is None and key in self.codec_omit_none)}
        return encoded

    @classmethod
    def from_dict(cls: type[T], data: Any, where: str | None = None) -> T:
        return decode(data, cls, where or cls.codec_where, cls.codec_error)  # type: ignore[attr-defined]


class Passed(Record, forbid_unknown_fields=False):
    """A part of the workflow's state, passed between steps by Step Functions: typed as strictly, but a key
    this version does not know is ignored. An execution in flight across a deploy or a rollback of the stack
    reads, in one version's Lambda, what the other version's wrote; nothing else writes these parts."""
