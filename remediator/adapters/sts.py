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


# Assumed-role sessions last an hour; one is reused while it has at least this long left (longer than any
# function's timeout, so a session never expires in the middle of an invocation).
SESSION_SECONDS = 3600
RENEW_BEFORE_SECONDS = 900


def role_arn(partition: str, account: str, role_name: str) -> str:
    return f"arn:{partition}:iam::{account}:role/{role_name}"


def assume_role(clients: ClientFactory, arn: str, session_name: str, region: str | None = None) -> ClientFactory:
    """A client factory whose calls are made as a session of role `arn` (sts:AssumeRole with the caller's own
    credentials; the role's trust policy decides). Same endpoint and retry settings as `clients`."""
    import boto3

    answer = clients.client("sts", region or clients.default_region).assume_role(
        RoleArn=arn, RoleSessionName=session_name[:64], DurationSeconds=SESSION_SECONDS)
    credentials = answer["Credentials"]
    session = boto3.session.Session(
        aws_access_key_id=credentials["AccessKeyId"], aws_secret_access_key=credentials["SecretAccessKey"],
        aws_session_token=credentials["SessionToken"], region_name=clients.session.region_name)
    return ClientFactory(endpoint_url=clients.endpoint_url, session=session, retry_mode=clients.retry_mode,
                         max_attempts=clients.max_attempts)
