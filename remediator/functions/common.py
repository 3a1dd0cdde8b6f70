"""What the functions share: their settings, their AWS clients, reading the workflow's state, and
turning AWS errors into the workflow's. Each function is its own module beside this one.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from functools import cache
from typing import TYPE_CHECKING, Any

import msgspec
from botocore.exceptions import ClientError

from remediator import containers
from remediator.adapters.clients import ClientFactory
from remediator.adapters.sts import RENEW_BEFORE_SECONDS, SESSION_SECONDS
from remediator.core.trust_config import ORG_ID
from remediator.core.undeployed import UNDEPLOYED_SETTINGS
from remediator.events import REGION, ApiChange
from remediator.journal import IntentConflict, JournalError
from remediator.logs import bind
from remediator.stored import StoredError
from remediator.workflow import MODES, errors
from remediator.workflow.errors import RemediationFailed
from remediator.workflow.state import Evaluation, StateError, WorkflowState

# What only some functions call is imported where it is called: each function's cold start loads what it uses
# (the engine, the API Gateway and Slack adapters, the organization's roster), not what its neighbours use.
if TYPE_CHECKING:
    from remediator.adapters.dynamodb import FailureLedger
    from remediator.adapters.slack import SlackChannel
    from remediator.approvals import ApprovalRequest
    from remediator.organization import Roster
    from remediator.transaction.planning import SweepSettings
    from remediator.transaction.remediator import Remediator

ROLE_NAME = re.compile(r"[\w+=,.@-]{1,64}")


@cache
def clients() -> ClientFactory:
    """One client factory per Lambda container (AWS_ENDPOINT_URL points it at an emulator locally)."""
    return ClientFactory()


class Settings(msgspec.Struct, frozen=True):
    """What the stack configures through the environment."""

    mode: str
    trust_parameter: str
    exempt_tag_key: str
    exempt_api_ids: frozenset[str]
    stages: str
    remove_wildcards: bool
    audit_table: str
    topic_arn: str
    state_machine_arn: str
    slack_channel: str = ""
    slack_token_secret: str = ""
    slack_signing_secret: str = ""
    slack_api_url: str | None = None
    approvers: frozenset[str] = frozenset()
    approval_timeout_seconds: int = 24 * 3600
    own_roles: frozenset[str] = frozenset()
    # Organization mode (docs/organization.md); "account" is the single-account stack.
    deployment: str = "account"
    organization_id: str = ""
    spoke_role_name: str = ""
    sweep_regions: tuple[str, ...] = ()
    results_bucket: str = ""
    org_sweep_concurrency: int = 40
    # The parameter of the list settings that can outgrow Lambda's 4 KB environment (the exempt API IDs; the
    # stack's); without it (the local runner, older stacks) EXEMPT_API_IDS alone says which APIs are exempt.
    settings_parameter: str = ""
    # What a fix does when its redeploy would also publish edits not deployed yet (remediator.core.undeployed.UNDEPLOYED_SETTINGS).
    undeployed_changes: str = "ask"

    @classmethod
    def from_environment(cls) -> Settings:
        env = os.environ
        mode = env.get("REMEDIATOR_MODE", "dry-run")
        if mode not in MODES:
            raise RemediationFailed(f"REMEDIATOR_MODE {mode!r} is not one of {', '.join(MODES)}")
        return cls(
            mode=mode,
            trust_parameter=env.get("TRUST_PARAMETER_NAME", ""),
            exempt_tag_key=env["EXEMPT_TAG_KEY"] if "EXEMPT_TAG_KEY" in env else _default_exempt_tag_key(),
            exempt_api_ids=_exempt_api_ids(env.get("EXEMPT_API_IDS", "")),
            stages=_stages(env.get("REDEPLOY_STAGES", "all")),
            remove_wildcards=_flag(env, "REMOVE_WILDCARD_PRINCIPALS"),
            audit_table=env.get("AUDIT_TABLE_NAME", ""),
            topic_arn=env.get("TOPIC_ARN", ""),
            state_machine_arn=env.get("STATE_MACHINE_ARN", ""),
            slack_channel=env.get("SLACK_CHANNEL", ""),
            slack_token_secret=env.get("SLACK_BOT_TOKEN_SECRET", ""),
            slack_signing_secret=env.get("SLACK_SIGNING_SECRET_SECRET", ""),
            slack_api_url=env.get("SLACK_API_URL") or None,
            approvers=frozenset(u.strip() for u in env.get("APPROVER_USER_IDS", "").split(",") if u.strip()),
            approval_timeout_seconds=_timeout(env.get("APPROVAL_TIMEOUT_SECONDS", str(24 * 3600))),
            own_roles=frozenset(r.strip() for r in env.get("REMEDIATOR_ROLE_ARNS", "").split(",") if r.strip()),
            settings_parameter=env.get("SETTINGS_PARAMETER_NAME", ""),
            undeployed_changes=_undeployed(env.get("UNDEPLOYED_CHANGES", "ask")),
            **_organization_settings(env),
        )

    @property
    def organization(self) -> bool:
        return self.deployment == "organization"

    def roster(self) -> Roster:
        """The organization's roster as the last refresh wrote it (read consistently: an account that left is
        refused from the refresh on). None written yet, or malformed: nothing may be judged by it."""
        from remediator.adapters.dynamodb import RosterStore
        from remediator.organization import RosterError

        try:
            roster = RosterStore(clients(), self.audit_table, self.organization_id).read()
        except RosterError as error:
            raise RemediationFailed(f"the organization's roster cannot be read: {error}") from None
        if roster is None:
            raise RemediationFailed(f"no roster of organization {self.organization_id} yet: run the roster function first")
        return roster

    def notice_place(self, account: str, region: str) -> str:
        """Where the notices of an account's region are kept: per region, and per account in an organization."""
        return f"{region}#{account}" if self.organization else region

    def member_clients(self, account: str, region: str, function: str, read_only: bool = True) -> ClientFactory:
        """The clients a state makes its API Gateway calls in `account` with: the caller's own in a single-account
        stack (its role holds exactly its needs); in an organization, a session of the account's spoke role, assumed
        on the first call and only for an active account of the organization, and read-only (a session policy that
        leaves apigateway:GET) unless the state writes."""
        if not self.organization:
            return clients()
        return SpokeClients(self, account, region, function, read_only)  # type: ignore[return-value]

    @property
    def slack_enabled(self) -> bool:
        return bool(self.slack_channel and self.slack_token_secret)

    def slack(self, timeout: int = 5, retry: bool = True) -> SlackChannel:
        from remediator.adapters.secrets import secret_value
        from remediator.adapters.slack import SlackChannel

        token = secret_value(clients(), self.slack_token_secret)
        return SlackChannel(token, self.slack_channel, self.slack_api_url, timeout=timeout, retry=retry)

    def sweep_settings(self, account: str, region: str, read_trust_lists: bool = True, fresh: bool = False) -> SweepSettings:
        """The trusted lists are read at run time (so they change without a redeploy), by the states that judge:
        kept a minute per container, except by the state that writes (`fresh`)."""
        from remediator.adapters.ssm import TrustDocument, settings_document, trust_document
        from remediator.core import TrustConfig
        from remediator.organization import RosterError
        from remediator.transaction.planning import StageSelection, SweepSettings

        read = read_trust_lists and self.trust_parameter
        document = trust_document(clients(), self.trust_parameter, fresh=fresh) if read else TrustDocument(frozenset(), frozenset())
        accounts, orgs = document.trusted_accounts, document.trusted_org_ids
        if read and self.organization and (document.trust_organization or document.trusted_ous):
            try:
                accounts = accounts | self.roster().trusted(document.trust_organization, document.trusted_ous)
            except RosterError as error:
                raise RemediationFailed(str(error)) from None
        trust = TrustConfig(
            owner_account=account,
            trusted_accounts=accounts,
            trusted_org_ids=orgs,
            partition=partition_of(region),
            remove_wildcard_principals=self.remove_wildcards,
        )
        exempt = self.exempt_api_ids
        if read_trust_lists and self.settings_parameter:  # the states that judge: read as strictly as the trust lists
            exempt = exempt | settings_document(clients(), self.settings_parameter, fresh=fresh).exempt_api_ids
        return SweepSettings(trust, self.exempt_tag_key, exempt, StageSelection(self.stages), self.undeployed_changes)


