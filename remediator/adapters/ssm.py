"""SSM Parameter Store: the trusted lists, read at run time so they change without a redeploy."""

from __future__ import annotations

import json

from remediator.adapters.clients import ClientFactory


class TrustListError(ValueError):
    """The trusted-lists parameter is not what the stack writes."""


def trust_lists(clients: ClientFactory, name: str) -> tuple[frozenset[str], frozenset[str]]:
    """(trusted account IDs, trusted organization IDs) from the JSON parameter."""
    value = clients.client("ssm").get_parameter(Name=name)["Parameter"]["Value"]
    try:
        data = json.loads(value)
        accounts = frozenset(str(a) for a in data.get("trusted_accounts", []))
        orgs = frozenset(str(o) for o in data.get("trusted_org_ids", []))
    except (json.JSONDecodeError, AttributeError, TypeError) as error:
        raise TrustListError(f"parameter {name} is not {{\"trusted_accounts\": [...], \"trusted_org_ids\": [...]}}: {error}") from None
    return accounts, orgs
