"""The event-driven remediation workflow: EventBridge and a schedule start a Step Functions
state machine whose tasks are the remediator Lambdas.

    CloudTrail (API Gateway writes) -> EventBridge rule -> trigger Lambda --+
    schedule rule -> sweep Lambda ------------------------------------------+-> state machine
        Evaluate -> (Propose | AwaitApproval | Apply -> Redeploy [-> RestorePolicy] -> Record -> Notify) -> ...
    Slack (Approve / Reject) -> Function URL -> slack_callback Lambda -> SendTaskSuccess / SendTaskFailure

The state machine's definition is remediator/workflow/definition.json, used unchanged: the
stack only substitutes the function ARNs for its ${<Name>FunctionArn} placeholders.

With remediator:deployment = organization the same stack is the organization's hub (docs/organization.md):
the API-change rule listens on the hub's own bus (fed by every member account's spoke, infra/spoke.py),
the functions' roles have fixed names (the spokes' role trusts them), and an organization sweep
(remediator/workflow/org_sweep.json, a Distributed Map) replaces the scheduled sweep Lambda.
"""

from __future__ import annotations

from typing import Any

from aws_cdk import (
    Acknowledgment,
    ArnFormat,
    Aws,
    CfnOutput,
    Duration,
    Fn,
    RemovalPolicy,
    Stack,
    Validations,
)
from aws_cdk import aws_cloudformation as cloudformation
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as cw_actions
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_secretsmanager as secretsmanager
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sqs as sqs
from aws_cdk import aws_ssm as ssm
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

import remediator.functions
import remediator.workflow
from remediator.functions.needs import (
    APPROVAL_ITEM_KEYS,
    AUDIT_ITEM_KEYS,
    FAILURE_ITEM_KEYS,
    JOURNAL_ITEM_KEYS,
    NOTICE_ITEM_KEYS,
    ORGANIZATION_READS,
    ROSTER_ITEM_KEYS,
    Needs,
    denied_writes,
)
from remediator.events import event_pattern
from infra.asset import build_lambda_asset
from infra.config import STANDARD_PARAMETER_LIMIT, RemediatorConfig
from infra.names import acknowledge_api_paths, hub_role_name

# The state-machine tasks, named as in the definition's ${<Name>FunctionArn} placeholders.
TASKS = remediator.workflow.FUNCTIONS

RUNTIME = lambda_.Runtime.PYTHON_3_12
LOG_RETENTION = logs.RetentionDays.THREE_MONTHS

# Organization mode: fixed names (a hub per organization; the spokes and the Distributed Map name them).
HUB_BUS_NAME = "apigw-remediator-hub"
ORG_SWEEP_NAME = "apigw-remediator-org-sweep"
RESULTS_PREFIX = "results"  # org_sweep.json's ResultWriter Prefix
RESULTS_EXPIRY = Duration.days(90)
ROSTER_SCHEDULE = "rate(1 day)"
# The hub's function roles have fixed names, so that the spokes' role can trust them by ARN (infra/spoke.py).
# The organization's account events (CloudTrail, from the management account, us-east-1) that change the roster.
ACCOUNT_EVENTS = ("CreateAccountResult", "InviteAccountToOrganization", "AcceptHandshake",
                  "RemoveAccountFromOrganization", "LeaveOrganization", "MoveAccount", "CloseAccount")
ACCOUNT_EVENT_TYPES = ("AWS API Call via CloudTrail", "AWS Service Event via CloudTrail")


# Item writes, denied by the table's resource policy to every principal but the stack's own function roles
# (the DynamoDB developer guide, "Using resource-based policies for DynamoDB"; the actions as the Service Authorization
# Reference lists them for Amazon DynamoDB). A transaction's items are authorized as these per-item actions.
TABLE_WRITE_ACTIONS = ("dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem", "dynamodb:BatchWriteItem",
                       "dynamodb:PartiQLInsert", "dynamodb:PartiQLUpdate", "dynamodb:PartiQLDelete")
# What remediator:operatorRoleArns may write (fix --lease-table): the deployment lease, the intents (the per-API
# claims, remediator.shared_journal) and the audit records their changes close with.
OPERATOR_ITEM_KEYS = ("lease#deployments", "intent#*", "api#*")


def for_partition(definition: str) -> str:
    """The definitions name Step Functions' service integrations by ARN ("arn:aws:states:::lambda:invoke..."): here
    in the stack's partition (AWS::Partition), so that the aws-us-gov and aws-cn synths are as right as aws's."""
    return definition.replace('"arn:aws:', f'"arn:{Aws.PARTITION}:')


def needs_of(name: str, config: RemediatorConfig) -> Needs | None:
    """What function `name` needs in a stack of this configuration, as the function's own module declares
    it (remediator/functions/<name>.py); None where the workflow never reaches it in this mode."""
    return remediator.functions.needs(name, config.mode, bool(config.slack_channel), organization=config.organization)


def reachable(name: str, config: RemediatorConfig) -> bool:
    return needs_of(name, config) is not None


