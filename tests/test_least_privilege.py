"""Least privilege per function (issue "L: the bot cannot be turned against the accounts it guards", part 4).

Each function's role, as the stack synthesizes it and the strict local account evaluates it, in each of the three
commercial-and-sovereign partitions (aws, aws-us-gov, aws-cn): it is allowed what its module's `needs()` declares
and denied everything else; a writer may change a REST API and its stages but nothing under them (methods,
integrations, resources, authorizers, ...); a reader writes nothing. Then, end to end on the strict account: a
read-only session of the spoke role cannot PATCH, a writer's session cannot PATCH a method, and the hub cannot assume
a same-named role in an account outside its organization.
"""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from botocore.exceptions import ClientError

import remediator.functions as function_modules
from remediator.adapters.clients import ClientFactory, new_session
from remediator.adapters.sts import READ_ONLY_SESSION_POLICY, assume_role, role_arn
from remediator.functions.needs import API_ID, SUB_RESOURCES, WRITE_VERBS, Needs, writes_apigateway
from remediator.local import runner
from remediator.local.emulator import seed_rest_api
from remediator.local.iam import Call, PolicySet, _wild
from remediator.local.strict import Principal
from remediator.local.template import Resolver, of_type, spoke_template, synthesized_template

PARTITIONS = ("aws", "aws-us-gov", "aws-cn")
REGIONS = {"aws": "eu-west-1", "aws-us-gov": "us-gov-west-1", "aws-cn": "cn-north-1"}
ACCOUNT = "111122223333"
VARIANTS = (("auto", False, False), ("dry-run", False, False), ("approval", True, False), ("auto", False, True),
            ("dry-run", False, True))
API = "a1b2c3d4e5"  # a REST API ID: 10 characters
# Every path a role could write under a REST API, one of each resource type of the Service Authorization Reference
# (API Gateway Management), and some outside any REST API.
PROBE_PATHS = (
    "/restapis", f"/restapis/{API}", f"/restapis/{API}/stages", f"/restapis/{API}/stages/prod",
    f"/restapis/{API}/stages/prod/cache/data", f"/restapis/{API}/deployments", f"/restapis/{API}/deployments/d1",
    f"/restapis/{API}/resources", f"/restapis/{API}/resources/r1", f"/restapis/{API}/resources/r1/methods/GET",
    f"/restapis/{API}/resources/r1/methods/GET/integration", f"/restapis/{API}/resources/r1/methods/GET/responses/200",
    f"/restapis/{API}/resources/r1/methods/GET/integration/responses/200", f"/restapis/{API}/authorizers",
    f"/restapis/{API}/authorizers/au1", f"/restapis/{API}/models/Empty", f"/restapis/{API}/requestvalidators/v1",
    f"/restapis/{API}/gatewayresponses/DEFAULT_4XX", f"/restapis/{API}/documentation/parts/p1",
    f"/restapis/{API}x/resources", "/domainnames/example.com", "/usageplans/u1", "/apikeys/k1", "/account",
)
NEVER_CHANGED = (f"/restapis/{API}/resources/r1/methods/GET", f"/restapis/{API}/resources/r1/methods/GET/integration",
                 f"/restapis/{API}/resources/r1", f"/restapis/{API}/authorizers/au1")


class _AnyResolver(Resolver):
    """The template's intrinsics with every resource bound to a made-up ARN of the partition."""

    def __init__(self, partition: str) -> None:
        super().__init__(ACCOUNT, REGIONS[partition], partition)
        self.partition = partition

    def _ref(self, name: str) -> str:
        return self.pseudo.get(name) or self.refs.get(name) or name

    def _get_att(self, arg: Any) -> str:
        logical_id, attr = arg if isinstance(arg, list) else arg.split(".", 1)
        return f"arn:{self.partition}:local:{REGIONS[self.partition]}:{ACCOUNT}:{logical_id}"


def role_policies(template: dict[str, Any], resolve: Resolver) -> dict[str, PolicySet]:
    """Each role's identity policies, resolved for the partition, by logical ID."""
    documents: dict[str, list[dict[str, Any]]] = {}
    for policy in of_type(template, "AWS::IAM::Policy").values():
        for role in policy["Properties"]["Roles"]:
            documents.setdefault(role["Ref"], []).append(resolve(policy["Properties"]["PolicyDocument"]))
    for logical_id, role in of_type(template, "AWS::IAM::Role").items():
        for inline in role["Properties"].get("Policies", []):
            documents.setdefault(logical_id, []).append(resolve(inline["PolicyDocument"]))
    return {k: PolicySet(v, principal=k) for k, v in documents.items()}


