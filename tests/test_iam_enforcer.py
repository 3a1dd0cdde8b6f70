"""The IAM evaluator behind the strict local account: each rule is checked both ways (allowed and denied),
because a permissive bug would let a handler pass locally and fail in AWS."""

from __future__ import annotations

import re
import time
from typing import Any

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from remediator.local.iam import Call, Decision, IamError, PolicySet, dataset, resource_policy_decide

API = "arn:aws:apigateway:eu-west-1::/restapis/abc123defg"
TABLE = "arn:aws:dynamodb:eu-west-1:111122223333:table/approvals"
TOPIC = "arn:aws:sns:eu-west-1:111122223333:alarms"
ALARM = "arn:aws:cloudwatch:eu-west-1:111122223333:alarm:api-gateway-5xx"


def policy(*statements: dict[str, Any], principal: str = "RemediatorRole") -> PolicySet:
    return PolicySet([{"Version": "2012-10-17", "Statement": list(statements)}], principal=principal)


def allow(action: Any, resource: Any = "*", **extra: Any) -> dict[str, Any]:
    return {"Effect": "Allow", "Action": action, "Resource": resource, **extra}


def allowed(ps: PolicySet, action: str, resource: str = API, **context: Any) -> bool:
    return ps.decide(Call(action, resource, {k.replace("__", ":"): v for k, v in context.items()})).allowed


# ---- the role the stack synthesizes -------------------------------------------------------------

CFN_ROLE = PolicySet(
    [{"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": ["apigateway:GET", "apigateway:PATCH"],
                                              "Resource": "arn:aws:apigateway:eu-west-1::/restapis/*"}]}],
    principal="RemediatorFunctionRole",
)


@pytest.mark.parametrize("action", ["apigateway:GET", "apigateway:PATCH"])
def test_cfn_role_allows_its_granted_methods(action: str) -> None:
    decision = CFN_ROLE.decide(Call(action, "arn:aws:apigateway:eu-west-1::/restapis/abc"))
    assert decision == Decision(True, "allowed by statement 0", 0)


def test_cfn_role_does_not_allow_update_rest_api_policy() -> None:
    """The key negative case: PATCH on a REST API is not the permission to change its resource policy."""
    assert CFN_ROLE.decide(Call("apigateway:UpdateRestApiPolicy", "arn:aws:apigateway:eu-west-1::/restapis/abc")) == Decision(
        False, "no statement allows it", None
    )


def test_cfn_role_denies_other_methods_and_regions() -> None:
    assert not allowed(CFN_ROLE, "apigateway:POST", "arn:aws:apigateway:eu-west-1::/restapis/abc")
    assert not allowed(CFN_ROLE, "apigateway:DELETE", "arn:aws:apigateway:eu-west-1::/restapis/abc")
    assert not allowed(CFN_ROLE, "apigateway:GET", "arn:aws:apigateway:us-east-1::/restapis/abc")
    assert not allowed(CFN_ROLE, "apigateway:GET", "arn:aws:apigateway:eu-west-1::/domainnames/x")


def test_star_in_resource_spans_slashes_and_colons() -> None:
    assert allowed(CFN_ROLE, "apigateway:GET", "arn:aws:apigateway:eu-west-1::/restapis/abc/stages/prod")
    ps = policy(allow("apigateway:GET", "arn:aws:apigateway:*/restapis/*"))
    assert allowed(ps, "apigateway:GET", "arn:aws:apigateway:us-east-1::/restapis/abc")


# ---- Action / Resource matching -----------------------------------------------------------------

def test_actions_match_case_insensitively_resources_case_sensitively() -> None:
    assert allowed(CFN_ROLE, "APIGateway:get", "arn:aws:apigateway:eu-west-1::/restapis/abc")
    assert allowed(policy(allow("ApiGateway:Patch", API)), "apigateway:PATCH")
    assert not allowed(CFN_ROLE, "apigateway:GET", "arn:aws:apigateway:eu-west-1::/RESTAPIS/abc")


