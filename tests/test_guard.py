"""The one guarded write and forward-only stages (issue L): the proof that a policy is not wider, the three
authorities, and crafted state fed to recovery, undo and rollback on the strict local account."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from remediator.adapters.apigateway import ApiGatewayAdapter, DeploymentPacer
from remediator.audit import JsonLinesAuditLog
from remediator.core import PolicyError, TrustConfig, evaluate_policy, parse_policy
from remediator.core.narrowing import widenings
from remediator.guard import Narrowing, PersonRollback, UndoOf, WriteRefused, check, new_policy_of, policy_digest
from remediator.journal import Intent, JsonLinesJournal, PlannedStage
from remediator.local.emulator import seed_rest_api
from remediator.transaction.planning import SweepSettings
from remediator.transaction.remediator import Remediator
from tests.conftest import OWNER, PARTNER, STRANGER, TRUSTED_ORG, corpus_dir
from tests.test_fix_properties import policies

REGION = "eu-west-1"
INVOKE, ANY = "execute-api:Invoke", "execute-api:/*"


def allow(*principals: str, **extra: Any) -> dict[str, Any]:
    return {"Effect": "Allow", "Principal": {"AWS": list(principals)}, "Action": INVOKE, "Resource": ANY, **extra}


def doc(*statements: dict[str, Any]) -> dict[str, Any]:
    return {"Version": "2012-10-17", "Statement": list(statements)}


STAR = doc({"Effect": "Allow", "Principal": "*", "Action": INVOKE, "Resource": ANY})
UNTRUSTED = doc(allow(OWNER, STRANGER))
FIXED = doc(allow(OWNER))
PRIVATE = doc(allow(OWNER), {"Effect": "Deny", "Principal": "*", "Action": INVOKE, "Resource": ANY,
                             "Condition": {"StringNotEquals": {"aws:SourceVpce": "vpce-1a2b3c4d"}}})
CONFIG = TrustConfig(owner_account=OWNER, trusted_accounts=frozenset({PARTNER}), trusted_org_ids=frozenset({TRUSTED_ORG}))


# --- the proof ----------------------------------------------------------------------------------------

def test_every_fix_of_the_corpus_is_proven_not_wider() -> None:
    fixed = 0
    for path in sorted(corpus_dir("policies").glob("*.json")):
        live = parse_policy(path.read_text())
        for strip_wildcards in (False, True):
            evaluation = evaluate_policy(live, TrustConfig(owner_account=OWNER, remove_wildcard_principals=strip_wildcards))
            if evaluation.remediated_policy is not None:
                assert widenings(live, evaluation.remediated_policy, OWNER) == [], path.name
                fixed += 1
    assert fixed >= 25


@given(policies())
@settings(max_examples=200, deadline=None)
def test_every_fix_of_a_generated_policy_is_proven_not_wider(document: dict[str, Any]) -> None:
    try:
        evaluation = evaluate_policy(document, CONFIG)
    except PolicyError:
        return
    if evaluation.remediated_policy is not None:
        assert widenings(evaluation.policy, evaluation.remediated_policy, OWNER) == []
    assert widenings(evaluation.policy, evaluation.policy, OWNER) == []  # the same policy is never wider


WIDER = {
    "a principal added": (FIXED, doc(allow(OWNER, STRANGER))),
    "everyone": (FIXED, STAR),
    "a new statement": (FIXED, doc(allow(OWNER), allow(PARTNER))),
    "a Deny dropped": (PRIVATE, FIXED),
    "a Deny's condition changed": (PRIVATE, doc(allow(OWNER), {**PRIVATE["Statement"][1], "Condition": {
        "StringNotEquals": {"aws:SourceVpce": ["vpce-1a2b3c4d", "vpce-99999999"]}}})),
    "the policy removed under a Deny": (PRIVATE, None),
    "a policy where there was none": (None, doc(allow(PARTNER))),
    "an action added": (doc(allow(PARTNER, Action="execute-api:Invoke")), doc(allow(PARTNER, Action=["execute-api:Invoke", "execute-api:ManageConnections"]))),
    "a resource widened": (doc(allow(PARTNER, Resource="execute-api:/prod/GET/*")), doc(allow(PARTNER))),
    "a condition dropped": (doc(allow(PARTNER, Condition={"IpAddress": {"aws:SourceIp": "10.0.0.0/8"}})), doc(allow(PARTNER))),
    "a condition value added": (doc(allow("*", Condition={"StringEquals": {"aws:PrincipalOrgID": TRUSTED_ORG}})),
                                doc(allow("*", Condition={"StringEquals": {"aws:PrincipalOrgID": [TRUSTED_ORG, "o-zzzzzzzzzz"]}}))),
    "a negated condition narrowed": (doc(allow("*", Condition={"StringNotEquals": {"aws:SourceVpce": ["vpce-1", "vpce-2"]}})),
                                     doc(allow("*", Condition={"StringNotEquals": {"aws:SourceVpce": ["vpce-1"]}}))),
    "NotAction shrunk": (doc({**allow(PARTNER), "NotAction": ["execute-api:ManageConnections"], "Action": None}),
                         doc({**allow(PARTNER), "NotAction": [], "Action": None})),
    "NotPrincipal changed": (doc({"Effect": "Allow", "NotPrincipal": {"AWS": [STRANGER]}, "Action": INVOKE, "Resource": ANY}),
                             doc({"Effect": "Allow", "NotPrincipal": {"AWS": [PARTNER]}, "Action": INVOKE, "Resource": ANY})),
    "the version changed under a variable": (doc(allow(PARTNER, Resource="execute-api:/${aws:username}/*")),
                                             {**doc(allow(PARTNER, Resource="execute-api:/${aws:username}/*")), "Version": "2008-10-17"}),
    "an unknown element": (doc(allow(PARTNER)), doc(allow(PARTNER, Extra="x"))),
    "an unknown element beside the owner": (FIXED, doc(allow(OWNER, Extra="x"))),
    "an unknown effect": (FIXED, doc({**allow(PARTNER), "Effect": "allow"})),
}


@pytest.mark.parametrize("name", sorted(WIDER))
def test_what_is_wider_is_never_proven_not_wider(name: str) -> None:
    live, new = WIDER[name]
    live, new = _clean(live), _clean(new)
    assert widenings(live, new, OWNER), name
    with pytest.raises(WriteRefused, match="grant more"):
        check(json.dumps(live) if live else None, json.dumps(new) if new else None, OWNER, Narrowing())


NOT_WIDER = {
    "a principal removed": (UNTRUSTED, FIXED),
    "a statement removed": (doc(allow(OWNER), allow(STRANGER)), FIXED),
    "the owner keeps access where all went": (doc(allow(STRANGER)), doc(allow(f"arn:aws:iam::{OWNER}:root"))),
    "a condition added": (doc(allow(PARTNER)), doc(allow(PARTNER, Condition={"Bool": {"aws:SecureTransport": "true"}}))),
    "a Deny added": (FIXED, PRIVATE),
    "fewer resources": (doc(allow(PARTNER, Resource=["execute-api:/a/*", "execute-api:/b/*"])), doc(allow(PARTNER, Resource="execute-api:/a/*"))),
    "the policy removed with no Deny": (UNTRUSTED, None),
    "condition keys in another case": (doc(allow("*", Condition={"StringEquals": {"aws:PrincipalOrgID": TRUSTED_ORG}})),
                                       doc(allow("*", Condition={"StringEquals": {"AWS:PRINCIPALORGID": TRUSTED_ORG}}))),
}


@pytest.mark.parametrize("name", sorted(NOT_WIDER))
def test_what_is_narrower_is_allowed(name: str) -> None:
    live, new = NOT_WIDER[name]
    assert widenings(live, new, OWNER) == [], name
    assert check(json.dumps(live), json.dumps(new) if new else None, OWNER, Narrowing()) == []


def _clean(document: dict[str, Any] | None) -> dict[str, Any] | None:
    """Drop the None placeholders the table uses to remove an element."""
    if document is None:
        return None
    return {**document, "Statement": [{k: v for k, v in s.items() if v is not None} for s in document["Statement"]]}


# --- the authorities ----------------------------------------------------------------------------------

def test_an_undo_restores_only_its_own_pre_image_over_its_own_write() -> None:
    before, after = json.dumps(UNTRUSTED), json.dumps(FIXED)
    own = UndoOf("a" * 32, policy_digest(after), policy_digest(before))
    assert check(after, before, OWNER, own)  # wider, and allowed: the transaction's own undo
    with pytest.raises(WriteRefused, match="not the one change"):  # a record saying "before was *"
        check(after, json.dumps(STAR), OWNER, own)
    with pytest.raises(WriteRefused, match="live policy is not the one"):  # someone wrote since
        check(json.dumps(doc(allow(PARTNER))), before, OWNER, own)
    assert check(after, after, OWNER, UndoOf("b" * 32, "x", "y")) == []  # not its own, but not wider either


def test_a_rollback_re_grants_trusted_principals_and_untrusted_ones_only_when_confirmed() -> None:
    live = json.dumps(FIXED)
    assert check(live, json.dumps(doc(allow(OWNER, PARTNER))), OWNER, PersonRollback(CONFIG, confirmed=False))
    with pytest.raises(WriteRefused, match=STRANGER):
        check(live, json.dumps(UNTRUSTED), OWNER, PersonRollback(CONFIG, confirmed=False))
    with pytest.raises(WriteRefused, match="untrusted"):
        check(live, json.dumps(STAR), OWNER, PersonRollback(CONFIG, confirmed=False))
    assert check(live, json.dumps(STAR), OWNER, PersonRollback(CONFIG, confirmed=True))


@pytest.mark.parametrize("operations", [
    [], [{"op": "replace", "path": "/name", "value": "x"}], [{"op": "add", "path": "/policy", "value": "{}"}],
    [{"op": "replace", "path": "/policy", "value": "{}"}, {"op": "replace", "path": "/description", "value": "x"}],
    [{"op": "replace", "path": "/policy"}], "replace", [{"op": "remove", "path": "/policy", "value": "x"}],
])
def test_only_a_whole_policy_replace_or_remove_is_a_policy_write(operations: Any) -> None:
    with pytest.raises(WriteRefused):
        new_policy_of(operations)


# --- crafted state on the strict local account -------------------------------------------------------

def remediator_on(account: Any, audit: Path) -> Remediator:
    from remediator.local.strict import local_clock

    adapter = ApiGatewayAdapter(account.clients, DeploymentPacer(sleep=local_clock().sleep))
    journal = JsonLinesJournal(JsonLinesAuditLog(audit))
    from remediator.journal import FileLease

    return Remediator(adapter, SweepSettings(CONFIG), journal, FileLease(journal), OWNER, "test")


def deployments(account: Any, api_id: str) -> set[str]:
    client = account.clients.client("apigateway", REGION)
    return {d["id"] for d in client.get_deployments(restApiId=api_id)["items"]}


def stages(account: Any, api_id: str) -> dict[str, str]:
    client = account.clients.client("apigateway", REGION)
    return {s["stageName"]: s.get("deploymentId") for s in client.get_stages(restApiId=api_id)["item"]}


def live_policy(account: Any, api_id: str) -> dict[str, Any] | None:
    text = ApiGatewayAdapter(account.clients).get_rest_api(REGION, api_id).policy
    return parse_policy(text) if text else None


def crafted(api_id: str, before: dict[str, Any] | None, after: dict[str, Any], planned: dict[str, str | None],
            deployment_id: str | None, action: str = "remediate") -> Intent:
    return Intent(
        intent_id=uuid.uuid4().hex, account=OWNER, region=REGION, api_id=api_id, api_name="crafted", action=action,
        policy_before=json.dumps(before) if before else "", policy_after=json.dumps(after),
        patch_operations=[{"op": "replace", "path": "/policy", "value": json.dumps(after)}],
        stages=[PlannedStage(name, served) for name, served in planned.items()], triggered_by="someone",
        holder="cli:gone:1:deadbeef", expires_at=0.0, deployment_id=deployment_id)


def test_recovery_never_writes_a_crafted_pre_image(account: Any, tmp_path: Path) -> None:
    """A journal line claims the API's compliant policy was written over `Principal: *`: recovery finishes it
    forward (a new deployment of its own) and never writes `*` back, even when the redeploy fails."""
    api_id = seed_rest_api(account.clients, REGION, "victim", json.dumps(FIXED), stages=("prod", "dev"))
    old = stages(account, api_id)
    remediator = remediator_on(account, tmp_path / "audit.jsonl")
    remediator.journal.update(crafted(api_id, STAR, FIXED, old, deployment_id=old["prod"]))
    existing = deployments(account, api_id)
    done = remediator.recover([REGION])
    assert live_policy(account, api_id) == FIXED
    now = stages(account, api_id)
    (new,) = set(now.values())
    assert new not in existing and "applied" in done[0]  # a deployment of its own, not the one the line named


def test_an_undo_from_storage_is_refused_with_a_record(account: Any, tmp_path: Path) -> None:
    api_id = seed_rest_api(account.clients, REGION, "victim", json.dumps(FIXED), stages=("prod",))
    audit = tmp_path / "audit.jsonl"
    remediator = remediator_on(account, audit)
    intent = crafted(api_id, STAR, FIXED, stages(account, api_id), deployment_id=None)
    remediator.journal.update(intent)
    result = remediator.undo(intent, "redeploy failed")
    assert result.startswith("not undone") and live_policy(account, api_id) == FIXED
    refusals = [r for r in JsonLinesAuditLog(audit).records() if r.outcome == "refused"]
    assert len(refusals) == 1 and refusals[0].api_id == api_id
    assert remediator.journal.open_intent(OWNER, REGION, api_id) is not None  # left open: the next run deploys it


def test_a_stage_is_never_pointed_at_a_deployment_this_change_did_not_create(account: Any, tmp_path: Path) -> None:
    """The deployment a record names is checked by GetDeployment: an old deployment (which republishes the
    old policy) is never reused; a new one is created."""
    api_id = seed_rest_api(account.clients, REGION, "victim", json.dumps(UNTRUSTED), stages=("prod", "dev"))
    old = stages(account, api_id)
    remediator = remediator_on(account, tmp_path / "audit.jsonl")
    outcome = remediator.apply(REGION, api_id)
    assert outcome.action == "applied"
    fixed_deployment = stages(account, api_id)["prod"]
    intent = crafted(api_id, UNTRUSTED, FIXED, stages(account, api_id), deployment_id=old["prod"])
    remediator.journal.update(intent)
    existing = deployments(account, api_id)
    remediator.recover([REGION])
    assert all(d == fixed_deployment or d not in existing for d in stages(account, api_id).values())
    assert old["prod"] not in stages(account, api_id).values()


POOL = {"star": STAR, "untrusted": UNTRUSTED, "fixed": FIXED, "private": PRIVATE, "partner": doc(allow(OWNER, PARTNER))}


@given(live=st.sampled_from(sorted(POOL)), before=st.sampled_from([*sorted(POOL), None]), after=st.sampled_from(sorted(POOL)),
       deployment=st.sampled_from(["none", "old", "junk", "current"]), action=st.sampled_from(["remediate", "rollback"]),
       step=st.sampled_from(["recover", "undo", "fix"]))
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_crafted_intents_never_widen_and_never_move_a_stage_back(account: Any, tmp_path_factory: Any, live: str, before: str | None,
                                                                 after: str, deployment: str, action: str, step: str) -> None:
    api_id = seed_rest_api(account.clients, REGION, "victim", json.dumps(POOL[live]), stages=("prod", "dev"))
    served = stages(account, api_id)
    recorded = {"none": None, "old": served["prod"], "junk": "zz9zz9", "current": served["dev"]}[deployment]
    remediator = remediator_on(account, tmp_path_factory.mktemp("crafted") / "audit.jsonl")
    intent = crafted(api_id, POOL[before] if before else None, POOL[after], served, recorded, action)
    remediator.journal.update(intent)
    live_before, existing = live_policy(account, api_id), deployments(account, api_id)
    if step == "recover":
        remediator.recover([REGION])
    elif step == "undo":
        remediator.undo(intent, "crafted")
    else:
        remediator.apply(REGION, api_id)
    assert widenings(live_before, live_policy(account, api_id), OWNER) == []
    for name, now in stages(account, api_id).items():
        assert now == served[name] or now not in existing, f"stage {name} moved to an older deployment"


def test_a_persons_write_between_the_plan_and_the_write_is_never_overwritten(make_flow) -> None:
    """A person narrows the policy (the partner only from one network) after Apply planned the fix and before
    it writes: the guard's re-read sees another policy than the plan's, so nothing is written and the plan is
    made again from theirs (which is compliant): their change stands."""
    from remediator.functions import common
    from tests.test_workflow import run, seed

    flow = make_flow(mode="auto")
    api_id = seed(flow, doc(allow(OWNER, PARTNER, STRANGER)))
    flow.discard_pending()
    person = doc(allow(PARTNER, Condition={"IpAddress": {"aws:SourceIp": "10.0.0.0/8"}}))
    reads: list[int] = []

    def race(**_: Any) -> None:
        reads.append(1)
        if len(reads) == 4:  # the trigger's read (it decides before starting), Evaluate's, Apply's plan, then the guard's re-read
            flow.clients.client("apigateway", REGION).update_rest_api(
                restApiId=api_id, patchOperations=[{"op": "replace", "path": "/policy", "value": json.dumps(person)}])

    common.clients().client("apigateway", REGION).meta.events.register("before-send.apigateway.GetRestApi", race)
    _, result = run(flow, api_id)
    assert result.status == "SUCCEEDED" and len(reads) >= 5
    assert result.output["evaluation"]["verdict"] == "compliant", "planned again from the person's policy"
    assert live_policy(flow.account, api_id) == person, "the person's policy stands"
    assert flow.audit_records() == [] and flow.account.server.aws_requests()[("apigateway", "UpdateRestApi")] == 1


def test_in_the_workflow_a_refused_undo_is_a_record_and_a_notice(make_flow) -> None:
    """The redeploy fails, and someone with write access to the table rewrites the open intent's pre-image to
    `Principal: *` before RestorePolicy runs. The undo authority is the execution's own (what Apply read and
    wrote, by digest), so the crafted pre-image is refused: nothing is written, a refusal record is kept, and
    the failure notice says why; the fix stays written and its change open for the next run."""
    from remediator.adapters.dynamodb import DynamoJournal
    from remediator.local import runner
    from tests.faults.injection import Fault
    from remediator.functions import common
    from tests.test_workflow import run, seed

    flow = make_flow(mode="auto")
    api_id = seed(flow, doc(allow(OWNER, STRANGER)))
    flow.discard_pending()
    Fault("apigateway", "CreateDeployment", "before", "refuse", times=99).install_on(common.clients(), REGION)
    route = runner._routes[runner.FUNCTION_PREFIX + "restore"]
    real = route.handler

    def tamper_then_restore(event: dict, context: object) -> Any:
        table = flow.clients.client("dynamodb", REGION)
        journal = DynamoJournal(flow.clients, flow.audit.table_name, REGION)
        (intent,) = journal.open_intents()
        intent.policy_before = json.dumps(STAR)
        table.put_item(TableName=flow.audit.table_name, Item=journal._item(intent))
        return real(event, context)

    route.handler = tamper_then_restore
    try:
        _, result = run(flow, api_id)
    finally:
        route.handler = real
    assert result.status == "FAILED"
    assert live_policy(flow.account, api_id) == FIXED, "the crafted pre-image was never written"
    (record,) = flow.audit_records()
    assert record.outcome == "refused" and record.api_id == api_id and json.loads(record.policy_after) == STAR
    (notice,) = [n for n in flow.notifications() if n["kind"] == "failure"]
    assert "refused" in json.dumps(notice)


def test_one_function_writes_policies_and_one_moves_stages() -> None:
    """Every policy write goes through remediator.guard.guarded_write and every stage move through
    Remediator._point_forward (remediator.transaction.deploying): no other module calls the adapter's writers."""
    import ast

    package = Path(__file__).resolve().parents[1] / "remediator"
    callers: dict[str, set[str]] = {"update_policy": set(), "point_stage": set()}
    for path in package.rglob("*.py"):
        if "local" in path.parts:
            continue  # the emulator's own seeding, never the product's writes
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for function in [n for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))]:
            for call in [n for n in ast.walk(function) if isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute)]:
                if call.func.attr in callers:
                    callers[call.func.attr].add(f"{path.relative_to(package)}:{function.name}")
    assert callers == {"update_policy": {"guard.py:guarded_write"}, "point_stage": {"transaction/deploying.py:_point_forward"}}
    from remediator.transaction.deploying import Deploying

    assert Remediator._point_forward is Deploying._point_forward  # the facade moves stages only through the deploying step


