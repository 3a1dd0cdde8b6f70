"""CloudFormation's intrinsic functions, resolved where the deploying account, partition and region say what
they will be; anything else is `Unresolved`, with the reason, and the policy holding it is indeterminate
(never silently compliant).

What each function means, from CloudFormation's "Intrinsic function reference" and "Pseudo parameters
reference" (AWS CloudFormation User Guide):
- `Ref` to a pseudo parameter (AWS::AccountId, AWS::Partition, AWS::Region, AWS::URLSuffix), or to a
  template parameter, whose value is its `Default` when none is given at deploy time;
- `Fn::Sub` with `${Name}` (a parameter, pseudo parameter or the function's own variables), `${!Literal}`
  for a literal `${Literal}`, `${Resource.Attribute}` (a GetAtt: known only once deployed);
- `Fn::Join` [delimiter, list], `Fn::Select` [index, list], `Fn::Split` [delimiter, string],
  `Fn::FindInMap` [map, top-level key, second-level key] over the template's `Mappings`.
Known only once deployed, so never resolved: `Fn::GetAtt`, `Fn::ImportValue`, `Ref` to a resource,
AWS::StackName, AWS::StackId, AWS::NotificationARNs, AWS::NoValue; `Fn::If` (the template's conditions
depend on parameters), `Fn::GetAZs`, `Fn::Base64`, `Fn::Cidr`, `Fn::Transform` and the rest.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from remediator.iac.located import MAP, SCALAR, SEQ, Node
from remediator.policy_forms import MAX_NODES, _Number, _Pairs

# AWS::URLSuffix per partition ("Pseudo parameters reference": amazonaws.com, amazonaws.com.cn in China).
URL_SUFFIXES = {"aws": "amazonaws.com", "aws-cn": "amazonaws.com.cn", "aws-us-gov": "amazonaws.com",
                "aws-iso": "c2s.ic.gov", "aws-iso-b": "sc2s.sgov.gov"}
_SUB_VARIABLE = re.compile(r"\$\{([^}]*)\}")


class Unresolved(Exception):
    """A value that cannot be known before deployment; the message says which and why."""


@dataclass(frozen=True)
class Deployment:
    """Where the template is deployed: what the pseudo parameters resolve to."""

    account: str
    partition: str = "aws"
    region: str | None = None


@dataclass
class Resolver:
    """Resolves a template's nodes to plain values (_Pairs, lists, str, _Number, bool, None)."""

    deployment: Deployment
    parameters: Node | None = None  # the template's Parameters
    mappings: Node | None = None  # the template's Mappings
    resources: frozenset[str] = frozenset()  # logical IDs: a Ref to one is known only once deployed
    budget: list[int] = field(default_factory=lambda: [MAX_NODES])

    def value(self, node: Node) -> Any:
        self.budget[0] -= 1
        if self.budget[0] < 0:
            raise Unresolved(f"the template expands to more than {MAX_NODES} values")
        if node.kind == SCALAR:
            return node.value
        if node.kind == SEQ:
            return [self.value(item) for item in node.value]
        if len(node.value) == 1:
            key = node.value[0][0].value
            if key == "Ref" or (isinstance(key, str) and key.startswith("Fn::")):
                return self._function(key, node.value[0][1], node)
        return _Pairs((_key(name), self.value(member)) for name, member in node.value)

    def _function(self, name: str, argument: Node, node: Node) -> Any:
        if name == "Ref":
            return self.ref(self._text(argument, "Ref"))
        if name == "Fn::Sub":
            return self._sub(argument)
        if name == "Fn::Join":
            delimiter, items = self._pair(argument, name)
            joined = self.value(items)
            if not isinstance(joined, list):
                raise Unresolved("Fn::Join's second argument is not a list")
            return str.__str__(self._string(delimiter, name)).join(self._string_value(item, name) for item in joined)
        if name == "Fn::Select":
            index, items = self._pair(argument, name)
            values = self.value(items)
            position = self._string(index, name)
            if not isinstance(values, list) or not position.isdigit() or int(position) >= len(values):
                raise Unresolved(f"Fn::Select index {position} is not within its list")
            return values[int(position)]
        if name == "Fn::Split":
            delimiter, source = self._pair(argument, name)
            return self._string(source, name).split(self._string(delimiter, name))
        if name == "Fn::FindInMap":
            return self._find_in_map(argument)
        if name == "Fn::GetAtt":
            target = argument.text if argument.kind == SCALAR else (
                ".".join(str(item.text) for item in argument.value) if argument.kind == SEQ else "?")
            raise Unresolved(f"Fn::GetAtt {target} is known only once deployed")
        if name == "Fn::ImportValue":
            raise Unresolved("Fn::ImportValue reads another stack's export, known only once deployed")
        if name == "Fn::If":
            raise Unresolved("Fn::If depends on the template's conditions, which depend on deploy-time parameters")
        raise Unresolved(f"{name} is not resolved before deployment")

    def ref(self, name: str) -> Any:
        deployment = self.deployment
        if name == "AWS::AccountId":
            return deployment.account
        if name == "AWS::Partition":
            return deployment.partition
        if name == "AWS::Region":
            if deployment.region is None:
                raise Unresolved("AWS::Region: no region given (--region, or region in [tool.apigw-remediator])")
            return deployment.region
        if name == "AWS::URLSuffix":
            if deployment.partition not in URL_SUFFIXES:
                raise Unresolved(f"AWS::URLSuffix of partition {deployment.partition} is not known")
            return URL_SUFFIXES[deployment.partition]
        if name.startswith("AWS::"):
            raise Unresolved(f"{name} is known only once deployed")
        parameter = self.parameters.get(name) if self.parameters is not None else None
        if parameter is not None:
            default = parameter.get("Default") if parameter.kind == MAP else None
            if default is None:
                raise Unresolved(f"Ref to parameter {name}, which has no Default: its value is given at deploy time")
            value = self.value(default)
            kind = parameter.get("Type")
            if kind is not None and isinstance(kind.text, str) and ("List<" in kind.text or kind.text == "CommaDelimitedList"):
                return [item.strip() for item in str(value).split(",")]
            return str.__str__(value) if isinstance(value, str) else value
        if name in self.resources:
            raise Unresolved(f"Ref to resource {name} is known only once deployed")
        raise Unresolved(f"Ref to {name}, which the template does not define")

    def _sub(self, argument: Node) -> str:
        variables: dict[str, Any] = {}
        if argument.kind == SEQ:
            if len(argument.value) != 2 or argument.value[1].kind != MAP:
                raise Unresolved("Fn::Sub takes a string, or a string and a map of variables")
            template = self._string(argument.value[0], "Fn::Sub")
            for key, member in argument.value[1].value:
                variables[str(_key(key))] = member
        else:
            template = self._string(argument, "Fn::Sub")

        def replace(match: re.Match[str]) -> str:
            name = match.group(1).strip()
            if name.startswith("!"):
                return "${" + name[1:] + "}"
            if name in variables:
                return self._string_value(self.value(variables[name]), "Fn::Sub")
            if "." in name and not name.startswith("AWS::"):
                raise Unresolved(f"Fn::Sub ${{{name}}} is a resource attribute, known only once deployed")
            return self._string_value(self.ref(name), "Fn::Sub")

        return _SUB_VARIABLE.sub(replace, template)

    def _find_in_map(self, argument: Node) -> Any:
        if argument.kind != SEQ or len(argument.value) != 3:
            raise Unresolved("Fn::FindInMap takes a map name, a top-level key and a second-level key")
        names = [self._string(item, "Fn::FindInMap") for item in argument.value]
        current = self.mappings
        for name in names:
            current = current.get(name) if current is not None and current.kind == MAP else None
            if current is None:
                raise Unresolved(f"Fn::FindInMap {'/'.join(names)} is not in the template's Mappings")
        return self.value(current)

    def _pair(self, argument: Node, name: str) -> tuple[Node, Node]:
        if argument.kind != SEQ or len(argument.value) != 2:
            raise Unresolved(f"{name} takes two arguments")
        return argument.value[0], argument.value[1]

    def _text(self, node: Node, name: str) -> str:
        if node.text is None:
            raise Unresolved(f"{name} takes a name")
        return node.text

    def _string(self, node: Node, name: str) -> str:
        return self._string_value(self.value(node), name)

    @staticmethod
    def _string_value(value: Any, name: str) -> str:
        if isinstance(value, bool) or value is None or not isinstance(value, str):
            raise Unresolved(f"{name} needs a string, got {type(value).__name__}")
        return str.__str__(value)


def _key(node: Node) -> Any:
    value = node.value
    if isinstance(value, _Number):
        return str.__str__(value)
    return value
