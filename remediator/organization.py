"""The organization's roster: which accounts are the organization's, and so whose APIs the hub protects and
which accounts the organization's trust settings trust. Pure: the roster function reads Organizations and
the table, this module decides.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from typing import Any

import msgspec

from remediator.core.principals import ACCOUNT_ID
from remediator.core.trust_config import ORG_ID

# Organizations' own ID formats: the root (r-...) and organizational units (ou-<root>-<suffix>).
PARENT_ID = re.compile(r"r-[0-9a-z]{4,32}|ou-[0-9a-z]{4,32}-[a-z0-9]{8,32}")
# An account that left is untrusted at once, but a fix that would strip it waits this long (see `held_back`).
DEPARTURE_HOLD_SECONDS = 3600.0
# How long an account that left is remembered (so that its departure time survives a few refreshes).
DEPARTED_KEPT_SECONDS = 90 * 86400.0


class RosterError(ValueError):
    """The stored roster is not exactly what the roster function writes: nothing may be judged by it."""


class Roster(msgspec.Struct, frozen=True):
    """The organization's accounts as the last refresh read them."""

    organization_id: str
    refreshed_at: float
    accounts: frozenset[str]  # the ACTIVE accounts
    management_account: str = ""  # never a StackSet target (service-managed StackSets skip it), so never swept
    under: Mapping[str, frozenset[str]] = msgspec.field(default_factory=dict)  # trusted OU or root -> its active accounts
    # An account the organization stopped covering -> when a refresh first saw it: it left the organization, or left
    # a trusted OU (or that OU stopped being trusted). `lost_units`: the trusted OUs it was under then.
    departed: Mapping[str, float] = msgspec.field(default_factory=dict)
    lost_units: Mapping[str, frozenset[str]] = msgspec.field(default_factory=dict)

    def is_member(self, account: str) -> bool:
        return account in self.accounts

    def trusted(self, trust_organization: bool, trusted_units: Iterable[str]) -> frozenset[str]:
        """The accounts the organization's trust settings trust: every active one, or those under the OUs."""
        if trust_organization:
            return self.accounts
        found: set[str] = set()
        for unit in trusted_units:
            if unit not in self.under:
                raise RosterError(f"the roster has no accounts for {unit}: refresh it (the roster function) after changing "
                                  "the trusted OUs")
            found |= self.under[unit]
        return frozenset(found & self.accounts)

    def held_back(self, accounts: Iterable[str | None], now: float) -> list[str]:
        """Of these accounts, those that left the organization (or a trusted OU) less than DEPARTURE_HOLD_SECONDS ago.

        A fix that would remove one of them is proposed, never applied automatically: an account moved out of the
        organization or of a trusted OU and back within the hour (a re-parenting gone wrong) keeps its access, and
        the next sweep an hour or more later applies the fix if it is still gone.
        """
        return sorted({a for a in accounts if a is not None and a in self.departed
                       and now - self.departed[a] < DEPARTURE_HOLD_SECONDS})

    def sweepable(self) -> list[str]:
        """The accounts that have a spoke: every active one but the management account."""
        return sorted(self.accounts - {self.management_account})

    def refreshed(self, active: Iterable[str], under: Mapping[str, Iterable[str]], now: float,
                  management_account: str = "") -> Roster:
        """The next roster. An account of this one that is no longer active, or was under a trusted OU and is under
        none now, is recorded as departed now (or when first seen so), with the OUs it was under; it stops being
        departed once it is back: active, and under a trusted OU again if it was under one."""
        active_now = frozenset(active)
        under_now = {k: frozenset(v) for k, v in under.items()}
        departed = {a: t for a, t in self.departed.items() if now - t < DEPARTED_KEPT_SECONDS}
        lost = {a: set(self.lost_units.get(a, ())) for a in departed}
        for account in self.accounts:
            before = _units(self.under, account)
            if account not in active_now or (before and not _units(under_now, account)):
                departed.setdefault(account, now)
                lost.setdefault(account, set()).update(before)
        for account in list(departed):
            if account in active_now and (not lost.get(account) or _units(under_now, account)):
                del departed[account]
                lost.pop(account, None)
        return Roster(self.organization_id, now, active_now, management_account or self.management_account, under_now,
                      departed, {a: frozenset(u) for a, u in lost.items() if u})

    def to_json(self) -> str:
        return json.dumps({"organization_id": self.organization_id, "refreshed_at": self.refreshed_at,
                           "accounts": sorted(self.accounts), "management_account": self.management_account, "under": {k: sorted(v) for k, v in sorted(self.under.items())},
                           "departed": dict(sorted(self.departed.items())),
                           "lost_units": {a: sorted(u) for a, u in sorted(self.lost_units.items())}}, separators=(",", ":"))

    @classmethod
    def empty(cls, organization_id: str) -> Roster:
        return cls(organization_id, 0.0, frozenset())

    @classmethod
    def from_json(cls, text: Any, organization_id: str) -> Roster:
        """Fail closed: exactly the roster function's keys and types, IDs well formed, of this organization."""
        try:
            data = json.loads(text) if isinstance(text, str) else None
        except ValueError as error:
            raise RosterError(f"the roster is not JSON ({error})") from None
        keys = {"organization_id", "refreshed_at", "accounts", "management_account", "under", "departed", "lost_units"}
        if not isinstance(data, dict) or set(data) != keys:
            raise RosterError(f"the roster must be an object with exactly {', '.join(sorted(keys))}")
        if data["organization_id"] != organization_id or not ORG_ID.fullmatch(str(data["organization_id"])):
            raise RosterError(f"the roster is of organization {data['organization_id']!r}, not {organization_id}")
        if isinstance(data["refreshed_at"], bool) or not isinstance(data["refreshed_at"], (int, float)):
            raise RosterError("the roster's refreshed_at is not a time")
        accounts = _accounts(data["accounts"], "accounts")
        management = data["management_account"]
        if not isinstance(management, str) or not (management == "" or ACCOUNT_ID.fullmatch(management)):
            raise RosterError("the roster's management_account is not an account ID")
        under = data["under"]
        if not isinstance(under, dict) or not all(isinstance(k, str) and PARENT_ID.fullmatch(k) for k in under):
            raise RosterError("the roster's under must map OU or root IDs to account lists")
        departed = data["departed"]
        if not isinstance(departed, dict) or not all(
                isinstance(k, str) and ACCOUNT_ID.fullmatch(k) and isinstance(v, (int, float)) and not isinstance(v, bool)
                for k, v in departed.items()):
            raise RosterError("the roster's departed must map account IDs to times")
        lost = data["lost_units"]
        if not isinstance(lost, dict) or not all(
                isinstance(k, str) and k in departed and isinstance(v, list) and all(isinstance(u, str) and PARENT_ID.fullmatch(u) for u in v)
                for k, v in lost.items()):
            raise RosterError("the roster's lost_units must map departed accounts to OU IDs")
        return cls(organization_id, float(data["refreshed_at"]), accounts, management,
                   {k: _accounts(v, f"under[{k}]") for k, v in under.items()}, {k: float(v) for k, v in departed.items()},
                   {k: frozenset(v) for k, v in lost.items()})


def _units(under: Mapping[str, frozenset[str]], account: str) -> set[str]:
    return {unit for unit, accounts in under.items() if account in accounts}


def _accounts(value: Any, where: str) -> frozenset[str]:
    if not isinstance(value, list) or not all(isinstance(a, str) and ACCOUNT_ID.fullmatch(a) for a in value):
        raise RosterError(f"the roster's {where} must be a list of 12-digit account IDs")
    return frozenset(value)
