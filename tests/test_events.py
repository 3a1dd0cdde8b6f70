"""The event parser over every sample of the shared corpus, and over malformed events."""

from __future__ import annotations

import copy
import json

import pytest

from remediator.events import EVENT_PATTERN, ApiChange, EventError, Ignored, parse_event, parse_records
from remediator.local.cloudtrail import api_call_event
from tests.conftest import corpus_dir

EXPECTED = {
    # number -> (event name, API id, region, account, caller) or an outcome
    "07": ("CreateRestApi", "a1b2c3d4e5", "eu-west-1", "111122223333", "arn:aws:iam::111122223333:role/cfn-deploy-role via cloudformation.amazonaws.com"),
    "08": ("UpdateRestApi", "a1b2c3d4e5", "eu-west-1", "111122223333", "arn:aws:iam::111122223333:user/Alice"),
    "10": ("PutRestApi", "z9y8x7w6v5", "us-east-1", "111122223333", "arn:aws:iam::111122223333:role/terraform-ci"),
    "11": ("ImportRestApi", "k3j4h5g6f7", "us-east-2", "111122223333", "arn:aws:iam::111122223333:user/ci-bot"),
}


def load(number: str) -> dict:
    (path,) = corpus_dir("events").glob(f"{number}-*.json")
    return json.loads(path.read_text())


@pytest.mark.parametrize("number", sorted(EXPECTED))
def test_watched_events(number: str) -> None:
    change = parse_event(load(number))
    assert isinstance(change, ApiChange)
    name, api_id, region, account, caller = EXPECTED[number]
    assert (change.event_name, change.api_id, change.region, change.account, change.caller.describe()) == (name, api_id, region, account, caller)
    assert change.execution_name.startswith(name + "-") and len(change.execution_name) <= 80
    assert ApiChange.from_dict(json.loads(json.dumps(change.to_dict()))) == change


def test_govcloud_trail_file() -> None:
    (change,) = parse_records(load("09"))
    assert isinstance(change, ApiChange)
    assert (change.api_id, change.region, change.account, change.caller.type) == ("gov4pi0001", "us-gov-west-1", "210987654321", "Root")


def test_http_api_events_are_ignored() -> None:
    result = parse_event(load("06"))
    assert isinstance(result, Ignored) and "HTTP or WebSocket API (v2)" in result.reason


@pytest.mark.parametrize("number", ["01", "02", "12"])
def test_other_rest_api_calls_are_rejected(number: str) -> None:
    """CreateDeployment's responseElements.id is a deployment ID: it must never be taken for an API."""
    with pytest.raises(EventError, match="'CreateDeployment' is not one of"):
        parse_event(load(number))


def test_trail_files_and_lookup_responses_are_not_events() -> None:
    with pytest.raises(EventError, match="trail file"):
        parse_event(load("04"))
    with pytest.raises(EventError, match="not a CloudTrail event"):
        parse_event(load("03"))
    (ignored,) = parse_records(load("04"))
    assert isinstance(ignored, Ignored) and "GetResource does not change a resource policy" in ignored.reason


def test_get_rest_api_record_is_rejected() -> None:
    (record,) = load("05")["Records"] if "Records" in load("05") else [load("05")]
    with pytest.raises(EventError, match="'GetRestApi' is not one of"):
        parse_event(record)


def mutate(path: list[str], value) -> dict:
    event = api_call_event("UpdateRestApi", "abcde12345", "eu-west-1", "111122223333")
    target = event
    for key in path[:-1]:
        target = target[key]
    if value is KeyError:
        del target[path[-1]]
    else:
        target[path[-1]] = value
    return event


@pytest.mark.parametrize(
    ("event", "message"),
    [
        ([], "not a JSON object"),
        ({"hello": "world"}, "not a CloudTrail event"),
        (mutate(["source"], "aws.s3"), "not an API Gateway CloudTrail event"),
        (mutate(["detail"], "oops"), "no CloudTrail record"),
        (mutate(["detail", "eventSource"], "s3.amazonaws.com"), "is not apigateway.amazonaws.com"),
        ({**mutate(["detail", "eventID"], KeyError), "id": ""}, "has no eventID"),
        (mutate(["detail", "requestParameters", "restApiId"], KeyError), "requestParameters.restApiId None"),
        (mutate(["detail", "requestParameters", "restApiId"], "../../etc"), "is not a REST API ID"),
        (mutate(["detail", "awsRegion"], "mars-1"), "not an AWS region"),
        (mutate(["detail", "recipientAccountId"], "42"), "not a 12-digit account ID"),
        (mutate(["detail", "eventName"], "DeleteRestApi"), "'DeleteRestApi' is not one of"),
    ],
)
def test_malformed_events_are_rejected_with_one_line(event, message: str) -> None:
    with pytest.raises(EventError) as raised:
        parse_event(event)
    assert message in str(raised.value) and "\n" not in str(raised.value)


