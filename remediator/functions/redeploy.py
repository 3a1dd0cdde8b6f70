"""The Redeploy state: in the account's turn, one CreateDeployment for the API, its other stages pointed at it."""

from __future__ import annotations

import math
from typing import Any

from remediator.functions import coldstart
from remediator.adapters.apigateway import ApiNotFound
from remediator.functions.common import aws_call, read_state, remediator_for
from remediator.functions.needs import DEPLOYMENT, DEPLOYMENTS, RESOURCES, STAGES, Needs
from remediator.journal import Intent
from remediator.transaction.deploying import UndeployedAppeared
from remediator.logs import get_logger
from remediator.workflow.errors import RemediationFailed
from remediator.workflow.state import Redeployed

log = get_logger("remediator.functions.redeploy")


def needs(mode: str, slack: bool) -> Needs | None:
    # Deployments and stages only: it can neither create or import an API nor rewrite a policy. It reads
    # and renews the intent, records the deployment in it, and takes and releases the deployment lease.
    if mode not in ("auto", "approval"):
        return None
    # Right before CreateDeployment it reads the API's methods (GetResources) and what each stage serves (GetDeployment,
    # embed=apisummary): an undeployed edit that appeared since the plan is not published (remediator.core.undeployed).
    return Needs(apigateway=(("GET", STAGES), ("POST", DEPLOYMENTS), ("GET", DEPLOYMENT), ("PATCH", STAGES), ("GET", RESOURCES)),
                 journal=("dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem"))


def handler(event: dict[str, Any], context: Any = None) -> dict[str, Any]:
    """Deploy in the account's turn, or say how long to wait for it (the state machine waits, not the Lambda)."""
    state, change, settings = read_state(event, context)
    remediator = remediator_for(change, settings, event.get("execution"), judges=False, writes_api=True)
    if state.applied is None or state.applied.intent is None:
        raise RemediationFailed("Redeploy reached without the change's intent in $.applied")
    intent = aws_call(lambda: Intent.from_dict(state.applied.intent, "the workflow state's $.applied.intent"))
    waited = state.redeploy if state.redeploy is not None and state.redeploy.outcome == "wait" else None
    try:
        deployment = aws_call(lambda: remediator.deploy(intent, waited.ticket if waited else None))
    except ApiNotFound:
        raise RemediationFailed(f"{change.region}/{change.api_id}: API was deleted before its redeploy") from None
    except UndeployedAppeared as error:  # RestorePolicy undoes the write (never published), NotifyFailure says why
        raise RemediationFailed(str(error)) from None
    if deployment.wait_seconds > 0:
        log.info("waiting_for_deployment_turn", seconds=deployment.wait_seconds)
        return Redeployed("wait", wait_seconds=max(1, math.ceil(deployment.wait_seconds)), ticket=deployment.ticket).to_dict()
    log.info("redeployed", stages=deployment.stages, deployment_id=deployment.deployment_id)
    return Redeployed("deployed", deployment.stages, deployment.deployment_id, deployment.missing).to_dict()


coldstart.loaded()  # last: this function's modules are loaded (remediator/functions/coldstart.py)
