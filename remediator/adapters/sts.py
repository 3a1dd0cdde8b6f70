"""STS: who is calling, which is the owner account when none is given."""

from __future__ import annotations

from dataclasses import dataclass

from remediator.adapters.clients import ClientFactory


@dataclass(frozen=True)
class CallerIdentity:
    account: str
    arn: str

    @property
    def partition(self) -> str:
        return self.arn.split(":")[1]


def caller_identity(clients: ClientFactory) -> CallerIdentity:
    response = clients.client("sts", clients.default_region).get_caller_identity()
    return CallerIdentity(response["Account"], response["Arn"])
