"""Security Hub findings with a lifecycle (remediator:securityHub): one ASFF finding per REST API, imported with
BatchImportFindings by the states that know the outcome, read back with GetFindings on the strict local account.

AWS Security Hub API Reference: "BatchImportFindings" (1 to 100 findings a request; Workflow and Note are not updated
once a finding exists), "Workflow" (Security Hub sets RESOLVED when Compliance.Status becomes PASSED and NEW again when
it leaves PASSED), "GetFindings"."""

from __future__ import annotations

import json
from typing import Any

import pytest

from infra import ConfigError
from infra.config import from_context
from remediator.adapters.securityhub import BATCH_LIMIT, SecurityHub
from remediator.findings_formats import GENERATOR_ID
from remediator.local import cloudtrail
from remediator.local.template import of_type, synthesized_template
from remediator.workflow.errors import Throttled
from tests.conftest import OWNER
from tests.test_notices import WILDCARD, sweep
from tests.test_workflow import COMPLIANT, REGION, UNTRUSTED, run, seed


def findings_of(flow: Any) -> dict[str, dict[str, Any]]:
    """API ID -> its finding, as GetFindings returns them (every page)."""
    client = flow.clients.client("securityhub", REGION)
    found: dict[str, dict[str, Any]] = {}
    kwargs: dict[str, Any] = {"MaxResults": 100}
    while True:
        page = client.get_findings(**kwargs)
        for finding in page["Findings"]:
            if finding["GeneratorId"] == GENERATOR_ID:
                found[finding["Resources"][0]["Details"]["AwsApiGatewayRestApi"]["Id"]] = finding
        if not page.get("NextToken"):
            return found
        kwargs["NextToken"] = page["NextToken"]


def state(finding: dict[str, Any]) -> tuple[str, str, str]:
    return finding["Compliance"]["Status"], finding["Workflow"]["Status"], finding["RecordState"]


def calls(flow: Any, first: int, action: str) -> list[Any]:
    return [c for c in flow.strict.checked[first:] if c.action == action]


def test_the_lifecycle_new_failed_fixed_passed_deleted_archived(make_flow) -> None:
    """A failed fix (FAILED, NEW, with a note) -> fixed (PASSED, which Security Hub resolves) -> deleted (ARCHIVED);
    findings the bot only reports stay open with their note."""
    from remediator.functions import common
    from tests.faults.injection import Fault

    flow = make_flow(mode="auto")
    api_id = seed(flow, UNTRUSTED)
    reported = seed(flow, WILDCARD)
    flow.discard_pending()
    fault = Fault("apigateway", "UpdateStage", "before", "refuse").install_on(common.clients(), REGION)
    try:
        _, failed = run(flow, api_id)
    finally:
        fault.times = fault.fired
    assert failed.status == "FAILED"
    finding = findings_of(flow)[api_id]
    assert state(finding) == ("FAILED", "NEW", "ACTIVE") and "fix failed" in finding["ProductFields"]["apigw-remediator/note"]
    assert finding["Severity"]["Label"] == "HIGH" and finding["Resources"][0]["Type"] == "AwsApiGatewayRestApi"
    assert finding["ProductArn"] == f"arn:aws:securityhub:{REGION}:{OWNER}:product/{OWNER}/default"
    assert finding["Remediation"]["Recommendation"]["Text"] and finding["Note"]["Text"]

    flow.later(3600)
    _, fixed = run(flow, api_id)  # the next event: the fix goes through
    assert fixed.status == "SUCCEEDED", fixed.states
    _, told = run(flow, reported)
    finding = findings_of(flow)[api_id]
    assert state(finding) == ("PASSED", "RESOLVED", "ACTIVE") and finding["Id"].endswith(f"{api_id}/apigw-remediator/untrusted-principals")
    open_one = findings_of(flow)[reported]
    assert state(open_one) == ("FAILED", "NEW", "ACTIVE") and open_one["Severity"]["Label"] == "CRITICAL"
    assert "Reported only" in open_one["ProductFields"]["apigw-remediator/note"]

    flow.clients.client("apigateway", REGION).delete_rest_api(restApiId=api_id)
    flow.discard_pending()
    sweep(flow)
    after = findings_of(flow)
    assert state(after[api_id]) == ("PASSED", "RESOLVED", "ARCHIVED") and "deleted" in after[api_id]["Title"]
    assert state(after[reported]) == ("FAILED", "NEW", "ACTIVE"), "told already: still open, refreshed by the sweep"
    sweep(flow)  # archived once: the next sweep leaves it be
    assert state(findings_of(flow)[api_id]) == ("PASSED", "RESOLVED", "ARCHIVED")


def test_a_finding_that_comes_back_is_new_again_and_a_deleted_api_seen_by_evaluate_is_archived(make_flow) -> None:
    flow = make_flow(mode="dry-run")
    api_id = seed(flow, UNTRUSTED)
    flow.discard_pending()
    run(flow, api_id)
    assert state(findings_of(flow)[api_id]) == ("FAILED", "NEW", "ACTIVE")  # a proposal
    flow.clients.client("apigateway", REGION).update_rest_api(
        restApiId=api_id, patchOperations=[{"op": "replace", "path": "/policy", "value": json.dumps(COMPLIANT)}])
    flow.discard_pending()
    run(flow, api_id)
    assert state(findings_of(flow)[api_id]) == ("PASSED", "RESOLVED", "ACTIVE")  # Evaluate: compliant
    flow.clients.client("apigateway", REGION).update_rest_api(
        restApiId=api_id, patchOperations=[{"op": "replace", "path": "/policy", "value": json.dumps(UNTRUSTED)}])
    flow.discard_pending()
    run(flow, api_id)
    assert state(findings_of(flow)[api_id]) == ("FAILED", "NEW", "ACTIVE")  # back: Security Hub makes it NEW again
    event = cloudtrail.api_call_event("UpdateRestApi", api_id, REGION, OWNER)
    flow.clients.client("apigateway", REGION).delete_rest_api(restApiId=api_id)
    flow.discard_pending()
    flow.wait(flow.deliver(event)["execution_name"])  # Evaluate finds it gone
    assert state(findings_of(flow)[api_id]) == ("PASSED", "RESOLVED", "ARCHIVED")