def function_roles(template: dict[str, Any], resolve: Resolver) -> dict[str, PolicySet]:
    """{function name: its role's policies}."""
    policies = role_policies(template, resolve)
    return {function_modules.name_of(f["Properties"]["Handler"]): policies.get(f["Properties"]["Role"]["Fn::GetAtt"][0], PolicySet([]))
            for f in of_type(template, "AWS::Lambda::Function").values()}


def concrete(path: str) -> str:
    """A path a call would have, for a declared grant's pattern."""
    return path.replace(API_ID, API).replace("*", "prod")


def declared(calls: tuple[tuple[str, str], ...], action: str, path: str) -> bool:
    """Whether the needs declare this API Gateway call (the declared path, as IAM matches it), minus the
    sub-resources every writer is denied."""
    if action in WRITE_VERBS and any(_wild(sub, False).fullmatch(path) for sub in SUB_RESOURCES):
        return False
    return any(a == action and _wild(p, False).fullmatch(path) for a, p in calls)


def expected_actions(needs: Needs | None, name: str) -> set[str]:
    """Every IAM action a function's needs (and its Lambda plumbing) account for: nothing else may be granted."""
    if needs is None:
        return set()
    actions = {"logs:CreateLogStream", "logs:PutLogEvents"} | {f"apigateway:{a}" for a, _ in needs.apigateway}
    actions |= {"ssm:GetParameter"} if needs.read_trust or needs.read_settings else set()
    actions |= {"lambda:InvokeFunction"} if needs.invoke_self else set()
    actions |= {"states:StartExecution"} if needs.start_execution else set()
    actions |= {"dynamodb:PutItem"} if needs.put_audit else set()
    actions |= {*needs.journal, *needs.approvals, *needs.failures, *needs.notices, *needs.roster, *needs.results}
    actions |= {"sns:Publish", "kms:Decrypt", "kms:GenerateDataKey"} if needs.publish else set()
    actions |= {"secretsmanager:GetSecretValue"} if needs.slack_token or needs.slack_signing_secret else set()
    actions |= {"states:SendTaskSuccess", "states:SendTaskFailure"} if needs.answer_tasks else set()
    actions |= {"sts:AssumeRole"} if needs.assume_spoke else set()
    # remediator:securityHub is auto in these templates: BatchImportFindings, after DescribeHub.
    actions |= {"securityhub:BatchImportFindings", "securityhub:DescribeHub"} if needs.import_findings else set()
    actions |= {"securityhub:GetFindings"} if needs.read_findings else set()
    if needs.read_organization:
        actions |= {"organizations:DescribeOrganization", "organizations:ListAccounts",
                    "organizations:ListAccountsForParent", "organizations:ListOrganizationalUnitsForParent"}
    if name in ("trigger", "sweep", "roster"):
        actions.add("sqs:SendMessage")  # Lambda's asynchronous invocations that fail end in the dead-letter queue
    return actions


def variant_id(variant: tuple[str, bool, bool]) -> str:
    mode, slack, organization = variant
    return f"{'organization-' if organization else ''}{mode}{'-slack' if slack else ''}"


@pytest.mark.parametrize("partition", PARTITIONS)
@pytest.mark.parametrize("variant", VARIANTS, ids=variant_id)
def test_each_role_is_allowed_its_needs_and_denied_everything_else(variant: tuple[str, bool, bool], partition: str) -> None:
    mode, slack, organization = variant
    template = synthesized_template(mode, slack, organization)
    region = REGIONS[partition]
    for name, policies in function_roles(template, _AnyResolver(partition)).items():
        needs = function_modules.needs(name, mode, slack, organization=organization)
        granted = {action for _, action in policies.granted()}
        assert granted <= expected_actions(needs, name), f"{name}: granted beyond its needs: {granted - expected_actions(needs, name)}"
        calls = needs.apigateway if needs is not None else ()
        for action, path in calls:  # what it declares, it may do
            assert policies.decide(Call(f"apigateway:{action}", f"arn:{partition}:apigateway:{region}::{concrete(path)}")).allowed, (name, action, path)
        for verb in ("GET", *WRITE_VERBS):  # and nothing else, on any path
            for path in PROBE_PATHS:
                arn = f"arn:{partition}:apigateway:{region}::{path}"
                decision = policies.decide(Call(f"apigateway:{verb}", arn))
                assert decision.allowed is declared(calls, verb, path), (name, verb, path, decision)
        for path in NEVER_CHANGED:  # no role ever changes a method, an integration, a resource or an authorizer
            for verb in WRITE_VERBS:
                assert not policies.decide(Call(f"apigateway:{verb}", f"arn:{partition}:apigateway:{region}::{path}")).allowed
        if needs is None or not writes_apigateway(needs.apigateway):  # a reader writes nothing in API Gateway
            assert not any(a.startswith("apigateway:") and a != "apigateway:GET" for a in granted), name
        # Another partition's ARNs are no grant of this one.
        other = next(p for p in PARTITIONS if p != partition)
        for action, path in calls:
            assert not policies.decide(Call(f"apigateway:{action}", f"arn:{other}:apigateway:{region}::{concrete(path)}")).allowed


