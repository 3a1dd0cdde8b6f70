"""AWS Organizations: the organization's accounts, read by its management account or a delegated administrator."""

from __future__ import annotations

import msgspec

from remediator.adapters.clients import ClientFactory

# Organizations is a global service; its endpoint is in us-east-1 (aws-us-gov and aws-cn have their own).
HOME_REGION = {"aws": "us-east-1", "aws-us-gov": "us-gov-west-1", "aws-cn": "cn-northwest-1"}


class OrganizationAccount(msgspec.Struct, frozen=True):
    account_id: str
    name: str
    status: str  # ACTIVE, SUSPENDED, PENDING_CLOSURE

    @property
    def active(self) -> bool:
        return self.status == "ACTIVE"


class OrganizationsAdapter:
    """The calls the roster and the CLI's `--accounts all` make; each list is read to its last page."""

    def __init__(self, clients: ClientFactory, partition: str = "aws") -> None:
        self._client = clients.client("organizations", HOME_REGION.get(partition, "us-east-1"))

    def management_account(self) -> str:
        """The organization's management account (DescribeOrganization)."""
        return str(self._client.describe_organization()["Organization"]["MasterAccountId"])

    def accounts(self) -> list[OrganizationAccount]:
        """Every account of the organization (ListAccounts), in the order Organizations lists them."""
        return [self._account(a) for page in self._client.get_paginator("list_accounts").paginate() for a in page["Accounts"]]

    def active_accounts(self) -> list[str]:
        return [a.account_id for a in self.accounts() if a.active]

    def accounts_under(self, parent_id: str) -> set[str]:
        """Every active account under a root or OU, nested OUs included (ListAccountsForParent and
        ListOrganizationalUnitsForParent, walked breadth first)."""
        found: set[str] = set()
        parents = [parent_id]
        while parents:
            parent = parents.pop(0)
            for page in self._client.get_paginator("list_accounts_for_parent").paginate(ParentId=parent):
                found.update(a["Id"] for a in page["Accounts"] if self._account(a).active)
            for page in self._client.get_paginator("list_organizational_units_for_parent").paginate(ParentId=parent):
                parents.extend(unit["Id"] for unit in page["OrganizationalUnits"])
        return found

    @staticmethod
    def _account(data: dict) -> OrganizationAccount:  # type: ignore[type-arg]
        # `State` replaces `Status` in newer answers; either says whether the account is active.
        status = str(data.get("State") or data.get("Status") or "")
        return OrganizationAccount(str(data["Id"]), str(data.get("Name", "")), status)
