"""The differential gate: the fast engine (msgspec, one fused pass, per-configuration memos, findings
worded on demand) gives exactly what the stdlib oracle `reference_evaluate` gives: the same findings and
notes, the same fixed policy, the same patch text byte for byte, the same error message.

Every input goes through both in each of the forms policies come in: compact JSON, pretty-printed, with
`\\u` escapes, API Gateway's escaped string, bytes and a dict; and with a key repeated in the text.
"""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from remediator.core import PolicyError, TrustConfig, evaluate_policy, policy as policy_module, trust, trust_config
from remediator.core.trust import reference_evaluate
from tests.conftest import OWNER, PARTNER, STRANGER, TRUSTED_ORG, corpus_dir
from tests.test_fix_properties import policies

CONFIGS = [
    TrustConfig(owner_account=OWNER),
    TrustConfig(owner_account=OWNER, trusted_accounts=frozenset({PARTNER}), trusted_org_ids=frozenset({TRUSTED_ORG})),
    TrustConfig(owner_account=OWNER, trusted_accounts=frozenset({PARTNER, STRANGER}), remove_wildcard_principals=True),
]
OTHER_ORG = "o-zz9y8x7w6v"

# Values that test each condition rule, each principal shape and each number the two paths could read differently.
CONDITION_KEYS = ["aws:PrincipalOrgID", "aws:PrincipalAccount", "aws:PrincipalArn", "aws:SourceAccount", "aws:SourceArn",
                  "aws:PrincipalOrgPaths", "aws:SourceIp", "aws:SourceVpce", "aws:PrincipalIsAWSService", "aws:userid",
                  "AWS:PRINCIPALACCOUNT"]
OPERATORS = ["StringEquals", "StringLike", "StringEqualsIgnoreCase", "StringNotEquals", "StringNotEqualsIfExists",
             "StringNotLike", "ArnLike", "ArnNotLike", "ArnEquals", "ForAllValues:StringEquals", "ForAnyValue:StringLike",
             "StringEqualsIfExists", "IpAddress", "NotIpAddress", "Bool", "BoolIfExists", "NumericLessThan"]
STRINGS = [OWNER, PARTNER, STRANGER, TRUSTED_ORG, OTHER_ORG, "o-*", "*", "", "false", "true", "10.0.0.0/8", "vpce-1",
           f"arn:aws:iam::{OWNER}:role/*", f"arn:aws:iam::{STRANGER}:root", "arn:aws:iam::*:root", f"{TRUSTED_ORG}/r-ab12/*",
           "arn:aws:sts::" + PARTNER + ":assumed-role/r/s", "caf\u00e9", "\u2028", "a\"b\\c/d", "\u0661" * 12]
NUMBERS = st.sampled_from(["0", "-0", "1", "-7", "1.5", "1.50", "1e16", "1E2", "-1e999", "123456789012345678901234567890",
                           "9" * 120, "0.1"])
SCALARS = st.one_of(st.sampled_from(STRINGS), st.booleans(), st.none(), st.integers(), st.text(max_size=8))
VALUES = st.one_of(SCALARS, st.lists(SCALARS, max_size=3), st.dictionaries(st.sampled_from(["a", "AWS"]), SCALARS, max_size=2))
AWS_ENTRIES = st.one_of(st.sampled_from([OWNER, PARTNER, STRANGER, "*", f"arn:aws:iam::{STRANGER}:role/x",
                                          f"arn:aws:iam::{PARTNER}:root", "arn:aws:iam::*:root", "AROAEXAMPLEDELETEDROLE",
                                          "account-id-2", "arn:aws:iam::cloudfront:user/CloudFront Origin Access Identity E1",
                                          "arn:aws:iam::" + STRANGER + ":root", "arn:aws:s3:::bucket"]), SCALARS)
PRINCIPALS = st.one_of(
    AWS_ENTRIES, st.lists(AWS_ENTRIES, max_size=4),
    st.dictionaries(st.sampled_from(["AWS", "Service", "Federated", "CanonicalUser", "Unknown"]),
                    st.one_of(AWS_ENTRIES, st.lists(AWS_ENTRIES, max_size=3)), max_size=3),
)
CONDITIONS = st.dictionaries(
    st.sampled_from(OPERATORS),
    st.one_of(st.dictionaries(st.sampled_from(CONDITION_KEYS), st.one_of(st.sampled_from(STRINGS), st.lists(st.sampled_from(STRINGS), max_size=3), VALUES), max_size=2),
              VALUES),
    max_size=2,
)


