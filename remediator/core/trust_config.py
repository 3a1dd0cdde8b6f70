"""Who is trusted: the trust configuration the evaluation reads, and how it is checked.

Kept apart from the evaluation (core/trust.py) so that settings, adapters and handlers can
build and validate a configuration without pulling in the engine, and so that the
configuration's own shape can change without touching the decision code.
"""

from __future__ import annotations

import re
from typing import Any

import msgspec
from msgspec.structs import force_setattr

from remediator.core.conditions import MEMO_LIMIT
from remediator.core.principals import ACCOUNT_ID, PARTITIONS, ResolvedPrincipal

ORG_ID = re.compile(r"o-[a-z0-9]{10,32}")


class ConfigError(ValueError):
    """A trust configuration that cannot be right (an account ID that is not 12 digits...)."""


class _Memo:
    """Verdicts that depend only on a trust configuration and a value (a principal entry, a Condition),
    remembered for that configuration; bounded by MEMO_LIMIT per table."""

    __slots__ = ("suspects", "values")

    def __init__(self) -> None:
        # principal entry -> what it resolves to when it may name an untrusted account, else False
        self.suspects: dict[str, ResolvedPrincipal | bool] = {}
        self.values: dict[Any, Any] = {}  # (operator, key, values) -> that condition test's verdict (conditions.TestVerdict)

    @staticmethod
    def remember(table: dict[Any, Any], key: Any, value: Any) -> Any:
        if len(table) >= MEMO_LIMIT:
            table.clear()
        table[key] = value
        return value


class TrustConfig(msgspec.Struct, frozen=True, dict=True, forbid_unknown_fields=True):
    """Who is trusted. The owner account is always trusted, whether listed or not.

    A frozen msgspec Struct (the codec's type, remediator/codec.py): its fields compare and hash; what it derives
    (`_accounts`, every trusted account with the owner, and `_memo`) is kept beside them, outside comparison."""

    owner_account: str
    trusted_accounts: frozenset[str] = frozenset()
    trusted_org_ids: frozenset[str] = frozenset()
    partition: str = "aws"
    remove_wildcard_principals: bool = False

    def __post_init__(self) -> None:
        if not isinstance(self.owner_account, str) or not ACCOUNT_ID.fullmatch(self.owner_account):
            raise ConfigError(f"owner account '{self.owner_account}' is not a 12-digit account ID")
        bad = sorted(a for a in self.trusted_accounts if not isinstance(a, str) or not ACCOUNT_ID.fullmatch(a))
        if bad:
            raise ConfigError(f"trusted account '{bad[0]}' is not a 12-digit account ID")
        bad = sorted(o for o in self.trusted_org_ids if not isinstance(o, str) or not ORG_ID.fullmatch(o))
        if bad:
            raise ConfigError(f"trusted organization '{bad[0]}' is not an organization ID (o-...)")
        if self.partition not in PARTITIONS:
            raise ConfigError(f"partition '{self.partition}' is not one of {', '.join(sorted(PARTITIONS))}")
        force_setattr(self, "trusted_accounts", frozenset(self.trusted_accounts))
        force_setattr(self, "trusted_org_ids", frozenset(self.trusted_org_ids))
        self.__dict__["_accounts"] = frozenset(self.trusted_accounts) | {self.owner_account}
        self.__dict__["_memo"] = _Memo()

    def trusts_account(self, account: str) -> bool:
        return account in self._accounts

    def trusts_org(self, org_id: str) -> bool:
        return org_id in self.trusted_org_ids

    def to_dict(self) -> dict[str, Any]:
        """As stored in audit records (remediator.stored.TrustSettings): enough to compute the same fix again. The
        codec writes the fields, the sets sorted, so that one configuration is always written the same way."""
        return msgspec.to_builtins(self, order="deterministic")  # type: ignore[no-any-return]

    @classmethod
    def from_dict(cls, data: Any) -> TrustConfig:
        """Decoded strictly by the codec: exactly the fields above (lists for the sets), checked as on construction."""
        try:
            return msgspec.convert(data, cls, strict=True)
        except msgspec.ValidationError as invalid:
            raise ConfigError(f"trust settings: {invalid}") from None

    @property
    def owner_root_arn(self) -> str:
        return f"arn:{self.partition}:iam::{self.owner_account}:root"
