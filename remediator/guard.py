"""The one guarded policy write. Every write of a resource policy the bot makes (a fix, an approved fix, a
recovery, a retry, an undo, the CLI's `fix` and `rollback`) goes through `guarded_write`, which re-reads
the live policy and refuses unless one of three authorities holds:

- `Narrowing`: the engine proves the new policy grants nothing the live one does not (relative to what is
  live now, never to what a journal or record says);
- `UndoOf`: the undo of this same transaction: the live policy is exactly what the transaction wrote and
  the new one exactly the pre-image it read, both known by digest from the transaction itself (its process
  memory, or the execution's own state), not from anything read back from storage;
- `PersonRollback`: a rollback a person asked for; what it re-grants beyond the live policy must be trusted
  under the current trust settings, or the person confirmed it (`--force`, as rollback already requires).

Anything else raises `WriteRefused` with one line; the caller turns it into a record and a notice.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import msgspec

from remediator.core import PolicyError, TrustConfig, evaluate_policy, parse_policy
from remediator.core.narrowing import Widening, widenings
from remediator.core.policy import policy_digest, statements_of  # policy_digest lives in the core: adapters use it too
from remediator.logs import get_logger

if TYPE_CHECKING:
    from remediator.adapters.apigateway import ApiGatewayAdapter

log = get_logger(__name__)


class WriteRefused(Exception):
    """The guard would not write this policy; the message says why, in one line."""


class LiveChanged(Exception):
    """The live policy is no longer the one the write was planned from: someone wrote in between. Nothing is
    written; the caller plans again from what is there now, so nobody's change is silently layered over."""


class Narrowing(msgspec.Struct, frozen=True):
    """Allowed only if the new policy is proven to grant nothing the live one does not."""


class UndoOf(msgspec.Struct, frozen=True):
    """The undo of one transaction: digests of what it wrote and of the pre-image it read."""

    intent_id: str
    written: str
    read: str


class PersonRollback(msgspec.Struct, frozen=True):
    """A rollback a person asked for; `confirmed` is their --force when it re-grants untrusted principals."""

    trust: TrustConfig
    confirmed: bool


Authority = Narrowing | UndoOf | PersonRollback


def new_policy_of(operations: list[dict[str, str]]) -> str | None:
    """The policy a patch writes (None: it removes the policy). Only a whole-policy replace or remove is a
    policy write the bot makes; anything else is refused."""
    if not isinstance(operations, list) or len(operations) != 1 or not isinstance(operations[0], dict):
        raise WriteRefused("a policy write is exactly one patch operation on /policy")
    operation = operations[0]
    if operation.get("path") != "/policy" or set(operation) - {"op", "path", "value"}:
        raise WriteRefused("a policy write patches /policy and nothing else")
    if operation.get("op") == "remove" and "value" not in operation:
        return None
    value = operation.get("value")
    if operation.get("op") != "replace" or not isinstance(value, str):
        raise WriteRefused("a policy write replaces /policy with a policy document, or removes it")
    return value


def check(live: str | None, new: str | None, owner_account: str, authority: Authority) -> list[Widening]:
    """Raise WriteRefused unless `authority` allows replacing `live` with `new`; returns what it widens
    (non-empty only for an undo of this transaction or a confirmed or trusted rollback)."""
    try:
        live_document = parse_policy(live) if live else None
    except PolicyError as error:
        live_document, unreadable = None, str(error)
    else:
        unreadable = ""
    try:
        new_document = parse_policy(new) if new is not None else None
    except PolicyError as error:
        raise WriteRefused(f"the new policy cannot be read: {error}") from None
    if isinstance(authority, UndoOf):
        if policy_digest(live) == authority.written and policy_digest(new) == authority.read:
            return _widened(live_document, new_document, owner_account) if not unreadable else []
        if policy_digest(live) != authority.written:
            reason = f"the live policy is not the one change {authority.intent_id} wrote"
        else:
            reason = f"the policy to restore is not the one change {authority.intent_id} read"
        if unreadable or _widened(live_document, new_document, owner_account):
            raise WriteRefused(f"undo refused: {reason}, and the policy to restore would grant more than the live one")
        return []
    if unreadable:
        raise WriteRefused(f"the live policy cannot be read ({unreadable}), so nothing can be proven about the write")
    widened = _widened(live_document, new_document, owner_account)
    if not widened:
        return []
    if isinstance(authority, PersonRollback):
        untrusted = _untrusted(new_document, widened, authority.trust)
        if authority.confirmed or not untrusted:
            return widened
        raise WriteRefused(f"rollback refused: it would re-grant {'; '.join(untrusted)}, untrusted under the current "
                           "trust settings (use --force to re-grant anyway)")
    raise WriteRefused(f"the write would grant more than the live policy: {'; '.join(str(w) for w in widened[:3])}"
                       + (f" (and {len(widened) - 3} more)" if len(widened) > 3 else ""))


def _widened(live: dict[str, Any] | None, new: dict[str, Any] | None, owner_account: str) -> list[Widening]:
    return widenings(live, new, owner_account)


def _untrusted(new: dict[str, Any] | None, widened: list[Widening], trust: TrustConfig) -> list[str]:
    """Of what a rollback widens, what the current trust settings do not trust: any dropped Deny or changed
    version, and every principal of the widening Allow statements that the engine flags."""
    found = [str(w) for w in widened if w.kind != "allow"]
    statements = [w for w in widened if w.kind == "allow"]
    if statements and new is not None:
        listed = statements_of(new)
        subset = {"Version": new.get("Version", "2012-10-17"), "Statement": [listed[w.statement_index] for w in statements]}
        try:
            evaluation = evaluate_policy(subset, trust)
        except PolicyError as error:
            return found + [f"statements that cannot be judged ({error})"]
        found.extend(f"{f.principal} (statement {statements[f.statement_index].statement_index})" for f in evaluation.findings)
        if not evaluation.compliant and not evaluation.findings:
            found.append("statements the engine does not call compliant")
    return found


_ANY = object()


def guarded_write(adapter: ApiGatewayAdapter, region: str, api_id: str, operations: list[dict[str, str]],
                  owner_account: str, authority: Authority, planned_from: Any = _ANY,
                  before_write: Callable[[], None] | None = None) -> str | None:
    """Re-read the live policy, check the write against it, then patch. Returns the live policy it replaced.
    `planned_from`: the policy the write was planned from; if the live one is another, LiveChanged (API Gateway
    has no conditional update, so this narrows the window in which a person's write can be lost to the
    moment between this read and the write). `before_write`: the caller's claim re-asserted after the read, right
    before the write (what it raises, nothing is written). Raises WriteRefused (nothing written) or what the adapter
    raises."""
    new = new_policy_of(operations)
    live = adapter.get_rest_api(region, api_id).policy
    if planned_from is not _ANY and policy_digest(live) != policy_digest(planned_from):
        raise LiveChanged(f"{region}/{api_id}: the policy changed after it was read; planned again from what is there now")
    widened = check(live, new, owner_account, authority)
    if widened:
        log.warning("policy_write_widens", region=region, api_id=api_id, authority=type(authority).__name__,
                    widened=[str(w) for w in widened])
    if before_write is not None:
        before_write()
    adapter.update_policy(region, api_id, operations)
    return live
