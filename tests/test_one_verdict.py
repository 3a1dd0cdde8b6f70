"""One verdict on every path: the library, the CLI's `evaluate` over every input form (JSON, API Gateway's
escaped form, YAML, OpenAPI, CloudFormation, a list of statements), and `scan`/`fix`'s reading of the
escaped form (remediation.assess) agree on every policy, a repeated key, case-variant condition keys and
exact numbers included. And every reader is bounded: hostile input is refused in one line, exit 2."""

from __future__ import annotations

import io
import json
import tempfile
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings, strategies as st

from remediator.adapters.apigateway import RestApi
from remediator.cli import main
from remediator.core import TrustConfig, evaluate_policy
from remediator.local.strict import escape_policy
from remediator.policy_forms import MAX_ALIASES, MAX_DEPTH
from remediator.transaction.planning import SweepSettings, assess, findings_fingerprint
from tests.conftest import OWNER, PARTNER, STRANGER, TRUSTED_ORG

CONFIG = TrustConfig(owner_account=OWNER, trusted_accounts=frozenset({PARTNER}), trusted_org_ids=frozenset({TRUSTED_ORG}))
TRUST_ARGS = ["--owner-account", OWNER, "--trusted-accounts", PARTNER, "--trusted-org-ids", TRUSTED_ORG]

PRINCIPALS = st.one_of(st.sampled_from(["*", OWNER, STRANGER, f"arn:aws:iam::{STRANGER}:root", "AROAEXAMPLEDELETEDROLE"]),
                       st.lists(st.sampled_from([OWNER, PARTNER, STRANGER, "*", "account-id"]), min_size=1, max_size=3))
KEYS = st.sampled_from(["aws:PrincipalOrgID", "aws:PrincipalAccount", "AWS:PRINCIPALACCOUNT", "aws:principalaccount",
                        "aws:PrincipalArn", "aws:SourceVpce", "aws:PrincipalIsAWSService"])
OPERATORS = st.sampled_from(["StringEquals", "StringNotEquals", "StringNotEqualsIfExists", "ArnNotLike", "Bool", "BoolIfExists",
                             "StringLike", "NumericLessThan"])
VALUES = st.one_of(st.sampled_from([OWNER, PARTNER, STRANGER, TRUSTED_ORG, "o-zz9y8x7w6v", "false", "vpce-1", "caf\u00e9",
                                    f"arn:aws:iam::{OWNER}:role/*", "arn:aws:iam::*:root"]),
                   st.integers(-10**20, 10**20), st.sampled_from([1.5, 0.1, -0.0]), st.booleans())
CONDITIONS = st.dictionaries(OPERATORS, st.dictionaries(KEYS, st.one_of(VALUES, st.lists(VALUES, min_size=1, max_size=2)),
                                                        min_size=1, max_size=3), max_size=2)


@st.composite
def statements(draw: st.DrawFn) -> dict[str, Any]:
    statement: dict[str, Any] = {"Effect": draw(st.sampled_from(["Allow", "Allow", "Deny"])),
                                 "Principal": draw(st.one_of(PRINCIPALS, st.builds(lambda p: {"AWS": p}, PRINCIPALS))),
                                 "Action": "execute-api:Invoke",
                                 "Resource": draw(st.sampled_from(["execute-api:/*", "execute-api:/prod/*", "*"]))}
    condition = draw(CONDITIONS)
    if condition:
        statement["Condition"] = condition
    return statement


def repeat_a_key(text: str) -> str:
    """The same policy with its first statement's Effect written twice (AWS documents no winner)."""
    return text.replace('{"Effect": ', '{"Effect": "Deny", "Effect": ', 1)


