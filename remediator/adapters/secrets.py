"""Secrets Manager: the Slack bot token and signing secret, never in the environment or the template."""

from __future__ import annotations

from remediator.adapters.clients import ClientFactory


class SecretMissing(LookupError):
    """The secret exists but holds no value yet (the stack creates it empty)."""


def secret_value(clients: ClientFactory, secret_id: str) -> str:
    value = clients.client("secretsmanager").get_secret_value(SecretId=secret_id).get("SecretString") or ""
    if not value.strip():
        raise SecretMissing(f"secret {secret_id} is empty: put the value in it (see the README's Slack section)")
    return value.strip()