@pytest.mark.parametrize("partition", PARTITIONS)
@pytest.mark.parametrize("mode", ["auto", "dry-run"])
def test_the_spoke_role_writes_only_rest_apis_and_stages(mode: str, partition: str) -> None:
    """The role the hub uses in every member account: the single-account writers' calls, no sub-resource; in a dry
    run, reads only. A read-only session of it (the hub's evaluate and sweep, the CLI's scan) writes nothing."""
    spoke = spoke_template(mode)
    (role_id,) = [k for k, r in of_type(spoke, "AWS::IAM::Role").items() if r["Properties"].get("RoleName")]
    resolve = _AnyResolver(partition)
    resolve.pseudo["AWS::Region"] = "us-east-1"
    policies = role_policies(spoke, resolve)[role_id]
    read_only = policies.with_session(READ_ONLY_SESSION_POLICY)
    for region in ("us-east-1", "eu-west-1"):  # the local organization's spoke regions
        region_arn = f"arn:{partition}:apigateway:{region}::"
        assert policies.decide(Call("apigateway:GET", f"{region_arn}/restapis/{API}")).allowed
        assert read_only.decide(Call("apigateway:GET", f"{region_arn}/restapis/{API}")).allowed
        assert policies.decide(Call("apigateway:PATCH", f"{region_arn}/restapis/{API}")).allowed is (mode == "auto")
        for path in PROBE_PATHS:
            for verb in WRITE_VERBS:
                decision = read_only.decide(Call(f"apigateway:{verb}", region_arn + path))
                assert not decision.allowed, (verb, path)
        for path in NEVER_CHANGED:
            for verb in WRITE_VERBS:
                assert not policies.decide(Call(f"apigateway:{verb}", region_arn + path)).allowed, (verb, path)
    if mode == "auto":
        assert read_only.decide(Call("apigateway:PATCH", f"arn:{partition}:apigateway:us-east-1::/restapis/{API}")).reason \
            == "session policy: no statement allows it"


@pytest.mark.parametrize("variant", VARIANTS, ids=variant_id)
def test_no_literal_aws_partition_in_any_template(variant: tuple[str, bool, bool]) -> None:
    """Every ARN the stacks write takes the stack's partition (AWS::Partition): a synth is as right for aws-us-gov
    and aws-cn as for aws. Resolved for each partition, every ARN in a policy is that partition's."""
    mode, slack, organization = variant
    templates = [synthesized_template(mode, slack, organization)] + ([spoke_template(mode, slack)] if organization else [])
    for template in templates:
        assert "arn:aws:" not in json.dumps(template)
        for partition in PARTITIONS:
            text = json.dumps([r.get("Properties") for r in template["Resources"].values()
                               if r["Type"] in ("AWS::IAM::Policy", "AWS::IAM::Role")])
            text = json.dumps(_AnyResolver(partition)(json.loads(text)))
            arns = re.findall(r'"(arn:[^:"]*):', text)
            assert arns and set(arns) == {f"arn:{partition}"}, partition


