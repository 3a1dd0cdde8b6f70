"""SSM Parameter Store: the trusted lists and the list settings, read at run time so they change without a redeploy
(and so that no list can outgrow Lambda's 4 KB environment)."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable
from typing import Any, NamedTuple

from remediator import containers
from remediator.adapters.clients import ClientFactory
from remediator.core.principals import ACCOUNT_ID
from remediator.core.trust_config import ORG_ID
from remediator.organization import PARENT_ID

SCHEMA = {"trusted_accounts": (ACCOUNT_ID, "12-digit account IDs"), "trusted_org_ids": (ORG_ID, "organization IDs (o-...)")}
# Organization mode's document has two more keys (docs/organization.md); a single-account document has neither.
ORGANIZATION_KEYS = ("trust_organization", "trusted_ous")


class TrustDocument(NamedTuple):
    trusted_accounts: frozenset[str]
    trusted_org_ids: frozenset[str]
    trust_organization: bool = False  # every active account of the organization
    trusted_ous: frozenset[str] = frozenset()  # every active account under these OUs (or the root)


class TrustListError(ValueError):
    """The trusted-lists parameter is not exactly what the stack writes: nothing may be judged by it."""


CACHE_SECONDS = 60.0  # how long a Lambda container keeps the lists before it reads the parameter again
_kept: containers.Kept[TrustDocument] = containers.Kept(CACHE_SECONDS)


def trust_lists(clients: ClientFactory, name: str, fresh: bool = False,
                clock: Callable[[], float] = time.monotonic) -> tuple[frozenset[str], frozenset[str]]:
    """(trusted account IDs, trusted organization IDs) from the JSON parameter, kept CACHE_SECONDS per container.

    `fresh` reads the parameter whatever the cache holds: the state that removes principals (Apply) judges
    by the lists as they are now, so an account trusted a minute ago is never stripped by a stale copy. A
    parameter that does not read (TrustListError) is never kept.
    """
    document = trust_document(clients, name, fresh, clock)
    return document.trusted_accounts, document.trusted_org_ids


def trust_document(clients: ClientFactory, name: str, fresh: bool = False,
                   clock: Callable[[], float] = time.monotonic) -> TrustDocument:
    """The whole trust document (organization mode's keys too), kept as `trust_lists` keeps it."""
    return _kept.get((clients.endpoint_url, name), lambda: parse_trust_document(
        clients.client("ssm").get_parameter(Name=name)["Parameter"]["Value"], name), clock, fresh)


def forget_cached() -> None:
    """A new container, as far as the lists are concerned (the local runner, between deployments)."""
    _kept.clear()
    _kept_settings.clear()


def parse_trust_lists(value: Any, name: str) -> tuple[frozenset[str], frozenset[str]]:
    document = parse_trust_document(value, name)
    return document.trusted_accounts, document.trusted_org_ids


def parse_trust_document(value: Any, name: str) -> TrustDocument:
    """Fail closed: exactly {"trusted_accounts": [...], "trusted_org_ids": [...]}, lists of well-formed IDs.

    A misspelt key, a wrong type or a malformed ID would otherwise read as "trust no one", and auto mode
    would strip every partner's access.
    """
    expected = '{"trusted_accounts": [...], "trusted_org_ids": [...]}'
    try:
        data = json.loads(value) if isinstance(value, str) else None
    except ValueError as error:
        raise TrustListError(f"parameter {name} is not JSON ({error}); expected {expected}") from None
    if not isinstance(data, dict):
        raise TrustListError(f"parameter {name} is not a JSON object; expected {expected}")
    extra = {}
    if any(key in data for key in ORGANIZATION_KEYS):  # organization mode: both keys, exactly typed
        expected = expected[:-1] + ', "trust_organization": true|false, "trusted_ous": [...]}'
        data = dict(data)
        extra = {key: data.pop(key, None) for key in ORGANIZATION_KEYS}
        if not isinstance(extra["trust_organization"], bool):
            raise TrustListError(f"parameter {name}: trust_organization must be true or false; expected {expected}")
        units = extra["trusted_ous"]
        if not isinstance(units, list) or not all(isinstance(u, str) and PARENT_ID.fullmatch(u) for u in units):
            raise TrustListError(f"parameter {name}: trusted_ous must be a list of OU IDs (ou-...) or the root (r-...); "
                                 f"expected {expected}")
    unknown, missing = sorted(set(data) - set(SCHEMA)), sorted(set(SCHEMA) - set(data))
    if unknown or missing:
        what = "; ".join(part for part in (f"unknown key(s) {', '.join(map(repr, unknown))}" if unknown else "",
                                           f"missing key(s) {', '.join(map(repr, missing))}" if missing else "") if part)
        raise TrustListError(f"parameter {name}: {what}; expected exactly {expected}")
    found = _id_lists(name, data, SCHEMA)
    if extra:
        return TrustDocument(found[0], found[1], extra["trust_organization"], frozenset(extra["trusted_ous"]))
    return TrustDocument(found[0], found[1])


# The settings parameter (infra/stack.py): the list settings that can grow, exactly these keys.
SETTINGS_SCHEMA = {"exempt_api_ids": (re.compile(r"[a-z0-9]{10}"), "REST API IDs (10 lowercase letters or digits)")}


class SettingsDocument(NamedTuple):
    exempt_api_ids: frozenset[str]


_kept_settings: containers.Kept[SettingsDocument] = containers.Kept(CACHE_SECONDS)


def settings_document(clients: ClientFactory, name: str, fresh: bool = False,
                      clock: Callable[[], float] = time.monotonic) -> SettingsDocument:
    """The settings parameter, kept CACHE_SECONDS per container as the trust document is (`fresh`: read it now)."""
    return _kept_settings.get((clients.endpoint_url, name), lambda: parse_settings_document(
        clients.client("ssm").get_parameter(Name=name)["Parameter"]["Value"], name), clock, fresh)


def parse_settings_document(value: Any, name: str) -> SettingsDocument:
    """Fail closed, as the trust document: exactly {"exempt_api_ids": [...]} of well-formed IDs. A misspelt key or a
    malformed ID would otherwise exempt nothing, silently, and auto mode would change an API meant to be left alone."""
    expected = '{"exempt_api_ids": [...]}'
    try:
        data = json.loads(value) if isinstance(value, str) else None
    except ValueError as error:
        raise TrustListError(f"parameter {name} is not JSON ({error}); expected {expected}") from None
    if not isinstance(data, dict) or set(data) != set(SETTINGS_SCHEMA):
        keys = sorted(data) if isinstance(data, dict) else type(data).__name__
        raise TrustListError(f"parameter {name} holds {keys!r:.200}; expected exactly {expected}")
    return SettingsDocument(_id_lists(name, data, SETTINGS_SCHEMA)[0])


def _id_lists(name: str, data: dict[str, Any], schema: dict[str, Any]) -> list[frozenset[str]]:
    """Each key of `schema` in `data`: a list of well-formed IDs, or one line naming the parameter and the key."""
    found = []
    for key, (pattern, what) in schema.items():
        items = data[key]
        if not isinstance(items, list):
            raise TrustListError(f"parameter {name}: {key} must be a list of {what}, not {type(items).__name__}")
        bad = [item for item in items if not isinstance(item, str) or not pattern.fullmatch(item)]
        if bad:
            raise TrustListError(f"parameter {name}: {key} holds {json.dumps(bad[:3])[:200]}, which are not {what}")
        found.append(frozenset(items))
    return found
