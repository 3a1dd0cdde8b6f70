"""Where infrastructure code holds REST API resource policies, each found with the nodes it was written with.

- CloudFormation (JSON or YAML): `AWS::ApiGateway::RestApi` `Policy`, and `Body`'s OpenAPI
  `x-amazon-apigateway-policy` (AWS::ApiGateway::RestApi, CloudFormation User Guide);
- SAM: `AWS::Serverless::Api` `Auth.ResourcePolicy` (its own `Globals.Api` one when it has none), expanded as
  SAM's translator expands a ResourcePolicyStatement (AWS SAM Developer Guide, "ResourcePolicyStatement";
  samtranslator/swagger/swagger.py `add_resource_policy`): for each path and method of the API, one Allow
  statement with `{"AWS": AwsAccountWhitelist}`, one Deny with `{"AWS": AwsAccountBlacklist}`, an Allow `*`
  and a Deny `*` with `NotIpAddress`/`IpAddress` on aws:SourceIp for IpRangeWhitelist/IpRangeBlacklist, and
  with `StringEquals`/`StringNotEquals` on aws:SourceVpc/aws:SourceVpce for the VPC lists (blacklist first);
  then `CustomStatements` appended;
- a CDK cloud assembly (`cdk.out`): its `*.template.json`, CloudFormation templates;
- a Terraform plan (`terraform show -json`, "JSON Output Format" in Terraform's docs): `policy` of
  `aws_api_gateway_rest_api_policy` and `aws_api_gateway_rest_api` in `planned_values` (modules included)
  and, where a resource is not there, in `resource_changes[].change.after`;
- an OpenAPI document with `x-amazon-apigateway-policy` (API Gateway Developer Guide, "OpenAPI extensions"),
  or a policy document itself.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from remediator.core import PolicyError
from remediator.iac.intrinsics import Deployment, Resolver, Unresolved
from remediator.iac.located import MAP, SCALAR, SEQ, Document, Node, load
from remediator.policy_forms import EXTENSION, MAX_DOCUMENT_CHARS, _policy_text, _Pairs

TEMPLATE_SUFFIXES = (".json", ".yaml", ".yml", ".template")
SKIPPED_DIRECTORIES = frozenset({".git", "node_modules", ".venv", "venv", "__pycache__", ".terraform", ".tox", ".aws-sam"})
_SAM_PATH_PARAMETER = re.compile(r"{([a-zA-Z0-9._-]+|[a-zA-Z0-9._-]+\+|proxy\+)}")  # samtranslator's, greedy paths too


@dataclass(frozen=True)
class Link:
    """One step from a principal entry up to its policy: `container`'s child number `index` (a list's item
    or a mapping's pair). A policy's last link is its `Statement` pair in the policy's mapping."""

    container: Node
    index: int


@dataclass
class Entry:
    """A principal entry of the resolved policy: its Principal key, its text, where it was written, and the
    links from it up to the policy (empty when the source cannot be edited to remove just it)."""

    key: str | None
    value: str
    node: Node
    chain: list[Link] = field(default_factory=list)


@dataclass
class StatementOrigin:
    node: Node | None
    entries: list[Entry] = field(default_factory=list)


@dataclass
class FoundPolicy:
    """One policy in one file: what the engine reads (or why it cannot), and where each part was written."""

    path: str
    resource: str  # logical ID, Terraform address, or the document's form
    resource_type: str  # AWS::ApiGateway::RestApi, AWS::Serverless::Api, aws_api_gateway_rest_api_policy, OpenAPI...
    anchor: Node  # where the policy is written: the place to point at for the policy as a whole
    document: Document
    policy_text: str | None = None
    reason: str | None = None  # why the policy is indeterminate
    statements: list[StatementOrigin] = field(default_factory=list)
    policy_node: Node | None = None  # the node whose Statement pair ends every chain
    editable: bool = False  # a fix can be written as edits of this file
    deployment: Deployment | None = None

    @property
    def key(self) -> tuple[str, str]:
        return self.resource, self.resource_type


