"""`scan`, `fix` and `rollback` across an organization (`--accounts`, `--role-name`, `--max-accounts`), in-process
on moto: an organization whose management account is moto's default account, member accounts made with
CreateAccount, and AssumeRole into a member giving credentials whose calls go to that member's backends.

moto's AssumeRole does not check that the role exists; `trusting_roles` does, as IAM would (AccessDenied).
"""

from __future__ import annotations

import io
import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from remediator.adapters.apigateway import ApiGatewayAdapter
from remediator.adapters.clients import ClientFactory
from remediator.adapters.sts import assume_role, role_arn
from remediator.audit import JsonLinesAuditLog
from remediator.cli import main
from remediator.core import parse_policy
from remediator.local.emulator import LOCAL_CREDENTIALS, enable_listing_pages, seed_rest_api
from tests.conftest import PARTNER, STRANGER

SPOKE = "apigw-remediator-spoke"
REGIONS = ("us-east-1", "eu-west-1")


def allow(*principals: str) -> dict[str, Any]:
    return {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": {"AWS": list(principals)}, "Action": "execute-api:Invoke", "Resource": "execute-api:/*"}]}


@dataclass
class Organization:
    """The management account (the caller) and its members; per account, the APIs seeded: api_id -> region."""

    clients: ClientFactory
    management: str
    members: list[str]
    apis: dict[str, dict[str, str]] = field(default_factory=dict)
    assumed: list[str] = field(default_factory=list)  # every role ARN the CLI assumed
    read_only: list[bool] = field(default_factory=list)  # whether each of those sessions was read-only
    _member_clients: dict[str, ClientFactory] = field(default_factory=dict)

    @property
    def accounts(self) -> list[str]:
        return [self.management, *self.members]

    def member_clients(self, account: str) -> ClientFactory:
        if account not in self._member_clients:
            self._member_clients[account] = assume_role(
                self.clients, role_arn("aws", account, "OrganizationAccountAccessRole"), "test-setup")
        return self._member_clients[account]

    def seed(self, account: str, region: str, name: str, policy: dict[str, Any]) -> str:
        api_id = seed_rest_api(self.member_clients(account), region, name, json.dumps(policy))
        self.apis.setdefault(account, {})[api_id] = region
        return api_id

    def policy(self, account: str, api_id: str) -> dict[str, Any]:
        region = self.apis[account][api_id]
        return parse_policy(ApiGatewayAdapter(self.member_clients(account)).get_rest_api(region, api_id).policy)


def _organization(monkeypatch: pytest.MonkeyPatch, size: int) -> Iterator[Organization]:
    """The management account and `size` members, each with the spoke role but the last. The first two
    members and the management account hold an API granting a stranger (in different regions), the third a
    compliant one, the others none. No MOTO_ACCOUNT_ID: moto routes each call by its credentials' account."""
    from moto import mock_aws
    from moto.core import DEFAULT_ACCOUNT_ID
    from moto.iam.models import iam_backends

    import remediator.cli.aws
    from remediator.local.deployments import install_in_process

    for key, value in {**LOCAL_CREDENTIALS, "AWS_DEFAULT_REGION": "us-east-1"}.items():
        monkeypatch.setenv(key, value)
    for key in ("MOTO_ACCOUNT_ID", "MOTO_PORT", "AWS_PROFILE", "AWS_REGION"):
        monkeypatch.delenv(key, raising=False)
    enable_listing_pages()
    install_in_process()  # what each deployment publishes (GetDeployment embed=apisummary): fix --apply reads it
    with mock_aws():
        clients = ClientFactory()
        organizations = clients.client("organizations", "us-east-1")
        members: list[str] = []
        if size:
            organizations.create_organization(FeatureSet="ALL")
            members = [organizations.create_account(AccountName=f"member-{i}", Email=f"member-{i}@example.com")
                       ["CreateAccountStatus"]["AccountId"] for i in range(size)]
        org = Organization(clients, DEFAULT_ACCOUNT_ID, members)
        real = remediator.cli.aws.assume_role

        def trusting_roles(clients: ClientFactory, arn: str, session_name: str, region: str | None = None,
                           read_only: bool = False) -> ClientFactory:
            """sts:AssumeRole as IAM answers it: AccessDenied unless the role exists in its account."""
            org.assumed.append(arn)
            org.read_only.append(read_only)
            account, name = arn.split(":")[4], arn.split("/")[-1]
            if name not in {role.name for role in list(iam_backends[account]["aws"].roles.values())}:
                raise ClientError({"Error": {"Code": "AccessDenied", "Message": f"User is not authorized to perform: "
                                             f"sts:AssumeRole on resource: {arn}"}}, "AssumeRole")
            return real(clients, arn, session_name, region, read_only=read_only)

        monkeypatch.setattr(remediator.cli.aws, "assume_role", trusting_roles)
        for account in org.accounts[:-1] if members else org.accounts:
            org.member_clients(account).client("iam").create_role(RoleName=SPOKE, AssumeRolePolicyDocument=json.dumps(
                {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"AWS": DEFAULT_ACCOUNT_ID},
                                                        "Action": "sts:AssumeRole"}]}))
        # Each account's own account is always trusted: an API granting it is compliant only if the owner is that account.
        org.seed(org.management, "us-east-1", "hub-open", allow(org.management, STRANGER))
        if members:
            org.seed(members[0], "us-east-1", "m0-open", allow(members[0], STRANGER))
            org.seed(members[1], "eu-west-1", "m1-open", allow(members[1], f"arn:aws:iam::{STRANGER}:root", PARTNER))
            org.seed(members[2], "us-east-1", "m2-closed", allow(members[2]))
        yield org


@pytest.fixture(autouse=True)
def virtual_time(monkeypatch: pytest.MonkeyPatch) -> None:
    """The account's deployment turns (5 s apart) are waited on a clock that jumps instead of sleeping."""
    import remediator.clock

    ahead = [0.0]
    monkeypatch.setattr(remediator.clock, "_now", lambda: time.time() + ahead[0])
    monkeypatch.setattr(remediator.clock, "_sleep", lambda seconds: ahead.__setitem__(0, ahead[0] + seconds))


@pytest.fixture
def organization(monkeypatch: pytest.MonkeyPatch) -> Iterator[Organization]:
    yield from _organization(monkeypatch, 5)


@pytest.fixture
def lone_account(monkeypatch: pytest.MonkeyPatch) -> Iterator[Organization]:
    """The same caller, in no organization: ListAccounts answers AWSOrganizationsNotInUseException, as
    Organizations does (moto answers an empty list)."""
    from moto.organizations.exceptions import AWSOrganizationsNotInUseException
    from moto.organizations.models import OrganizationsBackend

    def list_accounts(self: OrganizationsBackend, **page: Any) -> list[Any]:
        raise AWSOrganizationsNotInUseException()

    monkeypatch.setattr(OrganizationsBackend, "list_accounts", list_accounts)
    yield from _organization(monkeypatch, 0)


def run(*argv: str) -> tuple[int, list[str], list[str]]:
    out, err = io.StringIO(), io.StringIO()
    status = main(list(argv), out, err)
    return status, out.getvalue().splitlines(), err.getvalue().splitlines()


def records(lines: list[str]) -> list[dict[str, Any]]:
    return [json.loads(line) for line in lines]


def untrusted(record: dict[str, Any]) -> set[str]:
    return {f["account"] for f in record["findings"] if f["kind"] == "untrusted-account"}


def sweep(*extra: str) -> list[str]:
    return ["--regions", ",".join(REGIONS), "--format", "json", *extra]


def test_scan_all_accounts_reports_each_accounts_findings_under_its_own_account(organization: Organization) -> None:
    org = organization
    *members, roleless = org.members
    status, out, err = run("scan", *sweep("--accounts", "all", "--trusted-accounts", PARTNER))
    assert status == 2, "one account's role cannot be assumed"
    assert err == [f"error: account {roleless}: cannot assume arn:aws:iam::{roleless}:role/{SPOKE} (AccessDenied: User is "
                   f"not authorized to perform: sts:AssumeRole on resource: arn:aws:iam::{roleless}:role/{SPOKE}); "
                   "nothing done in this account"]
    found = records(out)
    assert all(list(r)[0] == "account" for r in found)
    assert {(r["account"], r["api_id"]) for r in found} == {(a, api) for a, apis in org.apis.items() for api in apis}
    by_account = {r["account"]: r for r in found}
    assert untrusted(by_account[org.management]) == {STRANGER}
    assert untrusted(by_account[members[0]]) == {STRANGER}
    assert untrusted(by_account[members[1]]) == {STRANGER}, "PARTNER is trusted, the account itself is the owner"
    assert by_account[members[2]]["compliant"] is True, "the member's own account is its owner, hence trusted"
    assert sorted(org.assumed) == sorted(role_arn("aws", a, SPOKE) for a in org.accounts), \
        "every active account through the spoke role, the caller's own too"
    assert org.read_only and all(org.read_only), "a scan's sessions cannot write"


def test_scan_named_accounts_only_those_once_each_and_text_lines_name_the_account(organization: Organization) -> None:
    org = organization
    first, second = org.members[0], org.members[1]
    status, out, err = run("scan", *sweep("--accounts", f"{second},{first},{second}"))
    assert (status, err) == (1, [])
    assert sorted(r["account"] for r in records(out)) == sorted([first, second])
    assert sorted(org.assumed) == sorted(role_arn("aws", a, SPOKE) for a in (first, second))
    status, out, err = run("scan", "--regions", ",".join(REGIONS), "--accounts", f"{first},{second}")
    assert (status, err) == (1, []) and len(out) == 2
    for account in (first, second):
        (line,) = [line for line in out if line.startswith(f"{account} ")]
        (api_id,) = org.apis[account]
        assert f"{account} {org.apis[account][api_id]} {api_id} (" in line and STRANGER in line


def test_fix_apply_across_accounts_records_each_account_and_rollback_restores_it(organization: Organization,
                                                                                  tmp_path: Path) -> None:
    org = organization
    first, second, closed = org.members[:3]
    audit = tmp_path / "audit.jsonl"
    named = f"{first},{second},{closed}"
    status, out, err = run("fix", *sweep("--accounts", named, "--trusted-accounts", PARTNER, "--apply", "--audit-log", str(audit)))
    assert (status, err) == (0, [])
    assert org.read_only and not any(org.read_only), "fix --apply writes, with the spoke role's own permissions"
    outcomes = {r["account"]: r for r in records(out)}
    assert {a: o["action"] for a, o in outcomes.items()} == {first: "applied", second: "applied", closed: "unchanged"}
    for account in (first, second):
        (api_id,) = org.apis[account]
        assert STRANGER not in json.dumps(org.policy(account, api_id)) and account in json.dumps(org.policy(account, api_id))
    written = list(JsonLinesAuditLog(audit).records())
    assert sorted((r.account, r.api_id) for r in written) == sorted((a, next(iter(org.apis[a]))) for a in (first, second))
    assert all(f"as arn:aws:sts::{r.account}:assumed-role/{SPOKE}/" in r.triggered_by for r in written)
    assert {p.name for p in tmp_path.glob("audit.jsonl.next-deployment.*")} == {
        f"audit.jsonl.next-deployment.{a}" for a in (first, second)}, "each account paces its own deployments"
    (hub_api,) = org.apis[org.management]
    assert STRANGER in json.dumps(org.policy(org.management, hub_api)), "an account not named is untouched"

    # A second run finds nothing left to fix.
    status, out, _ = run("fix", *sweep("--accounts", named, "--trusted-accounts", PARTNER, "--apply", "--audit-log", str(audit)))
    assert status == 0 and {r["action"] for r in records(out)} == {"unchanged"}

    (first_api,) = org.apis[first]
    # Named accounts: the one holding no record of the API is one line, the other is restored.
    status, out, err = run("rollback", "--audit-log", str(audit), "--api-id", first_api, "--accounts", f"{second},{first}",
                           "--apply", "--force", "--format", "json")
    assert status == 2 and len(err) == 1 and err[0].startswith(f"error: account {second}: ") and first_api in err[0]
    (restored,) = records(out)
    assert (restored["account"], restored["api_id"], restored["action"]) == (first, first_api, "rolled-back")
    assert org.policy(first, first_api) == allow(first, STRANGER)
    # `all`: whichever account holds the API.
    (second_api,) = org.apis[second]
    status, out, err = run("rollback", "--audit-log", str(audit), "--api-id", second_api, "--accounts", "all",
                           "--apply", "--force", "--format", "json")
    assert (status, err) == (0, []) and [(r["account"], r["action"]) for r in records(out)] == [(second, "rolled-back")]
    assert STRANGER in json.dumps(org.policy(second, second_api))
    assert sorted((r.account, r.action) for r in JsonLinesAuditLog(audit).records()) == sorted(
        [(first, "remediate"), (second, "remediate"), (first, "rollback"), (second, "rollback")])
    status, _, err = run("rollback", "--audit-log", str(audit), "--api-id", "zzzzzzzzzz", "--accounts", "all")
    assert status == 2 and len(err) == 1 and "no remediation of zzzzzzzzzz" in err[0]


def test_a_missing_role_is_one_line_and_the_other_accounts_still_run(organization: Organization, tmp_path: Path) -> None:
    org = organization
    first, roleless = org.members[0], org.members[-1]
    audit = tmp_path / "audit.jsonl"
    status, out, err = run("fix", *sweep("--accounts", f"{roleless},{first}", "--apply", "--audit-log", str(audit)))
    assert status == 2
    assert len(err) == 1 and err[0].startswith(f"error: account {roleless}: cannot assume ") and "AccessDenied" in err[0]
    assert [(r["account"], r["action"]) for r in records(out)] == [(first, "applied")]
    status, out, err = run("scan", *sweep("--accounts", first, "--role-name", "no-such-role"))
    assert status == 2 and out == [] and len(err) == 1 and "role/no-such-role" in err[0]


def test_at_most_max_accounts_run_at_once(organization: Organization, monkeypatch: pytest.MonkeyPatch) -> None:
    import remediator.cli.scan

    org = organization
    real = remediator.cli.scan._scan_in
    lock = threading.Lock()
    running: list[str] = []
    most = [0]

    def counted(args: Any, target: Any, output: Any) -> int:
        with lock:
            running.append(target.account)
            most[0] = max(most[0], len(running))
        time.sleep(0.05)  # long enough for the others to start, were the pool not bounded
        try:
            return int(real(args, target, output))
        finally:
            with lock:
                running.remove(target.account)

    monkeypatch.setattr(remediator.cli.scan, "_scan_in", counted)
    accounts = org.accounts[:-1]  # the five with the spoke role
    status, out, err = run("scan", *sweep("--accounts", ",".join(accounts), "--max-accounts", "2"))
    assert (status, err) == (1, [])
    assert most[0] == 2, "bounded by --max-accounts, and accounts do run at once"
    assert sorted({r["account"] for r in records(out)}) == sorted(a for a in accounts if a in org.apis)
    most[0] = 0
    assert run("scan", *sweep("--accounts", ",".join(accounts), "--max-accounts", "1"))[0] == 1
    assert most[0] == 1


@pytest.mark.parametrize("command", [["scan"], ["fix"], ["rollback", "--audit-log", "a.jsonl", "--api-id", "a1b2c3d4e5"]])
@pytest.mark.parametrize(("argv", "message"), [
    (["--accounts", "12"], "'12' is not a 12-digit account ID"),
    (["--accounts", "all,123456789012"], "'all' cannot be combined with account IDs"),
    (["--accounts", ","], "names no account"),
    (["--accounts", "123456789012", "--role-name", "bad role"], "'bad role' is not an IAM role name"),
    (["--accounts", "123456789012", "--role-name", "r" * 65], "is not an IAM role name"),
    (["--accounts", "123456789012", "--max-accounts", "0"], "'0' is not a number of accounts from 1 to 64"),
    (["--accounts", "123456789012", "--max-accounts", "65"], "from 1 to 64"),
    (["--accounts", "123456789012", "--max-accounts", "two"], "'two' is not a number of accounts"),
])
def test_bad_values_are_one_usage_line_and_exit_2(command: list[str], argv: list[str], message: str) -> None:
    status, out, err = run(*command, *argv)
    assert (status, out, len(err)) == (2, [], 1) and message in err[0]


def test_owner_account_with_accounts_is_refused(organization: Organization) -> None:
    status, out, err = run("scan", *sweep("--accounts", "all", "--owner-account", organization.management))
    assert (status, out, len(err)) == (2, [], 1) and "--owner-account cannot be combined with --accounts" in err[0]
    assert organization.assumed == []


def test_without_accounts_nothing_is_assumed_and_the_output_is_as_before(organization: Organization) -> None:
    from moto.sts.models import sts_backends

    org = organization
    status, out, err = run("scan", *sweep())
    assert (status, err) == (1, [])
    (found,) = records(out)
    assert "account" not in found and found["api_id"] in org.apis[org.management]
    assert org.assumed == []
    assert not [r for backends in sts_backends.values() for backend in backends.values() for r in backend.assumed_roles
                if r.role_arn.endswith(f"/{SPOKE}")], "no sts:AssumeRole of the spoke role at all"


def test_accounts_all_outside_an_organization_is_one_line_and_nothing_done(lone_account: Organization) -> None:
    org = lone_account
    status, out, err = run("scan", *sweep("--accounts", "all"))
    assert (status, out, len(err)) == (2, [], 1)
    assert err[0].startswith("error: --accounts all: the organization's accounts cannot be listed") and "NotInUse" in err[0]
    assert org.assumed == []


@pytest.mark.parametrize("option", [["--role-name", SPOKE], ["--max-accounts", "4"]])
def test_organization_options_without_accounts_are_a_usage_error(option: list[str]) -> None:
    status, out, err = run("scan", "--regions", "us-east-1", *option)
    assert (status, out, len(err)) == (2, [], 1) and f"{option[0]} only apply with --accounts" in err[0]
