"""The Redeploy state: one CreateDeployment for the API, its other stages pointed at it."""

from __future__ import annotations

from typing import Any

from remediator.adapters.apigateway import ApiNotFound, RestApi
from remediator.functions.common import aws_call, read_state, remediator_for
from remediator.functions.needs import DEPLOYMENTS, STAGES, Needs
from remediator.logs import get_logger
from remediator.workflow.errors import RemediationFailed
from remediator.workflow.state import Redeployed

log = get_logger("remediator.functions.redeploy")


def needs(mode: str, slack: bool) -> Needs | None:
    # Deployments and stages only: it can neither create or import an API nor rewrite a policy.
    if mode not in ("auto", "approval"):
        return None
    return Needs(apigateway=(("GET", STAGES), ("POST", DEPLOYMENTS), ("PATCH", STAGES)))


def handler(event: dict[str, Any], context: Any = None) -> dict[str, Any]:
    """One CreateDeployment for the API, its other stages pointed at it."""
    state, change, settings = read_state(event, context)
    remediator = remediator_for(change, settings, event.get("execution"), judges=False)
    api = RestApi(change.region, change.api_id, state.evaluation.name if state.evaluation else "", None, {})
    try:
        stages, deployment_id, missing = aws_call(lambda: remediator.redeploy(api))
    except ApiNotFound:
        raise RemediationFailed(f"{change.region}/{change.api_id}: API was deleted before its redeploy") from None
    log.info("redeployed", stages=stages, deployment_id=deployment_id)
    return Redeployed(stages, deployment_id, missing).to_dict()