def test_the_sweep_imports_its_region_in_batches_of_100(make_flow) -> None:
    from remediator.local.seed import seed_rest_api

    flow = make_flow(mode="auto")
    apis = [seed_rest_api(flow.clients, REGION, f"api-{n}", json.dumps(COMPLIANT), None, ()) for n in range(BATCH_LIMIT + 5)]
    flow.discard_pending()
    first = len(flow.strict.checked)
    flow.later(24 * 3600)
    flow.run_sweep()
    imports = [c for c in calls(flow, first, "securityhub:BatchImportFindings") if c.principal == "sweep"]
    assert len(imports) == 2 and all(c.allowed for c in imports)
    found = findings_of(flow)
    assert set(apis) <= set(found) and {state(found[a]) for a in apis} == {("PASSED", "RESOLVED", "ACTIVE")}


def test_the_local_account_refuses_more_than_100_findings_a_request(account) -> None:
    account.clients.client("securityhub", REGION).enable_security_hub()
    from remediator.functions.security_hub import finding

    many = [finding(OWNER, REGION, f"{n:010d}", "api", [], True) for n in range(BATCH_LIMIT + 1)]
    with pytest.raises(Exception, match="InvalidInputException"):
        account.clients.client("securityhub", REGION).batch_import_findings(Findings=many)
    imported = SecurityHub(account.clients, REGION).import_findings(many)
    assert (imported.succeeded, imported.failed, imported.batches) == (BATCH_LIMIT + 1, [], 2)


def test_throttling_is_retried_by_the_error_table(make_flow, monkeypatch) -> None:
    """LimitExceededException (Security Hub's throttling): botocore retries it, then the error table makes it Throttled,
    which the state machine retries; the notice is published once, after the import."""
    from remediator.functions import common
    from tests.faults import injection

    monkeypatch.setitem(injection.THROTTLING, "securityhub", ("LimitExceededException", 429))
    flow = make_flow(mode="auto")
    api_id = seed(flow, WILDCARD)
    flow.discard_pending()
    attempts = common.clients().max_attempts + 1  # retries={"max_attempts": n}: n retries after the first attempt
    fault = injection.Fault("securityhub", "BatchImportFindings", "before", "throttle", times=attempts).install_on(common.clients(), REGION)
    _, result = run(flow, api_id)
    assert result.status == "SUCCEEDED" and fault.fired == attempts
    assert state(findings_of(flow)[api_id]) == ("FAILED", "NEW", "ACTIVE")
    assert [m["kind"] for m in flow.notifications()] == ["findings"]
    fault = injection.Fault("securityhub", "BatchImportFindings", "before", "throttle", times=attempts).install_on(common.clients(), REGION)
    with pytest.raises(Throttled):
        SecurityHub(common.clients(), REGION).import_findings([findings_of(flow)[api_id]])


def test_auto_is_off_where_security_hub_is_not_enabled_and_says_so_once(make_flow) -> None:
    flow = make_flow(mode="auto", security_hub=False)
    first = len(flow.strict.checked)
    for _ in range(2):
        api_id = seed(flow, WILDCARD)
        flow.discard_pending()
        run(flow, api_id)
    told = flow.notifications()
    assert [m["kind"] for m in told].count("security-hub") == 1 and "not enabled" in json.dumps(told)
    assert calls(flow, first, "securityhub:BatchImportFindings") == []
    assert calls(flow, first, "securityhub:DescribeHub") and all(c.allowed for c in flow.strict.checked[first:])


def test_the_setting_and_its_grants() -> None:
    assert from_context(lambda key: None).security_hub == "auto"
    with pytest.raises(ConfigError, match="remediator:securityHub"):
        from_context({"remediator:securityHub": "yes"}.get)
    with pytest.raises(ConfigError, match="remediator:securityHub"):
        from_context({"remediator:securityHub": "on", "remediator:deployment": "organization", "remediator:organizationId": "o-a1b2c3d4e5",
                      "remediator:spokeOrganizationalUnits": ["r-ab12"], "remediator:spokeRegions": ["us-east-1"]}.get)
    template = synthesized_template("auto")
    product = {"Fn::Join": ["", ["arn:", {"Ref": "AWS::Partition"}, ":securityhub:", {"Ref": "AWS::Region"}, ":",
                                 {"Ref": "AWS::AccountId"}, ":product/", {"Ref": "AWS::AccountId"}, "/default"]]}
    by_role: dict[str, list[dict[str, Any]]] = {}
    for policy in of_type(template, "AWS::IAM::Policy").values():
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]:
            actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
            if any(a.startswith("securityhub:") for a in actions):
                by_role.setdefault(policy["Properties"]["Roles"][0]["Ref"], []).append(statement)
    importing = {role for role, statements in by_role.items()
                 if any(s["Action"] == "securityhub:BatchImportFindings" and s["Resource"] == product for s in statements)}
    # Evaluate, Notify, the sweep, and the trigger (a compliant API decided before starting is PASSED); no other role
    assert sorted(role[:role.index("Role")] for role in importing) == ["Evaluate", "Notify", "Sweep", "Trigger"]
    assert importing == set(by_role)
    for organization_template in (synthesized_template("auto", organization=True),):
        assert "securityhub:" not in json.dumps(of_type(organization_template, "AWS::IAM::Policy"))