def test_question_mark_matches_exactly_one_character() -> None:
    ps = policy(allow("apigateway:GE?", "arn:aws:apigateway:eu-west-1::/restapis/abc???????"))
    assert allowed(ps, "apigateway:GET")
    assert not allowed(ps, "apigateway:GET", API + "x")
    assert not allowed(ps, "apigateway:GET", API[:-1])


def test_not_action_allows_everything_else() -> None:
    ps = policy({"Effect": "Allow", "NotAction": ["apigateway:UpdateRestApiPolicy", "iam:*"], "Resource": "*"})
    assert allowed(ps, "apigateway:PATCH")
    assert allowed(ps, "dynamodb:PutItem", TABLE)
    assert not allowed(ps, "apigateway:UpdateRestApiPolicy")
    assert not allowed(ps, "iam:PassRole", "arn:aws:iam::111122223333:role/x")


def test_not_resource_allows_everything_but_the_listed_resources() -> None:
    ps = policy({"Effect": "Allow", "Action": "dynamodb:*", "NotResource": ["arn:aws:dynamodb:*:*:table/audit*"]})
    assert allowed(ps, "dynamodb:PutItem", TABLE)
    assert not allowed(ps, "dynamodb:PutItem", "arn:aws:dynamodb:eu-west-1:111122223333:table/audit-log")


def test_explicit_deny_overrides_allow_in_any_order() -> None:
    deny = {"Effect": "Deny", "Action": "apigateway:PATCH", "Resource": API}
    for ps, index in ((policy(allow("apigateway:*"), deny), 1), (policy(deny, allow("apigateway:*")), 0)):
        assert ps.decide(Call("apigateway:PATCH", API)) == Decision(False, f"explicit deny by statement {index}", index)
        assert allowed(ps, "apigateway:GET")
        assert allowed(ps, "apigateway:PATCH", API + "x")


def test_deny_alone_and_empty_policy_are_implicit_denies() -> None:
    assert policy({"Effect": "Deny", "NotAction": "sns:Publish", "Resource": "*"}).decide(Call("sns:Publish", TOPIC)) == Decision(
        False, "no statement allows it", None
    )
    assert not allowed(PolicySet([]), "sts:GetCallerIdentity", "*")


def test_statements_are_flattened_across_documents_in_order() -> None:
    ps = PolicySet(
        [{"Statement": allow("sns:Publish", TOPIC)}, {"Statement": [allow("logs:PutLogEvents"), allow("kms:Decrypt")]}],
        principal="Role",
    )
    assert [s["Action"] for s in ps.statements] == ["sns:Publish", "logs:PutLogEvents", "kms:Decrypt"]
    assert ps.decide(Call("kms:Decrypt", "arn:aws:kms:eu-west-1:111122223333:key/k")).statement == 2
    assert PolicySet([allow("sns:Publish")]).decide(Call("sns:Publish", TOPIC)).allowed  # a bare statement


def test_first_matching_allow_is_reported() -> None:
    ps = policy(allow("sns:Publish", TOPIC + "-other"), allow("sns:*", TOPIC), allow("sns:Publish"))
    assert ps.decide(Call("sns:Publish", TOPIC)) == Decision(True, "allowed by statement 1", 1)


# ---- conditions ---------------------------------------------------------------------------------

LEADING_KEYS = allow(["dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:Query"], TABLE,
                     Condition={"ForAllValues:StringLike": {"dynamodb:LeadingKeys": ["approval#*", "execution#*"]}})


@pytest.mark.parametrize(("keys", "expected"), [
    (("approval#1",), True),
    (("execution#9", "approval#1"), True),
    (("api#x",), False),
    (("approval#1", "api#x"), False),
    ((), True),  # AWS: ForAllValues is true when the request has no value for the key
])
def test_dynamodb_leading_keys_for_all_values(keys: tuple[str, ...], expected: bool) -> None:
    assert allowed(policy(LEADING_KEYS), "dynamodb:PutItem", TABLE, dynamodb__LeadingKeys=keys) is expected


