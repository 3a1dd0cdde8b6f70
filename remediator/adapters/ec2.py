"""EC2, only for the list of regions enabled for the account (`--regions all`)."""

from __future__ import annotations

from remediator.adapters.clients import ClientFactory


def enabled_regions(clients: ClientFactory) -> list[str]:
    response = clients.client("ec2", clients.default_region).describe_regions(
        Filters=[{"Name": "opt-in-status", "Values": ["opt-in-not-required", "opted-in"]}]
    )
    return sorted(region["RegionName"] for region in response["Regions"])