def forms(text: str) -> dict[str, str]:
    """The policy text in each form the CLI reads, spliced as text so that a repeated key survives."""
    flow = "# YAML (flow style): not JSON text\n" + text
    found = {
        "policy.json": text,
        "policy.txt": escape_policy(text),
        "flow.yaml": flow,
        "openapi.json": '{"openapi": "3.0.1", "paths": {}, "x-amazon-apigateway-policy": ' + text + "}",
        "openapi.yaml": "openapi: 3.0.1\npaths: {}\nx-amazon-apigateway-policy: " + text + "\n",
        "template.json": '{"Resources": {"Api": {"Type": "AWS::ApiGateway::RestApi", "Properties": {"Policy": ' + text + "}}}}",
        "template.yaml": ("AWSTemplateFormatVersion: '2010-09-09'\nResources:\n  Api:\n    Type: AWS::ApiGateway::RestApi\n"
                          "    Properties:\n      Name: !Sub '${AWS::StackName}-api'\n      Policy: " + text + "\n"),
    }
    document = json.loads(text)
    if '"Effect": "Deny", "Effect"' not in text:
        found["block.yaml"] = yaml.safe_dump(document, sort_keys=False, allow_unicode=True)
        if isinstance(document["Statement"], list):
            found["statements.yaml"] = yaml.safe_dump(document["Statement"], sort_keys=False)
    return found


def verdict(evaluation: Any) -> tuple[bool, list[tuple[str, str, str]]]:
    findings = [f.to_dict() if hasattr(f, "to_dict") else f for f in evaluation.findings] if hasattr(evaluation, "findings") \
        else evaluation["findings"]
    compliant = evaluation.compliant if hasattr(evaluation, "compliant") else evaluation["compliant"]
    return compliant, sorted((f["kind"], f["principal"], f["remediation"]) for f in findings)


def cli_verdicts(tmp: Path, files: dict[str, str]) -> dict[str, Any]:
    paths = []
    for name, content in files.items():
        path = tmp / name
        path.write_text(content, encoding="utf-8")
        paths.append(str(path))
    out, err = io.StringIO(), io.StringIO()
    status = main(["evaluate", *TRUST_ARGS, "--format", "json", *paths], out, err)
    assert err.getvalue() == "", err.getvalue()
    results = [json.loads(line) for line in out.getvalue().splitlines()]
    assert len(results) == len(paths)
    assert status == (0 if all(r["compliant"] for r in results) else 1)
    return {Path(r["source"].split(" (")[0]).name: verdict(r) for r in results}


CHECKED_FORMS = ("policy.json", "openapi.json", "openapi.yaml", "template.json", "template.yaml")  # what `check` reads


def check_verdicts(tmp: Path, files: dict[str, str]) -> dict[str, Any]:
    """`apigw-remediator check` (issue P) over the infrastructure-code forms: its verdict for each file."""
    paths = []
    for name in CHECKED_FORMS:
        if name in files:
            path = tmp / f"check-{name}"
            path.write_text(files[name], encoding="utf-8")
            paths.append(str(path))
    out, err = io.StringIO(), io.StringIO()
    status = main(["check", *TRUST_ARGS, "--region", "eu-west-1", "--format", "json", *paths], out, err)
    assert status in (0, 1), err.getvalue()
    found = {}
    for line in out.getvalue().splitlines():
        result = json.loads(line)
        assert result["status"] in ("findings", "compliant"), result  # nothing here is left to deployment
        found[Path(result["file"]).name] = (result["status"] == "compliant",
                                            sorted((f["kind"], f["principal"], f["remediation"]) for f in result["findings"]))
    assert len(found) == len(paths), out.getvalue()
    return found


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(st.lists(statements(), min_size=1, max_size=3), st.booleans(), st.booleans())
def test_every_path_reaches_the_library_verdict(tmp_path: Path, body: list[dict[str, Any]], single: bool, repeated: bool) -> None:
    document = {"Version": "2012-10-17", "Statement": body[0] if single else body}
    text = json.dumps(document, ensure_ascii=False)
    if repeated:
        text = repeat_a_key(text)
    expected = verdict(evaluate_policy(text, CONFIG))
    if repeated:
        assert "ambiguous-policy" in [kind for kind, _, _ in expected[1]]
    report = assess(RestApi("eu-west-1", "a1b2c3d4e5", "api", escape_policy(text), {}), SweepSettings(CONFIG))  # scan and fix
    assert verdict(report.evaluation) == expected
    folder = Path(tempfile.mkdtemp(dir=tmp_path))
    for name, seen in cli_verdicts(folder, forms(text)).items():
        assert seen == expected, name
    for name, seen in check_verdicts(folder, forms(text)).items():  # the IaC check (issue P) too
        assert seen == expected, name


