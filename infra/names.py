"""Names and cdk-nag acknowledgments the hub stack and its spokes share (infra.stack and infra.spoke both import them; neither imports the
other at module level, so there is no import circle)."""

from __future__ import annotations

from collections.abc import Iterable

from aws_cdk import Acknowledgment, Validations
from constructs import Construct

HUB_ROLE_PREFIX = "apigw-remediator-hub-"


def hub_role_name(function: str) -> str:
    """The role of a hub function (slack_callback -> apigw-remediator-hub-slack_callback; at most 64 characters)."""
    name = f"{HUB_ROLE_PREFIX}{function}"
    if len(name) > 64:
        raise ValueError(f"the role name {name} is longer than IAM's 64 characters")
    return name


def acknowledge_api_paths(role: Construct, region: str, calls: Iterable[tuple[str, str]], who: str) -> None:
    """cdk-nag's IAM5 for the REST API ID wildcards of API Gateway grants (`calls`: (action, path) pairs)."""
    for path in sorted({path for _, path in calls if "*" in path}):
        Validations.of(role).acknowledge(
            Acknowledgment(
                id=f"AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:apigateway:{region}::{path}]",
                reason="API Gateway control-plane permissions are granted on resource paths; a wildcard "
                "for the REST API ID is the narrowest ARN that covers APIs created after deployment, "
                f"which are exactly the ones {who} must inspect or fix.",
            )
        )