def test_for_all_values_is_true_when_the_key_is_absent_for_any_value_false() -> None:
    assert allowed(policy(LEADING_KEYS), "dynamodb:Query", TABLE)
    any_value = allow("dynamodb:Query", TABLE, Condition={"ForAnyValue:StringEquals": {"dynamodb:Attributes": ["pk", "sk"]}})
    assert not allowed(policy(any_value), "dynamodb:Query", TABLE)
    assert not allowed(policy(any_value), "dynamodb:Query", TABLE, dynamodb__Attributes=())
    assert allowed(policy(any_value), "dynamodb:Query", TABLE, dynamodb__Attributes=("data", "sk"))
    assert not allowed(policy(any_value), "dynamodb:Query", TABLE, dynamodb__Attributes=("data",))


def test_negated_set_operators() -> None:
    all_not = policy(allow("dynamodb:Query", TABLE, Condition={"ForAllValues:StringNotLike": {"dynamodb:Attributes": "secret*"}}))
    assert allowed(all_not, "dynamodb:Query", TABLE, dynamodb__Attributes=("pk", "sk"))
    assert not allowed(all_not, "dynamodb:Query", TABLE, dynamodb__Attributes=("pk", "secretValue"))
    any_not = policy(allow("dynamodb:Query", TABLE, Condition={"ForAnyValue:StringNotEquals": {"dynamodb:Attributes": "pk"}}))
    assert allowed(any_not, "dynamodb:Query", TABLE, dynamodb__Attributes=("pk", "sk"))
    assert not allowed(any_not, "dynamodb:Query", TABLE, dynamodb__Attributes=("pk",))


def conditioned(condition: dict[str, Any]) -> PolicySet:
    return policy(allow("sns:Publish", TOPIC, Condition=condition))


