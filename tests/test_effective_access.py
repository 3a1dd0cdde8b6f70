"""Who can actually call, on the strict local account: APIs seeded with methods of each authorizationType, with and
without apiKeyRequired, on REGIONAL and PRIVATE endpoints; read by `scan` (GetResources embed=methods) and by the
workflow's Evaluate (its role granted GET on /restapis/<id>/resources*, enforced), shown in $.evaluation and the
notice, and told again when a method's authorization is loosened."""

from __future__ import annotations

import json
from typing import Any

from remediator.adapters.apigateway import ApiGatewayAdapter
from remediator.local import cloudtrail
from tests.conftest import OWNER, PARTNER, STRANGER
from tests.test_sweep import run_cli
from tests.test_workflow import REGION, run, run_directly

WILDCARD = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": "*", "Action": "execute-api:Invoke",
                                                    "Resource": "execute-api:/*"}]}
NAMED = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{STRANGER}:root"},
                                                 "Action": "execute-api:Invoke", "Resource": "execute-api:/*"}]}
VPCE = "vpce-0123456789abcdef0"
ONLY_FROM_VPCE = {"Effect": "Deny", "Principal": "*", "Action": "execute-api:Invoke", "Resource": "execute-api:/*",
                  "Condition": {"StringNotEquals": {"aws:SourceVpce": VPCE}}}
EVERY_KIND = (("/open", "GET", "NONE", False), ("/keyed", "GET", "NONE", True), ("/signed", "GET", "AWS_IAM", False),
              ("/custom", "POST", "CUSTOM", False), ("/cognito", "GET", "COGNITO_USER_POOLS", False))


def seed_api(clients: Any, policy: dict[str, Any], methods: tuple[tuple[str, str, str, bool], ...],
             endpoint: str = "REGIONAL", region: str = REGION) -> str:
    """A REST API with these methods (path, verb, authorizationType, apiKeyRequired) under the root, deployed."""
    client = clients.client("apigateway", region)
    configuration: dict[str, Any] = {"types": [endpoint]}
    if endpoint == "PRIVATE":
        configuration["vpcEndpointIds"] = [VPCE]
    api_id = client.create_rest_api(name=f"api-{endpoint.lower()}", policy=json.dumps(policy),
                                     endpointConfiguration=configuration)["id"]
    root = client.get_resources(restApiId=api_id)["items"][0]["id"]
    for path, verb, auth, key in methods:
        resource = client.create_resource(restApiId=api_id, parentId=root, pathPart=path.strip("/"))["id"]
        client.put_method(restApiId=api_id, resourceId=resource, httpMethod=verb, authorizationType=auth, apiKeyRequired=key)
        client.put_integration(restApiId=api_id, resourceId=resource, httpMethod=verb, type="MOCK")
    client.create_deployment(restApiId=api_id, stageName="prod")
    return api_id


def reached(record: dict[str, Any]) -> dict[str, str]:
    """path -> the grade of the method, for the API's first finding."""
    return {m["path"]: m["severity"] for m in record["access"][0]["reachable_methods"]}


def test_the_adapter_reads_every_method_with_what_it_enforces(account) -> None:
    api_id = seed_api(account.clients, WILDCARD, EVERY_KIND, "PRIVATE")
    adapter = ApiGatewayAdapter(account.clients)
    methods = {(m.path, m.http_method): (m.authorization_type, m.api_key_required) for m in adapter.methods(REGION, api_id)}
    assert methods == {(p, v): (a, k) for p, v, a, k in EVERY_KIND}
    api = adapter.get_rest_api(REGION, api_id)
    assert api.endpoint_types == ("PRIVATE",) and api.vpc_endpoint_ids == (VPCE,)