def test_a_repeated_key_in_yaml_is_the_same_finding_as_in_json(tmp_path: Path) -> None:
    block = "Version: '2012-10-17'\nStatement:\n  - Effect: Allow\n    Effect: Deny\n    Principal: '*'\n    Action: '*'\n    Resource: '*'\n"
    text = '{"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Effect": "Deny", "Principal": "*", "Action": "*", "Resource": "*"}]}'
    seen = cli_verdicts(tmp_path, {"p.yaml": block, "p.json": text})
    assert seen["p.yaml"] == seen["p.json"] == verdict(evaluate_policy(text, CONFIG))
    assert seen["p.json"][1][0][0] == "ambiguous-policy"


def test_case_variant_condition_keys_are_both_judged_on_every_path(tmp_path: Path) -> None:
    allow = {"Effect": "Allow", "Principal": "*", "Action": "execute-api:Invoke", "Resource": "execute-api:/*"}
    deny = {"Effect": "Deny", "Principal": "*", "Action": "execute-api:Invoke", "Resource": "execute-api:/*",
            "Condition": {"StringNotEquals": {"aws:PrincipalAccount": OWNER, "AWS:PRINCIPALACCOUNT": STRANGER}}}
    text = json.dumps({"Version": "2012-10-17", "Statement": [allow, deny]})
    expected = verdict(evaluate_policy(text, CONFIG))
    assert expected == (False, [("wildcard-principal", "*", "report-only")])
    assert all(seen == expected for seen in cli_verdicts(tmp_path, forms(text)).values())


def test_cloudformation_templates_evaluate_each_rest_api(tmp_path: Path) -> None:
    template = {"Resources": {
        "Open": {"Type": "AWS::ApiGateway::RestApi", "Properties": {"Policy": {"Statement": [
            {"Effect": "Allow", "Principal": {"AWS": STRANGER}, "Action": "execute-api:Invoke", "Resource": "execute-api:/*"}]}}},
        "Fine": {"Type": "AWS::ApiGateway::RestApi", "Properties": {"Policy": {"Statement": [
            {"Effect": "Allow", "Principal": {"AWS": OWNER}, "Action": "execute-api:Invoke", "Resource": "execute-api:/*"}]}}},
        "Bucket": {"Type": "AWS::S3::Bucket"}}}
    path = tmp_path / "template.json"
    path.write_text(json.dumps(template))
    out, err = io.StringIO(), io.StringIO()
    assert main(["evaluate", *TRUST_ARGS, "--format", "json", str(path)], out, err) == 1
    results = [json.loads(line) for line in out.getvalue().splitlines()]
    assert [(r["source"].split(" (")[1], r["compliant"]) for r in results] == [
        ("CloudFormation Open Policy)", False), ("CloudFormation Fine Policy)", True)]


# --- Bounded parsing --------------------------------------------------------------------------------------

def _bomb(levels: int = 9) -> str:
    lines = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for level in range(1, levels):
        previous, name = chr(ord("a") + level - 1), chr(ord("a") + level)
        lines.append(f"{name}: &{name} [" + ",".join([f"*{previous}"] * 9) + "]")
    return "\n".join(lines) + "\nStatement: *" + chr(ord("a") + levels - 1) + "\n"