@pytest.mark.parametrize(("condition", "context", "expected"), [
    ({"StringEquals": {"aws:SourceAccount": "111122223333"}}, {"aws:SourceAccount": ("111122223333",)}, True),
    ({"StringEquals": {"aws:SourceAccount": "111122223333"}}, {"aws:SourceAccount": ("444455556666",)}, False),
    ({"StringEquals": {"aws:SourceAccount": "111122223333"}}, {}, False),  # single-valued operator, missing key
    ({"StringEquals": {"aws:PrincipalTag/team": "ops"}}, {"aws:PrincipalTag/team": ("OPS",)}, False),  # values case-sensitive
    ({"StringEquals": {"AWS:SOURCEACCOUNT": "1"}}, {"aws:sourceaccount": ("1",)}, True),  # keys case-insensitive
    ({"StringNotEquals": {"aws:SourceAccount": "1"}}, {"aws:SourceAccount": ("2",)}, True),
    ({"StringNotEquals": {"aws:SourceAccount": "1"}}, {"aws:SourceAccount": ("1",)}, False),
    ({"StringNotEquals": {"aws:SourceAccount": ["1", "2"]}}, {"aws:SourceAccount": ("2",)}, False),  # matches none of them
    ({"StringNotEquals": {"aws:SourceAccount": "1"}}, {}, True),  # AWS: a negated operator holds on a missing key
    ({"StringNotEquals": {"aws:SourceAccount": "1"}}, {"aws:SourceAccount": ("2", "1")}, False),  # NOT (any value matches)
    ({"StringEquals": {"aws:SourceAccount": "1"}}, {"aws:SourceAccount": ("2", "1")}, True),
    ({"StringEqualsIgnoreCase": {"aws:PrincipalTag/team": "ops"}}, {"aws:PrincipalTag/team": ("OPS",)}, True),
    ({"StringNotEqualsIgnoreCase": {"aws:PrincipalTag/team": "ops"}}, {"aws:PrincipalTag/team": ("Ops",)}, False),
    ({"StringLike": {"aws:userid": "AROA*:remediator-?"}}, {"aws:userid": ("AROAXYZ:remediator-1",)}, True),
    ({"StringLike": {"aws:userid": "AROA*:remediator-?"}}, {"aws:userid": ("AROAXYZ:remediator-10",)}, False),
    ({"StringNotLike": {"aws:userid": "AROA*"}}, {"aws:userid": ("AIDA1",)}, True),
    ({"StringNotLike": {"aws:userid": "AROA*"}}, {"aws:userid": ("AROA1",)}, False),
    ({"StringEquals": {"aws:SourceAccount": ["1", "2"]}}, {"aws:SourceAccount": ("2",)}, True),  # values OR
    ({"StringEquals": {"aws:SourceAccount": "1", "aws:SourceVpc": "vpc-1"}}, {"aws:SourceAccount": ("1",)}, False),  # keys AND
    ({"StringEquals": {"aws:SourceAccount": "1", "aws:SourceVpc": "vpc-1"}},
     {"aws:SourceAccount": ("1",), "aws:SourceVpc": ("vpc-1",)}, True),
    ({"StringEquals": {"aws:SourceAccount": "1"}, "Bool": {"aws:SecureTransport": "true"}},
     {"aws:SourceAccount": ("1",), "aws:SecureTransport": ("false",)}, False),  # operators AND
    ({"StringEquals": {"aws:SourceAccount": "1"}, "Bool": {"aws:SecureTransport": True}},
     {"aws:SourceAccount": ("1",), "aws:SecureTransport": ("true",)}, True),
    ({"StringEqualsIfExists": {"aws:SourceAccount": "1"}}, {}, True),
    ({"StringEqualsIfExists": {"aws:SourceAccount": "1"}}, {"aws:SourceAccount": ("2",)}, False),
    ({"Null": {"aws:SourceAccount": "true"}}, {}, True),
    ({"Null": {"aws:SourceAccount": "true"}}, {"aws:SourceAccount": ("1",)}, False),
    ({"Null": {"aws:SourceAccount": "false"}}, {"aws:SourceAccount": ("1",)}, True),
    ({"Null": {"aws:SourceAccount": False}}, {}, False),
    ({"Bool": {"aws:SecureTransport": "false"}}, {"aws:SecureTransport": ("False",)}, True),
    ({"Bool": {"aws:SecureTransport": "false"}}, {}, False),
    ({"NumericLessThan": {"s3:max-keys": "10"}}, {"s3:max-keys": ("9",)}, True),
    ({"NumericLessThan": {"s3:max-keys": 10}}, {"s3:max-keys": ("10",)}, False),
    ({"NumericLessThanEquals": {"s3:max-keys": "10"}}, {"s3:max-keys": ("10",)}, True),
    ({"NumericGreaterThan": {"s3:max-keys": "10"}}, {"s3:max-keys": ("10.5",)}, True),
    ({"NumericGreaterThanEquals": {"s3:max-keys": "10"}}, {"s3:max-keys": ("9",)}, False),
    ({"NumericEquals": {"s3:max-keys": "10"}}, {"s3:max-keys": ("10.0",)}, True),
    ({"NumericNotEquals": {"s3:max-keys": "10"}}, {"s3:max-keys": ("10",)}, False),
    ({"NumericEquals": {"s3:max-keys": "10"}}, {"s3:max-keys": ("ten",)}, False),  # unparsable request value: no match
    ({"DateLessThan": {"aws:CurrentTime": "2030-01-01T00:00:00Z"}}, {"aws:CurrentTime": ("2029-12-31T23:59:59Z",)}, True),
    ({"DateGreaterThan": {"aws:CurrentTime": "2030-01-01T00:00:00Z"}}, {"aws:CurrentTime": ("2029-12-31T23:59:59Z",)}, False),
    ({"DateEquals": {"aws:EpochTime": "1893456000"}}, {"aws:EpochTime": ("2030-01-01T00:00:00Z",)}, True),
    ({"IpAddress": {"aws:SourceIp": "203.0.113.0/24"}}, {"aws:SourceIp": ("203.0.113.7",)}, True),
    ({"IpAddress": {"aws:SourceIp": "203.0.113.0/24"}}, {"aws:SourceIp": ("198.51.100.7",)}, False),
    ({"NotIpAddress": {"aws:SourceIp": "203.0.113.0/24"}}, {"aws:SourceIp": ("198.51.100.7",)}, True),
    ({"ArnLike": {"aws:SourceArn": "arn:aws:cloudwatch:*:111122223333:alarm:*"}}, {"aws:SourceArn": (ALARM,)}, True),
    ({"ArnEquals": {"aws:SourceArn": ALARM}}, {"aws:SourceArn": (ALARM,)}, True),
    ({"ArnEquals": {"aws:SourceArn": ALARM}}, {"aws:SourceArn": (ALARM + "x",)}, False),
    ({"ArnLike": {"aws:SourceArn": "arn:aws:cloudwatch:*:alarm:*"}}, {"aws:SourceArn": (ALARM,)}, False),  # * stays in its part
    ({"StringLike": {"aws:SourceArn": "arn:aws:cloudwatch:*:alarm:*"}}, {"aws:SourceArn": (ALARM,)}, True),  # ... unlike here
    ({"ArnLike": {"aws:SourceArn": "arn:aws:cloudwatch:*:*:*"}}, {"aws:SourceArn": ("not-an-arn",)}, False),
    ({"ArnNotLike": {"aws:SourceArn": "arn:aws:cloudwatch:*:444455556666:alarm:*"}}, {"aws:SourceArn": (ALARM,)}, True),
    ({"ArnNotEquals": {"aws:SourceArn": ALARM}}, {"aws:SourceArn": (ALARM,)}, False),
    ({"ArnNotLike": {"aws:SourceArn": "arn:aws:cloudwatch:*:*:*"}}, {}, True),
])
def test_condition_operators(condition: dict[str, Any], context: dict[str, tuple[str, ...]], expected: bool) -> None:
    assert conditioned(condition).decide(Call("sns:Publish", TOPIC, context)).allowed is expected