def _flagged(document: dict[str, Any] | None) -> set[str]:
    return {f.principal for f in evaluate_policy(document, CONFIG).findings} if document else set()


@given(live=st.sampled_from(sorted(POOL)), before=st.sampled_from(sorted(POOL)), after=st.sampled_from(sorted(POOL)),
       trust=st.sampled_from(["named", "none", "other-owner"]), operations=st.sampled_from(["consistent", "junk"]))
@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_a_crafted_audit_record_never_makes_a_rollback_grant_anything_untrusted(
        account: Any, tmp_path_factory: Any, live: str, before: str, after: str, trust: str, operations: str) -> None:
    """Rollback without --force, of any record (consistent or not, of this account or not): whatever it
    writes grants no principal the current trust settings flag that the live policy did not already grant."""
    from remediator.audit import AuditRecord
    from remediator.transaction.rollback import RollbackRefused

    api_id = seed_rest_api(account.clients, REGION, "victim", json.dumps(POOL[live]), stages=("prod",))
    after_text = json.dumps(POOL[after])
    record = AuditRecord(
        account=OWNER, region=REGION, api_id=api_id, api_name="victim", action="remediate",
        policy_before=json.dumps(POOL[before]), policy_after=after_text,
        patch_operations=[{"op": "replace", "path": "/policy", "value": after_text if operations == "consistent" else "{}"}],
        stages_redeployed=["prod"], deployment_id=None, triggered_by="someone", change_id=uuid.uuid4().hex,
        trust={"named": CONFIG.to_dict(), "none": None, "other-owner": {**CONFIG.to_dict(), "owner_account": PARTNER}}[trust])
    remediator = remediator_on(account, tmp_path_factory.mktemp("rollback") / "audit.jsonl")
    live_before = live_policy(account, api_id)
    try:
        remediator.rollback(record, apply=True, force=False)
    except RollbackRefused:
        pass
    assert _flagged(live_policy(account, api_id)) <= _flagged(live_before)


