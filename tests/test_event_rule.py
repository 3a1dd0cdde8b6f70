"""The stack's EventBridge rule matches only the calls that can change a resource policy (issue R, item 1).

The pattern is taken from the synthesized templates (single account, and an organization's spoke), never copied, and
judged by the local matcher (remediator.local.eventbridge), whose EventBridge semantics are pinned here too.
"""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from remediator.events import WATCHED_EVENTS, EventError, parse_event
from remediator.local.eventbridge import PatternUnsupported, matches
from remediator.local.template import of_type, spoke_template, synthesized_template
from tests.conftest import CORPUS, OWNER

OWN_ROLE = f"arn:aws:iam::{OWNER}:role/apigw-remediator-apply"


def _resolved(node: Any) -> Any:
    """The template's references as the deployed stack resolves them (each role ARN its own)."""
    if isinstance(node, dict):
        if "Fn::GetAtt" in node:
            return OWN_ROLE if node["Fn::GetAtt"][0].startswith("Apply") else f"arn:aws:iam::{OWNER}:role/{node['Fn::GetAtt'][0]}"
        if "Fn::Join" in node:
            return "".join(str(_resolved(part)) for part in node["Fn::Join"][1])
        if "Ref" in node:
            return {"AWS::Partition": "aws", "AWS::AccountId": OWNER}.get(node["Ref"], node["Ref"])
        return {k: _resolved(v) for k, v in node.items()}
    if isinstance(node, list):
        return [_resolved(v) for v in node]
    return node


def rule_pattern(template: dict[str, Any]) -> dict[str, Any]:
    (rule,) = [r for r in of_type(template, "AWS::Events::Rule").values()
               if "aws.apigateway" in r["Properties"].get("EventPattern", {}).get("source", [])]
    return _resolved(rule["Properties"]["EventPattern"])  # type: ignore[no-any-return]


@pytest.fixture(scope="module", params=["account", "spoke"])
def pattern(request) -> dict[str, Any]:
    if request.param == "account":
        return rule_pattern(synthesized_template("auto"))
    spoke = rule_pattern(spoke_template("auto"))
    return json.loads(json.dumps(spoke).replace("role/apigw-remediator-spoke", "role/apigw-remediator-apply"))


def envelope(record: dict[str, Any]) -> dict[str, Any]:
    """A CloudTrail record as EventBridge delivers it ("AWS API Call via CloudTrail")."""
    return {"version": "0", "id": "e1", "detail-type": "AWS API Call via CloudTrail", "source": "aws.apigateway",
            "account": record.get("recipientAccountId", OWNER), "time": record.get("eventTime", ""),
            "region": record.get("awsRegion", "us-east-1"), "resources": [], "detail": record}


def corpus() -> list[tuple[str, dict[str, Any]]]:
    found = []
    for path in sorted((CORPUS / "events").glob("*.json")):
        data = json.loads(path.read_text())
        if "detail" in data:
            found.append((path.name, data))
        elif "eventSource" in data:  # a bare record
            found.append((path.name, envelope(data)))
        for record in data.get("Records", []):
            found.append((path.name, envelope(record)))
        for item in data.get("Events", []):
            found.append((f"{path.name} {item['EventName']}", envelope(json.loads(item["CloudTrailEvent"]))))
    return found


# Which corpus events can change a REST API's resource policy (README of the corpus): a new API (its body may carry
# one), an UpdateRestApi patching /policy, an OpenAPI import or overwrite. Deployments, stages, reads and an HTTP
# API's route cannot.
CHANGES_POLICY = {"07-createrestapi-eventbridge-assumedrole-cloudformation.json", "08-updaterestapi-policy-eventbridge-iamuser.json",
                  "09-updaterestapi-govcloud-root-trail-record.json", "10-putrestapi-assumedrole-terraform.json",
                  "11-importrestapi-eventbridge-iamuser-boto3.json"}


def test_every_corpus_event_that_changes_a_policy_matches_and_no_other(pattern: dict[str, Any]) -> None:
    cases = corpus()
    assert len(cases) >= 13 and {name.split(" ")[0] for name, _ in cases} >= CHANGES_POLICY
    for name, event in cases:
        assert matches(pattern, event) is (name in CHANGES_POLICY), name


def update(*operations: dict[str, Any] | None, request: Any = "patch", error: str | None = None,
           issuer: str | None = None) -> dict[str, Any]:
    """An UpdateRestApi event from the corpus (08), with other patch operations or request parameters."""
    event = copy.deepcopy(json.loads((CORPUS / "events" / "08-updaterestapi-policy-eventbridge-iamuser.json").read_text()))
    detail = event["detail"]
    if request == "patch":
        detail["requestParameters"]["updateRestApiInput"]["patchOperations"] = [o for o in operations if o is not None]
    elif request is None:
        del detail["requestParameters"]
    else:
        detail["requestParameters"] = request
    if error:
        detail["errorCode"] = error
    if issuer:
        detail["userIdentity"] = {"type": "AssumedRole", "sessionContext": {"sessionIssuer": {"type": "Role", "arn": issuer}}}
    return event


POLICY = '{"Version":"2012-10-17","Statement":[]}'