@pytest.mark.parametrize("text, message", [
    (_bomb(), "aliases"),
    ("Statement: &s [x]\n" + "".join(f"k{i}: *s\n" for i in range(MAX_ALIASES + 1)), f"more than {MAX_ALIASES} YAML aliases"),
    ("[" * 50_000 + "]" * 50_000, "nested more than"),
    ("Statement:\n" + "".join("  " * i + "- \n" for i in range(1, 3 * MAX_DEPTH)), "nested more than"),
    ("x: " + "[" * (MAX_DEPTH + 5) + "]" * (MAX_DEPTH + 5) + "\n", "nested more than"),
    ('{"Statement": ' + "[" * 100_000 + "]" * 100_000 + "}", "nested"),
    ("a: &a [*a]\nStatement: *a\n", "neither JSON nor YAML"),
])
def test_hostile_documents_are_refused_in_one_line(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "hostile.yaml"
    path.write_text(text)
    out, err = io.StringIO(), io.StringIO()
    assert main(["evaluate", *TRUST_ARGS, str(path)], out, err) == 2
    assert err.getvalue().count("\n") == 1 and message in err.getvalue() and "Traceback" not in err.getvalue(), err.getvalue()


def test_an_oversized_document_is_refused_before_it_is_read_whole(tmp_path: Path) -> None:
    from remediator.policy_forms import MAX_DOCUMENT_CHARS

    path = tmp_path / "big.json"
    path.write_text('{"Statement": [], "pad": "' + "x" * MAX_DOCUMENT_CHARS + '"}')
    out, err = io.StringIO(), io.StringIO()
    assert main(["evaluate", *TRUST_ARGS, str(path)], out, err) == 2
    assert "larger than" in err.getvalue() and err.getvalue().count("\n") == 1


# --- Notices: the fingerprint covers the exposure ---------------------------------------------------------

PRIVATE = {"Version": "2012-10-17", "Statement": [
    {"Sid": "Private", "Effect": "Allow", "Principal": "*", "Action": "execute-api:Invoke", "Resource": "execute-api:/*",
     "Condition": {"StringEquals": {"aws:SourceVpce": ["vpce-1", "vpce-2"]}}}]}


def _fingerprint(document: dict[str, Any]) -> str:
    evaluation = evaluate_policy(json.dumps(document), CONFIG)
    return findings_fingerprint(evaluation.findings, None, evaluation.policy)


def test_a_wider_exposure_is_told_again_and_a_rewording_is_not() -> None:
    told = _fingerprint(PRIVATE)
    public = {"Version": "2012-10-17", "Statement": [{k: v for k, v in PRIVATE["Statement"][0].items() if k != "Condition"}]}
    assert _fingerprint(public) != told, "removing aws:SourceVpce widens the exposure"
    wider = json.loads(json.dumps(PRIVATE))
    wider["Statement"][0]["Condition"]["StringEquals"]["aws:SourceVpce"].append("vpce-3")
    assert _fingerprint(wider) != told
    reworded = json.loads(json.dumps(PRIVATE))
    statement = reworded["Statement"][0]
    statement["Sid"] = "SomethingElse"
    statement["Condition"] = {"StringEquals": {"AWS:SOURCEVPCE": ["vpce-2", "vpce-1"]}}
    reworded["Statement"].insert(0, {"Effect": "Allow", "Principal": {"AWS": OWNER}, "Action": "*", "Resource": "*"})
    assert _fingerprint(reworded) == told, "the same exposure, reworded"
    escaped = evaluate_policy(escape_policy(json.dumps(PRIVATE)), CONFIG)
    assert findings_fingerprint([f.to_dict() for f in escaped.findings], None, escape_policy(json.dumps(PRIVATE))) == told


def test_removing_a_network_deny_is_told_again() -> None:
    deny = {"Effect": "Deny", "Principal": "*", "Action": "execute-api:Invoke", "Resource": "execute-api:/*",
            "Condition": {"StringNotEquals": {"aws:SourceVpce": "vpce-1"}}}
    public = {"Version": "2012-10-17", "Statement": [{k: v for k, v in PRIVATE["Statement"][0].items() if k != "Condition"}]}
    guarded = {"Version": "2012-10-17", "Statement": [*public["Statement"], deny]}
    assert _fingerprint(guarded) != _fingerprint(public)
