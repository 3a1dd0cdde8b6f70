"""`check`'s settings from a `[tool.apigw-remediator]` table in pyproject.toml, named as the stack names them
(infra/config.py: trustedAccounts, trustedOrgIds, removeWildcardPrincipals), plus what only a check of
infrastructure code needs (ownerAccount, partition, region: where the templates are deployed).

Values take the forms the stack's context takes: a list or a comma-separated string; a boolean or
"true"/"false". A wrong one is a ConfigError (one line, exit 2), never ignored.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Any

from remediator.core import ConfigError
from remediator.core.principals import ACCOUNT_ID, PARTITIONS
from remediator.core.trust_config import ORG_ID
from remediator.events import REGION

SECTION = "apigw-remediator"
KEYS = ("ownerAccount", "trustedAccounts", "trustedOrgIds", "partition", "region", "removeWildcardPrincipals")


def find_pyproject(start: Path) -> Path | None:
    """The nearest pyproject.toml with a [tool.apigw-remediator] table, from `start` upward, not past the
    repository's root (the folder holding .git)."""
    for folder in (start, *start.parents):
        candidate = folder / "pyproject.toml"
        if candidate.is_file() and SECTION in _tool_tables(candidate):
            return candidate
        if (folder / ".git").exists():
            return None
    return None


def _tool_tables(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as handle:
            data = tomllib.load(handle)
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(f"{path}: not valid TOML ({error})") from None
    except OSError as error:
        raise ConfigError(f"{path}: {error.strerror or error}") from None
    tool = data.get("tool", {})
    return tool if isinstance(tool, dict) else {}


def read_settings(path: Path) -> dict[str, Any]:
    """The table's settings, checked: {name: value} with lists as lists of strings and booleans as bool."""
    table = _tool_tables(path).get(SECTION)
    where = f"{path} [tool.{SECTION}]"
    if not isinstance(table, dict):
        raise ConfigError(f"{where} must be a table")
    unknown = sorted(set(table) - set(KEYS))
    if unknown:
        raise ConfigError(f"{where}: unknown setting {unknown[0]!r} (known: {', '.join(KEYS)})")
    settings: dict[str, Any] = {}
    for key, value in table.items():
        name = f"{where} {key}"
        if key == "ownerAccount":
            settings[key] = _one(name, value, ACCOUNT_ID, "a 12-digit account ID")
        elif key == "trustedAccounts":
            settings[key] = _each(name, value, ACCOUNT_ID, "a 12-digit account ID")
        elif key == "trustedOrgIds":
            settings[key] = _each(name, value, ORG_ID, "an organization ID (o-...)")
        elif key == "partition":
            if value not in PARTITIONS:
                raise ConfigError(f"{name}: {value!r} is not one of {', '.join(sorted(PARTITIONS))}")
            settings[key] = value
        elif key == "region":
            settings[key] = _one(name, value, REGION, "a region (like us-east-1)")
        else:
            settings[key] = _bool(name, value)
    return settings


def _one(name: str, value: Any, pattern: re.Pattern[str], what: str) -> str:
    if not isinstance(value, str) or not pattern.fullmatch(value.strip()):
        raise ConfigError(f"{name}: {value!r} is not {what}")
    return value.strip()


def _each(name: str, value: Any, pattern: re.Pattern[str], what: str) -> list[str]:
    if isinstance(value, str):
        items = [item.strip() for item in value.split(",") if item.strip()]
    elif isinstance(value, list):
        items = value
    else:
        raise ConfigError(f"{name} must be a list or a comma-separated string")
    return [_one(name, item, pattern, what) for item in items]


def _bool(name: str, value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    raise ConfigError(f"{name}: {value!r} is not true or false")