def test_an_undone_change_whose_close_failed_keeps_its_restored_record(account: Any, tmp_path: Path,
                                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """The redeploy fails before any deployment, the undo puts the policy back, and closing the change fails once
    (a full disk): the next run finds the policy as it was before, and records the change as restored, not as
    'never written'."""
    from remediator.adapters.clients import ClientFactory
    from remediator.journal import JsonLinesJournal as Journal
    from tests.faults.injection import Fault

    api_id = seed_rest_api(account.clients, REGION, "victim", json.dumps(UNTRUSTED), stages=("prod",))
    audit = tmp_path / "audit.jsonl"
    faulty = ClientFactory(endpoint_url=account.clients.endpoint_url, session=account.clients.session)
    Fault("apigateway", "CreateDeployment", "before", "refuse", times=99).install_on(faulty, REGION)
    remediator = remediator_on(account, audit)
    remediator.adapter = ApiGatewayAdapter(faulty, DeploymentPacer(sleep=lambda _: None))
    remediator.RETRIES = 0
    real_close = Journal.close

    def close_fails_once(self: Journal, intent: Intent, record: Any) -> None:
        if intent.state == "restored" and not getattr(close_fails_once, "failed", False):
            close_fails_once.failed = True  # type: ignore[attr-defined]
            raise OSError(28, "No space left on device")
        real_close(self, intent, record)

    monkeypatch.setattr(Journal, "close", close_fails_once)
    with pytest.raises(OSError):
        remediator.apply(REGION, api_id)
    assert live_policy(account, api_id) == UNTRUSTED, "undone"
    (done,) = remediator_on(account, audit).recover([REGION])
    assert "restored" in done
    (record,) = JsonLinesAuditLog(audit).records()
    assert record.outcome == "restored" and record.api_id == api_id


def test_a_persons_write_the_bots_write_landed_on_is_recorded_and_told(make_flow) -> None:
    """A person's UpdateRestApi lands in the instant between the guard's re-read and the bot's write (API Gateway
    has no conditional update): the bot's fix replaces it. When CloudTrail delivers the person's call, its
    execution finds the policy is not theirs and the bot's change closed after they wrote: a record of its own
    and a notice naming who, when, and the policy they wrote."""
    from tests.test_workflow import run, seed

    flow = make_flow(mode="auto")
    api_id = seed(flow, doc(allow(OWNER, STRANGER)))
    flow.discard_pending()
    person = doc(allow(OWNER, PARTNER, STRANGER))
    wrote = person_writes_in_the_bots_window(flow, api_id, person)
    _, first = run(flow, api_id)
    assert first.status == "SUCCEEDED" and wrote and live_policy(flow.account, api_id) == FIXED, "the fix replaced theirs"
    answers = flow.pump()
    assert [a["status"] for a in answers] == ["started"], "the person's call, delivered by CloudTrail"
    records = flow.audit_records()
    (lost,) = [r for r in records if r.outcome == "lost-update"]
    assert parse_policy(lost.policy_before) == person and "user/local-admin" in lost.triggered_by
    (notice,) = [n for n in flow.notifications() if n.get("lost_update")]
    assert notice["lost_update"]["who"].endswith("user/local-admin") and parse_policy(notice["lost_update"]["policy"]) == person
    assert notice["lost_update"]["written_over_by"] == next(r.change_id for r in records if r.outcome == "applied")
    flow.pump()
    assert len([r for r in flow.audit_records() if r.outcome == "lost-update"]) == 1, "recorded once"


def test_a_persons_write_before_the_bot_read_is_not_a_lost_update(make_flow) -> None:
    """The person wrote first and the bot planned from their policy: nothing of theirs was lost, nobody is told."""
    from tests.test_workflow import seed

    flow = make_flow(mode="auto")
    api_id = seed(flow, doc(allow(OWNER)))
    flow.discard_pending()
    person = doc(allow(OWNER, PARTNER, STRANGER))
    flow.clients.client("apigateway", REGION).update_rest_api(
        restApiId=api_id, patchOperations=[{"op": "replace", "path": "/policy", "value": json.dumps(person)}])
    assert [a["status"] for a in flow.pump()] == ["started"]
    assert live_policy(flow.account, api_id) == doc(allow(OWNER, PARTNER))
    assert [r.outcome for r in flow.audit_records()] == ["applied"]
    assert not [n for n in flow.notifications() if n.get("lost_update")]


def person_writes_in_the_bots_window(flow: Any, api_id: str, person: dict[str, Any]) -> list[int]:
    """A person's UpdateRestApi of `person`, once, in the instant between the guard's re-read and the bot's write (on
    the functions' clients, just before the bot's UpdateRestApi is sent). The list is not empty once it happened."""
    from remediator.functions import common

    wrote: list[int] = []

    def race(**_: Any) -> None:
        if not wrote:
            wrote.append(1)
            flow.clients.client("apigateway", REGION).update_rest_api(
                restApiId=api_id, patchOperations=[{"op": "replace", "path": "/policy", "value": json.dumps(person)}])

    common.clients().client("apigateway", REGION).meta.events.register("before-send.apigateway.UpdateRestApi", race)
    return wrote
