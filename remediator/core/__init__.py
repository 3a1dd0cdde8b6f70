"""The pure core: parse, evaluate and fix a resource policy. No AWS SDK, no I/O.

May import: nothing of ours outside the core but `remediator.codec` (msgspec only, no I/O); everything else
imports the core."""

from remediator.core.policy import Policy, PolicyError, compact_json, parse_policy, statements_of
from remediator.core.trust import Evaluation, Finding, FindingKind, Remediation, evaluate_policy
from remediator.core.trust_config import ConfigError, TrustConfig

__all__ = [
    "ConfigError",
    "Evaluation",
    "Finding",
    "FindingKind",
    "Policy",
    "PolicyError",
    "Remediation",
    "TrustConfig",
    "compact_json",
    "evaluate_policy",
    "parse_policy",
    "statements_of",
]