@pytest.mark.parametrize("event, why", [
    (update({"op": "replace", "path": "/policy", "value": POLICY}), "the policy replaced"),
    (update({"op": "remove", "path": "/policy"}), "the policy removed"),
    (update({"op": "replace", "path": "/name", "value": "n"}, {"op": "add", "path": "/policy", "value": POLICY}), "among others"),
    (update({"op": "replace", "path": "/Policy", "value": POLICY}), "in another case"),
    (update({"op": "copy", "from": "/policy", "path": "/description"}), "copied or moved from /policy"),
    (update(request=None), "no requestParameters recorded"),
    (update(request="omitted"), "requestParameters recorded as a string"),
    (update(request={"restApiId": "a1b2c3d4e5", "patchOperations": [{"op": "replace", "path": "/policy"}]}), "another nesting"),
    (update(request={"restApiId": "a1b2c3d4e5", "updateRestApiInput": {"patchOperations": "[...]"}}), "the patch as a string"),
    (update(), "an empty patch"),
])
def test_every_update_that_may_touch_the_policy_matches(pattern: dict[str, Any], event: dict[str, Any], why: str) -> None:
    assert matches(pattern, event), why


@pytest.mark.parametrize("event, why", [
    (update({"op": "replace", "path": "/name", "value": "n"}), "a new name"),
    (update({"op": "replace", "path": "/description", "value": "d"}, {"op": "replace", "path": "/name", "value": "n"}), "name and description"),
    (update({"op": "add", "path": "/binaryMediaTypes/image~1png"}), "binary media types"),
    (update({"op": "replace", "path": "/policy", "value": POLICY}, error="AccessDenied"), "a failed call"),
    (update({"op": "replace", "path": "/policy", "value": POLICY}, issuer=OWN_ROLE), "the remediator's own write"),
])
def test_updates_that_cannot_change_the_policy_do_not_match(pattern: dict[str, Any], event: dict[str, Any], why: str) -> None:
    assert not matches(pattern, event), why


def test_a_tag_change_does_not_match(pattern: dict[str, Any]) -> None:
    tagged = update({"op": "replace", "path": "/policy", "value": POLICY})
    tagged["detail"]["eventName"] = "TagResource"
    tagged["detail"]["requestParameters"] = {"resourceArn": "arn:aws:apigateway:eu-west-1::/restapis/a1b2c3d4e5", "tags": {"a": "b"}}
    assert not matches(pattern, tagged)


def test_what_the_rule_lets_through_the_trigger_still_parses_or_refuses(pattern: dict[str, Any]) -> None:
    """The rule only narrows: every watched call it matches is one the trigger handles as before."""
    for name, event in corpus():
        if matches(pattern, event):
            assert event["detail"]["eventName"] in WATCHED_EVENTS, name
            try:
                parse_event(event)
            except EventError as error:  # noqa: PERF203
                pytest.fail(f"{name}: {error}")


# ---- EventBridge's semantics, as the local matcher models them ---------------------------------


def test_an_array_matches_when_its_intersection_with_the_pattern_is_not_empty() -> None:
    pattern = {"resources": ["arn:aws:ec2:us-east-1:123456789012:instance/i-b188560f", "other"]}
    assert matches(pattern, {"resources": ["arn:aws:autoscaling:x", "arn:aws:ec2:us-east-1:123456789012:instance/i-b188560f"]})
    assert not matches(pattern, {"resources": ["arn:aws:autoscaling:x"]})
    assert not matches(pattern, {"resources": []})


def test_fields_within_an_array_of_objects_are_matched_over_all_its_elements() -> None:
    pattern = {"ops": {"path": [{"prefix": "/policy"}]}}
    assert matches(pattern, {"ops": [{"path": "/name"}, {"path": "/policy"}]})
    assert not matches(pattern, {"ops": [{"path": "/name"}]})
    absent = {"ops": {"path": [{"exists": False}]}}
    assert matches(absent, {"ops": []}) and matches(absent, {}) and matches(absent, {"ops": "a string"})
    assert not matches(absent, {"ops": [{"op": "remove"}, {"path": "/name"}]})
    with pytest.raises(PatternUnsupported):  # EventBridge would want both in one element: not modelled, refused
        matches({"ops": {"path": ["/policy"], "op": ["remove"]}}, {"ops": [{"path": "/policy", "op": "remove"}]})


def test_operators_work_on_leaves_only_and_need_a_value() -> None:
    assert not matches({"a": [{"exists": True}]}, {"a": {"b": 1}}), "exists on an object is no match"
    assert matches({"a": [{"exists": True}]}, {"a": None}) and matches({"a": [None]}, {"a": None})
    assert not matches({"a": [{"anything-but": ["x"]}]}, {}), "anything-but needs a value"
    assert matches({"a": [{"anything-but": ["x"]}]}, {"a": "y"}) and not matches({"a": [{"anything-but": ["x"]}]}, {"a": "x"})
    assert matches({"a": [{"prefix": {"equals-ignore-case": "/POL"}}]}, {"a": "/policy"})
    assert not matches({"a": [{"prefix": "/POL"}]}, {"a": "/policy"})
    assert matches({"a": [5]}, {"a": 5.0}) and not matches({"a": ["5"]}, {"a": 5})
    assert matches({"$or": [{"a": ["x"]}, {"b": ["y"]}]}, {"b": "y"}) and not matches({"$or": [{"a": ["x"]}, {"b": ["y"]}]}, {})
    with pytest.raises(PatternUnsupported):
        matches({"a": [{"wildcard": "*"}]}, {"a": "x"})