def test_the_audit_table_takes_writes_only_from_the_stacks_roles() -> None:
    """Defence in depth: the table's resource policy denies every item write to any principal but the functions'
    roles (by ARN), whatever an identity policy elsewhere in the account allows."""
    for mode, slack, organization in VARIANTS:
        template = synthesized_template(mode, slack, organization)
        (table,) = of_type(template, "AWS::DynamoDB::Table").values()
        (statement,) = table["Properties"]["ResourcePolicy"]["PolicyDocument"]["Statement"]
        assert statement["Effect"] == "Deny" and statement["Principal"] == {"AWS": "*"} and statement["Resource"] == "*"
        assert {"dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem", "dynamodb:BatchWriteItem"} <= set(statement["Action"])
        roles = {f["Properties"]["Role"]["Fn::GetAtt"][0] for f in of_type(template, "AWS::Lambda::Function").values()}
        named = statement["Condition"]["ArnNotEquals"]["aws:PrincipalArn"]
        assert sorted(r["Fn::GetAtt"][0] for r in named) == sorted(roles)
        assert all(r["Fn::GetAtt"][1] == "Arn" for r in named)


# ---- end to end, on the strict account ----------------------------------------------------------------------


def _as(flow: runner.LocalWorkflow, function: str, region: str) -> ClientFactory:
    """The clients of a function's role session (its access key on the strict account)."""
    principal = runner._routes[runner.FUNCTION_PREFIX + function].principal
    assert isinstance(principal, Principal)
    session = new_session(aws_access_key_id=principal.access_key, aws_secret_access_key="local",
                                    aws_session_token="local", region_name=region)
    return ClientFactory(endpoint_url=flow.account.endpoint_url, session=session, retry_mode="standard", max_attempts=1)


def _denied(call: Any) -> str:
    with pytest.raises(ClientError) as refused:
        call()
    return str(refused.value.response["Error"]["Code"])


def _method(clients: ClientFactory, region: str, api_id: str) -> str:
    """A GET method on the API's root resource (made by the harness); its resource ID."""
    apigateway = clients.client("apigateway", region)
    root = next(r["id"] for r in apigateway.get_resources(restApiId=api_id)["items"] if r["path"] == "/")
    apigateway.put_method(restApiId=api_id, resourceId=root, httpMethod="GET", authorizationType="NONE")
    return str(root)


def test_a_writer_may_patch_the_api_but_not_its_method(make_flow) -> None:
    flow = make_flow(mode="auto")
    region = flow.region
    api_id = seed_rest_api(flow.clients, region, "api", json.dumps({"Version": "2012-10-17", "Statement": []}), stages=("prod",))
    root = _method(flow.clients, region, api_id)
    apply = _as(flow, "apply", region).client("apigateway", region)
    apply.update_rest_api(restApiId=api_id, patchOperations=[{"op": "replace", "path": "/description", "value": "x"}])
    assert _denied(lambda: apply.update_method(restApiId=api_id, resourceId=root, httpMethod="GET", patchOperations=[
        {"op": "replace", "path": "/authorizationType", "value": "AWS_IAM"}])) == "AccessDeniedException"
    denied = [c for c in flow.strict.checked if not c.allowed and c.principal == "apply"]
    assert denied[-1].resource.endswith(f"/restapis/{api_id}/resources/{root}/methods/GET")  # the method's ARN decided
    assert denied[-1].reason.startswith("explicit deny")
    evaluate = _as(flow, "evaluate", region).client("apigateway", region)
    assert _denied(lambda: evaluate.update_rest_api(restApiId=api_id, patchOperations=[
        {"op": "replace", "path": "/description", "value": "y"}])) == "AccessDeniedException"


@pytest.fixture
def org_flow(make_flow):
    flow = make_flow(region="us-east-1", organization=True, trusted_accounts=["210987654321"], slack_channel="", mode="auto")
    flow.refresh_roster()
    return flow


def test_a_read_only_session_of_the_spoke_role_cannot_write(org_flow) -> None:
    """The hub's read-only functions (and the CLI's scan and dry runs) assume the spoke role with a read-only session
    policy: the role could PATCH, the session cannot (IAM: the intersection of the two)."""
    flow, region = org_flow, "us-east-1"
    assert flow.organization is not None
    member = next(iter(flow.organization.members.values()))
    api_id = seed_rest_api(member.clients, region, "api", json.dumps({"Version": "2012-10-17", "Statement": []}), stages=("prod",))
    arn = role_arn("aws", member.account_id, flow.environment["SPOKE_ROLE_NAME"])
    patch = [{"op": "replace", "path": "/description", "value": "changed"}]
    reader = assume_role(_as(flow, "apply", region), arn, "reader", region, read_only=True).client("apigateway", region)
    assert reader.get_rest_api(restApiId=api_id)["id"] == api_id
    assert _denied(lambda: reader.update_rest_api(restApiId=api_id, patchOperations=patch)) == "AccessDeniedException"
    denied = [c for c in flow.strict.checked if not c.allowed][-1]
    assert denied.action == "apigateway:PATCH" and denied.reason.startswith("session policy")
    writer = assume_role(_as(flow, "apply", region), arn, "writer", region).client("apigateway", region)
    writer.update_rest_api(restApiId=api_id, patchOperations=patch)  # the same role, without the session policy
    root = _method(member.clients, region, api_id)
    assert _denied(lambda: writer.update_method(restApiId=api_id, resourceId=root, httpMethod="GET", patchOperations=[
        {"op": "replace", "path": "/authorizationType", "value": "AWS_IAM"}])) == "AccessDeniedException"


