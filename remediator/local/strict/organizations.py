"""Organizations: which organization an account is in, its management account and delegated administrators,
and who may read it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from remediator.local.strict.protocol import Request

if TYPE_CHECKING:
    from remediator.local.strict.layer import StrictLayer


def management_account_of(account: str) -> str | None:
    """The management account of the organization `account` belongs to (itself, for the management account)."""
    from moto.organizations.models import organizations_backends

    if account in organizations_backends.master_accounts:
        return organizations_backends.master_accounts[account][0]
    backend = organizations_backends[account]["aws"]
    return account if backend.org is not None else None


def organization_of(account: str) -> str | None:
    """The organization ID of an account (aws:PrincipalOrgID), None outside any."""
    from moto.organizations.models import organizations_backends

    management = management_account_of(account)
    if management is None:
        return None
    org = organizations_backends[management]["aws"].org
    return org.id if org is not None else None


def delegated_administrators(management: str) -> set[str]:
    from moto.organizations.models import organizations_backends

    backend = organizations_backends[management]["aws"]
    return {admin.account.id if hasattr(admin, "account") else str(admin) for admin in getattr(backend, "admins", [])}


def organization_reader(layer: StrictLayer, request: Request, account: str) -> str | None:
    """Organizations answers its management account and its delegated administrators from the organization's
    data (the emulator keeps it in the management account): such a caller's request is served from there."""
    management = management_account_of(account)
    if management is None:
        return "Your account is not a member of an organization."
    if account != management and account not in delegated_administrators(management):
        return "You don't have permissions to access this resource."
    request.environ["HTTP_X_MOTO_ACCOUNT_ID"] = management
    return None