@st.composite
def wild_statements(draw: st.DrawFn) -> Any:
    """Statements as anyone might write them, the malformed included."""
    if draw(st.integers(0, 19)) == 0:
        return draw(VALUES)  # not an object at all
    statement: dict[str, Any] = {}
    for key, strategy in (("Sid", st.one_of(st.sampled_from(["A", "Perimeter"]), SCALARS)),
                          ("Effect", st.sampled_from(["Allow", "Allow", "Deny", "Deny", "allow", None, 1])),
                          ("Principal", PRINCIPALS), ("NotPrincipal", PRINCIPALS),
                          ("Action", st.sampled_from(["execute-api:Invoke", "*", "execute-api:*", ["execute-api:Invoke", "s3:*"], 3])),
                          ("NotAction", st.sampled_from(["execute-api:Invoke", "s3:*", ["execute-api:Inv*"], "*"])),
                          ("Resource", st.sampled_from(["execute-api:/*", "*", "execute-api:/prod/*", ["execute-api:/a/*"], "arn:aws:execute-api:*:*:*"])),
                          ("NotResource", st.just("execute-api:/x")),
                          ("Condition", st.one_of(CONDITIONS, VALUES))):
        odds = {"Principal": 8, "Effect": 9, "Action": 8, "Resource": 8, "Condition": 5}.get(key, 2)
        if draw(st.integers(0, 9)) < odds:
            statement[key] = draw(strategy)
    return statement


@st.composite
def wild_policies(draw: st.DrawFn) -> Any:
    if draw(st.integers(0, 29)) == 0:
        return draw(VALUES)  # not a policy at all
    document: dict[str, Any] = {}
    if draw(st.booleans()):
        document["Version"] = draw(st.sampled_from(["2012-10-17", "2008-10-17", 2012]))
    if draw(st.integers(0, 19)) > 0:
        items = draw(st.lists(wild_statements(), max_size=5))
        document["Statement"] = items[0] if len(items) == 1 and draw(st.booleans()) else items
        if draw(st.integers(0, 19)) == 0:
            document["Statement"] = draw(SCALARS)
    return document


def forms(document: Any, number: str | None = None, repeat: bool = False) -> list[Any]:
    """The same policy as text in every form the product meets, and as bytes and as a dict."""
    def text(**options: Any) -> str:
        written = json.dumps(document, **options)
        if number is not None:  # a number as written, which Python would not write back the same
            written = written.replace('"\\u0000number"', number)
        if repeat and written.startswith('{"'):  # the first key twice
            key_end = written.index('":') + 2
            written = written[:key_end] + "1," + written[1:key_end] + written[key_end:]
        return written

    compact = text(separators=(",", ":"), ensure_ascii=False)
    escaped = json.dumps(compact, ensure_ascii=False)[1:-1].replace("/", "\\/")  # get_rest_api's form
    return [compact, text(indent=2, ensure_ascii=False), text(separators=(",", ":")), compact.replace("/", "\\/"),
            escaped, json.dumps(compact), f" {escaped}\n", compact.encode("utf-8", "surrogatepass"), document]


def outcome(evaluate: Any, value: Any, config: TrustConfig) -> tuple[Any, ...]:
    """Everything a caller can observe, with the error's type and message instead when there is one."""
    try:
        evaluation = evaluate(value, config)
    except (PolicyError, RecursionError) as error:
        return ("error", type(error).__name__, str(error))
    patch = evaluation.patch_operations
    return (evaluation.compliant, evaluation.findings, evaluation.notes, _typed(evaluation.remediated_policy),
            patch, [operation["value"].encode("utf-8", "surrogatepass") for operation in patch])


def _typed(value: Any) -> Any:
    """A document with each value's type beside it (True == 1 in Python, not in JSON)."""
    if isinstance(value, dict):
        return ("object", [(key, _typed(item)) for key, item in value.items()])
    if isinstance(value, list):
        return ("array", [_typed(item) for item in value])
    return (type(value).__name__, repr(value))


def assert_same(value: Any, config: TrustConfig) -> None:
    fast = outcome(evaluate_policy, value, config)
    assert fast == outcome(reference_evaluate, value, config), f"the engine and the oracle differ on {value!r}"
    assert outcome(evaluate_policy, value, config) == fast, "a second evaluation (memos warm) differs"