def files_of(paths: list[str]) -> Iterator[tuple[str, bool]]:
    """(file, named) for each PATH: a file as given (named), a folder's templates (found): a cdk.out's
    *.template.json, elsewhere any JSON, YAML or .template file, skipping VCS, dependency and build folders."""
    for given in paths:
        path = Path(given)
        if not path.is_dir():
            yield given, True
            continue
        if (path / "manifest.json").is_file() and any(path.glob("*.template.json")):  # a CDK cloud assembly
            for template in sorted(path.rglob("*.template.json")):
                yield str(template), False
            continue
        for folder, directories, names in os.walk(path):
            directories[:] = sorted(d for d in directories if d not in SKIPPED_DIRECTORIES and not d.startswith("."))
            if (Path(folder) / "manifest.json").is_file() and Path(folder).name.endswith(".out"):
                directories[:] = [d for d in directories if d.startswith("assembly-")]
                names = [n for n in names if n.endswith(".template.json")]
            for name in sorted(names):
                if name.endswith(TEMPLATE_SUFFIXES) and not name.startswith("."):
                    yield os.path.join(folder, name), False


def read_text(path: str) -> str:
    """The file's text, refused past MAX_DOCUMENT_CHARS before it is all in memory."""
    with open(path, encoding="utf-8") as handle:
        text = handle.read(MAX_DOCUMENT_CHARS + 1)
    if len(text) > MAX_DOCUMENT_CHARS:
        raise PolicyError(f"document is larger than {MAX_DOCUMENT_CHARS} characters")
    return text


def policies_in(path: str, text: str, deployment: Deployment) -> list[FoundPolicy]:
    """Every REST API policy the file holds (none when it is no form this knows)."""
    document = load(text)
    root = document.root
    if root.kind != MAP:
        return []
    if root.get("format_version") is not None and (root.get("planned_values") or root.get("resource_changes")):
        return _terraform(path, document)
    resources = root.get("Resources")
    if resources is not None and resources.kind == MAP:
        return _template(path, document, deployment)
    resolver = Resolver(deployment)
    if root.get(EXTENSION) is not None:
        form = "OpenAPI" if root.get("openapi") is not None or root.get("swagger") is not None else EXTENSION
        return [_structured(path, document, resolver, root.get(EXTENSION), form, form, root.get(EXTENSION))]  # type: ignore[arg-type]
    if root.get("Statement") is not None:
        return [_structured(path, document, resolver, root, "policy document", "policy", root)]
    return []


# --- plain policies: a Policy property, an OpenAPI extension, a policy document -----------------------------

def _structured(path: str, document: Document, resolver: Resolver, node: Node, resource: str, resource_type: str,
                anchor: Node) -> FoundPolicy:
    """A policy written as a mapping (or as JSON text in a string): resolved, with each entry's origin."""
    found = FoundPolicy(path, resource, resource_type, anchor, document, deployment=resolver.deployment)
    try:
        value = resolver.value(node)
    except Unresolved as why:
        found.reason = str(why)
        return found
    found.policy_text = _policy_text(value)
    if node.kind == MAP:
        found.policy_node = node
        found.editable = True
        found.statements = _origins(node, resolver)
    return found


def _origins(policy: Node, resolver: Resolver) -> list[StatementOrigin]:
    """Each statement's node and principal entries, with the links up to the policy's Statement pair."""
    statement_index = next((i for i, (key, _) in enumerate(policy.value) if key.value == "Statement"), None)
    if statement_index is None:
        return []
    top = Link(policy, statement_index)
    statements = policy.value[statement_index][1]
    if statements.kind == MAP:
        return [_statement_origin(statements, [top], resolver)]
    if statements.kind != SEQ:
        return []
    return [_statement_origin(node, [Link(statements, i), top], resolver) for i, node in enumerate(statements.value)]


