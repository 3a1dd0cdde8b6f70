"""Organization mode: the spoke every member account gets (docs/organization.md), as a service-managed StackSet.

    member account, every spoke region:
      CloudTrail -> default bus -> SpokeForwardRule -> the hub bus (cross-account PutEvents, a role of its own)
    member account, the first spoke region only (IAM is global; a named role exists once per account):
      SpokeRemediationRole: assumed only by the hub's function roles (aws:PrincipalOrgID = the organization),
      allowed exactly the API Gateway calls of the single-account stack's functions (writes on a REST API and its
      stages only: the sub-resources are explicitly denied). The hub's read-only functions assume it with a
      read-only session policy (remediator.adapters.sts.READ_ONLY_SESSION_POLICY).

The StackSet (SERVICE_MANAGED, auto-deployment on) targets remediator:spokeOrganizationalUnits in
remediator:spokeRegions: an account that joins one of those OUs gets the spoke without anyone acting, one
that leaves loses it. The hub passes its account and its bus as StackSet parameters (HubAccountId,
HubBusArn): the hub stack is environment-agnostic, so neither is known at synth time.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from aws_cdk import Acknowledgment, Aws, CfnCondition, CfnParameter, Duration, Fn, Validations
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_sqs as sqs
from cdk_stacksets import (
    Capability,
    DeploymentType,
    OperationPreferences,
    RegionConcurrencyType,
    StackSet,
    StackSetStack,
    StackSetTarget,
    StackSetTemplate,
)
from constructs import Construct

import remediator.functions
from remediator.events import event_pattern
from remediator.functions.needs import denied_writes, spoke_calls
from infra.names import HUB_ROLE_PREFIX, acknowledge_api_paths, hub_role_name

__all__ = ["HUB_ROLE_PREFIX", "SpokeStack", "add_spokes", "hub_role_name", "spoke_api_calls", "spoke_functions"]

if TYPE_CHECKING:
    from infra.config import RemediatorConfig
    from infra.stack import RemediatorStack

STACK_SET_NAME = "apigw-remediator-spokes"
# The StackSet's parameters: what only the deployed hub knows.
HUB_ACCOUNT_PARAMETER = "HubAccountId"
HUB_BUS_PARAMETER = "HubBusArn"


def spoke_functions(config: RemediatorConfig) -> list[str]:
    """The hub functions that assume the spoke role in this configuration (their organization needs say so)."""
    slack = bool(config.slack_channel)
    names = [*remediator.functions.NAMES, *remediator.functions.ORGANIZATION_NAMES]
    return [
        name for name in names
        if (found := remediator.functions.needs(name, config.mode, slack, organization=True)) is not None
        and found.assume_spoke
    ]


def spoke_api_calls(config: RemediatorConfig) -> tuple[tuple[str, str], ...]:
    """The spoke role's API Gateway calls: those the single-account stack grants its functions in this mode."""
    slack = bool(config.slack_channel)
    return spoke_calls([remediator.functions.needs(name, config.mode, slack) for name in remediator.functions.NAMES])