def _default_exempt_tag_key() -> str:
    """The stack always sets EXEMPT_TAG_KEY; the default is the planner's (which loads the engine)."""
    from remediator.transaction.planning import DEFAULT_EXEMPT_TAG_KEY

    return DEFAULT_EXEMPT_TAG_KEY


def _exempt_api_ids(value: str) -> frozenset[str]:
    """Fail closed: a malformed ID would exempt nothing, silently."""
    ids = frozenset(i.strip() for i in value.split(",") if i.strip())
    bad = sorted(i for i in ids if not REST_API_ID.fullmatch(i))
    if bad:
        raise RemediationFailed(f"EXEMPT_API_IDS holds {', '.join(map(repr, bad[:3]))[:200]}, which are not REST API IDs")
    return ids


def _stages(value: str) -> str:
    """'all', 'none', or stage names as API Gateway allows them (remediator.stored.StageName)."""
    names = [n.strip() for n in value.split(",") if n.strip()]
    if value.strip() in ("all", "none"):
        return value.strip()
    if not names or not all(STAGE_NAME.fullmatch(n) for n in names):
        raise RemediationFailed(f"REDEPLOY_STAGES {value!r:.200} is not 'all', 'none' or a list of stage names")
    return value


def _undeployed(value: str) -> str:
    """Fail closed: a misspelt value must not publish someone's unfinished edits."""
    if value not in UNDEPLOYED_SETTINGS:
        raise RemediationFailed(f"UNDEPLOYED_CHANGES {value!r:.40} is not one of {', '.join(UNDEPLOYED_SETTINGS)}")
    return value


