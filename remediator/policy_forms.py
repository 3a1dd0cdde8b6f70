"""The forms a resource policy is written in outside API Gateway, for `evaluate` (CLI only: none of this
reaches the Lambda bundle, and PyYAML is imported only when a file is not JSON).

- a policy: JSON, API Gateway's escaped form (remediator.core.parse_policy), or YAML;
- an OpenAPI document (JSON or YAML) carrying `x-amazon-apigateway-policy`, or that extension's object alone;
- a CloudFormation template (JSON or YAML) with `AWS::ApiGateway::RestApi` resources and their `Policy`;
- a bare list of statements, as the Serverless Framework's `provider.apiGateway.resourcePolicy` holds it
  (or a whole serverless.yml with that key).

Every form ends as JSON text handed to the engine, so that every path reaches the library's verdict: the
readers keep a repeated key (the engine reports it as an ambiguous policy) and each number as written.
Input is bounded (size, nesting, YAML aliases and their expansion): a hostile file is refused in one line.
"""

from __future__ import annotations

import json
import re
from typing import Any

from remediator.core import PolicyError, parse_policy

EXTENSION = "x-amazon-apigateway-policy"
MAX_DOCUMENT_CHARS = 8 * 1024 * 1024  # an OpenAPI or CloudFormation document, generously
MAX_DEPTH = 100  # a policy nests 6 deep; an OpenAPI document a few dozen at most
MAX_ALIASES = 100  # YAML aliases (*name) in one document
MAX_NODES = 1_000_000  # values in a document, aliases expanded (a "billion laughs" expands beyond any bound)
_JSON_NUMBER = re.compile(r"-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?")


class _Pairs(list):  # type: ignore[type-arg]
    """A JSON object or YAML mapping as the (key, value) pairs it was written with, a repeated key kept."""

    def get(self, key: str) -> Any:
        """The value of an envelope key (OpenAPI, CloudFormation...); repeated, it is ambiguous: refused."""
        values = [value for name, value in self if name == key]
        if len(values) > 1:
            raise PolicyError(f"key {key!r} appears more than once; which one applies is ambiguous")
        return values[0] if values else None

    def has(self, key: str) -> bool:
        return any(name == key for name, _ in self)


class _Number(str):
    """A number as written (JSON text), so that it reaches the engine byte for byte."""


def policy_forms(text: str, source: str) -> list[tuple[str, str]]:
    """[(label, policy as JSON text)] for the policies a file holds; the label says which form each was in."""
    if len(text) > MAX_DOCUMENT_CHARS:
        raise PolicyError(f"document is larger than {MAX_DOCUMENT_CHARS} characters")
    _check_nesting(text)
    try:
        parse_policy(text)  # JSON or API Gateway's escaped form: the engine reads the very same text
        return [(source, text)]
    except PolicyError as first:
        document = _load(text, first)
    found = _find(document)
    if isinstance(found, str):
        raise PolicyError(f"no resource policy found ({found})")
    return [(f"{source} ({form})", _policy_text(policy)) for form, policy in found]


def _check_nesting(text: str) -> None:
    """Refuse brackets nested deeper than MAX_DEPTH (JSON, or YAML flow style) before any recursive reader."""
    if text.count("[") + text.count("{") <= MAX_DEPTH:
        return
    depth = 0
    for match in re.finditer(r'"(?:[^"\\]|\\.)*"|[\[\]{}]', text):
        token = match.group()
        if token in "[{":
            depth += 1
            if depth > MAX_DEPTH:
                raise PolicyError(f"document is nested more than {MAX_DEPTH} levels deep")
        elif token in "]}":
            depth -= 1


def _policy_text(policy: Any) -> str:
    """The policy as JSON text for the engine: a string (a CloudFormation Policy may be one) is that text."""
    if isinstance(policy, str) and not isinstance(policy, _Number):
        return policy
    return _to_json(policy)


def _to_json(value: Any) -> str:
    """JSON text keeping repeated keys and numbers as written; aliases expanded within MAX_NODES, MAX_DEPTH."""
    parts: list[str] = []
    budget = [MAX_NODES]

    def write(item: Any, depth: int) -> None:
        budget[0] -= 1
        if budget[0] < 0:
            raise PolicyError(f"document expands to more than {MAX_NODES} values (YAML aliases?)")
        if depth > MAX_DEPTH:
            raise PolicyError(f"document is nested more than {MAX_DEPTH} levels deep")
        if isinstance(item, _Number):
            parts.append(str.__str__(item))
        elif isinstance(item, _Pairs):
            parts.append("{")
            for index, (key, member) in enumerate(item):
                parts.append(("," if index else "") + json.dumps(_key(key), ensure_ascii=False) + ":")
                write(member, depth + 1)
            parts.append("}")
        elif isinstance(item, list):
            parts.append("[")
            for index, member in enumerate(item):
                if index:
                    parts.append(",")
                write(member, depth + 1)
            parts.append("]")
        elif item is None or isinstance(item, (bool, str)):
            parts.append(json.dumps(item, ensure_ascii=False))
        else:  # anything else YAML may build (bytes, a set's members...) as its text
            parts.append(json.dumps(str(item), ensure_ascii=False))

    write(value, 0)
    return "".join(parts)


def _key(key: Any) -> str:
    if isinstance(key, str):
        return str.__str__(key)
    return json.dumps(key) if key is None or isinstance(key, bool) else str(key)