def test_calls_are_hashable_values() -> None:
    assert len({Call("sns:Publish", TOPIC, {"a:b": ("1",)}), Call("sns:Publish", TOPIC, {"a:b": ("1",)})}) == 1
    assert Call("sns:Publish", TOPIC, {"a:b": ("1",)}) != Call("sns:Publish", TOPIC, {"a:b": ("2",)})


def test_a_bare_string_context_value_is_one_value_not_its_characters() -> None:
    ps = conditioned({"StringEquals": {"aws:SourceAccount": "1"}})
    assert ps.decide(Call("sns:Publish", TOPIC, {"aws:SourceAccount": "1"})).allowed  # type: ignore[dict-item]
    assert not ps.decide(Call("sns:Publish", TOPIC, {"aws:SourceAccount": "12"})).allowed  # type: ignore[dict-item]


def test_conditional_deny_applies_only_when_its_condition_holds() -> None:
    ps = policy(allow("sns:Publish", TOPIC), {"Effect": "Deny", "Action": "*", "Resource": "*",
                                               "Condition": {"Bool": {"aws:SecureTransport": "false"}}})
    assert allowed(ps, "sns:Publish", TOPIC, aws__SecureTransport=("true",))
    decision = ps.decide(Call("sns:Publish", TOPIC, {"aws:SecureTransport": ("false",)}))
    assert decision == Decision(False, "explicit deny by statement 1", 1)


# ---- validation ---------------------------------------------------------------------------------