def _flag(env: Mapping[str, str], name: str) -> bool:
    """Exactly true or false: a misspelt value must not turn a setting off unnoticed."""
    value = env.get(name, "false").strip().lower()
    if value not in ("true", "false"):
        raise RemediationFailed(f"{name} {value!r:.40} is not true or false")
    return value == "true"


def _timeout(value: str) -> int:
    """Whole seconds; Step Functions allows a task at most a year (its maximum execution time)."""
    if not (value.isascii() and value.isdigit() and len(value) <= 12) or not 1 <= int(value) <= 365 * 24 * 3600:
        raise RemediationFailed(f"APPROVAL_TIMEOUT_SECONDS {value!r:.40} is not a number of seconds up to a year")
    return int(value)


REST_API_ID = re.compile(r"[a-z0-9]{10}")
STAGE_NAME = re.compile(r"[A-Za-z0-9_-]{1,128}")  # API Gateway's rule for stage names (remediator.stored.StageName)


def _organization_settings(env: Mapping[str, str]) -> dict[str, Any]:
    """Fail closed: organization mode without its organization or spoke role is a broken deployment."""
    deployment = env.get("REMEDIATOR_DEPLOYMENT", "account")
    if deployment not in ("account", "organization"):
        raise RemediationFailed(f"REMEDIATOR_DEPLOYMENT {deployment!r} is not account or organization")
    if deployment == "account":
        return {}
    organization_id, role = env.get("ORGANIZATION_ID", ""), env.get("SPOKE_ROLE_NAME", "")
    if not ORG_ID.fullmatch(organization_id) or not ROLE_NAME.fullmatch(role):
        raise RemediationFailed(f"organization mode needs ORGANIZATION_ID (o-...) and SPOKE_ROLE_NAME; got {organization_id!r}, {role!r}")
    regions = tuple(r.strip() for r in env.get("SWEEP_REGIONS", "").split(",") if r.strip())
    bad = [r for r in regions if not REGION.fullmatch(r)]
    concurrency = env.get("ORG_SWEEP_CONCURRENCY", "40")
    if bad or not concurrency.isdigit() or not 1 <= int(concurrency) <= 1000:
        raise RemediationFailed(f"SWEEP_REGIONS {bad!r} or ORG_SWEEP_CONCURRENCY {concurrency!r} is not valid")
    return {"deployment": deployment, "organization_id": organization_id, "spoke_role_name": role, "sweep_regions": regions,
            "results_bucket": env.get("RESULTS_BUCKET", ""), "org_sweep_concurrency": int(concurrency)}


