"""The stack's settings, read from CDK context and validated at synth time.

Every key lives under the ``remediator:`` prefix; ``cdk.json`` carries the defaults below and
``cdk synth -c remediator:mode=auto`` (or ``App(context=...)``) overrides them:

===================================  ===========================  ==========================================
key                                  default                      meaning
===================================  ===========================  ==========================================
remediator:mode                      "dry-run"                    auto | dry-run | approval
remediator:trustedAccounts           []                           12-digit account IDs trusted besides the
                                                                  owner account
remediator:trustedOrgIds             []                           organization IDs (o-...) trusted
remediator:exemptTagKey              "remediator:exempt"          APIs tagged KEY=true are never changed
remediator:exemptApiIds              []                           REST API IDs never changed
remediator:redeployStages            "all"                        all | none | stage,stage
remediator:removeWildcardPrincipals  false                        also remove "*" principals
remediator:sweepSchedule             "rate(1 day)"                EventBridge rate(...) or cron(...)
remediator:slackChannel              ""                           Slack channel ID (C..., G...) or name for
                                                                  proposals, results and approvals; "" = no
                                                                  Slack (required in approval mode)
remediator:approverUserIds           []                           Slack user IDs (U..., W...) whose Approve
                                                                  / Reject counts (one required in approval
                                                                  mode)
remediator:approvalTimeoutHours      24                           1..8760: an unanswered approval times out
                                                                  and nothing is changed
remediator:callbackReservedConcurrency null (none)              1..100: concurrent executions reserved
                                                                  for (and capping) the public Slack
                                                                  callback (approval mode); unset = none,
                                                                  since accounts with a low concurrency
                                                                  quota cannot reserve any
remediator:deployment                "account"                    account (one stack per account and
                                                                  region) | organization (a hub and a
                                                                  StackSet of spokes, docs/organization.md)
remediator:organizationId            ""                           o-...: the organization (required in
                                                                  organization mode)
remediator:trustOrganization         false                        every active account of the organization
                                                                  is trusted (organization mode only)
remediator:trustedOrganizationalUnits []                          ou-... / r-...: every account under these
                                                                  is trusted (organization mode only)
remediator:spokeOrganizationalUnits  []                           ou-... / r-...: the StackSet's targets
                                                                  (required in organization mode)
remediator:spokeRegions              []                           regions of the spokes and of the
                                                                  organization sweep (required in
                                                                  organization mode); the first one holds
                                                                  the spoke role (IAM is global)
remediator:spokeRoleName             "apigw-remediator-spoke"     the spoke role's name in every member
                                                                  account
remediator:orgSweepConcurrency       40                           1..1000: the organization sweep's
                                                                  MaxConcurrency
remediator:securityHub               "auto"                       auto (import findings into Security Hub
                                                                  when it is enabled in the account and
                                                                  region, checked with DescribeHub) | on |
                                                                  off; account mode only (in organization
                                                                  mode anything but off is refused)
remediator:cloudFormationHook        "off"                        off | fail | warn: a CloudFormation Lambda
                                                                  Hook that checks AWS::ApiGateway::RestApi
                                                                  policies before they are provisioned
                                                                  (fail blocks, warn only reports)
remediator:undeployedChanges         "ask"                        ask | publish | report: when a fix's
                                                                  redeploy would also publish edits of the
                                                                  API its stages do not serve yet: ask a
                                                                  person (approval mode; else reported),
                                                                  publish them with the fix, or report
remediator:operatorRoleArns          []                           arn:<partition>:iam::<this account>:role/..:
                                                                  roles that run the CLI's fix --lease-table
                                                                  (the stack's deployment turns and per-API
                                                                  claims); the table's resource policy lets
                                                                  them write the lease, intent and audit
                                                                  items and nothing else
===================================  ===========================  ==========================================

The keys from remediator:organizationId on belong to organization mode: in account mode a value other
than the default is refused.

Lists may be given as JSON lists, or (from the command line, where context values are strings)
as a JSON list string or a comma-separated string; booleans as true/false or "true"/"false".
A value that cannot be right stops the synth with a ConfigError naming the key.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from remediator.core.principals import ACCOUNT_ID
from remediator.core.trust_config import ORG_ID
from remediator.core.undeployed import UNDEPLOYED_SETTINGS
from remediator.events import REGION, REST_API_ID
from remediator.workflow import MODES

PREFIX = "remediator:"

DEFAULTS: dict[str, Any] = {
    "remediator:mode": "dry-run",
    "remediator:trustedAccounts": [],
    "remediator:trustedOrgIds": [],
    "remediator:exemptTagKey": "remediator:exempt",
    "remediator:exemptApiIds": [],
    "remediator:redeployStages": "all",
    "remediator:removeWildcardPrincipals": False,
    "remediator:sweepSchedule": "rate(1 day)",
    "remediator:slackChannel": "",
    "remediator:approverUserIds": [],
    "remediator:approvalTimeoutHours": 24,
    "remediator:callbackReservedConcurrency": None,
    "remediator:deployment": "account",
    "remediator:organizationId": "",
    "remediator:trustOrganization": False,
    "remediator:trustedOrganizationalUnits": [],
    "remediator:spokeOrganizationalUnits": [],
    "remediator:spokeRegions": [],
    "remediator:spokeRoleName": "apigw-remediator-spoke",
    "remediator:orgSweepConcurrency": 40,
    "remediator:securityHub": "auto",
    "remediator:cloudFormationHook": "off",
    "remediator:operatorRoleArns": [],
    "remediator:undeployedChanges": "ask",
}

# Organization mode only (docs/organization.md): set to anything but the default in account mode, refused.
ORGANIZATION_KEYS = (
    "remediator:organizationId",
    "remediator:trustOrganization",
    "remediator:trustedOrganizationalUnits",
    "remediator:spokeOrganizationalUnits",
    "remediator:spokeRegions",
    "remediator:spokeRoleName",
    "remediator:orgSweepConcurrency",
)
DEPLOYMENTS = ("account", "organization")
# remediator:securityHub: auto = on where Security Hub is enabled (DescribeHub, once per container), else off.
SECURITY_HUB_SETTINGS = ("auto", "on", "off")
# remediator:cloudFormationHook: off, or the Lambda Hook's FailureMode (FAIL blocks the operation, WARN lets it go on).
HOOK_SETTINGS = ("off", "fail", "warn")

# ACCOUNT_ID, ORG_ID, REST_API_ID and MODES are the runtime's own: a value the synth accepts is one every
# execution accepts too (a pattern of its own let the synth take Arabic-Indic digits that every
# execution then refused).
_STAGE_NAME = re.compile(r"[A-Za-z0-9_-]{1,128}")
# An IAM role ARN as aws:PrincipalArn names an assumed role's session (IAM User Guide, "AWS global condition context
# keys": aws:PrincipalArn is the role's ARN, not the session's); role paths allowed, no wildcard.
_ROLE_ARN = re.compile(r"arn:aws(-cn|-us-gov)?:iam::[0-9]{12}:role/[A-Za-z0-9+=,.@_/-]{1,512}")
_TAG_KEY = re.compile(r"[\w.:/=+\-@ ]{1,128}")
_RATE = re.compile(r"rate\((?P<n>[1-9]\d*) (?P<unit>minute|minutes|hour|hours|day|days)\)")
_CRON = re.compile(r"cron\((?P<fields>[^()]+)\)")
# Slack: a conversation ID (C public, G private) or a channel name (lowercase, up to 80 characters);
# user IDs start with U, or W on Enterprise Grid.
_SLACK_CHANNEL = re.compile(r"[CG][A-Z0-9]{8,}|#?[a-z0-9][a-z0-9._-]{0,79}")
_SLACK_USER_ID = re.compile(r"[UW][A-Z0-9]{6,}")
# AWS Organizations: the root (r-...) or an organizational unit (ou-<root part>-<own part>).
_PARENT_ID = re.compile(r"r-[0-9a-z]{4,32}|ou-[0-9a-z]{4,32}-[a-z0-9]{8,32}")
# IAM role names: letters, digits and +=,.@_- (ASCII only), at most 64.
_ROLE_NAME = re.compile(r"[\w+=,.@-]{1,64}", re.ASCII)

# The Distributed Map's MaxConcurrency: at most 10,000; 1,000 is plenty and keeps a misplaced digit from
# hammering every account's API Gateway at once.
MAX_ORG_SWEEP_CONCURRENCY = 1000

# A year: the longest a Standard workflow execution, and so the approval wait, can run.
MAX_APPROVAL_TIMEOUT_HOURS = 8760

# The public Slack callback's reserved concurrency: at least one (zero would switch the callback off),
# and small, since each reserved unit is taken from the account's shared pool. Off unless set: Lambda keeps 100 of the
# account's concurrency unreserved ("You can reserve up to the Unreserved account concurrency value ... minus 100",
# Lambda developer guide, "Configuring reserved concurrency for a function"), and new accounts start with reduced
# concurrency quotas (Lambda developer guide, "Lambda quotas"), so any reservation fails to deploy there.
MAX_CALLBACK_CONCURRENCY = 100

# Lambda: "the total size of all environment variables doesn't exceed 4 KB" (Lambda quotas, "Function configuration,
# deployment, and execution"). The lists that can grow live in the settings parameter (settings_document) instead.
ENVIRONMENT_LIMIT = 4096
# The lists still in the environment, bounded so that it stays under ENVIRONMENT_LIMIT however they are set.
MAX_APPROVERS = 50
MAX_REDEPLOY_STAGES_CHARS = 1024

# SSM String parameters: 4 KB in the standard tier, 8 KB in the advanced tier.
STANDARD_PARAMETER_LIMIT = 4096
ADVANCED_PARAMETER_LIMIT = 8192


class ConfigError(ValueError):
    """A context value that cannot be right; the message names the key."""


@dataclass(frozen=True)
class RemediatorConfig:
    mode: str
    trusted_accounts: tuple[str, ...]
    trusted_org_ids: tuple[str, ...]
    exempt_tag_key: str
    exempt_api_ids: tuple[str, ...]
    redeploy_stages: str
    remove_wildcard_principals: bool
    sweep_schedule: str
    slack_channel: str = ""
    approver_user_ids: tuple[str, ...] = ()
    approval_timeout_hours: int = 24
    callback_reserved_concurrency: int | None = None
    # Organization mode (docs/organization.md); the defaults are account mode's.
    deployment: str = "account"
    organization_id: str = ""
    trust_organization: bool = False
    trusted_ous: tuple[str, ...] = ()
    spoke_ous: tuple[str, ...] = ()
    spoke_regions: tuple[str, ...] = ()
    spoke_role_name: str = "apigw-remediator-spoke"
    org_sweep_concurrency: int = 40
    security_hub: str = "auto"  # SECURITY_HUB_SETTINGS
    cloudformation_hook: str = "off"  # HOOK_SETTINGS
    undeployed_changes: str = "ask"  # UNDEPLOYED_SETTINGS
    operator_role_arns: tuple[str, ...] = ()  # may write the lease, intent and audit items only (fix --lease-table)

    @property
    def organization(self) -> bool:
        return self.deployment == "organization"

    @property
    def approval_timeout_seconds(self) -> int:
        return self.approval_timeout_hours * 3600

    def settings_document(self) -> str:
        """The settings parameter's value: the list settings that can outgrow Lambda's 4 KB environment
        (remediator.adapters.ssm.parse_settings_document reads it back, fail-closed)."""
        return json.dumps({"exempt_api_ids": list(self.exempt_api_ids)}, separators=(",", ":"))

    def trust_document(self) -> str:
        """The SSM parameter value the Lambdas read at run time (organization mode adds two keys)."""
        document: dict[str, Any] = {
            "trusted_accounts": list(self.trusted_accounts),
            "trusted_org_ids": list(self.trusted_org_ids),
        }
        if self.organization:
            document.update(trust_organization=self.trust_organization, trusted_ous=list(self.trusted_ous))
        return json.dumps(document, separators=(",", ":"))


def _string(key: str, value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ConfigError(f"context {key} must be a non-empty string, got {value!r}")
    return value.strip()


def _list(key: str, value: Any) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        text = value.strip()
        if text.startswith("["):
            try:
                value = json.loads(text)
            except json.JSONDecodeError as exc:
                raise ConfigError(f"context {key} is not a valid JSON list: {exc.msg}") from None
        else:
            value = [item for item in text.split(",") if item.strip()]
    if not isinstance(value, (list, tuple)):
        raise ConfigError(f"context {key} must be a list of strings, got {value!r}")
    items = []
    for item in value:
        if not isinstance(item, str):
            raise ConfigError(f"context {key} must be a list of strings, got item {item!r}")
        items.append(item.strip())
    return tuple(dict.fromkeys(items))  # de-duplicated, order kept


def _bool(key: str, value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    raise ConfigError(f"context {key} must be true or false, got {value!r}")


def _each(key: str, items: tuple[str, ...], pattern: re.Pattern[str], what: str) -> tuple[str, ...]:
    for item in items:
        if not pattern.fullmatch(item):
            raise ConfigError(f"context {key}: {item!r} is not {what}")
    return items


def _mode(key: str, value: Any) -> str:
    mode = _string(key, value)
    if mode not in MODES:
        raise ConfigError(f"context {key} must be one of {', '.join(MODES)}; got {mode!r}")
    return mode


def _stages(key: str, value: Any) -> str:
    if isinstance(value, (list, tuple)):
        value = ",".join(str(v) for v in value)
    spec = _string(key, value)
    if spec in ("all", "none"):
        return spec
    names = [name.strip() for name in spec.split(",") if name.strip()]
    _each(key, tuple(names), _STAGE_NAME, "a stage name (letters, digits, - and _)")
    if not names:
        raise ConfigError(f"context {key} must be 'all', 'none' or a comma-separated list of stage names")
    return ",".join(dict.fromkeys(names))


def _schedule(key: str, value: Any) -> str:
    expression = _string(key, value)
    rate = _RATE.fullmatch(expression)
    if rate:
        singular = not rate["unit"].endswith("s")
        if singular != (rate["n"] == "1"):
            raise ConfigError(
                f"context {key}: {expression!r} - EventBridge wants the singular unit for 1 and the plural otherwise, "
                "e.g. rate(1 day), rate(6 hours)"
            )
        return expression
    cron = _CRON.fullmatch(expression)
    if cron and len(cron["fields"].split()) == 6:
        return expression
    raise ConfigError(
        f"context {key} must be an EventBridge schedule expression such as 'rate(1 day)', 'rate(6 hours)' "
        f"or 'cron(0 3 * * ? *)' (six fields); got {expression!r}"
    )


def _optional(key: str, value: Any, pattern: re.Pattern[str], kind: str, form: str) -> str:
    """A string that may be empty ("" or absent: the setting is off) and otherwise must match `pattern`."""
    if value is None:
        return ""
    if not isinstance(value, str):
        raise ConfigError(f"context {key} must be {kind} (a string), got {value!r}")
    text = value.strip()
    if text and not pattern.fullmatch(text):
        raise ConfigError(f"context {key}: {text!r} is not {form}")
    return text


def _slack_channel(key: str, value: Any) -> str:
    return _optional(key, value, _SLACK_CHANNEL, "a Slack channel ID or name",
                     "a Slack channel ID (C... or G..., as in the channel's details) or channel name (lowercase letters, "
                     "digits, - _ .; up to 80 characters)")


def _whole_number(key: str, value: Any, unit: str, highest: int, why: str) -> int:
    """A whole number from 1 to `highest` (a string of digits from the command line too)."""
    # bool is an int in Python; true/false is no number.
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value.strip())
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigError(f"context {key} must be a whole number of {unit}, got {value!r}")
    if not 1 <= value <= highest:
        raise ConfigError(f"context {key} must be between 1 and {highest} {why}; got {value}")
    return value


def _hours(key: str, value: Any) -> int:
    return _whole_number(key, value, "hours", MAX_APPROVAL_TIMEOUT_HOURS,
                         "hours (a year, the longest a Standard workflow execution runs)")


def _concurrency(key: str, value: Any) -> int | None:
    """Unset (null, "" or "none") reserves nothing: the callback shares the account's unreserved pool."""
    if value is None or (isinstance(value, str) and value.strip().lower() in ("", "none")):
        return None
    return _whole_number(key, value, "concurrent executions", MAX_CALLBACK_CONCURRENCY,
                         "(0 would switch the callback off; more takes capacity from every other function of the account)")


