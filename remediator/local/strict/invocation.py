"""Who is calling: a principal (a function's role session, the state machine's role, the harness), and the
Lambda invocation running on this context, with its function's timeout.
"""

from __future__ import annotations

import contextlib
import hashlib
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from botocore.credentials import Credentials, ReadOnlyCredentials

from remediator.local.iam import PolicySet
from remediator.local.strict.clock import _installed, _running, current_invocation
from remediator.local.strict.protocol import utc_now


HARNESS_KEY = "testing"  # the emulator's default credentials: the test harness, the demo's setup, the CLI


SFN_KEY = "ak"  # the emulator's Step Functions interpreter signs its Lambda invokes with this key


@dataclass
class Principal:
    """An identity calls are made as: a function's role session, the state machine's role, or the harness."""

    name: str
    arn: str  # the caller's ARN as CloudTrail and STS show it
    access_key: str
    policies: PolicySet | None  # None: not IAM-checked (the harness)
    role_arn: str | None = None
    patient: bool = False  # waits for its quota turn (the harness) instead of being throttled
    scope: str = ""  # the deployment it belongs to (the stack's mode), to tell grants of one template apart
    account: str = ""  # the account it acts in ("": the layer's own account, the hub of an organization)
    looking_on: bool = False  # the test harness in another account (seeding, polling): not the product's work

    def user_identity(self, account: str) -> dict[str, Any]:
        """`userIdentity` of a CloudTrail record of this principal's call."""
        if self.role_arn is None:
            return {"type": "IAMUser", "principalId": "AIDALOCALHARNESS0001", "arn": self.arn, "accountId": account,
                    "accessKeyId": self.access_key, "userName": self.arn.rsplit("/", 1)[-1]}
        role_id = "AROA" + hashlib.sha256(self.role_arn.encode()).hexdigest()[:17].upper()
        return {
            "type": "AssumedRole",
            "principalId": f"{role_id}:{self.arn.rsplit('/', 1)[-1]}",
            "arn": self.arn,
            "accountId": account,
            "accessKeyId": self.access_key,
            "sessionContext": {
                "sessionIssuer": {"type": "Role", "principalId": role_id, "arn": self.role_arn, "accountId": account,
                                  "userName": self.role_arn.rsplit("/", 1)[-1]},
                "attributes": {"creationDate": utc_now(), "mfaAuthenticated": "false"},
            },
        }


@dataclass
class Invocation:
    """One Lambda invocation: its function's identity and the time it has used of its timeout."""

    function: str
    principal: Principal
    timeout: float
    started: float = field(default_factory=time.monotonic)
    slept: float = 0.0
    timed_out: bool = False

    def used(self) -> float:
        return time.monotonic() - self.started + self.slept

    def charge(self, seconds: float) -> None:
        """A sleep inside the handler: past the timeout, the invocation ends there, as Lambda ends it."""
        left = self.timeout - self.used()
        if seconds >= left:
            self.slept += max(0.0, left)
            self.timed_out = True
            raise LambdaTimedOut(self.function, self.timeout)
        self.slept += seconds


class LambdaTimedOut(BaseException):
    """Raised into a handler that ran out of time. A BaseException, so that no handler catches it."""

    def __init__(self, function: str, timeout: float) -> None:
        super().__init__(f"{function}: Task timed out after {timeout:.2f} seconds")


class LambdaRuntimeExited(BaseException):
    """The runtime dies under the handler (out of memory, the process exits): Lambda reports the invocation
    with its own errorType (Lambda developer guide, "Lambda function errors": Runtime.OutOfMemory,
    Runtime.ExitError), and Step Functions the task as Lambda.Unknown. A BaseException: no handler catches it."""

    def __init__(self, function: str, error_type: str = "Runtime.OutOfMemory") -> None:
        super().__init__(f"{function}: {error_type}")
        self.error_type = error_type


@contextmanager
def invocation(record: Invocation) -> Iterator[Invocation]:
    token = _running.set(record)
    try:
        with _installed[0].busy() if _installed else contextlib.nullcontext():
            yield record
    finally:
        _running.reset(token)


class InvocationCredentials(Credentials):
    """The credentials of the function whose handler runs on this thread (Lambda gives each its role's)."""

    def __init__(self) -> None:
        super().__init__(HARNESS_KEY, HARNESS_KEY, HARNESS_KEY)

    def get_frozen_credentials(self) -> ReadOnlyCredentials:
        running = current_invocation()
        key = running.principal.access_key if running else HARNESS_KEY
        return ReadOnlyCredentials(key, "local-secret", "local-session-token")