# A spoke role session is kept per container while it has RENEW_BEFORE_SECONDS left (sessions last an hour).
_sessions: containers.Kept[ClientFactory] = containers.Kept(SESSION_SECONDS - RENEW_BEFORE_SECONDS)


def forget_sessions() -> None:
    """A new container, as far as the spoke role sessions are concerned (the local runner, between deployments)."""
    _sessions.clear()


class NotEnrolled(RemediationFailed):
    """The hub may not assume the account's spoke role (AccessDenied): the account has no spoke (the StackSet does not
    target it) or one that does not trust the hub. The organization sweep reports it as not enrolled, not as a failure;
    Step Functions sees the class name as the error name (the Map child's Catch takes States.ALL)."""


def _assume_spoke(arn: str, account: str, session_name: str, read_only: bool) -> ClientFactory:
    from remediator.adapters.sts import assume_role

    try:
        return assume_role(clients(), arn, session_name, read_only=read_only)
    except ClientError as error:
        detail = error.response.get("Error", {})
        if detail.get("Code") == "AccessDenied":
            raise NotEnrolled(f"account {account} is not enrolled: the hub may not assume {arn} (AccessDenied: "
                              f"{str(detail.get('Message') or '')[:200]})") from None
        raise


class SpokeClients:
    """A member account's clients: its spoke role, assumed (after the roster says the account is an active one of
    the organization) on the first call, so that a state that never calls API Gateway never assumes it."""

    def __init__(self, settings: Settings, account: str, region: str, function: str, read_only: bool = True) -> None:
        self.settings, self.account, self.region, self.function = settings, account, region, function
        self.read_only = read_only
        self.endpoint_url = clients().endpoint_url
        self._member = False  # checked against the roster, once per invocation (a kept session is not a pass)

    @property
    def default_region(self) -> str:
        return self.region

    def client(self, service: str, region: str | None = None) -> Any:
        if not self._member:
            if not aws_call(self.settings.roster).is_member(self.account):
                raise RemediationFailed(f"account {self.account} is not an active account of organization "
                                        f"{self.settings.organization_id}; nothing changed")
            self._member = True
        from remediator.adapters.sts import role_arn

        arn = role_arn(partition_of(self.region), self.account, self.settings.spoke_role_name)
        factory = aws_call(lambda: _sessions.get((self.endpoint_url, arn, self.read_only), lambda: _assume_spoke(
            arn, self.account, f"apigw-remediator-{self.function}", self.read_only)))
        return factory.client(service, region)


def partition_of(region: str) -> str:
    if region.startswith("us-gov-"):
        return "aws-us-gov"
    if region.startswith("cn-"):
        return "aws-cn"
    if region.startswith("us-isob-"):
        return "aws-iso-b"
    if region.startswith("us-iso-"):
        return "aws-iso"
    return "aws"


