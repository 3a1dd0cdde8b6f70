"""The pure core: parse, evaluate and fix a resource policy. No AWS SDK, no I/O.

May import: nothing of ours outside the core but `remediator.codec` (msgspec only, no I/O); everything else
imports the core.

The names below are loaded on first use (PEP 562): importing one of the core's light modules (the trust
settings, the undeployed edits) does not load the engine, which a function that never evaluates does not need
at its cold start (docs/figures/performance.md).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from remediator.core.policy import Policy, PolicyError, compact_json, parse_policy, statements_of
    from remediator.core.trust import Evaluation, Finding, FindingKind, Remediation, evaluate_policy
    from remediator.core.trust_config import ConfigError, TrustConfig

_WHERE = {
    "Policy": "policy", "PolicyError": "policy", "compact_json": "policy", "parse_policy": "policy",
    "statements_of": "policy",
    "Evaluation": "trust", "Finding": "trust", "FindingKind": "trust", "Remediation": "trust", "evaluate_policy": "trust",
    "ConfigError": "trust_config", "TrustConfig": "trust_config",
}

__all__ = sorted(_WHERE)


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value