@pytest.mark.parametrize(("statement", "message"), [
    (allow("apigateway:UpdateRestApiPolicyy"),
     "policy of RemediatorRole grants unknown action 'apigateway:UpdateRestApiPolicyy'"),
    (allow("apigateway:Foo*"), "grants unknown action 'apigateway:Foo*'"),
    (allow("apigatewayy:GET"), "policy of RemediatorRole grants unknown action 'apigatewayy:GET'"),
    (allow(["sns:Publish", "GET"]), "grants unknown action 'GET'"),
    (allow(["sns:*", "sns:"]), "unknown action 'sns:'"),
    (allow("sns:Publish", Condition={"Bool": {"aws:SecureTransport": "yes"}}), "is not a boolean"),
    (allow("sns:Publish", Condition={"Null": {"aws:SourceAccount": "maybe"}}), "is not a boolean"),
    (allow("sns:Publish", Condition={"StringEquals": {"aws:SourceAccount": {"nested": 1}}}), "not a string, number or boolean"),
    (allow("sns:Publish", Condition={"StringEquals": {"aws:SourceAccount": []}}), "needs values"),
    (allow("sns:Publish", Condition={"StringEquals": {}}), "needs an object"),
    ({"Effect": "Deny", "NotAction": "sns:Pubish", "Resource": "*"}, "unknown action 'sns:Pubish'"),
    ({**allow("sns:Publish"), "Principal": {"AWS": "*"}}, "cannot name a Principal"),
    ({"Effect": "allow", "Action": "sns:Publish", "Resource": "*"}, "Effect must be Allow or Deny"),
    ({"Action": "sns:Publish", "Resource": "*"}, "Effect must be Allow or Deny"),
    ({"Effect": "Allow", "Action": "sns:Publish"}, "exactly one of Resource or NotResource"),
    ({"Effect": "Allow", "Resource": "*"}, "exactly one of Action or NotAction"),
    ({**allow("sns:Publish"), "NotAction": "sns:Subscribe"}, "exactly one of Action or NotAction"),
    (allow([]), "non-empty"),
    (allow("sns:Publish", ""), "non-empty"),
    (allow("sns:Publish", "arn:aws:s3:::bucket/${aws:username}/*"), "policy variables"),
    (allow("sns:Publish", Condition={"StringEqualz": {"aws:SourceAccount": "1"}}), "unknown condition operator 'StringEqualz'"),
    (allow("sns:Publish", Condition={"ForEachValue:StringEquals": {"a:b": "1"}}), "unknown condition operator"),
    (allow("sns:Publish", Condition={"NullIfExists": {"a:b": "true"}}), "unknown condition operator"),
    (allow("sns:Publish", Condition={"NumericLessThan": {"s3:max-keys": "ten"}}), "is not a numeric"),
    (allow("sns:Publish", Condition={"ArnLike": {"aws:SourceArn": "arn:aws:cloudwatch:*"}}), "is not an ARN"),
    (allow("sns:Publish", Condition={"IpAddress": {"aws:SourceIp": "nowhere"}}), "is not an IP range"),
    (allow("sns:Publish", Condition={"StringEquals": {"aws:username": "user-${aws:username}"}}), "policy variable"),
    (allow("sns:Publish", Condition={"NumericEquals": {"s3:max-keys": "${aws:username}"}}), "policy variable"),
    (allow("sns:Publish", Condition=["StringEquals"]), "Condition must be an object"),
    ({**allow("sns:Publish"), "Resources": "*"}, "unknown statement element"),
])
def test_invalid_policies_are_rejected(statement: dict[str, Any], message: str) -> None:
    with pytest.raises(IamError, match="^[^\n]*" + re.escape(message)):
        policy(statement)


def test_unknown_version_and_unknown_call_actions_are_rejected() -> None:
    with pytest.raises(IamError, match="Version"):
        PolicySet([{"Version": "2012-10-18", "Statement": []}])
    for bad in (["not a statement"], "not a document"):
        with pytest.raises(IamError, match="must be an object"):
            PolicySet([{"Statement": bad}] if isinstance(bad, list) else [bad])  # type: ignore[list-item]
    with pytest.raises(IamError, match="unknown action 'apigateway:Foo'"):
        CFN_ROLE.decide(Call("apigateway:Foo", API))


# ---- the dataset --------------------------------------------------------------------------------

@pytest.mark.parametrize("action", [
    "apigateway:UpdateRestApiPolicy", "states:SendTaskSuccess", "logs:PutLogEvents", "kms:GenerateDataKey",
    "secretsmanager:GetSecretValue", "ssm:GetParameter", "sns:Publish", "lambda:InvokeFunction", "sts:GetCallerIdentity",
    "APIGATEWAY:updaterestapipolicy",
])
def test_dataset_knows_the_actions_the_handlers_use(action: str) -> None:
    assert dataset().knows_action(action)


