import json

import pytest

from remediator.core import PolicyError, parse_policy, statements_of

POLICY = {
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Principal": "*", "Action": "execute-api:Invoke", "Resource": "arn:aws:execute-api:us-east-1:111122223333:abc/*"}],
}


def sdk_form(policy: dict) -> str:
    """What boto3's get_rest_api returns: the JSON as a string body, quotes and slashes escaped."""
    return json.dumps(json.dumps(policy))[1:-1].replace("/", "\\/")


def test_dict_and_json_text_are_accepted() -> None:
    assert parse_policy(POLICY) == POLICY
    assert parse_policy(json.dumps(POLICY)) == POLICY
    assert parse_policy(json.dumps(POLICY).encode()) == POLICY


def test_sdk_escaped_form_is_decoded_as_a_json_string() -> None:
    text = sdk_form(POLICY)
    assert text.startswith('{\\"Version\\"') and "\\/" in text
    assert parse_policy(text) == POLICY


def test_wire_form_with_its_quotes_is_decoded() -> None:
    assert parse_policy(json.dumps(sdk_form(POLICY))) == POLICY


def test_escaped_backslash_inside_a_value_survives() -> None:
    """Deleting backslashes (the common shortcut) would corrupt this value; decoding keeps it."""
    policy = {"Statement": [{"Effect": "Allow", "Principal": "*", "Sid": 'quote"and\\slash', "Resource": "x/y"}]}
    assert parse_policy(sdk_form(policy)) == policy


def test_pretty_printed_escaped_form_is_decoded() -> None:
    text = json.dumps(json.dumps(POLICY, indent=2))[1:-1].replace("\\n", "\n")
    assert "\n" in text and text.startswith('{\n  \\"Version\\"')
    assert parse_policy(text) == POLICY


def test_single_statement_object() -> None:
    policy = {"Statement": {"Effect": "Deny", "Principal": "*"}}
    assert statements_of(parse_policy(policy)) == [policy["Statement"]]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "policy is empty"),
        ("{not json", "policy is not JSON"),
        ("[1, 2]", "not a JSON object (got array)"),
        ('"just a string"', "policy is not JSON"),
        ("{}", "has no 'Statement'"),
        ('{"Statement": "Allow"}', "'Statement' must be an object or a list (got string)"),
        ('{"Statement": [42]}', "statement 0 is not a JSON object (got number)"),
        ('{"Statement": [{"Effect": "Allow"}, null]}', "statement 1 is not a JSON object (got null)"),
        ('{"Statement": [{"Principal": "*", "NotPrincipal": "*"}]}', "both 'Principal' and 'NotPrincipal'"),
        ('{"Statement": [{"Condition": []}]}', "'Condition' must be an object"),
        ('{\\"Statement\\": [\\"', "policy is not JSON: Unterminated string"),
        ('{\\"Statement\\": "', "nor an escaped JSON string"),
        (b"\xff\xfe", "not UTF-8"),
        ('{"Statement": ' + "[" * 100_000 + "]" * 100_000 + "}", "nested too deeply"),
        ("[" * 100_000, "nested too deeply"),
        ('{"Statement": [], "Id": NaN}', "NaN, which is not JSON"),
        ('{"Statement": [], "Id": -Infinity}', "-Infinity, which is not JSON"),
    ],
)
def test_malformed_input_raises_one_clear_error(text: str | bytes, message: str) -> None:
    with pytest.raises(PolicyError) as raised:
        parse_policy(text)
    assert message in str(raised.value)
    assert "\n" not in str(raised.value)


def test_non_object_values_are_rejected() -> None:
    with pytest.raises(PolicyError, match="got number"):
        parse_policy(3)  # type: ignore[arg-type]


@pytest.mark.parametrize("text", ['{"Statement": [], "Id": 1' + "0" * 5000 + "}", '{\\"Statement\\": [], \\"Id\\": 1' + "0" * 5000 + "}"])
def test_a_number_python_cannot_convert_is_read_and_written_back_exactly(text: str) -> None:
    from remediator.core import compact_json

    assert compact_json(parse_policy(text)) == '{"Statement":[],"Id":1' + "0" * 5000 + "}"
