"""`check` over infrastructure code: findings with file and line, indeterminate policies, the source fix,
settings from pyproject.toml, and the report formats (SARIF checked against its schema, OCSF, ASFF)."""

from __future__ import annotations

import io
import json
import shutil
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path

import jsonschema
import pytest

from remediator import findings_formats as formats
from remediator.cli import main
from remediator.iac.fixes import Edit, apply
from tests.conftest import OWNER, PARTNER, REPO, STRANGER

IAC = REPO / "tests" / "data" / "iac"
SARIF_SCHEMA = json.loads((REPO / "tests" / "data" / "schemas" / "sarif-schema-2.1.0.json").read_text())
TRUST = ("--owner-account", OWNER, "--trusted-accounts", PARTNER, "--region", "eu-west-1")


def run(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    status = main(list(argv), out, err)
    return status, out.getvalue(), err.getvalue()


def records(*argv: str) -> tuple[int, list[dict], str]:
    status, out, err = run("check", *argv, *TRUST, "--format", "json")
    return status, [json.loads(line) for line in out.splitlines()], err


def by_resource(items: list[dict]) -> dict[str, dict]:
    return {item["resource"]: item for item in items}


def test_cloudformation_yaml_short_forms_lines_and_indeterminate() -> None:
    status, items, err = records(str(IAC / "cloudformation" / "rest-api.yaml"))
    assert (status, err) == (1, "")
    found = by_resource(items)
    orders = found["OrdersApi"]
    assert orders["status"] == "findings"
    # the !Sub entries resolve to the owner and the partner (a parameter's Default); only the stranger is left
    assert [(f["kind"], f["principal"], f["line"]) for f in orders["findings"]] == [
        ("untrusted-account", f"arn:aws:iam::{STRANGER}:root", 26)]
    assert orders["remediated_policy"]["Statement"][0]["Principal"]["AWS"] == [
        f"arn:aws:iam::{OWNER}:root", f"arn:aws:iam::{PARTNER}:root"]
    reports = found["ReportsApi"]
    assert reports["status"] == "indeterminate" and "AuditorRoleArn" in reports["reason"] and "no Default" in reports["reason"]


def test_every_sample_gives_its_findings() -> None:
    status, items, err = records(str(IAC))
    assert status == 1 and err == ""
    seen = {(Path(i["file"]).relative_to(IAC).as_posix(), i["resource"], i["status"],
             tuple(sorted({(f["kind"], f["principal"], f["line"]) for f in i.get("findings", [])}))) for i in items}
    assert seen == {
        ("cdk.out/ApiStack.template.json", "CatalogApi4C1A7F2B", "findings",
         (("untrusted-account", f"arn:aws:iam::{STRANGER}:root", 14),)),
        ("clean/template.yaml", "PrivateApi", "compliant", ()),
        ("cloudformation/rest-api.json", "PetsApi", "findings",
         (("untrusted-account", STRANGER, 16), ("untrusted-account", "arn:aws:iam::888888888888:root", 25))),
        ("cloudformation/rest-api.yaml", "OrdersApi", "findings", (("untrusted-account", f"arn:aws:iam::{STRANGER}:root", 26),)),
        ("cloudformation/rest-api.yaml", "ReportsApi", "indeterminate", ()),
        ("openapi/openapi.yaml", "OpenAPI", "findings",
         (("untrusted-account", f"arn:aws:iam::{STRANGER}:user/alice", 18), ("wildcard-principal", "*", 14))),
        # SAM: the whitelist item (line 13) behind one statement per path, the IpRangeWhitelist's Allow * (line 15)
        ("sam/template.yaml", "ExampleApi", "findings",
         (("untrusted-account", STRANGER, 13), ("untrusted-account", "arn:aws:iam::777777777777:role/reader", 19),
          ("wildcard-principal", "*", 15))),
        ("terraform/plan.json", "aws_api_gateway_rest_api_policy.orders", "findings",
         (("untrusted-account", f"arn:aws:iam::{STRANGER}:root", 30),)),
        ("terraform/plan.json", "module.billing.aws_api_gateway_rest_api.this", "indeterminate", ()),
    }


def test_sam_expansion_is_sams() -> None:
    items = by_resource(records(str(IAC / "sam" / "template.yaml"))[1])
    policy = items["ExampleApi"]["remediated_policy"]
    # one Allow {"AWS": whitelist} per path, then SAM's Allow * / Deny * NotIpAddress pair, then CustomStatements
    assert [(s["Effect"], s["Principal"], s["Resource"]) for s in policy["Statement"][:3]] == [
        ("Allow", {"AWS": [OWNER]}, ["execute-api:/prod/GET/orders"]),
        ("Allow", "*", ["execute-api:/prod/GET/orders"]),
        ("Deny", "*", ["execute-api:/prod/GET/orders"]),
    ]
    assert policy["Statement"][2]["Condition"] == {"NotIpAddress": {"aws:SourceIp": ["10.20.30.0/24"]}}
    assert policy["Statement"][3]["Resource"] == ["execute-api:/prod/GET/orders/*"]  # {id} as SAM writes it


@pytest.mark.parametrize("sample", ["cloudformation/rest-api.yaml", "cloudformation/rest-api.json", "sam/template.yaml",
                                    "openapi/openapi.yaml", "cdk.out/ApiStack.template.json"])
def test_the_source_fix_leaves_only_report_only_findings(tmp_path: Path, sample: str) -> None:
    items = records(str(IAC / sample))[1]
    item = next(i for i in items if i.get("source_fix"))
    edits = [Edit(e["charOffset"], e["charOffset"] + e["charLength"], e["text"]) for e in item["source_fix"]]
    text = apply((IAC / sample).read_text(), edits)
    fixed = tmp_path / Path(sample).name
    fixed.write_text(text)
    after = by_resource(records(str(fixed))[1])[item["resource"]]
    assert after["status"] in ("compliant", "findings")
    assert all(f["remediation"] == "report-only" for f in after.get("findings", []))
    assert after.get("remediated_policy") is None
    if sample.endswith(".yaml"):
        assert ("!Sub" in text or "!Ref" in text) if "openapi" not in sample else "{AWS: [" in text  # the source's own forms kept


def test_sarif_is_valid_with_lines_and_fixes(tmp_path: Path) -> None:
    report = tmp_path / "results.sarif"
    status, out, err = run("check", str(IAC), *TRUST, "--format", "sarif", "--output", str(report))
    assert (status, out, err) == (1, "", "")
    log = json.loads(report.read_text())
    jsonschema.validate(log, SARIF_SCHEMA)
    results = log["runs"][0]["results"]
    stranger = [r for r in results if r["ruleId"] == "untrusted-account" and "rest-api.yaml" in
                r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"]]
    assert stranger[0]["locations"][0]["physicalLocation"]["region"]["startLine"] == 26
    (fix,) = stranger[0]["fixes"]
    (replacement,) = fix["artifactChanges"][0]["replacements"]
    assert replacement["deletedRegion"]["startLine"] == 26 and replacement["insertedContent"]["text"] == ""
    assert {r["ruleId"] for r in results} >= {"untrusted-account", "wildcard-principal", "indeterminate-policy"}
    rules = {rule["id"]: rule for rule in log["runs"][0]["tool"]["driver"]["rules"]}
    assert rules["wildcard-principal"]["properties"]["security-severity"] == "9.5"
    assert not any("fixes" in r for r in results if "plan.json" in r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"])


def test_ocsf_detection_findings() -> None:
    status, out, _ = run("check", str(IAC / "openapi"), str(IAC / "terraform"), *TRUST, "--format", "ocsf")
    items = [json.loads(line) for line in out.splitlines()]
    assert status == 1 and items
    for item in items:
        assert (item["class_uid"], item["category_uid"], item["activity_id"], item["type_uid"]) == (2004, 2, 1, 200401)
        assert item["metadata"]["version"] == formats.OCSF_VERSION and item["finding_info"]["uid"] and item["time"] > 0
    grades = {item["finding_info"]["types"][0]: item["severity_id"] for item in items}
    assert grades == {"wildcard-principal": 5, "untrusted-account": 4, "indeterminate-policy": 0}


def test_clean_exits_zero_and_text_is_a_table() -> None:
    status, out, err = run("check", str(IAC / "clean"), *TRUST)
    assert (status, err) == (0, "") and "1 policy in 1 file(s): 0 with findings, 0 indeterminate, 1 compliant" in out
    status, out, _ = run("check", str(IAC / "cloudformation"), *TRUST)
    assert status == 1 and "rest-api.yaml:26" in out and "indeterminate-policy" in out


def test_errors_are_one_line_exit_2(tmp_path: Path) -> None:
    broken = tmp_path / "template.yaml"
    broken.write_text("Resources:\n  Api: [unclosed\n")
    status, out, err = run("check", str(broken), *TRUST)
    assert status == 2 and err.count("\n") == 1 and err.startswith("error: ") and "Traceback" not in err
    status, _, err = run("check", str(tmp_path / "missing.yaml"), *TRUST)
    assert status == 2 and err.count("\n") == 1
    status, _, err = run("check", str(IAC / "clean"))  # no owner anywhere
    assert status == 2 and "no owner account" in err and err.count("\n") == 1


def _project(tmp_path: Path, table: str) -> Path:
    (tmp_path / ".git").mkdir()
    (tmp_path / "pyproject.toml").write_text(f"[project]\nname = 'x'\n\n[tool.apigw-remediator]\n{table}\n")
    shutil.copy(IAC / "cloudformation" / "rest-api.yaml", tmp_path / "template.yaml")
    return tmp_path


def test_settings_from_pyproject_and_flags_win(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    project = _project(tmp_path, f'ownerAccount = "{OWNER}"\ntrustedAccounts = "{PARTNER},{STRANGER}"\nregion = "eu-west-1"')
    (project / "sub").mkdir()
    monkeypatch.chdir(project / "sub")  # found from the current folder upward
    status, out, err = run("check", "../template.yaml", "--format", "json")
    assert err == "" and status == 1  # ReportsApi is still indeterminate
    assert by_resource([json.loads(line) for line in out.splitlines()])["OrdersApi"]["status"] == "compliant"
    status, out, _ = run("check", "../template.yaml", "--format", "json", "--trusted-accounts", PARTNER)
    assert by_resource([json.loads(line) for line in out.splitlines()])["OrdersApi"]["status"] == "findings"


@pytest.mark.parametrize("table, message", [
    ('ownerAccount = "12"', "is not a 12-digit account ID"),
    (f'ownerAccount = "{OWNER}"\ntrustedAcounts = []', "unknown setting 'trustedAcounts'"),
    (f'ownerAccount = "{OWNER}"\nremoveWildcardPrincipals = "maybe"', "is not true or false"),
    ("ownerAccount = [", "not valid TOML"),
])
def test_a_bad_setting_is_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, table: str, message: str) -> None:
    monkeypatch.chdir(_project(tmp_path, table))
    status, out, err = run("check", "template.yaml")
    assert status == 2 and out == "" and err.count("\n") == 1 and message in err


def test_asff_has_every_required_field() -> None:
    moment = datetime(2026, 1, 2, 3, 4, 5, 678000, tzinfo=timezone.utc)
    finding = formats.asff_finding(account=OWNER, partition="aws", region="eu-west-1", api_id="a1b2c3d4e5", api_name="orders",
                                   findings=[{"kind": "untrusted-account", "principal": STRANGER}], compliant=False,
                                   exempt=False, moment=moment)
    assert all(finding.get(key) for key in formats.ASFF_REQUIRED)
    assert finding["Id"] == f"arn:aws:execute-api:eu-west-1:{OWNER}:a1b2c3d4e5/apigw-remediator/untrusted-principals"
    assert finding["ProductArn"] == f"arn:aws:securityhub:eu-west-1:{OWNER}:product/{OWNER}/default"
    assert finding["CreatedAt"] == "2026-01-02T03:04:05.678Z" and finding["Severity"] == {"Label": "HIGH"}
    assert finding["Resources"][0]["Type"] == "AwsApiGatewayRestApi" and finding["Resources"][0]["Details"]["AwsApiGatewayRestApi"]
    assert (finding["Compliance"], finding["Workflow"], finding["RecordState"]) == ({"Status": "FAILED"}, {"Status": "NEW"}, "ACTIVE")
    assert all(len(t.split("/")) == 3 for t in finding["Types"]) and len(finding["Title"]) <= 256
    passed = formats.asff_finding(account=OWNER, partition="aws-cn", region="cn-north-1", api_id="a1b2c3d4e5", api_name="",
                                  findings=[], compliant=True, exempt=False, moment=moment)
    assert passed["Compliance"] == {"Status": "PASSED"} and passed["Severity"] == {"Label": "INFORMATIONAL"}
    assert passed["ProductArn"].startswith("arn:aws-cn:securityhub:cn-north-1:")


def test_scan_writes_asff_and_ocsf(account, tmp_path: Path) -> None:
    from remediator.local.emulator import seed_rest_api

    policy = {"Statement": [{"Effect": "Allow", "Principal": {"AWS": STRANGER}, "Action": "execute-api:Invoke", "Resource": "*"}]}
    api_id = seed_rest_api(account.clients, "eu-west-1", "bad", json.dumps(policy), None, ("prod",))
    common = ("scan", "--regions", "eu-west-1", "--endpoint-url", account.endpoint_url)
    report = tmp_path / "findings.asff.jsonl"
    status, out, err = run(*common, "--format", "asff", "--output", str(report))
    assert (status, out, err) == (1, "", "")
    (finding,) = [json.loads(line) for line in report.read_text().splitlines()]
    assert all(finding.get(key) for key in formats.ASFF_REQUIRED)
    assert finding["Id"].endswith(f":{api_id}/apigw-remediator/untrusted-principals") and finding["AwsAccountId"] == OWNER
    status, out, _ = run(*common, "--format", "ocsf")
    (record,) = [json.loads(line) for line in out.splitlines()]
    # Graded by who can call: the seeded API's one method is NONE, where an account's principal is nobody (an
    # unsigned caller is anonymous), so Low; by kind alone it would be High.
    assert record["class_uid"] == 2004 and record["severity_id"] == formats.LOW.ocsf_id and api_id in record["resources"][0]["uid"]
    assert record["unmapped"]["access"]["reachability"] == "unreachable"


def test_action_yml_is_a_valid_action() -> None:
    """check-jsonschema's bundled schema for actions: no network needed."""
    done = subprocess.run([str(Path(sys.executable).with_name("check-jsonschema")), "--builtin-schema", "vendor.github-actions",
                           str(REPO / "action.yml")], capture_output=True, text=True, timeout=120,
                          env={"PATH": "/usr/bin:/bin", "HTTPS_PROXY": "http://127.0.0.1:9", "HTTP_PROXY": "http://127.0.0.1:9"})
    assert done.returncode == 0, done.stdout + done.stderr


def test_pre_commit_hook_fails_the_bad_template_and_passes_the_good(tmp_path: Path) -> None:
    """pre-commit itself runs the hook from this repository (try-repo builds its environment: slow the first time)."""
    sample = tmp_path / "infra"
    sample.mkdir()
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@example.com", "-c", "commit.gpgsign=false"]
    subprocess.run([*git, "init", "-q", str(sample)], check=True)
    (sample / "pyproject.toml").write_text(f'[tool.apigw-remediator]\nownerAccount = "{OWNER}"\n'
                                           f'trustedAccounts = ["{PARTNER}"]\nregion = "eu-west-1"\n')
    shutil.copy(IAC / "clean" / "template.yaml", sample / "template.yaml")
    subprocess.run([*git, "add", "."], cwd=sample, check=True)
    pre_commit = [sys.executable, "-m", "pre_commit", "try-repo", str(REPO), "apigw-remediator-check", "--all-files"]
    env = {"PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin", "HOME": str(Path.home()),
           "PRE_COMMIT_HOME": str(REPO / "build" / "pre-commit-cache")}
    good = subprocess.run(pre_commit, cwd=sample, capture_output=True, text=True, timeout=900, env=env)
    assert good.returncode == 0, good.stdout + good.stderr
    shutil.copy(IAC / "cloudformation" / "rest-api.yaml", sample / "bad.template.yaml")
    subprocess.run([*git, "add", "."], cwd=sample, check=True)
    bad = subprocess.run(pre_commit, cwd=sample, capture_output=True, text=True, timeout=900, env=env)
    assert bad.returncode == 1 and "bad.template.yaml:26" in bad.stdout and "untrusted-account" in bad.stdout, bad.stdout + bad.stderr