class SpokeStack(StackSetStack):
    """The template every (member account, spoke region) of the StackSet runs."""

    def __init__(self, scope: Construct, construct_id: str, *, config: RemediatorConfig) -> None:
        super().__init__(scope, construct_id)
        self.config = config
        self.template_options.description = (
            "API Gateway resource policy remediator, organization spoke: forwards API Gateway changes to the hub "
            "and holds the role the hub remediates with."
        )
        self.hub_account = CfnParameter(
            self, HUB_ACCOUNT_PARAMETER, type="String", allowed_pattern=r"\d{12}",
            description="The hub's account ID (the remediator's hub stack passes it).",
        )
        self.hub_bus_arn = CfnParameter(
            self, HUB_BUS_PARAMETER, type="String", allowed_pattern=r"arn:[a-z-]+:events:[a-z0-9-]+:\d{12}:event-bus/.+",
            description="The hub's event bus the API Gateway changes are forwarded to.",
        )

        # ---- the role the hub remediates with (once per account: in the first spoke region) -------------
        role_region = config.spoke_regions[0]
        self.role_condition = CfnCondition(
            self, "RoleRegion", expression=Fn.condition_equals(Aws.REGION, role_region)
        )
        self.role_arn = f"arn:{Aws.PARTITION}:iam::{Aws.ACCOUNT_ID}:role/{config.spoke_role_name}"
        self.hub_role_arns = [
            f"arn:{Aws.PARTITION}:iam::{self.hub_account.value_as_string}:role/{hub_role_name(name)}"
            for name in spoke_functions(config)
        ]
        by_path: dict[str, list[str]] = {}
        for action, path in spoke_api_calls(config):
            by_path.setdefault(path, []).append(f"apigateway:{action}")
        # One role for every spoke region of the account: API Gateway ARNs name the region, so each is listed.
        api_statements = [
            {
                "Effect": "Allow",
                "Action": actions,
                "Resource": [f"arn:{Aws.PARTITION}:apigateway:{region}::{path}" for region in config.spoke_regions],
            }
            for path, actions in by_path.items()
        ]
        deny_actions, deny_paths = denied_writes(spoke_api_calls(config))
        if deny_actions:  # the hub changes REST APIs and their stages here, never what is under them
            api_statements.append({
                "Effect": "Deny",
                "Action": list(deny_actions),
                "Resource": [f"arn:{Aws.PARTITION}:apigateway:{region}::{path}"
                             for region in config.spoke_regions for path in deny_paths],
            })
        self.role = iam.CfnRole(
            self,
            "SpokeRemediationRole",
            role_name=config.spoke_role_name,
            description="The API Gateway remediator's hub assumes this role to inspect and fix this account's "
            "REST API resource policies.",
            max_session_duration=3600,
            assume_role_policy_document={
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Effect": "Allow",
                        "Principal": {"AWS": self.hub_role_arns},
                        "Action": "sts:AssumeRole",
                        "Condition": {"StringEquals": {"aws:PrincipalOrgID": config.organization_id}},
                    }
                ],
            },
            policies=[
                iam.CfnRole.PolicyProperty(
                    policy_name="ApiGatewayRemediation",
                    policy_document={"Version": "2012-10-17", "Statement": api_statements},
                )
            ],
        )
        self.role.cfn_options.condition = self.role_condition

        for region in config.spoke_regions:
            acknowledge_api_paths(self.role, region, spoke_api_calls(config), "the hub, through this role,")

        # ---- API Gateway changes, forwarded to the hub ------------------------------------------------
        # Failed calls and this role's own writes (the hub's fixes, restores and redeploys) never match,
        # so a fix can never start another execution.
        pattern = event_pattern([self.role_arn])
        self.dead_letter_queue = sqs.Queue(
            self,
            "ForwardDeadLetterQueue",
            encryption=sqs.QueueEncryption.SQS_MANAGED,
            enforce_ssl=True,
            retention_period=Duration.days(14),
        )
        Validations.of(self.dead_letter_queue).acknowledge(
            Acknowledgment(
                id="AwsSolutions-SQS3",
                reason="This queue is the dead-letter queue of the forward rule's target (events EventBridge "
                "could not deliver to the hub); a dead-letter queue of its own would have nothing to catch.",
            )
        )
        self.hub_bus = events.EventBus.from_event_bus_arn(self, "HubBus", self.hub_bus_arn.value_as_string)
        self.forward_rule = events.Rule(
            self,
            "SpokeForwardRule",
            description="Successful API Gateway calls that can change a REST API's resource policy, made by "
            "anyone but the remediator's spoke role: forwarded to the remediator's hub.",
            event_pattern=events.EventPattern(
                source=pattern["source"], detail_type=pattern["detail-type"], detail=pattern["detail"]
            ),
        )
        self.forward_rule.add_target(
            targets.EventBus(self.hub_bus, dead_letter_queue=self.dead_letter_queue)
        )


def add_spokes(hub: RemediatorStack) -> tuple[SpokeStack, StackSet]:
    """The spoke template and the StackSet that deploys it to every account of the spoke OUs."""
    config = hub.config
    spoke = SpokeStack(hub, "Spoke", config=config)
    parameters: dict[str, Any] = {
        HUB_ACCOUNT_PARAMETER: Aws.ACCOUNT_ID,
        HUB_BUS_PARAMETER: hub.hub_bus.event_bus_arn,
    }
    stack_set = StackSet(
        hub,
        "SpokeStackSet",
        stack_set_name=STACK_SET_NAME,
        description="API Gateway resource policy remediator: the spoke of every member account of the target OUs.",
        target=StackSetTarget.from_organizational_units(
            regions=list(config.spoke_regions), organizational_units=list(config.spoke_ous)
        ),
        template=StackSetTemplate.from_stack_set_stack(spoke),
        deployment_type=DeploymentType.service_managed(
            auto_deploy_enabled=True, auto_deploy_retain_stacks=False, delegated_admin=True
        ),
        capabilities=[Capability.NAMED_IAM],
        parameters=parameters,
        operation_preferences=OperationPreferences(
            max_concurrent_percentage=25,
            failure_tolerance_percentage=10,
            region_concurrency_type=RegionConcurrencyType.PARALLEL,
        ),
    )
    # IAM refuses a trust policy naming a role that does not exist: the hub's roles come first.
    for name in spoke_functions(config):
        stack_set.node.add_dependency(hub.functions[name].role)
    return spoke, stack_set