def _statement_origin(statement: Node, up: list[Link], resolver: Resolver) -> StatementOrigin:
    origin = StatementOrigin(statement)
    if statement.kind != MAP:
        return origin
    for name in ("Principal", "NotPrincipal"):
        index = next((i for i, (key, _) in enumerate(statement.value) if key.value == name), None)
        if index is None:
            continue
        principal = statement.value[index][1]
        if principal.kind == SCALAR:  # "*": removing it removes the statement
            origin.entries.append(Entry(None, _resolved(principal, resolver), principal, list(up)))
        elif principal.kind == MAP:
            for pair_index, (key, member) in enumerate(principal.value):
                to_pair = [Link(principal, pair_index), *up]
                if member.kind == SEQ:
                    origin.entries += [Entry(_text(key), _resolved(item, resolver), item, [Link(member, i), *to_pair])
                                       for i, item in enumerate(member.value)]
                else:
                    origin.entries.append(Entry(_text(key), _resolved(member, resolver), member, to_pair))
        elif principal.kind == SEQ:
            origin.entries += [Entry(None, _resolved(item, resolver), item, [Link(principal, i), *up])
                               for i, item in enumerate(principal.value)]
    return origin


def _resolved(node: Node, resolver: Resolver) -> str:
    """The entry as the engine sees it (after intrinsics), to match findings with; its text if it is not one."""
    try:
        value = resolver.value(node)
    except Unresolved:
        return _text(node)
    return str.__str__(value) if isinstance(value, str) else str(value)


def _text(node: Node) -> str:
    return node.text if node.text is not None else ("<intrinsic>" if node.kind == MAP else str(node.value))


# --- CloudFormation and SAM templates ---------------------------------------------------------------------

def _template(path: str, document: Document, deployment: Deployment) -> list[FoundPolicy]:
    root = document.root
    resources: Node = root.get("Resources")  # type: ignore[assignment]
    resolver = Resolver(deployment, root.get("Parameters"), root.get("Mappings"),
                        frozenset(str(key) for key in resources.keys()))
    found: list[FoundPolicy] = []
    for name_node, resource in resources.value:
        if resource.kind != MAP:
            continue
        kind = resource.get("Type")
        properties = resource.get("Properties")
        name = str(name_node.value)
        if kind is None or properties is None or properties.kind != MAP:
            continue
        if kind.text == "AWS::ApiGateway::RestApi":
            found += _rest_api(path, document, resolver, name, properties)
        elif kind.text == "AWS::Serverless::Api":
            found += _serverless_api(path, document, resolver, name, properties, resources)
    found += _implicit_serverless_api(path, document, resolver, resources)
    return found


def _rest_api(path: str, document: Document, resolver: Resolver, name: str, properties: Node) -> list[FoundPolicy]:
    found: list[FoundPolicy] = []
    policy = properties.get("Policy")
    if policy is not None:
        found.append(_structured(path, document, resolver, policy, name, "AWS::ApiGateway::RestApi Policy", policy))
    body = properties.get("Body")
    extension = body.get(EXTENSION) if body is not None and body.kind == MAP else None
    if extension is not None:
        found.append(_structured(path, document, resolver, extension, name, f"AWS::ApiGateway::RestApi Body {EXTENSION}",
                                 extension))
    elif body is not None and body.kind == MAP and len(body.value) == 1 and str(body.value[0][0].value).startswith("Fn::"):
        found.append(_indeterminate(path, document, name, "AWS::ApiGateway::RestApi Body", body,
                                    f"the Body is built by {body.value[0][0].value} at deploy time"))
    s3 = properties.get("BodyS3Location")
    if policy is None and body is None and s3 is not None:
        found.append(_indeterminate(path, document, name, "AWS::ApiGateway::RestApi BodyS3Location", s3,
                                    "the OpenAPI definition (and any x-amazon-apigateway-policy in it) is in S3, not in the template"))
    return found


def _indeterminate(path: str, document: Document, name: str, kind: str, node: Node, reason: str) -> FoundPolicy:
    return FoundPolicy(path, name, kind, node, document, reason=reason)