def _load(text: str, first: PolicyError) -> Any:
    try:
        return _JSON(text)
    except PolicyError:
        raise
    except ValueError:
        if text.lstrip()[:1] in ("{", "[", '"'):
            raise first from None  # meant as JSON: its JSON error says what is wrong
    except RecursionError:
        raise first from None
    try:
        import yaml
    except ImportError:  # pragma: no cover - PyYAML comes with the CLI's requirements
        raise first from None
    try:
        return yaml.load(text, Loader=_bounded_loader())  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as error:
        raise PolicyError(f"neither JSON nor YAML: {first}; {str(error).splitlines()[0]}") from None
    except RecursionError:
        raise PolicyError(f"document is nested more than {MAX_DEPTH} levels deep") from None


def _constant(name: str) -> Any:
    raise PolicyError(f"document holds {name}, which is not JSON")


_JSON = json.JSONDecoder(object_pairs_hook=_Pairs, parse_float=_Number, parse_int=_Number, parse_constant=_constant).decode

_STATEMENTS = "list of statements"


def _find(document: Any) -> list[tuple[str, Any]] | str:
    """The policies in a document, [(form, policy)], or why there is none."""
    if isinstance(document, list) and not isinstance(document, _Pairs):
        return [(_STATEMENTS, _Pairs([("Version", "2012-10-17"), ("Statement", document)]))]
    if not isinstance(document, _Pairs):
        return f"a {type(document).__name__}, not a policy"
    openapi = document.has("openapi") or document.has("swagger")
    if document.has(EXTENSION):
        return [(f"OpenAPI {EXTENSION}" if openapi else EXTENSION, document.get(EXTENSION))]
    provider = document.get("provider")
    api_gateway = provider.get("apiGateway") if isinstance(provider, _Pairs) else None
    resource_policy = api_gateway.get("resourcePolicy") if isinstance(api_gateway, _Pairs) else None
    if resource_policy is not None:
        return [("provider.apiGateway.resourcePolicy", _Pairs([("Version", "2012-10-17"), ("Statement", resource_policy)]))]
    if document.has("Statement"):
        return [("YAML", document)]
    resources = document.get("Resources")
    if isinstance(resources, _Pairs):
        found = [(f"CloudFormation {name} Policy", properties.get("Policy")) for name, resource in resources
                 if isinstance(resource, _Pairs) and resource.get("Type") == "AWS::ApiGateway::RestApi"
                 for properties in [resource.get("Properties")]
                 if isinstance(properties, _Pairs) and properties.has("Policy")]
        return found or "a CloudFormation template without an AWS::ApiGateway::RestApi Policy"
    if openapi:
        return f"an OpenAPI document without {EXTENSION}"
    return "no Statement, no " + EXTENSION


def bounded_composer() -> Any:
    """PyYAML's safe loader with its aliases and nesting bounded while it composes (before anything is built):
    the one base of every YAML reader here (policy_forms, remediator.iac.located). Built on use, so that importing
    this module never imports PyYAML."""
    import yaml

    class Bounded(yaml.SafeLoader):
        aliases = 0
        depth = 0

        def compose_node(self, parent: Any, index: Any) -> Any:
            if self.check_event(yaml.AliasEvent):
                self.aliases += 1
                if self.aliases > MAX_ALIASES:
                    raise PolicyError(f"document uses more than {MAX_ALIASES} YAML aliases")
            self.depth += 1
            try:
                if self.depth > MAX_DEPTH:
                    raise PolicyError(f"document is nested more than {MAX_DEPTH} levels deep")
                return super().compose_node(parent, index)
            finally:
                self.depth -= 1

    return Bounded


def _bounded_loader() -> Any:
    """The bounded safe loader, keeping every pair of a mapping (a repeated key included), scalars that JSON would
    read as numbers as written, dates as text, CloudFormation's short tags (!Sub...) as their long form."""
    import yaml

    class Loader(bounded_composer()):  # type: ignore[misc]
        pass

    def mapping(loader: Any, node: Any) -> _Pairs:
        loader.flatten_mapping(node)  # YAML merge keys (<<)
        return _Pairs((loader.construct_object(key, deep=True), loader.construct_object(value, deep=True))
                      for key, value in node.value)

    def number(loader: Any, node: Any) -> Any:
        text = loader.construct_scalar(node)
        if _JSON_NUMBER.fullmatch(text):
            return _Number(text)
        return yaml.SafeLoader.construct_yaml_int(loader, node) if node.tag.endswith(":int") else text

    def as_text(loader: Any, node: Any) -> str:
        return str(loader.construct_scalar(node))

    def intrinsic(loader: Any, suffix: str, node: Any) -> _Pairs:
        name = "Ref" if suffix == "Ref" else f"Fn::{suffix}"
        if isinstance(node, yaml.ScalarNode):
            value: Any = loader.construct_scalar(node)
        elif isinstance(node, yaml.SequenceNode):
            value = loader.construct_sequence(node, deep=True)
        else:
            value = mapping(loader, node)
        return _Pairs([(name, value)])

    Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, mapping)
    Loader.add_constructor("tag:yaml.org,2002:int", number)
    Loader.add_constructor("tag:yaml.org,2002:float", number)
    Loader.add_constructor("tag:yaml.org,2002:timestamp", as_text)
    Loader.add_multi_constructor("!", intrinsic)
    return Loader