GATE = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@GATE
@given(document=policies(), config=st.sampled_from(CONFIGS))
def test_generated_policies(document: dict[str, Any], config: TrustConfig) -> None:
    for value in forms(document):
        assert_same(value, config)


@GATE
@given(document=wild_policies(), config=st.sampled_from(CONFIGS), repeat=st.booleans())
@example(document={"Statement": [{"Effect": "Allow", "Principal": {"AWS": 1.5}}]}, config=CONFIGS[0], repeat=False)
@example(document={"Statement": {"Effect": "Allow", "Principal": "*", "Condition": {"Bool": {"aws:PrincipalIsAWSService": [{}]}}}},
         config=CONFIGS[1], repeat=True)
def test_anything_anyone_might_send(document: Any, config: TrustConfig, repeat: bool) -> None:
    for value in forms(document, repeat=repeat):
        assert_same(value, config)


@GATE
@given(document=policies(), number=NUMBERS, config=st.sampled_from(CONFIGS))
def test_numbers_the_stdlib_reads_differently(document: dict[str, Any], number: str, config: TrustConfig) -> None:
    statements = document["Statement"] if isinstance(document["Statement"], list) else [document["Statement"]]
    statements[0]["Condition"] = {"NumericLessThan": {"aws:MultiFactorAuthAge": "\0number"}}
    for value in forms(document, number=number)[:4]:
        assert_same(value, config)


PERIMETER_CONDITIONS = st.dictionaries(
    st.sampled_from(["StringNotEquals", "StringNotEqualsIfExists", "ArnNotLike", "BoolIfExists", "Bool", "StringEquals"]),
    st.dictionaries(st.sampled_from(["aws:PrincipalOrgID", "aws:PrincipalAccount", "aws:PrincipalArn",
                                     "aws:PrincipalIsAWSService", "aws:SourceVpce"]),
                    st.sampled_from([TRUSTED_ORG, OWNER, PARTNER, STRANGER, [OWNER, PARTNER], f"arn:aws:iam::{OWNER}:role/*",
                                     "false", "vpce-1"]), min_size=1, max_size=2),
    min_size=1, max_size=2)
WILD_ALLOWS = st.fixed_dictionaries(
    {"Effect": st.just("Allow"),
     "Principal": st.sampled_from(["*", {"AWS": "*"}, {"AWS": ["*", STRANGER]}, [OWNER, "*"], {"AWS": [OWNER, "*", "AROAEXAMPLEDELETEDROLE"]},
                                   {"AWS": "*", "Service": "lambda.amazonaws.com"}, f"arn:aws:iam::{STRANGER}:root"]),
     "Action": st.just("execute-api:Invoke"),
     "Resource": st.sampled_from(["execute-api:/*", "execute-api:/prod/*", "*"])},
    optional={"Condition": st.one_of(CONDITIONS, PERIMETER_CONDITIONS)})
PERIMETER_DENIES = st.fixed_dictionaries(
    {"Effect": st.just("Deny"), "Principal": st.sampled_from(["*", {"AWS": "*"}]),
     "Action": st.sampled_from(["execute-api:Invoke", "execute-api:*"]),
     "Resource": st.sampled_from(["execute-api:/*", "execute-api:/prod/*", "*"]), "Condition": PERIMETER_CONDITIONS})


@GATE
@given(statements=st.lists(st.one_of(WILD_ALLOWS, PERIMETER_DENIES), min_size=1, max_size=4), config=st.sampled_from(CONFIGS))
def test_wildcards_and_identity_perimeters(statements: list[dict[str, Any]], config: TrustConfig) -> None:
    """Wildcard Allows beside Denies shaped like identity perimeters, before or after them: the engine decides
    a guarded wildcard once every statement is read, as the oracle does."""
    for value in forms({"Version": "2012-10-17", "Statement": statements})[:5]:
        assert_same(value, config)


