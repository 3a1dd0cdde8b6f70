"""A local AWS Organization on the strict account: a management account, the hub (the emulator's own account,
where the stack runs) and member accounts, each with the spoke the StackSet would deploy there.

The emulator keeps an organization in its management account and honours assumed-role credentials per
account; the strict layer (remediator.local.strict) adds what AWS enforces across accounts: a role's trust
policy on sts:AssumeRole (aws:PrincipalOrgID included), an event bus's resource policy on events sent from
another account (with `account` set to the sender, as EventBridge sets it), and Organizations answering
only its management account and delegated administrators. Each member account's spoke (its forwarding
rule and its remediation role) comes from the spoke template the real CDK stack synthesizes.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any


from remediator.adapters.clients import ClientFactory, new_session
from remediator.adapters.sts import assume_role
from remediator.local.iam import PolicySet
from remediator.local.strict import Principal, StrictLayer
from remediator.local.template import Resolver, of_type

MANAGEMENT_ACCOUNT = "900000000001"
OUTSIDER_ACCOUNT = "555566667777"  # an account of no organization, with a copy of the spoke
ACCESS_ROLE = "OrganizationAccountAccessRole"  # the role Organizations creates in each account it creates
STACKSETS_PRINCIPAL = "member.org.stacksets.cloudformation.amazonaws.com"


@dataclass
class Member:
    """One account with a spoke: its harness clients, its forwarding rule's queue and principal."""

    account_id: str
    name: str
    clients: ClientFactory  # the harness in this account (the test looking on, not IAM-checked)
    role_arn: str = ""  # the spoke remediation role
    queue_url: str = ""  # where its forwarding rule delivers locally, for `forward`
    forwarder: Principal | None = None
    forwarder_clients: ClientFactory | None = None


