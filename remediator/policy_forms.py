"""The forms a resource policy is written in outside API Gateway, for `evaluate` (CLI only: none of this
reaches the Lambda bundle, and PyYAML is imported only when a file is not JSON).

- a policy: JSON, API Gateway's escaped form (remediator.core.parse_policy), or YAML;
- an OpenAPI document (JSON or YAML) carrying `x-amazon-apigateway-policy`, or that extension's object alone;
- a bare list of statements, as the Serverless Framework's `provider.apiGateway.resourcePolicy` holds it
  (or a whole serverless.yml with that key).
"""

from __future__ import annotations

import json
from typing import Any

from remediator.core import PolicyError, parse_policy

EXTENSION = "x-amazon-apigateway-policy"


def policy_forms(text: str, source: str) -> tuple[str, Any]:
    """(label, policy) for the policy a file holds; the label says which form it was found in."""
    try:
        return source, parse_policy(text)
    except PolicyError as first:
        document = _load(text, first)
    form, policy = _find(document)
    if policy is None:
        raise PolicyError(f"no resource policy found ({form})")
    # Through JSON text once more: one parser, with its checks (repeated keys, exact numbers), for every form.
    return f"{source} ({form})", parse_policy(json.dumps(policy, default=str))  # YAML dates (Version: 2012-10-17) as text


def _load(text: str, first: PolicyError) -> Any:
    try:
        return json.loads(text)
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
        return yaml.load(text, Loader=_unique_loader())  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as error:
        raise PolicyError(f"neither JSON nor YAML: {first}; {str(error).splitlines()[0]}") from None


def _find(document: Any) -> tuple[str, Any]:
    if isinstance(document, list):
        return "list of statements", {"Version": "2012-10-17", "Statement": document}
    if not isinstance(document, dict):
        return f"a {type(document).__name__}, not a policy", None
    if EXTENSION in document:
        return f"OpenAPI {EXTENSION}" if ("openapi" in document or "swagger" in document) else EXTENSION, document[EXTENSION]
    provider = document.get("provider")
    api_gateway = provider.get("apiGateway") if isinstance(provider, dict) else None
    resource_policy = api_gateway.get("resourcePolicy") if isinstance(api_gateway, dict) else None
    if resource_policy is not None:
        return "provider.apiGateway.resourcePolicy", {"Version": "2012-10-17", "Statement": resource_policy}
    if "Statement" in document:
        return "YAML", document
    if "openapi" in document or "swagger" in document:
        return f"an OpenAPI document without {EXTENSION}", None
    return "no Statement, no " + EXTENSION, None


def _unique_loader() -> Any:
    """Built on use, so that importing this module never imports PyYAML."""
    import yaml

    class Loader(yaml.SafeLoader):
        """The safe loader, refusing a key repeated in one mapping (which value AWS would apply is unknown)."""

    def mapping(loader: Any, node: Any, deep: bool = False) -> dict[Any, Any]:
        keys = [loader.construct_object(key, deep=deep) for key, _ in node.value]
        repeated = sorted({str(k) for k in keys if keys.count(k) > 1})
        if repeated:
            raise PolicyError(f"YAML key {repeated[0]!r} appears more than once (line {node.start_mark.line + 1}); "
                              "which value applies is ambiguous")
        return yaml.SafeLoader.construct_mapping(loader, node, deep=deep)

    Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, mapping)
    return Loader