def _serverless_api(path: str, document: Document, resolver: Resolver, name: str, properties: Node,
                    resources: Node) -> list[FoundPolicy]:
    found: list[FoundPolicy] = []
    body = properties.get("DefinitionBody")
    extension = body.get(EXTENSION) if body is not None and body.kind == MAP else None
    if extension is not None:
        found.append(_structured(path, document, resolver, extension, name, f"AWS::Serverless::Api DefinitionBody {EXTENSION}",
                                 extension))
    policy = _resource_policy(properties) or _globals_policy(document.root)
    if policy is None:
        return found
    paths = _definition_paths(body, resolver) if body is not None and body.kind == MAP else []
    paths += [p for p in _event_paths(resources, name) if p not in paths]
    found.append(_sam_policy(path, document, resolver, name, policy, properties.get("StageName"), paths))
    return found


def _implicit_serverless_api(path: str, document: Document, resolver: Resolver, resources: Node) -> list[FoundPolicy]:
    """SAM's implicit API (ServerlessRestApi), made for Api events without RestApiId: its ResourcePolicy can
    only come from Globals.Api.Auth, and its stage is named Prod."""
    policy = _globals_policy(document.root)
    paths = _event_paths(resources, None)
    if policy is None or not paths or "ServerlessRestApi" in resources.keys():
        return []
    stage = Node(SCALAR, "Prod", policy.start, policy.start)
    return [_sam_policy(path, document, resolver, "ServerlessRestApi", policy, stage, paths)]


def _resource_policy(properties: Node) -> Node | None:
    auth = properties.get("Auth")
    return auth.get("ResourcePolicy") if auth is not None and auth.kind == MAP else None


def _globals_policy(root: Node) -> Node | None:
    globals_ = root.get("Globals")
    api = globals_.get("Api") if globals_ is not None and globals_.kind == MAP else None
    return _resource_policy(api) if api is not None and api.kind == MAP else None


def _definition_paths(body: Node, resolver: Resolver) -> list[tuple[str, str]]:
    paths = body.get("paths")
    if paths is None or paths.kind != MAP:
        return []
    return [(str(key.value), str(method.value)) for key, item in paths.value if item.kind == MAP for method, _ in item.value]


def _event_paths(resources: Node, api: str | None) -> list[tuple[str, str]]:
    """(path, method) of every function's Api event on `api` (None: the implicit API, no RestApiId)."""
    found: list[tuple[str, str]] = []
    for _, resource in resources.value:
        kind = resource.get("Type") if resource.kind == MAP else None
        properties = resource.get("Properties") if kind is not None and kind.text == "AWS::Serverless::Function" else None
        events = properties.get("Events") if properties is not None and properties.kind == MAP else None
        for _, event in events.value if events is not None and events.kind == MAP else []:
            if event.kind != MAP or (event.get("Type") or Node(SCALAR, None, 0, 0)).text != "Api":
                continue
            settings = event.get("Properties")
            if settings is None or settings.kind != MAP:
                continue
            target = settings.get("RestApiId")
            named = target.text if target is not None and target.kind == SCALAR else (
                target.get("Ref").text if target is not None and target.get("Ref") is not None else None)  # type: ignore[union-attr]
            if (api is None and target is None) or (api is not None and named == api):
                route = (str(getattr(settings.get("Path"), "text", "") or ""), str(getattr(settings.get("Method"), "text", "") or ""))
                if route not in found:
                    found.append(route)
    return found