@pytest.mark.parametrize("action", ["apigateway:Foo", "apigatewayy:GET", "GET", "", "apigateway:GET:x"])
def test_dataset_rejects_what_it_does_not_know(action: str) -> None:
    assert not dataset().knows_action(action)


def test_dataset_is_loaded_once() -> None:
    assert dataset() is dataset()
    start = time.perf_counter()
    dataset().expand("*")
    assert time.perf_counter() - start < 0.1


def test_expand() -> None:
    gets = dataset().expand("dynamodb:Get*")
    assert {"dynamodb:GetItem", "dynamodb:GetRecords"} <= gets
    assert "dynamodb:PutItem" not in gets and "dynamodb:BatchGetItem" not in gets
    assert all(a.startswith("dynamodb:Get") for a in gets)
    assert dataset().expand("DynamoDB:getitem") == {"dynamodb:GetItem"}
    assert dataset().expand("apigateway:?ET") == {"apigateway:GET"}
    assert dataset().expand("apigateway:Foo*") == frozenset()
    everything = dataset().expand("*")
    assert len(everything) > 15000 and {"sns:Publish", "dynamodb:GetItem"} <= everything
    with pytest.raises(IamError, match="unknown service"):
        dataset().expand("dynamo:Get*")


def test_arn_format() -> None:
    assert dataset().arn_format("dynamodb", "table") == "arn:${Partition}:dynamodb:${Region}:${Account}:table/${TableName}"
    assert dataset().arn_format("apigateway", "restapi") == "arn:${Partition}:apigateway:${Region}::/restapis/${RestApiId}"
    for service, kind in (("dynamodb", "tabel"), ("nosuch", "table")):
        with pytest.raises(IamError):
            dataset().arn_format(service, kind)


def test_granted_expands_allow_statements_only() -> None:
    deny = {"Effect": "Deny", "Action": "sns:*", "Resource": "*"}
    ps = policy(allow("dynamodb:Get*", TABLE), allow("apigateway:PATCH", API), deny)
    granted = ps.granted()
    assert (0, "dynamodb:GetItem") in granted and (1, "apigateway:PATCH") in granted
    assert {a for i, a in granted if i == 0} == dataset().expand("dynamodb:Get*")
    assert not any(i == 2 for i, _ in granted)
    not_action = policy({"Effect": "Allow", "NotAction": "iam:*", "Resource": "*"}).granted()
    assert (0, "sns:Publish") in not_action and (0, "iam:PassRole") not in not_action


# ---- resource policies --------------------------------------------------------------------------

TOPIC_POLICY = {
    "Version": "2012-10-17",
    "Statement": [
        {"Effect": "Deny", "Principal": "*", "Action": "sns:Publish", "Resource": TOPIC,
         "Condition": {"Bool": {"aws:SecureTransport": "false"}}},
        {"Effect": "Allow", "Principal": {"Service": "cloudwatch.amazonaws.com"}, "Action": "sns:Publish", "Resource": TOPIC,
         "Condition": {"StringEquals": {"aws:SourceAccount": "111122223333"},
                       "ArnLike": {"aws:SourceArn": "arn:aws:cloudwatch:eu-west-1:111122223333:alarm:*"}}},
    ],
}
GOOD = {"aws:SecureTransport": ("true",), "aws:SourceAccount": ("111122223333",), "aws:SourceArn": (ALARM,)}


def test_topic_policy_allows_cloudwatch_from_the_account() -> None:
    assert resource_policy_decide(TOPIC_POLICY, "cloudwatch.amazonaws.com", Call("sns:Publish", TOPIC, GOOD)) == Decision(
        True, "allowed by statement 1", 1
    )


@pytest.mark.parametrize("change", [
    {"aws:SourceAccount": ("444455556666",)},
    {"aws:SourceArn": ("arn:aws:cloudwatch:eu-west-1:444455556666:alarm:x",)},
    {"aws:SourceArn": ("arn:aws:cloudwatch:us-east-1:111122223333:alarm:x",)},
])
def test_topic_policy_denies_other_sources(change: dict[str, tuple[str, ...]]) -> None:
    call = Call("sns:Publish", TOPIC, {**GOOD, **change})
    assert not resource_policy_decide(TOPIC_POLICY, "cloudwatch.amazonaws.com", call).allowed