def _org_sweep_concurrency(key: str, value: Any) -> int:
    return _whole_number(key, value, "concurrent child executions", MAX_ORG_SWEEP_CONCURRENCY,
                         "(the organization sweep's MaxConcurrency)")


def _deployment(key: str, value: Any) -> str:
    deployment = _string(key, value)
    if deployment not in DEPLOYMENTS:
        raise ConfigError(f"context {key} must be one of {', '.join(DEPLOYMENTS)}; got {deployment!r}")
    return deployment


def _organization_id(key: str, value: Any) -> str:
    return _optional(key, value, ORG_ID, "an AWS Organizations ID",
                     "an AWS Organizations ID (o- followed by 10 to 32 lowercase letters or digits)")


def _role_name(key: str, value: Any) -> str:
    name = _string(key, value)
    if not _ROLE_NAME.fullmatch(name):
        raise ConfigError(f"context {key}: {name!r} is not an IAM role name (up to 64 of letters, digits, +=,.@_-)")
    return name


def _parents(key: str, value: Any) -> tuple[str, ...]:
    return _each(key, _list(key, value), _PARENT_ID,
                 "an organizational unit ID (ou-xxxx-xxxxxxxx) or the root ID (r-xxxx)")


def _regions(key: str, value: Any) -> tuple[str, ...]:
    return _each(key, _list(key, value), REGION, "an AWS Region name such as us-east-1")