def test_the_hub_cannot_assume_a_same_named_role_outside_its_organization(org_flow) -> None:
    """The outsider (an account of no organization) has the spoke role's name, and a trust policy that would let
    the hub in: the hub's own policy refuses the AssumeRole (aws:ResourceOrgID is not its organization's)."""
    flow, region = org_flow, "us-east-1"
    assert flow.organization is not None
    outsider = flow.organization.outsider
    arn = role_arn("aws", outsider.account_id, flow.environment["SPOKE_ROLE_NAME"])
    for function in ("evaluate", "apply"):
        assert _denied(lambda: assume_role(_as(flow, function, region), arn, "probe", region)) == "AccessDenied"
        denied = [c for c in flow.strict.checked if not c.allowed][-1]
        assert (denied.principal, denied.action, denied.resource) == (function, "sts:AssumeRole", arn)
        assert denied.reason == "no statement allows it"  # the hub's identity policy, not the role's trust policy
    member = next(iter(flow.organization.members.values()))
    inside = role_arn("aws", member.account_id, flow.environment["SPOKE_ROLE_NAME"])
    assume_role(_as(flow, "evaluate", region), inside, "probe", region, read_only=True)  # a member's: assumed


def test_only_the_functions_that_write_to_api_gateway_ask_for_writable_spoke_sessions() -> None:
    """In an organization a function's spoke session is read-only (a session policy) unless it writes: exactly the
    functions whose needs() hold an API Gateway write ask for a writable one (remediator_for(..., writes_api=True))."""
    import importlib
    import inspect

    from remediator.functions import NAMES
    from remediator.functions.common import SpokeClients
    from remediator.functions.needs import writes_apigateway

    for name in NAMES:
        module = importlib.import_module(f"remediator.functions.{name}")
        declared = [module.needs(mode, slack) for mode in ("auto", "approval", "dry-run") for slack in (False, True)]
        writes = any(n is not None and writes_apigateway(n.apigateway) for n in declared)
        assert ("writes_api=True" in inspect.getsource(module)) == writes, name
    assert inspect.signature(SpokeClients).parameters["read_only"].default is True, "read-only unless asked"


def test_operator_roles_may_write_only_the_lease_the_intents_and_their_records() -> None:
    """`fix --lease-table` takes the stack's deployment turns and claims APIs in its journal with the operator's own
    role: remediator:operatorRoleArns lets those roles past the table's Deny for the lease, intent and audit items and
    no other (approvals, failure counts, notices, the roster); a malformed ARN (or a wildcard) stops the synth."""
    import tempfile

    from infra import ConfigError, build_app

    operator = "arn:aws:iam::111122223333:role/platform/apigw-operator"
    app, stack = build_app({"remediator:operatorRoleArns": [operator]}, outdir=tempfile.mkdtemp(), nag=False)
    template = app.synth().get_stack_by_name(stack.stack_name).template
    (table,) = of_type(template, "AWS::DynamoDB::Table").values()
    first, second = table["Properties"]["ResourcePolicy"]["PolicyDocument"]["Statement"]
    assert operator in first["Condition"]["ArnNotEquals"]["aws:PrincipalArn"]
    assert second["Effect"] == "Deny" and second["Condition"] == {
        "ArnEquals": {"aws:PrincipalArn": [operator]},
        "ForAnyValue:StringNotLike": {"dynamodb:LeadingKeys": ["lease#deployments", "intent#*", "api#*"]}}
    assert set(second["Action"]) == set(first["Action"])
    for bad in ("arn:aws:iam::111122223333:role/*", "arn:aws:iam::111122223333:user/alice", "apigw-operator"):
        with pytest.raises(ConfigError, match="remediator:operatorRoleArns"):
            build_app({"remediator:operatorRoleArns": [bad]}, outdir=tempfile.mkdtemp(), nag=False)