def test_create_rest_api_reads_only_the_response() -> None:
    event = api_call_event("CreateRestApi", "abcde12345", "eu-west-1", "111122223333")
    event["detail"]["requestParameters"]["restApiId"] = "zzzzzzzzzz"
    assert parse_event(event).api_id == "abcde12345"


def test_failed_calls_are_ignored() -> None:
    event = api_call_event("UpdateRestApi", "abcde12345", "eu-west-1", "111122223333")
    event["detail"]["errorCode"] = "AccessDenied"
    assert isinstance(parse_event(event), Ignored)


def test_bare_record_and_envelope_agree() -> None:
    event = api_call_event("PutRestApi", "abcde12345", "eu-west-1", "111122223333")
    assert parse_event(event) == parse_event(copy.deepcopy(event["detail"]))


def test_rule_pattern_names_the_four_calls() -> None:
    assert EVENT_PATTERN["detail"]["eventName"] == ["CreateRestApi", "UpdateRestApi", "PutRestApi", "ImportRestApi"]


@pytest.mark.parametrize("number", sorted(EXPECTED))
def test_the_corpus_events_bound_to_their_own_account(number: str) -> None:
    """Given the remediator's account, an event of that account parses as before; of any other, it is refused."""
    event = load(number)
    assert isinstance(parse_event(event, owner_account="111122223333"), ApiChange)
    with pytest.raises(EventError, match="names account '111122223333', not this remediator's account 999999999999; refused"):
        parse_event(event, owner_account="999999999999")


@pytest.mark.parametrize("tamper, named", [
    (lambda e: e["detail"].__setitem__("recipientAccountId", "999999999999"), "999999999999"),
    (lambda e: e.__setitem__("account", "999999999999"), "999999999999"),
    (lambda e: e.__setitem__("resources", ["arn:aws:apigateway:eu-west-1:999999999999:/restapis/a1b2c3d4e5"]), "999999999999"),
    (lambda e: e["detail"].__setitem__("resources", [{"ARN": "arn:aws:iam::444455556666:role/x", "accountId": "444455556666"}]),
     "444455556666"),
])
def test_an_event_naming_another_account_anywhere_is_refused(tamper, named: str) -> None:
    event = api_call_event("UpdateRestApi", "a1b2c3d4e5", "eu-west-1", "111122223333")
    tamper(event)
    with pytest.raises(EventError, match=f"names account '{named}'") as refused:
        parse_event(event, owner_account="111122223333")
    assert "\n" not in str(refused.value)


@pytest.mark.parametrize("resources", ["arn:aws:iam::111122223333:root", [42], [{"ARN": 7}]])
def test_malformed_resources_are_refused(resources) -> None:
    event = api_call_event("UpdateRestApi", "a1b2c3d4e5", "eu-west-1", "111122223333")
    event["resources"] = resources
    with pytest.raises(EventError):
        parse_event(event, owner_account="111122223333")


def test_the_remediators_own_writes_are_ignored() -> None:
    role = "arn:aws:iam::111122223333:role/ApiPolicyRemediator-ApplyRole"
    identity = {"type": "AssumedRole", "arn": "arn:aws:sts::111122223333:assumed-role/ApiPolicyRemediator-ApplyRole/fn",
                "accountId": "111122223333", "sessionContext": {"sessionIssuer": {"type": "Role", "arn": role}}}
    event = api_call_event("UpdateRestApi", "a1b2c3d4e5", "eu-west-1", "111122223333", identity)
    ignored = parse_event(event, owner_account="111122223333", own_roles=frozenset({role}))
    assert isinstance(ignored, Ignored) and "own role" in ignored.reason
    other = parse_event(event, owner_account="111122223333", own_roles=frozenset({role + "2"}))
    assert isinstance(other, ApiChange)
