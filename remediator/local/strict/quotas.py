"""API Gateway's control-plane quotas, as token buckets on the local clock.
"""

from __future__ import annotations

import collections
import threading
from dataclasses import dataclass

from remediator.local.strict.clock import LocalClock


@dataclass
class Bucket:
    """A token bucket on the local clock."""

    capacity: float
    per_second: float
    tokens: float = -1.0
    updated: float = 0.0

    def take(self, now: float) -> float:
        """0 if a token was taken; otherwise how long until one is there."""
        if self.tokens < 0:
            self.tokens, self.updated = self.capacity, now
        self.tokens = min(self.capacity, self.tokens + (now - self.updated) * self.per_second)
        self.updated = now
        if self.tokens >= 1:
            self.tokens -= 1
            return 0.0
        return (1 - self.tokens) / self.per_second


# API Gateway's fixed control-plane quotas (developer guide, "Amazon API Gateway quotas"): per account,
# whatever the region; none can be raised. Every other operation counts against the total only.
API_GATEWAY_QUOTAS: dict[str, tuple[float, float]] = {  # operation -> (burst, requests per second)
    "CreateDeployment": (1, 1 / 5),
    "CreateRestApi": (1, 1 / 3),
    "ImportRestApi": (1, 1 / 3),
    "PutRestApi": (1, 1.0),
    "DeleteRestApi": (1, 1 / 30),
    "CreateResource": (5, 5.0),
    "DeleteResource": (5, 5.0),
    "GetResources": (5, 5 / 2),
    "UpdateAccount": (1, 1 / 20),
    "CreateApiKey": (5, 5.0),
    "DeleteApiKey": (5, 5.0),
    "CreateDomainName": (1, 1 / 30),
    "DeleteDomainName": (1, 1 / 30),
    "UpdateDomainName": (1, 1 / 30),
    "UpdateUsagePlan": (1, 1 / 20),
    "CreateDocumentationVersion": (1, 1 / 20),
    "ImportDocumentationParts": (1, 1 / 30),
}
API_GATEWAY_TOTAL = (40, 10.0)  # total operations: 10 requests per second, bursts of 40


class Quotas:
    def __init__(self, clock: LocalClock) -> None:
        self.clock = clock
        self._buckets: dict[str, Bucket] = {}
        self._lock = threading.Lock()
        self.waited: collections.Counter[str] = collections.Counter()  # patient callers' waits, per quota
        self.refused: collections.Counter[str] = collections.Counter()  # others' calls refused (429), per quota

    def held_back(self, name: str) -> int:
        """Calls the quota held back: waits of patient callers and refusals of the others."""
        return self.waited[name] + self.refused[name]

    def admit(self, operation: str, patient: bool) -> bool:
        """Whether the call may go ahead now; a patient caller waits (on the local clock) for its turn."""
        names = ["*total*"] + ([operation] if operation in API_GATEWAY_QUOTAS else [])
        while True:
            with self._lock:
                now = self.clock.monotonic()
                waits = [self._bucket(name).take(now) for name in names]
                if not any(waits):
                    return True
                for name, wait in zip(names, waits):  # give back what was taken: the call does not happen
                    if not wait:
                        self._buckets[name].tokens += 1
                if not patient:
                    self.refused.update(name for name, wait in zip(names, waits) if wait)
                    return False
                self.waited.update(name for name, wait in zip(names, waits) if wait)
            self.clock.advance_to(now + max(waits))

    def _bucket(self, name: str) -> Bucket:
        if name not in self._buckets:
            burst, rate = API_GATEWAY_TOTAL if name == "*total*" else API_GATEWAY_QUOTAS[name]
            self._buckets[name] = Bucket(burst, rate)
        return self._buckets[name]