def own_account(context: Any) -> str:
    arn = getattr(context, "invoked_function_arn", "") or ""
    parts = arn.split(":")
    if len(parts) > 4 and parts[4]:
        return parts[4]
    from remediator.adapters.sts import caller_identity

    return caller_identity(clients()).account


def read_state(event: dict[str, Any], context: Any) -> tuple[WorkflowState, ApiChange, Settings]:
    try:
        state = WorkflowState.from_dict(event["input"] if isinstance(event, dict) else None)
    except (KeyError, StateError) as error:
        raise RemediationFailed(f"state input is not a workflow state: {error}") from None
    change = state.change
    bind(event_id=change.event_id, execution=event.get("execution"), api_id=change.api_id, region=change.region)
    settings = Settings.from_environment()
    owner = own_account(context)
    # In an organization the API is a member account's (checked against the roster before any call there).
    if change.account != owner and not settings.organization:
        raise RemediationFailed(f"the change names account {change.account}, not this remediator's account {owner}; nothing changed")
    return state, change, settings


def remediator_for(change: ApiChange, settings: Settings, execution: str | None, judges: bool = True,
                   writes: bool = False, writes_api: bool = False) -> Remediator:
    """`judges`: whether this state evaluates policies (and so needs the trusted lists); `writes`: whether it
    removes principals (and so reads the lists fresh); `writes_api`: whether it writes to API Gateway (else, in an
    organization, its spoke session is read-only). The execution holds the API's open intent and takes
    the account's deployment lease."""
    from remediator.adapters.apigateway import ApiGatewayAdapter
    from remediator.adapters.dynamodb import DynamoJournal, DynamoLease
    from remediator.transaction.remediator import Remediator

    sweep_settings = settings.sweep_settings(change.account, change.region, read_trust_lists=judges, fresh=writes)
    journal = DynamoJournal(clients(), settings.audit_table)
    lease = DynamoLease(clients(), settings.audit_table, change.account)
    triggered_by = f"{change.event_name} {change.event_id} by {change.caller.describe()} (execution {execution})"
    adapter = ApiGatewayAdapter(settings.member_clients(  # type: ignore[arg-type]
        change.account, change.region, _function_name(), read_only=not writes_api))
    return Remediator(adapter, sweep_settings, journal, lease, change.account, triggered_by, holder=f"execution:{execution}")


def _function_name() -> str:
    return os.environ.get("AWS_LAMBDA_FUNCTION_NAME") or containers.current() or "function"


def aws_call(action: Any) -> Any:
    """An AWS error that outlived botocore's retries becomes the workflow's error for it: `Throttled` and
    `Transient` are retried by the state machine, anything else (`RemediationFailed`) is caught."""
    try:
        return action()
    except ClientError as error:
        raise errors.from_aws(error.response.get("Error", {}).get("Code"), str(error)) from None
    except IntentConflict as error:
        raise RemediationFailed(f"another change of this API took over: {error}") from None
    except (StoredError, JournalError) as error:  # an item read back that the bot never wrote: one line, no traceback
        raise RemediationFailed(str(error)) from None


def ledger(settings: Settings) -> FailureLedger:
    from remediator.adapters.dynamodb import FailureLedger

    return FailureLedger(clients(), settings.audit_table)


def request_from_state(state: WorkflowState, change: ApiChange, execution: str, token: str, expires_at: int) -> ApprovalRequest:
    from remediator.approvals import ApprovalRequest, new_approval_id

    evaluation = state.evaluation or Evaluation("", "")
    return ApprovalRequest(
        approval_id=new_approval_id(),
        execution=execution,
        task_token=token,
        account=change.account,
        region=change.region,
        api_id=change.api_id,
        api_name=evaluation.name or change.api_id,
        changed_by=change.caller.describe(),
        findings=evaluation.findings,
        patch_operations=evaluation.patch_operations,
        policy_before=evaluation.policy or "",
        expires_at=expires_at,
        undeployed=list(evaluation.undeployed_changes),
    )
