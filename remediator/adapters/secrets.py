"""Secrets Manager: the Slack bot token and signing secret, never in the environment or the template."""

from __future__ import annotations

import time
from collections.abc import Callable

from remediator import containers
from remediator.adapters.clients import ClientFactory


class SecretMissing(LookupError):
    """The secret exists but holds no value yet (the stack creates it empty)."""


CACHE_SECONDS = 300.0
_kept: containers.Kept[str] = containers.Kept(CACHE_SECONDS)


def secret_value(clients: ClientFactory, secret_id: str, clock: Callable[[], float] = time.monotonic) -> str:
    """The secret's value, kept for CACHE_SECONDS per Lambda container.

    The Slack callback is a public URL that must answer within 3 s: it should not call Secrets
    Manager on every request. A rotated value is picked up within CACHE_SECONDS.
    """
    def read() -> str:
        value = (clients.client("secretsmanager").get_secret_value(SecretId=secret_id).get("SecretString") or "").strip()
        if not value:
            raise SecretMissing(f"secret {secret_id} is empty: put the value in it (see the README's Slack section)")
        return value

    return _kept.get(secret_id, read, clock)