@pytest.mark.parametrize("text", [
    '{"Statement":[]}', '{"Statement":[],"Statement":[{"Effect":"Allow","Principal":"*"}]}', '{"Statement":{}}',
    '{"Statement":[{"Effect":"Allow","Principal":{"AWS":"*","AWS":"' + OWNER + '"}}]}', '{"Statement":[1e999]}',
    '{"Statement":[{"Effect":"Allow","Principal":"\\ud800"}]}', '{"Statement":[{"Effect":"Allow","Principal":"*"}]} x',
    '{"Statement":[' * 3000 + "]" * 3000 + "}", '{\\"Statement\\":[{\\"Effect\\":\\"Allow\\",\\"Principal\\":\\"*\\"}]}',
    '{\\"Statement\\":[{\\"Effect\\":\\"Allow\\",\\"Principal\\":\\"*\\"}]}\\n', '{\\\\\\"Statement\\\\\\":[]}',
    '{"Statement":[{"Effect":"Allow","Principal":"*"}],"N":-0}', '{"Statement":[{"Effect":"Allow","Principal":"*"}],"N":' + "9" * 5000 + "}",
    '{"Statement":[{"Effect":"Allow","Principal":"*"}],"N":"\x01"}', "", "   ", "null", '"{}"', "[]", '{"a":NaN}',
])
def test_edge_texts(text: str) -> None:
    for config in CONFIGS:
        assert_same(text, config)


def test_the_corpus_in_every_form() -> None:
    files = sorted(corpus_dir("policies").glob("*.json")) + sorted(corpus_dir("policies-escaped").glob("*"))
    assert len(files) >= 40
    for path in files:
        text = path.read_text(encoding="utf-8")
        for config in CONFIGS:
            assert_same(text, config)
            try:
                document = json.loads(text)
            except ValueError:
                continue
            for value in forms(document):
                assert_same(value, config)


def test_the_memos_stay_per_configuration_and_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    """The same principals and conditions under configurations that disagree about them, through memos so
    small that they are emptied all the time."""
    monkeypatch.setattr(trust_config, "MEMO_LIMIT", 3)
    from remediator.core import conditions
    monkeypatch.setattr(conditions, "MEMO_LIMIT", 3)
    texts = [json.dumps({"Statement": [{"Effect": "Allow", "Principal": {"AWS": [account, "*"]},
                                        "Condition": {"StringEquals": {"aws:PrincipalAccount": account}}},
                                       {"Effect": "Allow", "Principal": f"arn:aws:iam::{account}:root"}]})
             for account in (OWNER, PARTNER, STRANGER, "210987654321", "444455556666")]
    configs = [TrustConfig(owner_account=OWNER), TrustConfig(owner_account=OWNER, trusted_accounts=frozenset({STRANGER})),
               TrustConfig(owner_account=STRANGER, trusted_accounts=frozenset({PARTNER, OWNER}))]
    for _ in range(3):
        for text in texts:
            for config in configs:
                assert_same(text, config)
    assert all(len(config._memo.suspects) <= 3 and len(config._memo.values) <= 3 for config in configs)


def test_a_verdict_only_caller_words_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*_: Any) -> Any:
        raise AssertionError("findings were worded for a caller that only wanted the verdict and the fix")

    text = json.dumps({"Statement": [{"Effect": "Allow", "Principal": {"AWS": [STRANGER, OWNER]}},
                                     {"Effect": "Allow", "Principal": "*"}]})
    monkeypatch.setattr(trust, "_describe_all", refuse)
    evaluation = evaluate_policy(text, CONFIGS[0])
    assert not evaluation.compliant and evaluation.patch_operations
    monkeypatch.undo()
    assert [f.kind.value for f in evaluation.findings] == ["untrusted-account", "wildcard-principal"]


def test_without_msgspec_the_stdlib_path_does_everything(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(policy_module, "msgspec", None)
    text = json.dumps({"Statement": [{"Effect": "Allow", "Principal": {"AWS": [STRANGER, OWNER]}}]})
    assert policy_module.fast_document(text) is None
    assert_same(text, CONFIGS[0])
    assert not evaluate_policy(text, CONFIGS[0])._exact


def test_msgspec_reads_the_common_forms() -> None:
    """The fast path is taken for what API Gateway returns and what people write compactly: the gate above
    would pass even if it never were."""
    document = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"AWS": STRANGER},
                                                        "Action": "execute-api:Invoke", "Resource": "execute-api:/*"}]}
    compact = json.dumps(document, separators=(",", ":"))
    escaped = json.dumps(compact)[1:-1].replace("/", "\\/")
    for text in (compact, escaped):
        assert policy_module.fast_document(text) == document
        assert evaluate_policy(text, CONFIGS[0])._exact
    for text in (json.dumps(document), compact.replace(f'"{STRANGER}"', "1.5"), re.sub(r"\{", '{"Version":"x",', compact, count=1)):
        assert policy_module.fast_document(text) is None