class RemediatorStack(Stack):
    def __init__(self, scope: Construct, construct_id: str, *, config: RemediatorConfig, **kwargs) -> None:
        kwargs.setdefault(
            "description",
            "Remediates Amazon API Gateway REST API resource policies that trust untrusted principals.",
        )
        super().__init__(scope, construct_id, **kwargs)
        self.config = config
        if config.organization:
            # The results bucket's access logs are delivered under a bucket policy for the logging service,
            # not the legacy LogDeliveryWrite ACL (which needs ACLs enabled on the log bucket).
            self.node.set_context("@aws-cdk/aws-s3:serverAccessLogsUseBucketPolicy", True)

        # cfn-lint W3005 ("dependency already enforced by a GetAtt"): CDK makes each function and the
        # state machine DependsOn their role as well as its default policy; the role half is
        # redundant with the Role GetAtt, and harmless. The policy half is what matters.
        self.add_metadata("cfn-lint", {"config": {"ignore_checks": ["W3005"]}})

        # ---- storage, configuration, notification -------------------------------------------
        self.table = dynamodb.Table(
            self,
            "AuditTable",
            partition_key=dynamodb.Attribute(name="pk", type=dynamodb.AttributeType.STRING),
            sort_key=dynamodb.Attribute(name="sk", type=dynamodb.AttributeType.STRING),
            billing_mode=dynamodb.BillingMode.PAY_PER_REQUEST,
            point_in_time_recovery_specification=dynamodb.PointInTimeRecoverySpecification(
                point_in_time_recovery_enabled=True
            ),
            # TTL deletes only what is finished: closed intents, settled approvals (remediator.adapters.dynamodb.TTL).
            # Never the claims and deadlines the code compares (`expires_at`): DynamoDB deletes an expired item at a
            # moment of its own, typically within a few days (DynamoDB developer guide, "Time to Live (TTL)").
            time_to_live_attribute="ttl",
            encryption=dynamodb.TableEncryption.AWS_MANAGED,
            removal_policy=RemovalPolicy.RETAIN,
        )

        self.trust_parameter = self._json_parameter(
            "TrustParameter", "trust", config.trust_document(),
            "Accounts and organizations the remediator trusts (JSON); read by the Lambdas at run time.")
        # The list settings that can grow (exempt API IDs): Lambda's environment holds 4 KB in all ("Lambda quotas"),
        # a parameter 4 KB (standard) or 8 KB (advanced). Read at run time as the trust parameter is.
        self.settings_parameter = self._json_parameter(
            "SettingsParameter", "settings", config.settings_document(),
            "The remediator's list settings (JSON: exempt REST API IDs); read by the Lambdas at run time.")

        # A customer managed key, not alias/aws/sns: CloudWatch alarms cannot publish to a topic
        # encrypted with the AWS managed key, whose key policy cannot be changed. The deployment's only one
        # ($1 a month, "AWS Key Management Service pricing"): everything else is encrypted with AWS owned or
        # AWS managed keys (the table, the queues, the buckets, the secrets), and a service that needs this key
        # gets a statement in its policy (CloudWatch alarms, below; the publishers, in their roles).
        self.topic_key = kms.Key(
            self,
            "TopicKey",
            description="Encrypts the remediator notification topic.",
            enable_key_rotation=True,
            removal_policy=RemovalPolicy.RETAIN,
        )
        self.topic_key.add_to_resource_policy(
            iam.PolicyStatement(
                sid="AllowCloudWatchAlarmsToPublish",
                principals=[iam.ServicePrincipal("cloudwatch.amazonaws.com")],
                actions=["kms:Decrypt", "kms:GenerateDataKey"],
                resources=["*"],  # in a key policy, "*" means this key
            )
        )
        self.topic = sns.Topic(
            self,
            "NotificationTopic",
            display_name="API Gateway resource policy remediator",
            master_key=self.topic_key,
            enforce_ssl=True,
        )
        # The alarms below publish as the CloudWatch service; without this statement the topic policy
        # (whose only other statement denies plain HTTP) gives CloudWatch nothing, and they stay silent.
        # Only this account's alarms (aws:SourceAccount, aws:SourceArn), not any account's CloudWatch.
        self.topic.add_to_resource_policy(
            iam.PolicyStatement(
                sid="AllowThisAccountsAlarmsToPublish",
                principals=[iam.ServicePrincipal("cloudwatch.amazonaws.com")],
                actions=["sns:Publish"],
                resources=[self.topic.topic_arn],
                conditions={
                    "StringEquals": {"aws:SourceAccount": Aws.ACCOUNT_ID},
                    "ArnLike": {"aws:SourceArn": f"arn:{Aws.PARTITION}:cloudwatch:{Aws.REGION}:{Aws.ACCOUNT_ID}:alarm:*"},
                },
            )
        )

        # One dead-letter queue for everything EventBridge (and Lambda's async retries) give up on.
        self.dlq = sqs.Queue(
            self,
            "DeadLetterQueue",
            encryption=sqs.QueueEncryption.SQS_MANAGED,
            enforce_ssl=True,
            retention_period=Duration.days(14),
        )

        # ---- Slack credentials ----------------------------------------------------------------
        # Never in the template or the environment: the functions get the secrets' ARNs and read the
        # values at run time. CloudFormation fills each secret with a random placeholder (nothing
        # sensitive is in the template); an operator puts the real value in after the deploy, e.g.
        #   aws secretsmanager put-secret-value --secret-id <SlackBotTokenSecretArn> --secret-string xoxb-...
        # Until then Slack refuses the placeholder token and no request verifies against the
        # placeholder signing secret, so nothing is posted and no callback is accepted.
        # Encrypted with the AWS managed key (aws/secretsmanager): only this account's principals may
        # use it, through Secrets Manager, so the readers need secretsmanager:GetSecretValue only.
        # Only where Slack is configured (remediator:slackChannel; approval mode requires it): a secret costs
        # $0.40 a month ("AWS Secrets Manager pricing"), so a deployment without Slack has none. The signing
        # secret only in approval mode: only the callback (approval mode's) verifies Slack's requests.
        self.slack_token_secret: secretsmanager.Secret | None = None
        self.slack_signing_secret: secretsmanager.Secret | None = None
        if config.slack_channel:
            self.slack_token_secret = secretsmanager.Secret(
                self,
                "SlackBotTokenSecret",
                description="Slack bot token (xoxb-...) the remediator posts and updates messages with. Created "
                "with a random placeholder; set it with: aws secretsmanager put-secret-value --secret-id "
                "<this secret's ARN> --secret-string xoxb-...",
            )
        if config.slack_channel and config.mode == "approval":
            self.slack_signing_secret = secretsmanager.Secret(
                self,
                "SlackSigningSecret",
                description="Signing secret of the Slack app; the remediator verifies Slack's interactivity "
                "requests with it. Created with a random placeholder; set it with: aws secretsmanager "
                "put-secret-value --secret-id <this secret's ARN> --secret-string <signing secret>",
            )
        for secret in (self.slack_token_secret, self.slack_signing_secret):
            if secret is None:
                continue
            Validations.of(secret).acknowledge(
                Acknowledgment(
                    id="AwsSolutions-SMG4",
                    reason="A third-party credential issued by Slack: only Slack can issue a new bot token or "
                    "signing secret, so Secrets Manager has nothing to rotate it with. It is rotated in the "
                    "Slack app settings and the new value put into this secret (see infra/README.md).",
                )
            )

        # ---- organization mode: the hub's bus and the organization sweep's results ----------------
        self.hub_bus: events.EventBus | None = None
        self.results_bucket: s3.Bucket | None = None
        if config.organization:
            self._hub_bus()
            self._results_bucket()

        # ---- code -----------------------------------------------------------------------------
        code = lambda_.Code.from_asset(str(build_lambda_asset()))
        common_env = {
            "REMEDIATOR_MODE": config.mode,
            "TRUST_PARAMETER_NAME": self.trust_parameter.parameter_name,
            "EXEMPT_TAG_KEY": config.exempt_tag_key,
            "SETTINGS_PARAMETER_NAME": self.settings_parameter.parameter_name,
            "REDEPLOY_STAGES": config.redeploy_stages,
            "REMOVE_WILDCARD_PRINCIPALS": "true" if config.remove_wildcard_principals else "false",
            "AUDIT_TABLE_NAME": self.table.table_name,
            "TOPIC_ARN": self.topic.topic_arn,
            "REMEDIATOR_LOG_LEVEL": "INFO",
            # Slack (approval mode; in the other modes proposals and results are also posted when a
            # channel is set). The secrets' ARNs, never their values.
            "SLACK_CHANNEL": config.slack_channel,
            "SLACK_BOT_TOKEN_SECRET": self.slack_token_secret.secret_arn if self.slack_token_secret else "",
            "SLACK_SIGNING_SECRET_SECRET": self.slack_signing_secret.secret_arn if self.slack_signing_secret else "",
            "APPROVER_USER_IDS": ",".join(config.approver_user_ids),
            "APPROVAL_TIMEOUT_SECONDS": str(config.approval_timeout_seconds),
        }
        if config.security_hub != "auto":  # auto is the functions' default (remediator.functions.security_hub)
            common_env["SECURITY_HUB"] = config.security_hub
        if config.undeployed_changes != "ask":  # ask is the functions' default (remediator.functions.common.Settings)
            common_env["UNDEPLOYED_CHANGES"] = config.undeployed_changes
        if config.organization:
            assert self.results_bucket is not None
            common_env.update(
                REMEDIATOR_DEPLOYMENT=config.deployment,
                ORGANIZATION_ID=config.organization_id,
                SPOKE_ROLE_NAME=config.spoke_role_name,
                SWEEP_REGIONS=",".join(config.spoke_regions),
                RESULTS_BUCKET=self.results_bucket.bucket_name,
                ORG_SWEEP_CONCURRENCY=str(config.org_sweep_concurrency),
            )

        self.functions: dict[str, lambda_.Function] = {}
        for name in TASKS:
            self.functions[name.lower()] = self._function(
                name.lower(), code, common_env, reachable=reachable(name.lower(), config)
            )

        # ---- the workflow ---------------------------------------------------------------------
        self.workflow_log_group = logs.LogGroup(
            self,
            "WorkflowLogs",
            log_group_name=f"/aws/vendedlogs/states/{self.stack_name}-remediation",
            retention=LOG_RETENTION,
            # Named, so DESTROY: a retained group would block re-creating the stack. The audit trail
            # lives in the (retained) table; logs expire after LOG_RETENTION anyway.
            removal_policy=RemovalPolicy.DESTROY,
        )
        definition = for_partition(remediator.workflow.definition_text())
        substitutions = {f"{name}FunctionArn": self.functions[name.lower()].function_arn for name in TASKS}
        missing = remediator.workflow.placeholders() - substitutions.keys()
        if missing:
            raise ValueError(f"the workflow definition references {', '.join(sorted(missing))}, which the stack does not define")
        self.state_machine = sfn.StateMachine(
            self,
            "Workflow",
            state_machine_type=sfn.StateMachineType.STANDARD,
            definition_body=sfn.DefinitionBody.from_string(definition),
            definition_substitutions=substitutions,
            logs=sfn.LogOptions(
                destination=self.workflow_log_group,
                level=sfn.LogLevel.ALL,
                include_execution_data=False,
            ),
            tracing_enabled=True,
        )
        # The definition names unqualified function ARNs, both as a Task's Resource and as the
        # FunctionName of AwaitApproval's lambda:invoke.waitForTaskToken integration; IAM authorizes
        # an unqualified invoke against the unqualified ARN, so no ":*" (version/alias) grant is needed.
        self.state_machine.add_to_role_policy(
            iam.PolicyStatement(
                actions=["lambda:InvokeFunction"],
                resources=[self.functions[name.lower()].function_arn for name in TASKS if reachable(name.lower(), config)],
            )
        )
        self._acknowledge_state_machine_role(self.state_machine.role)

        start_env = {**common_env, "STATE_MACHINE_ARN": self.state_machine.state_machine_arn}
        # Lambda's own async retries end in the same DLQ: EventBridge's DLQ only receives events it
        # could not deliver, not invocations that failed inside the function.
        self.functions["trigger"] = self._function("trigger", code, start_env, dead_letter_queue=self.dlq)
        self.functions["sweep"] = self._function(
            # In an organization the sweep is the Distributed Map's Express child (remediator/workflow/org_sweep.json):
            # 130 s (its 120 s budget and 10 s to gather), under its task's 140 s; a retry stays under Express's 5 minutes.
            "sweep", code, start_env, timeout=Duration.seconds(130) if config.organization else Duration.minutes(5),
            # In an organization the sweep is the Distributed Map's child, invoked synchronously: no async DLQ.
            dead_letter_queue=None if config.organization else self.dlq
        )

        # ---- Slack's callback (approval mode only: the other modes have no public endpoint) -----
        self.slack_callback_url: lambda_.FunctionUrl | None = None
        if config.mode == "approval":
            # Slack must get its answer within 3 s; a normal run is far shorter. 10 s leaves room
            # for a cold start without letting a stuck call run long.
            # Reserved concurrency (remediator:callbackReservedConcurrency, off unless set: accounts with a low
            # concurrency quota cannot reserve any) both guarantees the callback capacity and caps it: a flood of
            # unsigned requests to the public URL is throttled at this number instead of taking the account's
            # shared concurrency from the workflow's own functions.
            self.functions["slack_callback"] = self._function(
                "slack_callback", code, common_env, timeout=Duration.seconds(10),
                reserved_concurrency=config.callback_reserved_concurrency,
            )
            # Auth type NONE on purpose: Slack cannot sign its requests with AWS credentials (SigV4),
            # so a URL with AWS_IAM auth could never be called by it. The authentication is Slack's
            # own request signature (HMAC-SHA256 with the app's signing secret over the timestamp and
            # the raw body, at most 5 minutes old), which remediator.functions.slack_callback verifies
            # before it reads anything else; then only presses by remediator:approverUserIds count,
            # each approval once.
            self.slack_callback_url = self.functions["slack_callback"].add_function_url(
                auth_type=lambda_.FunctionUrlAuthType.NONE
            )
            self._self_invoke("slack_callback")

        # ---- organization mode: the roster and the organization sweep -------------------------------
        self.org_sweep: sfn.StateMachine | None = None
        if config.organization:
            for name, seconds in (("roster", 60), ("plan", 60), ("summarize", 120)):
                self.functions[name] = self._function(
                    name, code, common_env, timeout=Duration.seconds(seconds),
                    dead_letter_queue=self.dlq if name == "roster" else None,
                    reachable=reachable(name, config),
                )
            self._org_sweep()

        # ---- what starts it -------------------------------------------------------------------
        # Exactly-once remediation on at-least-once delivery: the trigger function starts one
        # execution per CloudTrail event, named after the event (event name + CloudTrail eventID, see
        # remediator.events.ApiChange.execution_name). A standard state machine never runs two
        # executions with the same name (names stay reserved for 90 days): a second StartExecution
        # either returns the running execution or fails with ExecutionAlreadyExists, which the trigger
        # reports as a duplicate. So an event that EventBridge delivers twice, or that the retries
        # below (EventBridge's and Lambda's async retries) hand over again, is remediated once.
        # The bot's own writes (and failed calls) never match, so a fix, a restore or a redeploy can
        # never start another execution; the trigger ignores them too, as a second line of defence.
        own_roles = [function.role.role_arn for function in self.functions.values()]
        if config.organization:
            # The member accounts' changes, forwarded by their spokes; the hub's roles write nothing there
            # (their calls are the spoke role's, which each spoke's rule leaves out).
            pattern = event_pattern([])
            self.api_change_rule = events.Rule(
                self,
                "ApiChangeRule",
                description="Successful API Gateway calls that can change a REST API's resource policy, forwarded "
                "by the spokes of the organization's member accounts (their spoke role's own writes left out).",
                event_bus=self.hub_bus,
                event_pattern=events.EventPattern(
                    source=pattern["source"], detail_type=pattern["detail-type"], detail=pattern["detail"]
                ),
            )
        else:
            pattern = event_pattern(own_roles)
            self.api_change_rule = events.Rule(
                self,
                "ApiChangeRule",
                description="Successful API Gateway calls that can change a REST API's resource policy, "
                "made by anyone but this stack's own roles.",
                event_pattern=events.EventPattern(
                    source=pattern["source"],
                    detail_type=pattern["detail-type"],
                    detail=pattern["detail"],
                ),
            )
        self.functions["trigger"].add_environment("REMEDIATOR_ROLE_ARNS", Fn.join(",", own_roles))
        self.api_change_rule.add_target(
            targets.LambdaFunction(
                self.functions["trigger"],
                dead_letter_queue=self.dlq,
                retry_attempts=8,
                max_event_age=Duration.hours(6),
            )
        )

        self.sweep_rule = events.Rule(
            self,
            "SweepSchedule",
            description="Periodic sweep of every REST API of the organization's accounts in the sweep regions."
            if config.organization
            else "Periodic sweep of every REST API in the account and region.",
            schedule=events.Schedule.expression(config.sweep_schedule),
        )
        if config.organization:
            assert self.org_sweep is not None
            self.sweep_rule.add_target(
                targets.SfnStateMachine(
                    self.org_sweep,
                    dead_letter_queue=self.dlq,
                    retry_attempts=2,
                    max_event_age=Duration.hours(1),
                )
            )
            self._roster_rules()
        else:
            self.sweep_rule.add_target(
                targets.LambdaFunction(
                    self.functions["sweep"],
                    dead_letter_queue=self.dlq,
                    retry_attempts=2,
                    max_event_age=Duration.hours(1),
                )
            )

        # ---- permissions ----------------------------------------------------------------------
        for name, function in self.functions.items():
            self._grant(name, function, needs_of(name, config) or Needs())
        self._protect_table(own_roles)

        # ---- the preventive control: a CloudFormation Lambda Hook (remediator:cloudFormationHook) ------
        self.hook_function: lambda_.Function | None = None
        if config.cloudformation_hook != "off":
            self._cloudformation_hook(code)

        # ---- alarms -----------------------------------------------------------------------------
        self.failed_alarm = self._alarm(
            "ExecutionsFailedAlarm",
            "A remediation workflow execution failed; see the failure notification and the workflow logs.",
            self.state_machine.metric_failed(period=Duration.minutes(5), statistic="Sum"),
        )
        self.dlq_alarm = self._alarm(
            "DeadLetterAlarm",
            "Events or invocations that the remediator could not process are in the dead-letter queue.",
            self.dlq.metric_approximate_number_of_messages_visible(period=Duration.minutes(5), statistic="Maximum"),
        )
        if self.org_sweep is not None:
            self.org_sweep_failed_alarm = self._alarm(
                "OrgSweepFailedAlarm",
                "An organization sweep execution failed; see the organization sweep's logs.",
                self.org_sweep.metric_failed(period=Duration.minutes(5), statistic="Sum"),
            )

        # ---- organization mode: the spokes (a service-managed StackSet) -----------------------------
        self.spoke = None
        self.stack_set = None
        if config.organization:
            # Imported here: the single-account stack does not need the StackSet construct library.
            from infra.spoke import add_spokes  # on use: the spoke's CDK library loads only in organization mode

            self.spoke, self.stack_set = add_spokes(self)

        # ---- outputs ----------------------------------------------------------------------------
        CfnOutput(self, "StateMachineArn", value=self.state_machine.state_machine_arn)
        CfnOutput(self, "TopicArn", value=self.topic.topic_arn)
        CfnOutput(self, "AuditTableName", value=self.table.table_name)
        CfnOutput(self, "TrustParameterName", value=self.trust_parameter.parameter_name)
        CfnOutput(self, "SettingsParameterName", value=self.settings_parameter.parameter_name)
        if self.slack_callback_url is not None:
            CfnOutput(
                self,
                "SlackInteractivityUrl",
                description="Request URL for the Slack app's Interactivity & Shortcuts setting.",
                value=self.slack_callback_url.url,
            )
        if self.slack_token_secret is not None:
            CfnOutput(
                self,
                "SlackBotTokenSecretArn",
                description="Put the Slack bot token (xoxb-...) here: aws secretsmanager put-secret-value --secret-id <this ARN> --secret-string xoxb-...",
                value=self.slack_token_secret.secret_arn,
            )
        if self.slack_signing_secret is not None:
            CfnOutput(
                self,
                "SlackSigningSecretArn",
                description="Put the Slack app's signing secret here: aws secretsmanager put-secret-value --secret-id <this ARN> --secret-string ...",
                value=self.slack_signing_secret.secret_arn,
            )
        if config.organization:
            assert self.hub_bus is not None and self.org_sweep is not None and self.results_bucket is not None
            CfnOutput(self, "HubBusArn", value=self.hub_bus.event_bus_arn,
                      description="The hub's event bus; the spokes (and the management account's forwarder) send to it.")
            CfnOutput(self, "OrgSweepStateMachineArn", value=self.org_sweep.state_machine_arn)
            CfnOutput(self, "ResultsBucketName", value=self.results_bucket.bucket_name)

    # ---------------------------------------------------------------------------------------------

    def _alarm(self, construct_id: str, description: str, metric: cloudwatch.IMetric) -> cloudwatch.Alarm:
        """An alarm on one occurrence within five minutes, told on the topic."""
        alarm = cloudwatch.Alarm(
            self,
            construct_id,
            alarm_description=description,
            metric=metric,
            threshold=1,
            evaluation_periods=1,
            comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
        )
        alarm.add_alarm_action(cw_actions.SnsAction(self.topic))
        return alarm

    @staticmethod
    def apigateway_arn(path: str) -> str:
        """An API Gateway control-plane resource of this region (API Gateway ARNs have no account)."""
        return f"arn:{Aws.PARTITION}:apigateway:{Aws.REGION}::{path}"

    def _function(
        self,
        name: str,
        code: lambda_.Code,
        environment: dict[str, str],
        *,
        timeout: Duration = Duration.seconds(30),
        dead_letter_queue: sqs.IQueue | None = None,
        reserved_concurrency: int | None = None,
        reachable: bool = True,
    ) -> lambda_.Function:
        title = "".join(part.capitalize() for part in name.split("_"))  # slack_callback -> SlackCallback
        log_group = logs.LogGroup(
            self,
            f"{title}Logs",
            retention=LOG_RETENTION,
            removal_policy=RemovalPolicy.DESTROY,
        )
        # Our own role instead of the AWSLambdaBasicExecutionRole managed policy, which lets a
        # function create any log group and write to every one: this one writes to its own group.
        role = iam.Role(
            self,
            f"{title}Role",
            assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
            description=f"Runs the remediator {name} function.",
            # The hub's: fixed, so that the spokes' role can trust it by name (infra/spoke.py).
            role_name=hub_role_name(name) if self.config.organization else None,
        )
        if reachable:  # a function the workflow never reaches in this mode may not even write logs
            role.add_to_policy(
                iam.PolicyStatement(
                    actions=["logs:CreateLogStream", "logs:PutLogEvents"],
                    resources=[log_group.log_group_arn],
                )
            )
        function = lambda_.Function(
            self,
            f"{title}Function",
            description=f"API Gateway resource policy remediator: {name}",
            runtime=RUNTIME,
            architecture=lambda_.Architecture.ARM_64,
            handler=remediator.functions.handler_path(name),
            code=code,
            memory_size=256,
            timeout=timeout,
            environment=environment,
            role=role,
            log_group=log_group,
            dead_letter_queue=dead_letter_queue,
            retry_attempts=2 if dead_letter_queue is not None else None,
            reserved_concurrent_executions=reserved_concurrency,
        )
        Validations.of(function).acknowledge(
            Acknowledgment(
                id="AwsSolutions-L1",
                reason="The remediator is built and tested for Python 3.12, the runtime pinned for the whole "
                "project; moving to a newer runtime is a deliberate upgrade, not a drive-by change.",
            )
        )
        return function

    def _grant(self, name: str, function: lambda_.Function, access: Needs) -> None:
        statements: list[iam.PolicyStatement] = []
        by_path: dict[str, list[str]] = {}
        for action, path in access.apigateway:
            by_path.setdefault(path, []).append(f"apigateway:{action}")
        for path, actions in by_path.items():
            statements.append(iam.PolicyStatement(actions=actions, resources=[self.apigateway_arn(path)]))
        deny_actions, deny_paths = denied_writes(access.apigateway)
        if deny_actions:  # a writer changes a REST API and its stages, never what is under them
            statements.append(iam.PolicyStatement(effect=iam.Effect.DENY, actions=list(deny_actions),
                                                  resources=[self.apigateway_arn(path) for path in deny_paths]))
        if access.read_trust:
            statements.append(
                iam.PolicyStatement(actions=["ssm:GetParameter"], resources=[self.trust_parameter.parameter_arn])
            )
        if access.read_settings:
            statements.append(
                iam.PolicyStatement(actions=["ssm:GetParameter"], resources=[self.settings_parameter.parameter_arn])
            )
        if access.start_execution:
            statements.append(
                iam.PolicyStatement(
                    actions=["states:StartExecution"], resources=[self.state_machine.state_machine_arn]
                )
            )
        if access.publish:
            statements.append(iam.PolicyStatement(actions=["sns:Publish"], resources=[self.topic.topic_arn]))
            # Publishing to an encrypted topic: SNS asks KMS for a data key on the caller's behalf.
            statements.append(
                iam.PolicyStatement(
                    actions=["kms:Decrypt", "kms:GenerateDataKey"], resources=[self.topic_key.key_arn]
                )
            )
        for actions, keys in ((access.approvals, APPROVAL_ITEM_KEYS), (access.failures, FAILURE_ITEM_KEYS),
                              (access.journal, JOURNAL_ITEM_KEYS), (("dynamodb:PutItem",) if access.put_audit else (), AUDIT_ITEM_KEYS),
                              (access.notices, NOTICE_ITEM_KEYS)):
            if actions:
                statements.append(
                    iam.PolicyStatement(
                        actions=list(actions),
                        resources=[self.table.table_arn],
                        conditions={"ForAllValues:StringLike": {"dynamodb:LeadingKeys": list(keys)}},
                    )
                )
        secrets = [
            secret.secret_arn
            for wanted, secret in (
                (access.slack_token, self.slack_token_secret),
                (access.slack_signing_secret, self.slack_signing_secret),
            )
            if wanted and secret is not None
        ]
        if secrets:
            statements.append(iam.PolicyStatement(actions=["secretsmanager:GetSecretValue"], resources=secrets))
        if access.answer_tasks:
            # Step Functions authorizes a callback-pattern task token's SendTask* against the state machine
            # that issued it (the AccessDenied names "...:stateMachine:<name>"); CDK's grantTaskResponse
            # grants on the same ARN. No SendTaskHeartbeat: AwaitApproval sets no heartbeat.
            statements.append(
                iam.PolicyStatement(
                    actions=["states:SendTaskSuccess", "states:SendTaskFailure"],
                    resources=[self.state_machine.state_machine_arn],
                )
            )
        statements += self._security_hub_statements(access)
        statements += self._organization_statements(function, access)
        for statement in statements:
            function.add_to_role_policy(statement)
        acknowledge_api_paths(function.role, "<AWS::Region>", access.apigateway, "this function")

    def _cloudformation_hook(self, code: lambda_.Code) -> None:
        """An AWS::CloudFormation::LambdaHook on AWS::ApiGateway::RestApi, before it is created or updated (PRE_PROVISION
        of RESOURCE operations; an AWS::Serverless::Api is one by then, the SAM transform runs first). FailureMode is the
        setting's: FAIL stops the operation when the function answers FAILED, WARN only warns (and the function answers
        SUCCESS with a message anyway). CloudFormation invokes the function with the hook's execution role, which only
        the CloudFormation hooks service of this account may assume (CloudFormation Hooks User Guide, "Lambda Hooks")."""
        config = self.config
        environment = {
            "REMEDIATOR_MODE": config.mode,
            "TRUST_PARAMETER_NAME": self.trust_parameter.parameter_name,
            "EXEMPT_TAG_KEY": config.exempt_tag_key,
            "REMOVE_WILDCARD_PRINCIPALS": "true" if config.remove_wildcard_principals else "false",
            "REMEDIATOR_LOG_LEVEL": "INFO",
            "HOOK_MODE": config.cloudformation_hook,
        }
        # A hook waits up to 30 s for its Lambda function (the Hooks User Guide); 20 s leaves room for a cold start.
        function = self.hook_function = self._function("hook", code, environment, timeout=Duration.seconds(20))
        self._grant("hook", function, needs_of("hook", config) or Needs())
        role = iam.Role(
            self,
            "HookExecutionRole",
            assumed_by=iam.ServicePrincipal(
                "hooks.cloudformation.amazonaws.com",
                conditions={
                    "StringEquals": {"aws:SourceAccount": Aws.ACCOUNT_ID},
                    "ArnLike": {"aws:SourceArn": f"arn:{Aws.PARTITION}:cloudformation:{Aws.REGION}:{Aws.ACCOUNT_ID}:type/hook/*"},
                },
            ),
            description="Assumed by CloudFormation Hooks to invoke the remediator's hook function, and nothing else.",
        )
        role.add_to_policy(iam.PolicyStatement(actions=["lambda:InvokeFunction"], resources=[function.function_arn]))
        cloudformation.CfnLambdaHook(
            self,
            "RestApiPolicyHook",
            alias="Private::ApigwRemediator::RestApiPolicy",
            execution_role=role.role_arn,
            failure_mode="FAIL" if config.cloudformation_hook == "fail" else "WARN",
            hook_status="ENABLED",
            lambda_function=function.function_arn,
            target_operations=["RESOURCE"],
            target_filters=cloudformation.CfnLambdaHook.TargetFiltersProperty(targets=[
                cloudformation.CfnLambdaHook.HookTargetProperty(
                    action=action, invocation_point="PRE_PROVISION", target_name="AWS::ApiGateway::RestApi")
                for action in ("CREATE", "UPDATE")]),
        )

    def _security_hub_statements(self, access: Needs) -> list[iam.PolicyStatement]:
        """Security Hub (remediator:securityHub, account mode). The Service Authorization Reference ("Actions, resources,
        and condition keys for AWS Security Hub"): BatchImportFindings on the `product` resource type
        (arn:${Partition}:securityhub:${Region}:${Account}:product/${Company}/${ProductId}; a finding of one's own
        account goes to the account's default product, product/<account>/default), DescribeHub and GetFindings on the
        `hub` resource type (arn:${Partition}:securityhub:${Region}:${Account}:hub/default)."""
        if self.config.security_hub == "off" or self.config.organization:
            return []
        hub = f"arn:{Aws.PARTITION}:securityhub:{Aws.REGION}:{Aws.ACCOUNT_ID}:hub/default"
        statements: list[iam.PolicyStatement] = []
        if access.import_findings:
            product = f"arn:{Aws.PARTITION}:securityhub:{Aws.REGION}:{Aws.ACCOUNT_ID}:product/{Aws.ACCOUNT_ID}/default"
            statements.append(iam.PolicyStatement(actions=["securityhub:BatchImportFindings"], resources=[product]))
        reads = (["securityhub:DescribeHub"] if access.import_findings and self.config.security_hub == "auto" else []) + (
            ["securityhub:GetFindings"] if access.read_findings else [])
        if reads:
            statements.append(iam.PolicyStatement(actions=reads, resources=[hub]))
        return statements

    def _self_invoke(self, name: str) -> None:
        """lambda:InvokeFunction on the function itself (Needs.invoke_self: the Slack callback answers Slack, then
        updates the message in an asynchronous invocation of its own). A policy of its own, not the role's default
        one: the function waits for its default policy, and a grant naming the function's ARN there is a cycle."""
        function = self.functions[name]
        access = needs_of(name, self.config)
        if access is None or not access.invoke_self:
            return
        iam.Policy(
            self,
            f"{''.join(part.capitalize() for part in name.split('_'))}SelfInvoke",
            roles=[function.role],
            statements=[iam.PolicyStatement(actions=["lambda:InvokeFunction"], resources=[function.function_arn])],
        )

    def _json_parameter(self, construct_id: str, name: str, value: str, description: str) -> ssm.StringParameter:
        """A JSON document the Lambdas read at run time: /<stack>/<name>, advanced tier only when it must be."""
        return ssm.StringParameter(
            self, construct_id, parameter_name=f"/{self.stack_name}/{name}", description=description, string_value=value,
            tier=ssm.ParameterTier.STANDARD if len(value) <= STANDARD_PARAMETER_LIMIT else ssm.ParameterTier.ADVANCED)

    def _protect_table(self, own_roles: list[str]) -> None:
        """Defence in depth: the table's resource policy denies every item write to any principal but the stack's
        own function roles, whatever an identity policy elsewhere in the account allows. The roles are named by
        ARN (GetAtt): the table depends on them, they on nothing, so there is no cycle. Resource "*" in a table's
        resource policy is the table itself (and its indexes)."""
        cfn_table = self.table.node.default_child
        assert isinstance(cfn_table, dynamodb.CfnTable)
        operators = list(self.config.operator_role_arns)
        statements = [
            iam.PolicyStatement(
                sid="OnlyTheRemediatorWritesItems",
                effect=iam.Effect.DENY,
                principals=[iam.AnyPrincipal()],
                actions=list(TABLE_WRITE_ACTIONS),
                resources=["*"],
                conditions={"ArnNotEquals": {"aws:PrincipalArn": [*own_roles, *operators]}},
            )
        ]
        if operators:
            # The CLI's `fix --lease-table` takes the stack's deployment turns and claims APIs through the stack's
            # journal (remediator.shared_journal): its operators' roles may write the lease, the intents and the
            # records those changes close with (partition keys, DynamoDB's dynamodb:LeadingKeys), and nothing else.
            statements.append(iam.PolicyStatement(
                sid="OperatorsWriteOnlyLeaseIntentsAndRecords",
                effect=iam.Effect.DENY,
                principals=[iam.AnyPrincipal()],
                actions=list(TABLE_WRITE_ACTIONS),
                resources=["*"],
                conditions={"ArnEquals": {"aws:PrincipalArn": operators},
                            "ForAnyValue:StringNotLike": {"dynamodb:LeadingKeys": list(OPERATOR_ITEM_KEYS)}},
            ))
        document = iam.PolicyDocument(statements=statements)
        cfn_table.resource_policy = dynamodb.CfnTable.ResourcePolicyProperty(policy_document=document)

    # ---- organization mode ------------------------------------------------------------------------

    def _hub_bus(self) -> None:
        """The bus the spokes forward to: any principal of the organization may put events, nobody else."""
        self.hub_bus = events.EventBus(self, "HubBus", event_bus_name=HUB_BUS_NAME)
        self.hub_bus.add_to_resource_policy(
            iam.PolicyStatement(
                sid="OrganizationMembersPutEvents",
                principals=[iam.AnyPrincipal()],
                actions=["events:PutEvents"],
                resources=[self.hub_bus.event_bus_arn],
                conditions={"StringEquals": {"aws:PrincipalOrgID": self.config.organization_id}},
            )
        )

    def _results_bucket(self) -> None:
        """The organization sweep's items (plan) and results (the Map's ResultWriter); access-logged."""
        lifecycle = [
            s3.LifecycleRule(
                id="ExpireSweepResults",
                expiration=RESULTS_EXPIRY,
                noncurrent_version_expiration=Duration.days(1),
                abort_incomplete_multipart_upload_after=Duration.days(1),
            )
        ]
        self.access_log_bucket = self._private_bucket(
            "ResultsAccessLogBucket",
            lifecycle_rules=[
                s3.LifecycleRule(
                    id="ExpireAccessLogs",
                    expiration=Duration.days(365),
                    abort_incomplete_multipart_upload_after=Duration.days(1),
                )
            ],
        )
        Validations.of(self.access_log_bucket).acknowledge(
            Acknowledgment(
                id="AwsSolutions-S1",
                reason="This bucket receives the results bucket's server access logs; logging its own access "
                "would need yet another bucket, and so on without end.",
            )
        )
        self.results_bucket = self._private_bucket(
            "ResultsBucket",
            versioned=True,
            lifecycle_rules=lifecycle,
            server_access_logs_bucket=self.access_log_bucket,
            server_access_logs_prefix="results-bucket/",
        )

    def _private_bucket(self, construct_id: str, **settings: Any) -> s3.Bucket:
        """A bucket only this stack's roles use: encrypted, TLS only, no public access, no ACLs, kept on delete."""
        return s3.Bucket(self, construct_id, encryption=s3.BucketEncryption.S3_MANAGED, enforce_ssl=True,
                         block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
                         object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED, removal_policy=RemovalPolicy.RETAIN,
                         **settings)

    def _org_sweep(self) -> None:
        """The organization sweep (org_sweep.json): Plan -> Distributed Map of Sweep -> Summarize."""
        assert self.results_bucket is not None
        name = "org_sweep.json"
        self.org_sweep_log_group = logs.LogGroup(
            self,
            "OrgSweepLogs",
            log_group_name=f"/aws/vendedlogs/states/{self.stack_name}-org-sweep",
            retention=LOG_RETENTION,
            removal_policy=RemovalPolicy.DESTROY,
        )
        functions = {task: self.functions[task.lower()] for task in remediator.workflow.ORG_SWEEP_FUNCTIONS}
        substitutions = {f"{task}FunctionArn": function.function_arn for task, function in functions.items()}
        substitutions[remediator.workflow.ORG_SWEEP_BUCKET] = self.results_bucket.bucket_name
        missing = remediator.workflow.placeholders(name) - substitutions.keys()
        if missing:
            raise ValueError(f"the organization sweep references {', '.join(sorted(missing))}, which the stack does not define")
        self.org_sweep = sfn.StateMachine(
            self,
            "OrgSweep",
            # Fixed, so that its role can be granted its own Distributed Map child executions by ARN
            # without depending on the state machine (a cycle).
            state_machine_name=ORG_SWEEP_NAME,
            state_machine_type=sfn.StateMachineType.STANDARD,
            definition_body=sfn.DefinitionBody.from_string(for_partition(remediator.workflow.definition_text(name))),
            definition_substitutions=substitutions,
            logs=sfn.LogOptions(destination=self.org_sweep_log_group, level=sfn.LogLevel.ALL, include_execution_data=False),
            tracing_enabled=True,
        )
        bucket = self.results_bucket
        machine_arn = self.format_arn(
            service="states", resource="stateMachine", resource_name=ORG_SWEEP_NAME,
            arn_format=ArnFormat.COLON_RESOURCE_NAME,
        )
        executions_arn = self.format_arn(
            service="states", resource="execution", resource_name=f"{ORG_SWEEP_NAME}/*",
            arn_format=ArnFormat.COLON_RESOURCE_NAME,
        )
        for statement in (
            iam.PolicyStatement(actions=["lambda:InvokeFunction"], resources=[f.function_arn for f in functions.values()]),
            # ItemReader: the plan's items.
            iam.PolicyStatement(actions=["s3:GetObject"], resources=[bucket.arn_for_objects("*")]),
            # ResultWriter: a multipart upload of the results under the prefix.
            iam.PolicyStatement(
                actions=["s3:PutObject", "s3:GetObject", "s3:ListMultipartUploadParts", "s3:AbortMultipartUpload"],
                resources=[bucket.arn_for_objects(f"{RESULTS_PREFIX}/*")],
            ),
            # The Distributed Map runs its children as executions of this state machine.
            iam.PolicyStatement(actions=["states:StartExecution"], resources=[machine_arn]),
            iam.PolicyStatement(actions=["states:DescribeExecution", "states:StopExecution"], resources=[executions_arn]),
        ):
            self.org_sweep.add_to_role_policy(statement)
        role = self.org_sweep.role
        self._acknowledge_state_machine_role(role)
        bucket_id = self.resolve(self.get_logical_id(bucket.node.default_child))
        for resource in (f"<{bucket_id}.Arn>/*", f"<{bucket_id}.Arn>/{RESULTS_PREFIX}/*"):
            Validations.of(role).acknowledge(
                Acknowledgment(
                    id=f"AwsSolutions-IAM5[Resource::{resource}]",
                    reason="The plan writes each sweep's items under a key named after the execution, and the "
                    "Map's ResultWriter writes under a prefix of the map run's ID: neither key is known before "
                    "the execution, so the grant covers the objects of this one bucket (of the results prefix).",
                )
            )
        Validations.of(role).acknowledge(
            Acknowledgment(
                id="AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:states:<AWS::Region>:<AWS::AccountId>:"
                f"execution:{ORG_SWEEP_NAME}/*]",
                reason="A Distributed Map runs its children as executions of this state machine, named at run "
                "time; Step Functions documents this ARN pattern (the state machine's executions) for them.",
            )
        )

    def _roster_rules(self) -> None:
        """The roster is refreshed daily and whenever the organization's accounts change."""
        roster = self.functions["roster"]
        target = lambda: targets.LambdaFunction(  # noqa: E731
            roster, dead_letter_queue=self.dlq, retry_attempts=4, max_event_age=Duration.hours(6)
        )
        self.roster_schedule = events.Rule(
            self,
            "RosterSchedule",
            description="Daily refresh of the organization's roster (its active accounts).",
            schedule=events.Schedule.expression(ROSTER_SCHEDULE),
        )
        self.roster_schedule.add_target(target())
        self.account_events_rule = events.Rule(
            self,
            "AccountEventsRule",
            description="The organization's account events (forwarded from the management account, us-east-1): "
            "refresh the roster.",
            event_bus=self.hub_bus,
            event_pattern=events.EventPattern(
                source=["aws.organizations"],
                # CreateAccountResult is no API call but Organizations' own event (CloudTrail eventType
                # AwsServiceEvent), which EventBridge delivers as "AWS Service Event via CloudTrail".
                detail_type=list(ACCOUNT_EVENT_TYPES),
                detail={"eventSource": ["organizations.amazonaws.com"], "eventName": list(ACCOUNT_EVENTS)},
            ),
        )
        self.account_events_rule.add_target(target())

    def _organization_statements(self, function: lambda_.Function, access: Needs) -> list[iam.PolicyStatement]:
        """The hub's grants (organization mode): the spoke role, the organization, the roster, the results."""
        statements: list[iam.PolicyStatement] = []
        if access.assume_spoke:
            # Every member account's spoke role, by its fixed name: the accounts are the organization's, and
            # join later. The spoke's trust policy admits only the hub's roles, from the organization.
            # Only a role of an account of the hub's own organization (aws:ResourceOrgID: the organization of the
            # account that owns the role; IAM user guide, "AWS global condition context keys"): a same-named role in
            # an account outside it, whatever its trust policy says, is never assumed. The hub is in the
            # organization (its delegated administrator), so its own organization ID is aws:PrincipalOrgID.
            statements.append(
                iam.PolicyStatement(
                    actions=["sts:AssumeRole"],
                    resources=[f"arn:{Aws.PARTITION}:iam::*:role/{self.config.spoke_role_name}"],
                    conditions={"StringEquals": {"aws:ResourceOrgID": "${aws:PrincipalOrgID}"}},
                )
            )
            Validations.of(function.role).acknowledge(
                Acknowledgment(
                    id=f"AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:iam::*:role/{self.config.spoke_role_name}]",
                    reason="The spoke role of every member account of the organization, by its one name: the "
                    "accounts are only known at run time (the roster) and join after deployment. Each spoke "
                    "role trusts only the hub's roles (by ARN) and only from the organization (aws:PrincipalOrgID).",
                )
            )
        if access.read_organization:
            statements.append(iam.PolicyStatement(actions=list(ORGANIZATION_READS), resources=["*"]))
            Validations.of(function.role).acknowledge(
                Acknowledgment(
                    id="AwsSolutions-IAM5[Resource::*]",
                    reason="organizations:ListAccounts, ListAccountsForParent and ListOrganizationalUnitsForParent "
                    "take no resource ARN (the Service Authorization Reference lists no resource type for them): "
                    "Resource \"*\" is the only form; they read, never change, the organization.",
                )
            )
        if access.roster:
            statements.append(
                iam.PolicyStatement(
                    actions=list(access.roster),
                    resources=[self.table.table_arn],
                    conditions={"ForAllValues:StringLike": {"dynamodb:LeadingKeys": list(ROSTER_ITEM_KEYS)}},
                )
            )
        if access.results:
            assert self.results_bucket is not None
            bucket_level = [a for a in access.results if a == "s3:ListBucket"]
            object_level = [a for a in access.results if a != "s3:ListBucket"]
            if object_level:
                statements.append(
                    iam.PolicyStatement(actions=object_level, resources=[self.results_bucket.arn_for_objects("*")])
                )
                bucket_id = self.resolve(self.get_logical_id(self.results_bucket.node.default_child))
                Validations.of(function.role).acknowledge(
                    Acknowledgment(
                        id=f"AwsSolutions-IAM5[Resource::<{bucket_id}.Arn>/*]",
                        reason="The organization sweep's objects are keyed by execution and map run, named at run "
                        "time: the grant covers the objects of this one bucket, which holds nothing else.",
                    )
                )
            if bucket_level:
                statements.append(iam.PolicyStatement(actions=bucket_level, resources=[self.results_bucket.bucket_arn]))
        return statements

    @staticmethod
    def _acknowledge_state_machine_role(role: iam.IRole) -> None:
        Validations.of(role).acknowledge(
            Acknowledgment(
                id="AwsSolutions-IAM5[Resource::*]",
                reason="X-Ray tracing (xray:PutTraceSegments, PutTelemetryRecords, GetSampling*) and "
                "CloudWatch Logs vended log delivery (logs:CreateLogDelivery, ...) do not support "
                "resource-level permissions; AWS documents Resource \"*\" for both.",
            )
        )