def test_topic_policy_deny_for_plain_http_wins() -> None:
    decision = resource_policy_decide(TOPIC_POLICY, "cloudwatch.amazonaws.com",
                                      Call("sns:Publish", TOPIC, {**GOOD, "aws:SecureTransport": ("false",)}))
    assert decision == Decision(False, "explicit deny by statement 0", 0)


def test_topic_policy_denies_other_principals_actions_and_topics() -> None:
    assert resource_policy_decide(TOPIC_POLICY, "events.amazonaws.com", Call("sns:Publish", TOPIC, GOOD)) == Decision(
        False, "no statement allows it", None
    )
    assert not resource_policy_decide(TOPIC_POLICY, "cloudwatch.amazonaws.com", Call("sns:Subscribe", TOPIC, GOOD)).allowed
    assert not resource_policy_decide(TOPIC_POLICY, "cloudwatch.amazonaws.com", Call("sns:Publish", TOPIC + "-2", GOOD)).allowed
    only_deny = {"Statement": TOPIC_POLICY["Statement"][:1]}
    assert not resource_policy_decide(only_deny, "cloudwatch.amazonaws.com", Call("sns:Publish", TOPIC, GOOD)).allowed


def test_key_policy_resource_star_is_the_key_and_principal_forms() -> None:
    key = "arn:aws:kms:eu-west-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab"
    call = Call("kms:GenerateDataKey", key)
    for principal in ({"Service": ["sns.amazonaws.com", "cloudwatch.amazonaws.com"]}, {"AWS": "*"}, {"AWS": ["*"]}, "*"):
        key_policy = {"Statement": [{"Effect": "Allow", "Principal": principal, "Action": ["kms:GenerateDataKey*", "kms:Decrypt"],
                                     "Resource": "*"}]}
        assert resource_policy_decide(key_policy, "cloudwatch.amazonaws.com", call).allowed, principal
    other = {"Statement": [{"Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::111122223333:root"}, "Action": "kms:*",
                            "Resource": "*"}]}
    assert not resource_policy_decide(other, "cloudwatch.amazonaws.com", call).allowed
    not_principal = {"Statement": [{"Effect": "Allow", "Principal": "*", "Action": "kms:*", "Resource": "*"},
                                   {"Effect": "Deny", "NotPrincipal": {"Service": "sns.amazonaws.com"}, "Action": "kms:*",
                                    "Resource": "*"}]}
    assert resource_policy_decide(not_principal, "sns.amazonaws.com", call).allowed
    assert not resource_policy_decide(not_principal, "cloudwatch.amazonaws.com", call).allowed


def test_resource_policy_validation() -> None:
    with pytest.raises(IamError, match="exactly one of Principal"):
        resource_policy_decide({"Statement": [allow("sns:Publish")]}, "cloudwatch.amazonaws.com", Call("sns:Publish", TOPIC))
    with pytest.raises(IamError, match="unknown action 'sns:Publsh'"):
        resource_policy_decide({"Statement": [{**allow("sns:Publsh"), "Principal": "*"}]}, "cloudwatch.amazonaws.com",
                               Call("sns:Publish", TOPIC))


# ---- property -----------------------------------------------------------------------------------

@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.characters(min_codepoint=0, max_codepoint=127), min_size=1, max_size=40), st.data())
def test_exact_and_starred_resources_allow_their_own_string(s: str, data: st.DataObject) -> None:
    assume("${" not in s)
    assert policy(allow("sns:Publish", s)).decide(Call("sns:Publish", s)).allowed
    start = data.draw(st.integers(0, len(s)))
    end = data.draw(st.integers(start, len(s)))
    pattern = s[:start] + "*" + s[end:]
    assume("${" not in pattern)
    assert policy(allow("sns:Publish", pattern)).decide(Call("sns:Publish", s)).allowed
    assert not policy(allow("sns:Publish", s + "\x00")).decide(Call("sns:Publish", s)).allowed