def _choice(key: str, value: Any, choices: tuple[str, ...]) -> str:
    """One of a few words; anything else is one line naming the key and the choices."""
    if not isinstance(value, str) or value.strip() not in choices:
        raise ConfigError(f"context {key} must be one of {', '.join(choices)}; got {value!r}")
    return value.strip()


def _organization_settings(value: Any) -> dict[str, Any]:
    """The organization-mode fields of RemediatorConfig, validated; in account mode each must keep its default."""
    deployment = _deployment("remediator:deployment", value("remediator:deployment"))
    parsers = {
        "remediator:organizationId": ("organization_id", _organization_id),
        "remediator:trustOrganization": ("trust_organization", _bool),
        "remediator:trustedOrganizationalUnits": ("trusted_ous", _parents),
        "remediator:spokeOrganizationalUnits": ("spoke_ous", _parents),
        "remediator:spokeRegions": ("spoke_regions", _regions),
        "remediator:spokeRoleName": ("spoke_role_name", _role_name),
        "remediator:orgSweepConcurrency": ("org_sweep_concurrency", _org_sweep_concurrency),
    }
    fields: dict[str, Any] = {"deployment": deployment}
    for key, (field, parse) in parsers.items():
        parsed = parse(key, value(key))
        if deployment != "organization" and parsed != parse(key, DEFAULTS[key]):
            raise ConfigError(
                f"context {key} is a setting of organization mode only; set remediator:deployment=organization "
                "or leave it out"
            )
        fields[field] = parsed
    if deployment == "organization":
        for key, field in (("remediator:organizationId", "organization_id"),
                           ("remediator:spokeOrganizationalUnits", "spoke_ous"),
                           ("remediator:spokeRegions", "spoke_regions")):
            if not fields[field]:
                raise ConfigError(f"context remediator:deployment is organization, which needs {key}")
    return fields


