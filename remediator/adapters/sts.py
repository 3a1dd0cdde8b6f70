"""STS: who is calling, which is the owner account when none is given; sessions of other accounts' roles."""

from __future__ import annotations

import json
from typing import Any

import msgspec

from remediator.adapters.clients import ClientFactory, new_session


class CallerIdentity(msgspec.Struct, frozen=True):
    account: str
    arn: str

    @property
    def partition(self) -> str:
        return self.arn.split(":")[1]


def caller_identity(clients: ClientFactory) -> CallerIdentity:
    response = clients.client("sts", clients.default_region).get_caller_identity()
    return CallerIdentity(response["Account"], response["Arn"])


# Assumed-role sessions last an hour; one is reused while it has at least this long left (longer than any
# function's timeout, so a session never expires in the middle of an invocation).
SESSION_SECONDS = 3600
RENEW_BEFORE_SECONDS = 900


def role_arn(partition: str, account: str, role_name: str) -> str:
    return f"arn:{partition}:iam::{account}:role/{role_name}"


# The session policy of a read-only session. A session's permissions are the intersection of the role's identity
# policies and the session policy (IAM user guide, "Policies and permissions in AWS Identity and Access Management",
# Session policies: "The resulting session's permissions are the intersection of the entity's identity-based
# policies and the session policies"): whatever the role allows, such a session can only read API Gateway. Passing a
# session policy takes no permission beyond sts:AssumeRole (sts:AssumeRole API reference, `Policy`).
READ_ONLY_SESSION_POLICY: dict[str, Any] = {
    "Version": "2012-10-17",
    "Statement": [{"Sid": "ReadApiGatewayOnly", "Effect": "Allow", "Action": "apigateway:GET", "Resource": "*"}],
}


def assume_role(clients: ClientFactory, arn: str, session_name: str, region: str | None = None, *,
                read_only: bool = False) -> ClientFactory:
    """A client factory whose calls are made as a session of role `arn` (sts:AssumeRole with the caller's own
    credentials; the role's trust policy decides). Same endpoint and retry settings as `clients`.

    `read_only`: the session can only read (READ_ONLY_SESSION_POLICY), whatever the role allows; every evaluation,
    sweep, scan and dry run takes such a session, so that no bug in them can write in the accounts they read."""
    policy = {"Policy": json.dumps(READ_ONLY_SESSION_POLICY, separators=(",", ":"))} if read_only else {}
    answer = clients.client("sts", region or clients.default_region).assume_role(
        RoleArn=arn, RoleSessionName=session_name[:64], DurationSeconds=SESSION_SECONDS, **policy)
    credentials = answer["Credentials"]
    session = new_session(
        aws_access_key_id=credentials["AccessKeyId"], aws_secret_access_key=credentials["SecretAccessKey"],
        aws_session_token=credentials["SessionToken"], region_name=clients.session.region_name)
    return ClientFactory(endpoint_url=clients.endpoint_url, session=session, retry_mode=clients.retry_mode,
                         max_attempts=clients.max_attempts)
