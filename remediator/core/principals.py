"""Resolve one principal entry of a policy to what it names: an account, a wildcard, or not an account.

The answer depends only on the entry's text, so it is cached: real policies repeat the
same few principals across thousands of APIs.
"""

from __future__ import annotations

import re
from enum import Enum
from functools import lru_cache

import msgspec

PARTITIONS = frozenset({"aws", "aws-cn", "aws-us-gov", "aws-iso", "aws-iso-b"})

ACCOUNT_ID = re.compile(r"[0-9]{12}")  # ASCII only: \d also matches other scripts' digits
# Prefixes IAM gives unique IDs; a policy shows one in place of a deleted user or role.
UNIQUE_ID = re.compile(r"(?:AIDA|AROA|AIPA|AGPA|ANPA|ANVA|ASIA|ABIA|ACCA|AKIA|APKA|ASCA)[A-Z0-9]{8,}")
_WILDCARD_CHARS = frozenset("*?")


class PrincipalCategory(str, Enum):
    ACCOUNT = "account"
    WILDCARD = "wildcard"
    ORPHANED = "orphaned"
    NOT_AN_ACCOUNT = "not-an-account"
    UNRECOGNIZED = "unrecognized"


class ResolvedPrincipal(msgspec.Struct, frozen=True):
    category: PrincipalCategory
    account: str | None = None
    reason: str = ""


_WILDCARD = ResolvedPrincipal(PrincipalCategory.WILDCARD)
_ORPHANED = ResolvedPrincipal(PrincipalCategory.ORPHANED)
_CLOUDFRONT = ResolvedPrincipal(PrincipalCategory.NOT_AN_ACCOUNT, reason="legacy CloudFront origin access identity")


def has_wildcard(text: str) -> bool:
    return not _WILDCARD_CHARS.isdisjoint(text)


@lru_cache(maxsize=65536)
def resolve_aws_principal(entry: str) -> ResolvedPrincipal:
    """Resolve an entry of a Principal's `AWS` element (or of a bare principal list)."""
    if entry == "*":
        return _WILDCARD
    if ACCOUNT_ID.fullmatch(entry):
        return ResolvedPrincipal(PrincipalCategory.ACCOUNT, entry)
    if UNIQUE_ID.fullmatch(entry):
        return _ORPHANED
    if entry.startswith("arn:"):
        return _resolve_arn(entry)
    return ResolvedPrincipal(PrincipalCategory.UNRECOGNIZED, reason="neither an account ID, an IAM ARN nor a unique ID")


def _resolve_arn(entry: str) -> ResolvedPrincipal:
    parts = entry.split(":", 5)
    if len(parts) != 6:
        return ResolvedPrincipal(PrincipalCategory.UNRECOGNIZED, reason="malformed ARN")
    _, partition, service, region, account, resource = parts
    if account == "cloudfront" and service == "iam" and resource.startswith("user/"):
        return _CLOUDFRONT
    if has_wildcard(account):
        return ResolvedPrincipal(PrincipalCategory.WILDCARD, reason="the ARN's account field is a wildcard")
    if partition not in PARTITIONS:
        return ResolvedPrincipal(PrincipalCategory.UNRECOGNIZED, reason=f"unknown partition '{partition}'")
    if service not in ("iam", "sts") or region:
        return ResolvedPrincipal(PrincipalCategory.UNRECOGNIZED, reason="not an IAM or STS principal ARN")
    if not ACCOUNT_ID.fullmatch(account):
        return ResolvedPrincipal(PrincipalCategory.UNRECOGNIZED, reason=f"account field '{account}' is not a 12-digit account ID")
    if not resource:
        return ResolvedPrincipal(PrincipalCategory.UNRECOGNIZED, reason="the ARN names no principal")
    return ResolvedPrincipal(PrincipalCategory.ACCOUNT, account)


def arn_account(arn: str, fields_match_separately: bool) -> str | None:
    """The account field of an ARN pattern when it can only match that literal account; else None.

    ArnLike matches each colon-separated field on its own, so only the account field must be
    literal; StringLike's `*` can span colons, so every field up to the account must be.
    """
    parts = arn.split(":", 5)
    if len(parts) != 6 or parts[0] != "arn":
        return None
    checked = parts[4:5] if fields_match_separately else parts[:5]
    if any(has_wildcard(part) for part in checked):
        return None
    return parts[4] or None