class LocalOrganization:
    """The organization around a hub workflow (remediator.local.runner.LocalWorkflow in organization mode)."""

    def __init__(self, workflow: Any, members: int = 3, region: str = "us-east-1") -> None:
        self.workflow = workflow
        self.region = region
        self.strict: StrictLayer = workflow.strict
        self.hub = workflow.account.account_id
        self.harness = workflow.clients
        self.management_account = MANAGEMENT_ACCOUNT
        self.management = self._harness_in(MANAGEMENT_ACCOUNT)
        orgs = self.management.client("organizations", "us-east-1")
        self.organization_id = orgs.create_organization(FeatureSet="ALL")["Organization"]["Id"]
        workflow.organization_id = self.organization_id  # the templates' placeholder ID stands for this one from now on
        self.root_id = orgs.list_roots()["Roots"][0]["Id"]
        self.workloads_ou = orgs.create_organizational_unit(ParentId=self.root_id, Name="workloads")["OrganizationalUnit"]["Id"]
        self.sandbox_ou = orgs.create_organizational_unit(ParentId=self.root_id, Name="sandbox")["OrganizationalUnit"]["Id"]
        self._join_hub()
        from moto.organizations.models import FakeDelegatedAdministrator

        if STACKSETS_PRINCIPAL not in FakeDelegatedAdministrator.SUPPORTED_SERVICES:  # StackSets: the emulator's list lacks it
            FakeDelegatedAdministrator.SUPPORTED_SERVICES.append(STACKSETS_PRINCIPAL)
        orgs.register_delegated_administrator(AccountId=self.hub, ServicePrincipal=STACKSETS_PRINCIPAL)
        self.members: dict[str, Member] = {}
        # The hub is in the root, which the StackSet targets: it has a spoke too (its own APIs are protected).
        self.hub_spoke = self._spoke(Member(self.hub, "security-tooling", self.harness))
        for index in range(members):
            self.add_account(f"member-{index + 1}")
        self.outsider = self._spoke(Member(OUTSIDER_ACCOUNT, "outsider", self._harness_in(OUTSIDER_ACCOUNT)))

    # -- accounts --

    def add_account(self, name: str, unit: str | None = None) -> Member:
        """An account created in the organization (under `unit`, the workloads OU by default), with its spoke, as
        the StackSet's automatic deployment gives every new account of its target OUs."""
        orgs = self.management.client("organizations", "us-east-1")
        status = orgs.create_account(AccountName=name, Email=f"{name}@example.com")["CreateAccountStatus"]
        account_id = status["AccountId"]
        orgs.move_account(AccountId=account_id, SourceParentId=self.root_id, DestinationParentId=unit or self.workloads_ou)
        member = self._spoke(Member(account_id, name, self._harness_in(account_id)))
        self.members[account_id] = member
        return member

    def remove_account(self, account_id: str) -> None:
        """The account leaves the organization (RemoveAccountFromOrganization); its spoke stays, as a StackSet
        with retained stacks would leave it, which is what makes the roster, not the spoke, the authority."""
        self.management.client("organizations", "us-east-1").remove_account_from_organization(AccountId=account_id)

    def move_account(self, account_id: str, unit: str) -> None:
        orgs = self.management.client("organizations", "us-east-1")
        parent = orgs.list_parents(ChildId=account_id)["Parents"][0]["Id"]
        orgs.move_account(AccountId=account_id, SourceParentId=parent, DestinationParentId=unit)

    def _join_hub(self) -> None:
        """The hub (the emulator's own account, where the stack runs) is a member: invited and accepted. The
        emulator only creates accounts with new IDs, so the hub is added to its organization directly."""
        from moto.organizations.models import FakeAccount, organizations_backends

        backend = organizations_backends[MANAGEMENT_ACCOUNT]["aws"]
        hub = FakeAccount(backend.org, AccountName="security-tooling", Email="security@example.com")
        hub.id = self.hub
        hub.joined_method = "INVITED"
        hub.parent_id = self.root_id
        backend.accounts.append(hub)
        organizations_backends.master_accounts[self.hub] = (MANAGEMENT_ACCOUNT, "aws")

    def _harness_in(self, account_id: str) -> ClientFactory:
        """The harness's clients in another account (its access role), not checked by IAM: the test looking on."""
        return assume_role(self.harness, f"arn:aws:iam::{account_id}:role/{ACCESS_ROLE}", "local-harness", self.region)

    # -- the spoke --

    def _spoke(self, member: Member) -> Member:
        """Deploy the spoke template in the account: its remediation role (trust policy and grants from the
        template) and its forwarding rule, delivering to a local queue that `forward` hands on to the hub bus as
        the rule's role would."""
        template = self.workflow.spoke_template
        resolve = Resolver(member.account_id, self.region)
        for name, value in self.workflow.spoke_parameters().items():
            resolve.bind(name, value)
        iam = member.clients.client("iam", self.region)
        policies: dict[str, list[dict[str, Any]]] = {}
        for policy in of_type(template, "AWS::IAM::Policy").values():
            for role in policy["Properties"]["Roles"]:
                policies.setdefault(role["Ref"], []).append(resolve(policy["Properties"]["PolicyDocument"]))
        forward_role = None
        for logical_id, role in of_type(template, "AWS::IAM::Role").items():
            properties = role["Properties"]
            name = resolve(properties.get("RoleName")) or f"spoke-{logical_id}"[:64]
            documents = policies.get(logical_id, []) + [resolve(p["PolicyDocument"]) for p in properties.get("Policies", [])]
            arn = iam.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(
                self.workflow.localize(resolve(properties["AssumeRolePolicyDocument"]))))["Role"]["Arn"]
            resolve.bind(logical_id, name, Arn=arn)
            self.strict.role_policies[arn] = PolicySet([self.workflow.localize(d) for d in documents], principal=name)
            if "RoleName" in properties:
                member.role_arn = arn
            else:
                forward_role = (arn, documents)
        sqs = member.clients.client("sqs", self.region)
        events = member.clients.client("events", self.region)
        member.queue_url = sqs.create_queue(QueueName="spoke-forward")["QueueUrl"]
        queue_arn = sqs.get_queue_attributes(QueueUrl=member.queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        for logical_id, rule in of_type(template, "AWS::Events::Rule").items():
            resolve.bind(logical_id, logical_id, Arn=f"arn:aws:events:{self.region}:{member.account_id}:rule/{logical_id}")
            events.put_rule(Name=logical_id, EventPattern=json.dumps(resolve(rule["Properties"]["EventPattern"])), State="ENABLED")
            events.put_targets(Rule=logical_id, Targets=[{"Id": "forward", "Arn": queue_arn}])
        if forward_role is not None:
            arn, documents = forward_role
            key = "ASIALOCALFWD" + hashlib.sha256(member.account_id.encode()).hexdigest()[:8].upper()
            member.forwarder = self.strict.register(Principal(
                name=f"forwarder@{member.account_id}", arn=f"arn:aws:sts::{member.account_id}:assumed-role/{arn.rsplit('/', 1)[1]}/events",
                access_key=key, policies=PolicySet([self.workflow.localize(d) for d in documents], principal="spoke forwarder"),
                role_arn=arn, account=member.account_id, scope="spoke"))
            session = new_session(aws_access_key_id=key, aws_secret_access_key="local", aws_session_token="local",
                                            region_name=self.region)
            member.forwarder_clients = ClientFactory(endpoint_url=self.harness.endpoint_url, session=session)
        return member

    # -- events --

    def forward(self) -> dict[str, int]:
        """EventBridge's part in each member account: what its spoke rule matched goes to the hub bus, sent as
        the rule's role (PutEvents across accounts, the hub bus's policy deciding). Returns counts per outcome."""
        from botocore.exceptions import ClientError

        counts = {"forwarded": 0, "refused": 0}
        for member in [self.hub_spoke, *self.members.values(), self.outsider]:
            for event in self.workflow._drain_queue(member.clients, member.queue_url):
                if member.forwarder_clients is None:
                    continue
                try:
                    member.forwarder_clients.client("events", self.region).put_events(Entries=[{
                        "Source": event["source"], "DetailType": event["detail-type"], "Detail": json.dumps(event["detail"]),
                        "Resources": event.get("resources", []), "EventBusName": self.workflow.hub_bus_arn}])
                    counts["forwarded"] += 1
                except ClientError:
                    counts["refused"] += 1
        return counts