def test_scan_grades_each_method_by_its_authorization_and_the_endpoint(account) -> None:
    public = seed_api(account.clients, WILDCARD, EVERY_KIND)
    private = seed_api(account.clients, WILDCARD, EVERY_KIND, "PRIVATE")
    confined = seed_api(account.clients, {**WILDCARD, "Statement": [*WILDCARD["Statement"], ONLY_FROM_VPCE]},
                        (("/open", "GET", "NONE", False),), "PRIVATE")
    named = seed_api(account.clients, NAMED, EVERY_KIND)
    status, records, _ = run_cli("scan", "--regions", REGION, "--trusted-accounts", PARTNER, "--endpoint-url",
                                 account.endpoint_url, "--format", "json")
    assert status == 1
    by_id = {r["api_id"]: r for r in records}
    assert by_id[public]["severity"] == "critical"
    assert reached(by_id[public]) == {"/open": "critical", "/keyed": "medium", "/signed": "high", "/custom": "medium",
                                      "/cognito": "medium"}
    assert by_id[private]["severity"] == "high" and reached(by_id[private])["/open"] == "high"
    assert by_id[confined]["severity"] == "medium"
    assert reached(by_id[confined]) == {"/open": "medium"}
    assert by_id[named]["severity"] == "high" and reached(by_id[named]) == {"/signed": "high"}  # only a signed caller is the account
    status, lines, _ = run_cli("scan", "--regions", REGION, "--trusted-accounts", PARTNER, "--endpoint-url", account.endpoint_url)
    (line,) = [entry["text"] for entry in lines if public in entry["text"]]
    assert "[critical]" in line and "GET /open (NONE)" in line and "GET /keyed (NONE, API key)" in line


def test_evaluate_puts_severity_and_reachability_in_the_state_and_the_notice(make_flow) -> None:
    flow = make_flow(mode="auto")
    api_id = seed_api(flow.clients, NAMED, (("/signed", "GET", "AWS_IAM", False), ("/open", "GET", "NONE", False)))
    flow.later()
    flow.discard_pending()
    _, result = run(flow, api_id)
    assert result.status == "SUCCEEDED"
    evaluation = result.output["evaluation"]
    assert evaluation["severity"] == "high" and evaluation["access"][0]["reachability"] == "reachable"
    assert [m["path"] for m in evaluation["access"][0]["reachable_methods"]] == ["/signed"]


def test_a_method_loosened_from_iam_to_none_is_told_again(make_flow) -> None:
    flow = make_flow(mode="auto")
    api_id = seed_api(flow.clients, WILDCARD, (("/data", "GET", "AWS_IAM", False),))
    flow.later()
    flow.discard_pending()
    run(flow, api_id)
    (told,) = flow.notifications()
    assert told["kind"] == "findings" and told["severity"] == "high"
    # Nothing changed: not told again, whether the trigger decides (no execution) or an execution runs.
    assert flow.deliver(cloudtrail.api_call_event("UpdateRestApi", api_id, REGION, OWNER)) == {
        "status": "not-started", "verdict": "report-only"}
    _, result = run_directly(flow, api_id)
    assert result.output["notification"]["unchanged"] is True and flow.notifications() == []
    client = flow.clients.client("apigateway", REGION)
    resource = [r for r in client.get_resources(restApiId=api_id)["items"] if r["path"] == "/data"][0]["id"]
    # The emulator has no UpdateMethod: PutMethod again replaces the method, as a template redeployed would.
    client.put_method(restApiId=api_id, resourceId=resource, httpMethod="GET", authorizationType="NONE")
    flow.discard_pending()
    _, result = run(flow, api_id)  # the same policy, but anyone can call now: told again, critical
    assert "unchanged" not in result.output["notification"]
    (told,) = flow.notifications()
    assert told["severity"] == "critical" and told["access"][0]["reachable_methods"][0]["caller"] == "anyone"


def test_a_named_account_on_unsigned_methods_only_is_low_but_still_fixed(make_flow) -> None:
    """The grade never changes the fix: the untrusted account is removed even where it can call nothing today."""
    flow = make_flow(mode="auto")
    policy = {"Version": "2012-10-17", "Statement": [{**NAMED["Statement"][0], "Principal": {"AWS": [OWNER, STRANGER]}}]}
    api_id = seed_api(flow.clients, policy, (("/open", "GET", "NONE", False),))
    flow.later()
    flow.discard_pending()
    _, result = run(flow, api_id)
    evaluation = result.output["evaluation"]
    assert evaluation["verdict"] == "fix" and evaluation["severity"] == "low"
    assert evaluation["access"][0]["reachability"] == "unreachable"
    assert result.output["applied"]["outcome"] == "patched"
