"""The roster function (organization mode): the organization's accounts, read from AWS Organizations by the hub
(a delegated administrator), kept in the table for every other state to judge by. Runs daily and on the
organization's account events (an account created, invited, removed, moved, closed)."""

from __future__ import annotations

from typing import Any

from remediator import clock
from remediator.adapters.dynamodb import RosterStore
from remediator.adapters.organizations import OrganizationsAdapter
from remediator.adapters.ssm import trust_document
from remediator.functions import coldstart, common
from remediator.functions.common import Settings, aws_call
from remediator.functions.needs import Needs
from remediator.logs import get_logger
from remediator.organization import Roster
from remediator.workflow.errors import RemediationFailed

log = get_logger("remediator.functions.roster")


def needs(mode: str, slack: bool) -> Needs | None:
    # DescribeOrganization (its management account), ListAccounts (and, for trusted OUs, ListAccountsForParent / ListOrganizationalUnitsForParent); the roster
    # item read (to keep when accounts left) and written; the trust document, for which OUs to expand.
    return Needs(read_organization=True, roster=("dynamodb:GetItem", "dynamodb:PutItem"), read_trust=True)


def handler(event: dict[str, Any], context: Any = None) -> dict[str, Any]:
    """Refresh the roster: the active accounts, the accounts under each trusted OU, and those that left (first
    seen gone now). An account that left is untrusted from here on (docs/organization.md)."""
    settings = Settings.from_environment()
    if not settings.organization:
        raise RemediationFailed("the roster function runs in organization mode only")
    store = RosterStore(common.clients(), settings.audit_table, settings.organization_id)
    document = trust_document(common.clients(), settings.trust_parameter, fresh=True)
    organizations = OrganizationsAdapter(common.clients())
    active = aws_call(organizations.active_accounts)
    management = aws_call(organizations.management_account)
    under = {unit: aws_call(lambda unit=unit: organizations.accounts_under(unit)) for unit in sorted(document.trusted_ous)}
    previous = aws_call(store.read) or Roster.empty(settings.organization_id)
    roster = previous.refreshed(active, under, clock.now(), management)
    aws_call(lambda: store.write(roster))
    joined, left = sorted(roster.accounts - previous.accounts), sorted(previous.accounts - roster.accounts)
    log.info("roster_refreshed", accounts=len(roster.accounts), joined=joined, left=left,
             trigger=(event.get("detail") or {}).get("eventName") if isinstance(event, dict) else None)
    return {"accounts": len(roster.accounts), "joined": joined, "left": left}


coldstart.loaded()  # last: this function's modules are loaded (remediator/functions/coldstart.py)
