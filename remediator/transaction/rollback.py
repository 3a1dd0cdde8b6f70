"""Rollback: a person restores the policy from before a remediation, as a change of its own (intent first,
the record's stages redeployed, one record), and only when the record adds up (`check_rollback`).

Uses the write, deploying and recovery steps (`Remediator` composes them).
"""

from __future__ import annotations

import msgspec
from msgspec.structs import replace

from remediator.adapters.apigateway import ApiNotFound
from remediator.guard import PersonRollback
from remediator.audit import AuditRecord
from remediator.core import ConfigError, PolicyError, TrustConfig, compact_json, evaluate_policy, parse_policy
from remediator.core.policy import aws_principals, statements_of
from remediator.core.undeployed import SummaryError, UndeployedChange
from remediator.transaction.base import TransactionBase
from remediator.transaction.outcomes import FixOutcome, gone
from remediator.transaction.planning import (ApiReport, describe_undeployed, rollback_blocked_detail, same_policy,
                                             undeployed_for)


class RollbackRefused(Exception):
    """The API's policy is no longer the one the remediation wrote."""


class Rollback(TransactionBase):
    """A person's rollback of a remediation."""

    def rollback(self, record: AuditRecord, apply: bool, force: bool = False) -> FixOutcome:
        """Restore the policy from before a remediation, as a change of its own (intent first, the record's
        stages redeployed, one record). Refused, with what it would re-grant, when the record does not add
        up (RollbackRefused), and, unless `force`, when someone changed the policy since or the rollback
        would re-grant what the current trust settings call untrusted."""
        check = check_rollback(record, self.settings.trust)
        if check.inconsistent and not (force and check.only_unverifiable):
            raise RollbackRefused(f"{record.api_id}: the audit record of {record.timestamp} does not add up: "
                                  f"{'; '.join(check.inconsistent)}; nothing changed")
        with self._exclusive():
            left = self.journal.open_intent(self.account, record.region, record.api_id)
            if left is not None and not self.journal.held_by_other(left, self.holder, self.journal.now()):
                self._settle(left)
            try:
                api = self.adapter.get_rest_api(record.region, record.api_id)
            except ApiNotFound:
                return gone(record.region, record.api_id)
            report = ApiReport(api, self.settings.is_exempt(api), None)
            if not force and not same_policy(api.policy, record.policy_after):
                raise RollbackRefused(
                    f"{record.api_id}: the current policy is not the one the remediation of {record.timestamp} wrote; "
                    "someone changed it since (use --force to restore anyway)"
                )
            restored = compact_json(parse_policy(record.policy_before))
            operations = [{"op": "replace", "path": "/policy", "value": restored}]
            regrants = f"re-granting {', '.join(check.regranted)}" if check.regranted else "re-granting no principal"
            if check.untrusted:
                regrants += f" (untrusted under the current trust settings: {', '.join(check.untrusted)}; it takes --force)"
            # A redeploy publishes the whole API: what it would publish besides the restored policy, as for a fix.
            try:
                report = replace(report, undeployed=self._undeployed_of(record))
            except ApiNotFound:
                return gone(record.region, record.api_id)
            except SummaryError as error:
                return FixOutcome(report, "failed", f"what a redeploy would publish cannot be told: {error}; nothing changed")
            blocked = bool(report.undeployed) and self.settings.undeployed != "publish"
            if not apply:
                if blocked:
                    why = rollback_blocked_detail(report.undeployed, self.settings.undeployed)
                    return FixOutcome(report, "blocked", f"dry run: {why}; it would restore the policy of {record.timestamp}, "
                                                         f"{regrants}")
                also = f"; the redeploy also publishes {describe_undeployed(report.undeployed)}" if report.undeployed else ""
                return FixOutcome(report, "proposed",
                                  f"dry run: would restore the policy of {record.timestamp}, {regrants}{also}")
            if check.untrusted and not force:
                raise RollbackRefused(f"{record.api_id}: the rollback would re-grant {', '.join(check.untrusted)}, untrusted "
                                      "under the current trust settings (use --force to re-grant anyway)")
            if blocked:
                return FixOutcome(report, "blocked", rollback_blocked_detail(report.undeployed, self.settings.undeployed))
            patched = self._write(report, operations, restored, "rollback", list(record.stages_redeployed), [],
                                  PersonRollback(self.settings.trust, force))
            if patched.action != "patched":
                return patched.outcome()
            outcome = self.finish(patched, action="rolled-back")
            outcome.detail += f"; {regrants}"
            return outcome

    def _undeployed_of(self, record: AuditRecord) -> tuple[UndeployedChange, ...]:
        """What redeploying the record's stages (those that exist now) would publish besides the restored policy."""
        current = {s.name: s.deployment_id for s in self.adapter.list_stages(record.region, record.api_id)}
        return undeployed_for(self.adapter, record.region, record.api_id,
                              {name: current[name] for name in record.stages_redeployed if name in current})


class RollbackCheck(msgspec.Struct):
    """What a rollback of a record would do, and whether the record can be trusted to say so."""

    inconsistent: list[str]  # why the record does not add up (empty: it does)
    regranted: list[str]  # principals the rollback gives back, with their statements
    untrusted: list[str]  # of those (or wildcards), what the current trust settings call untrusted
    only_unverifiable: bool = False  # the only problem: an older record without its trust settings


def check_rollback(record: AuditRecord, current: TrustConfig) -> RollbackCheck:
    """A record is only as good as it is consistent: its patch must turn `before` into `after`, and `after`
    must be the engine's fix of `before` under the trust settings the record names."""
    try:
        before, after = parse_policy(record.policy_before), parse_policy(record.policy_after)
    except PolicyError as error:
        return RollbackCheck([f"its policies cannot be read ({error})"], [], [])
    problems: list[str] = []
    operations = record.patch_operations
    try:
        patched = (len(operations) == 1 and operations[0].get("op") == "replace" and operations[0].get("path") == "/policy"
                   and parse_policy(operations[0]["value"]) == after)
    except (PolicyError, KeyError, AttributeError):
        patched = False
    if not patched:
        problems.append("its patch does not turn policy_before into policy_after")
    unverifiable = record.trust is None
    if unverifiable:
        problems.append("it names no trust settings, so its fix cannot be checked (an older record: --force)")
    else:
        try:
            settings = TrustConfig.from_dict(record.trust or {})
        except (ConfigError, ValueError) as error:
            problems.append(f"its trust settings are malformed ({error})")
        else:
            if settings.owner_account != record.account:
                problems.append(f"its trust settings are of account {settings.owner_account}, not {record.account}")
            elif evaluate_policy(before, settings).remediated_policy != after:
                problems.append("policy_after is not the fix of policy_before under the trust settings it names")
    kept = set(aws_principals(after))
    where: dict[str, list[str]] = {}
    for index, statement in enumerate(statements_of(before)):
        for principal in aws_principals({"Statement": [statement]}):
            where.setdefault(principal, []).append(f"statement {index}" + (f" ({statement['Sid']})" if statement.get("Sid") else ""))
    regranted = [p for p in aws_principals(before) if p not in kept]
    wildcard = {"*", f"arn:{current.partition}:iam::*:root"}
    try:
        flagged = {f.principal for f in evaluate_policy(before, current).findings}
    except PolicyError:
        flagged = set(regranted)
    untrusted = [p for p in regranted if p in flagged or p in wildcard]
    return RollbackCheck(problems, [f"{p} in {', '.join(where[p])}" for p in regranted], untrusted,
                         only_unverifiable=unverifiable and len(problems) == 1)