def check_keys(keys: Any) -> None:
    """Every context key under remediator: must be a known setting; the nearest is suggested."""
    import difflib

    for key in keys:
        if isinstance(key, str) and key.startswith(PREFIX) and key not in DEFAULTS:
            near = difflib.get_close_matches(key, list(DEFAULTS), n=1)
            hint = f" (did you mean {near[0]}?)" if near else ""
            raise ConfigError(f"context {key} is not a setting of the remediator{hint}; nothing was synthesized")


def from_context(get: Any) -> RemediatorConfig:
    """Validate the settings. ``get(key)`` returns a context value or None (``node.try_get_context``)."""

    def value(key: str) -> Any:
        found = get(key)
        return DEFAULTS[key] if found is None else found

    trusted_accounts = _each(
        "remediator:trustedAccounts",
        _list("remediator:trustedAccounts", value("remediator:trustedAccounts")),
        ACCOUNT_ID,
        "a 12-digit AWS account ID (write it as a string to keep leading zeros)",
    )
    trusted_org_ids = _each(
        "remediator:trustedOrgIds",
        _list("remediator:trustedOrgIds", value("remediator:trustedOrgIds")),
        ORG_ID,
        "an AWS Organizations ID (o- followed by 10 to 32 lowercase letters or digits)",
    )
    exempt_api_ids = _each(
        "remediator:exemptApiIds",
        _list("remediator:exemptApiIds", value("remediator:exemptApiIds")),
        REST_API_ID,
        "a REST API ID (10 lowercase letters or digits)",
    )
    exempt_tag_key = _string("remediator:exemptTagKey", value("remediator:exemptTagKey"))
    if not _TAG_KEY.fullmatch(exempt_tag_key) or exempt_tag_key.lower().startswith("aws:"):
        raise ConfigError(f"context remediator:exemptTagKey: {exempt_tag_key!r} is not a usable tag key")

    config = RemediatorConfig(
        mode=_mode("remediator:mode", value("remediator:mode")),
        trusted_accounts=trusted_accounts,
        trusted_org_ids=trusted_org_ids,
        exempt_tag_key=exempt_tag_key,
        exempt_api_ids=exempt_api_ids,
        redeploy_stages=_stages("remediator:redeployStages", value("remediator:redeployStages")),
        remove_wildcard_principals=_bool(
            "remediator:removeWildcardPrincipals", value("remediator:removeWildcardPrincipals")
        ),
        sweep_schedule=_schedule("remediator:sweepSchedule", value("remediator:sweepSchedule")),
        slack_channel=_slack_channel("remediator:slackChannel", value("remediator:slackChannel")),
        approver_user_ids=_each(
            "remediator:approverUserIds",
            _list("remediator:approverUserIds", value("remediator:approverUserIds")),
            _SLACK_USER_ID,
            "a Slack user ID (U or W followed by at least 6 capital letters or digits, from the member's "
            "profile: Copy member ID)",
        ),
        approval_timeout_hours=_hours("remediator:approvalTimeoutHours", value("remediator:approvalTimeoutHours")),
        callback_reserved_concurrency=_concurrency(
            "remediator:callbackReservedConcurrency", value("remediator:callbackReservedConcurrency")
        ),
        **_organization_settings(value),
        security_hub=_choice("remediator:securityHub", value("remediator:securityHub"), SECURITY_HUB_SETTINGS),
        cloudformation_hook=_choice("remediator:cloudFormationHook", value("remediator:cloudFormationHook"),
                                    HOOK_SETTINGS),
        undeployed_changes=_choice("remediator:undeployedChanges", value("remediator:undeployedChanges"),
                                   UNDEPLOYED_SETTINGS),
        operator_role_arns=_each(
            "remediator:operatorRoleArns",
            _list("remediator:operatorRoleArns", value("remediator:operatorRoleArns")),
            _ROLE_ARN,
            "an IAM role ARN (arn:<partition>:iam::<12-digit account>:role/<name>), the role the CLI's caller assumes",
        ),
    )
    if config.organization and config.security_hub == "on":
        # BatchImportFindings takes findings of the caller's own account only (API Reference, BatchImportFindings):
        # the hub cannot import its member accounts' findings with its own roles.
        raise ConfigError("context remediator:securityHub=on is a setting of account mode only: in organization mode "
                          "each member account's findings would have to be imported by that account; leave it auto or off")
    if config.mode == "approval":
        # Without a channel nothing can be asked; without approvers every press is refused and each
        # proposal just times out. Both are configuration mistakes better caught at synth.
        if not config.slack_channel:
            raise ConfigError(
                "context remediator:mode is approval, which needs remediator:slackChannel (the Slack channel "
                "the proposals are posted to)"
            )
        if not config.approver_user_ids:
            raise ConfigError(
                "context remediator:mode is approval, which needs at least one Slack user ID in "
                "remediator:approverUserIds (the people allowed to approve or reject)"
            )
    if len(config.approver_user_ids) > MAX_APPROVERS:
        raise ConfigError(f"context remediator:approverUserIds holds {len(config.approver_user_ids)} Slack user IDs; at most "
                          f"{MAX_APPROVERS} fit in the callback's environment (Lambda's 4 KB)")
    if len(config.redeploy_stages) > MAX_REDEPLOY_STAGES_CHARS:
        raise ConfigError(f"context remediator:redeployStages is {len(config.redeploy_stages)} characters; at most "
                          f"{MAX_REDEPLOY_STAGES_CHARS} fit in the functions' environment (Lambda's 4 KB): use 'all'")
    if len(config.settings_document()) > ADVANCED_PARAMETER_LIMIT:
        raise ConfigError(
            f"context remediator:exemptApiIds: {len(config.exempt_api_ids)} IDs exceed the 8 KB an SSM parameter can hold "
            "(about 600 IDs); tag the APIs with remediator:exemptTagKey instead"
        )
    if len(config.trust_document()) > ADVANCED_PARAMETER_LIMIT:
        raise ConfigError(
            "context remediator:trustedAccounts and remediator:trustedOrgIds together exceed the 8 KB "
            "an SSM parameter can hold"
        )
    return config


def cdk_json_context(path: Path | None = None) -> dict[str, Any]:
    """The "context" block of cdk.json, so that `python app.py` and the tests see what `cdk synth` sees."""
    path = path or Path(__file__).resolve().parents[1] / "cdk.json"
    if not path.is_file():
        return {}
    context = json.loads(path.read_text(encoding="utf-8")).get("context", {})
    if not isinstance(context, Mapping):
        raise ConfigError(f"{path}: \"context\" must be an object")
    return dict(context)