def _sam_policy(path: str, document: Document, resolver: Resolver, name: str, policy: Node, stage_node: Node | None,
                paths: list[tuple[str, str]]) -> FoundPolicy:
    """The policy SAM writes for an Auth.ResourcePolicy, statement by statement as its translator does."""
    found = FoundPolicy(path, name, "AWS::Serverless::Api Auth.ResourcePolicy", policy, document, deployment=resolver.deployment)
    if policy.kind != MAP:
        found.reason = "ResourcePolicy must be a map (ResourcePolicyStatement)"
        return found
    try:
        stage = resolver.value(stage_node) if stage_node is not None else None
        if not isinstance(stage, str):
            raise Unresolved("the API's StageName is not a string SAM can use")
        statements: list[Any] = []
        origins: list[StatementOrigin] = []
        by_path: dict[str, list[str]] = {}
        for route, method in paths:
            by_path.setdefault(route, []).append(method)
        for route, methods in by_path.items():
            resource_list = [f"execute-api:/{stage}/{_sam_method(m)}{_SAM_PATH_PARAMETER.sub('*', route)}" for m in methods]
            _sam_statements(policy, resolver, resource_list, statements, origins)
        custom = policy.get("CustomStatements")
        if custom is not None and custom.kind != SCALAR:
            items = custom.value if custom.kind == SEQ else [custom]
            for index, item in enumerate(items):
                value = resolver.value(item)
                if value not in statements:
                    statements.append(value)
                    origin = _statement_origin(item, [Link(custom, index)] if custom.kind == SEQ else [], resolver)
                    origins.append(origin)
    except Unresolved as why:
        found.reason = str(why)
        return found
    if not statements:
        return found  # no path, no custom statement: SAM writes no policy
    found.policy_text = _policy_text(_Pairs([("Version", "2012-10-17"), ("Statement", statements)]))
    found.statements = origins
    found.editable = True
    return found


def _sam_method(method: str) -> str:
    lowered = method.lower()
    return "*" if lowered in ("any", "x-amazon-apigateway-any-method") else method.upper()


def _sam_statements(policy: Node, resolver: Resolver, resources: list[str], statements: list[Any],
                    origins: list[StatementOrigin]) -> None:
    for key, effect in (("AwsAccountWhitelist", "Allow"), ("AwsAccountBlacklist", "Deny")):
        accounts = policy.get(key)
        if accounts is None:
            continue
        items = accounts.value if accounts.kind == SEQ else [accounts]
        values = [resolver.value(item) for item in items]
        if not values or values == [None]:
            continue
        statements.append(_Pairs([("Effect", effect), ("Action", "execute-api:Invoke"), ("Resource", resources),
                                  ("Principal", _Pairs([("AWS", values)]))]))
        chains = [[Link(accounts, i)] if accounts.kind == SEQ else [] for i in range(len(items))]
        origins.append(StatementOrigin(None, [Entry("AWS", str(value), item, chain)
                                              for item, value, chain in zip(items, values, chains)]))
    for key, operator in (("IpRangeWhitelist", "NotIpAddress"), ("IpRangeBlacklist", "IpAddress")):
        ranges = policy.get(key)
        values = resolver.value(ranges) if ranges is not None else None
        if values:
            _allow_and_deny(ranges, resources, _Pairs([(operator, _Pairs([("aws:SourceIp", values)]))]), statements, origins)  # type: ignore[arg-type]
    for operator, lists in (("StringEquals", ("SourceVpcBlacklist", "IntrinsicVpcBlacklist", "IntrinsicVpceBlacklist")),
                            ("StringNotEquals", ("SourceVpcWhitelist", "IntrinsicVpcWhitelist", "IntrinsicVpceWhitelist"))):
        endpoints, vpc, vpce = (policy.get(key) for key in lists)
        condition: dict[str, list[Any]] = {}
        for endpoint in resolver.value(endpoints) if endpoints is not None else []:
            if isinstance(endpoint, str) and endpoint.startswith("vpce-"):
                condition.setdefault("aws:SourceVpce", []).append(endpoint)
            elif isinstance(endpoint, str) and endpoint.startswith("vpc-"):
                condition.setdefault("aws:SourceVpc", []).append(endpoint)
        if vpc is not None:
            condition.setdefault("aws:SourceVpc", []).extend(resolver.value(vpc))
        if vpce is not None:
            condition.setdefault("aws:SourceVpce", []).extend(resolver.value(vpce))
        if condition.get("aws:SourceVpc") or condition.get("aws:SourceVpce"):
            anchor = next(node for node in (endpoints, vpc, vpce) if node is not None)
            _allow_and_deny(anchor, resources, _Pairs([(operator, _Pairs(list(condition.items())))]), statements, origins)


def _allow_and_deny(anchor: Node, resources: list[str], condition: Any, statements: list[Any],
                    origins: list[StatementOrigin]) -> None:
    """SAM's pair for an IP or VPC list: Allow `*`, and Deny `*` under the list's condition (each once)."""
    allow = _Pairs([("Effect", "Allow"), ("Action", "execute-api:Invoke"), ("Resource", resources), ("Principal", "*")])
    deny = _Pairs([("Effect", "Deny"), ("Action", "execute-api:Invoke"), ("Resource", resources), ("Principal", "*"),
                   ("Condition", condition)])
    for statement, entries in ((allow, [Entry(None, "*", anchor)]), (deny, [])):
        if statement not in statements:
            statements.append(statement)
            origins.append(StatementOrigin(None, entries))


# --- Terraform plans ------------------------------------------------------------------------------------------

TERRAFORM_TYPES = ("aws_api_gateway_rest_api_policy", "aws_api_gateway_rest_api")


def _terraform(path: str, document: Document) -> list[FoundPolicy]:
    root = document.root
    found: dict[str, FoundPolicy] = {}
    planned = root.get("planned_values")
    module = planned.get("root_module") if planned is not None and planned.kind == MAP else None
    for address, kind, values, unknown in _planned_resources(module):
        found[address] = _terraform_policy(path, document, address, kind, values, unknown)
    changes = root.get("resource_changes")
    for change in changes.value if changes is not None and changes.kind == SEQ else []:
        kind = change.get("type") if change.kind == MAP else None
        address = change.get("address") if kind is not None else None
        earlier = found.get(str(address.text)) if address is not None else None
        if kind is None or kind.text not in TERRAFORM_TYPES or address is None or (
                earlier is not None and (earlier.policy_text is not None or earlier.reason is not None)):
            continue
        detail = change.get("change")
        after = detail.get("after") if detail is not None and detail.kind == MAP else None
        unknown = detail.get("after_unknown") if detail is not None and detail.kind == MAP else None
        if after is None or after.kind != MAP:
            continue  # deleted: nothing to check
        found[str(address.text)] = _terraform_policy(path, document, str(address.text), str(kind.text), after, unknown)
    return [policy for policy in found.values() if policy.policy_text is not None or policy.reason is not None]


def _planned_resources(module: Node | None) -> Iterator[tuple[str, str, Node, Node | None]]:
    if module is None or module.kind != MAP:
        return
    resources = module.get("resources")
    for resource in resources.value if resources is not None and resources.kind == SEQ else []:
        kind = resource.get("type") if resource.kind == MAP else None
        if kind is None or kind.text not in TERRAFORM_TYPES or resource.get("mode") is not None and resource.get("mode").text != "managed":  # type: ignore[union-attr]
            continue
        values = resource.get("values")
        address = resource.get("address")
        if values is not None and values.kind == MAP and address is not None:
            yield str(address.text), str(kind.text), values, None
    children = module.get("child_modules")
    for child in children.value if children is not None and children.kind == SEQ else []:
        yield from _planned_resources(child)


def _terraform_policy(path: str, document: Document, address: str, kind: str, values: Node, unknown: Node | None) -> FoundPolicy:
    found = FoundPolicy(path, address, kind, values, document)
    policy = values.get("policy")
    if unknown is not None and unknown.kind == MAP and (unknown.get("policy") or Node(SCALAR, None, 0, 0)).value is True:
        found.reason = "the policy is known only after apply (after_unknown)"
        return found
    if policy is None or policy.value in (None, ""):
        return found
    found.anchor = policy
    if policy.text is None:
        found.reason = "policy is not a string"
        return found
    found.policy_text = policy.text
    return found
