"""API Gateway REST APIs: list, read, patch the policy, list stages, deploy, point stages at a deployment.

Policies come back backslash-escaped; callers hand them to the trust engine's parser
as they are. Deployments are paced: CreateDeployment allows one call per 5 seconds
per account and that quota cannot be raised.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import msgspec
from botocore.exceptions import ClientError

from remediator.adapters.clients import ClientFactory
from remediator.core.access import Endpoint, Method
from remediator.core.undeployed import Summary, SummaryError, summary_from_api

PAGE_LIMIT = 500
CREATE_DEPLOYMENT_INTERVAL_SECONDS = 5.0


class ApiNotFound(LookupError):
    """The REST API no longer exists (deleted between the listing and the fix)."""


class RestApi(msgspec.Struct, frozen=True):
    region: str
    api_id: str
    name: str
    policy: str | None
    tags: dict[str, str]
    # endpointConfiguration (GetRestApi, GetRestApis): EDGE, REGIONAL or PRIVATE, and a PRIVATE API's VPC endpoints.
    endpoint_types: tuple[str, ...] = ()
    vpc_endpoint_ids: tuple[str, ...] = ()

    @property
    def endpoint(self) -> Endpoint:
        return Endpoint(self.endpoint_types, self.vpc_endpoint_ids)


class Stage(msgspec.Struct, frozen=True):
    name: str
    deployment_id: str | None


class DeploymentPacer:
    """Spaces CreateDeployment calls by the account-wide quota; the clock is injectable for tests."""

    def __init__(self, interval: float = CREATE_DEPLOYMENT_INTERVAL_SECONDS, clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.interval, self.clock, self.sleep = interval, clock, sleep
        self._last: float | None = None
        self._lock = threading.Lock()

    def wait_turn(self) -> float:
        """Block until a CreateDeployment may be sent; returns how long it waited."""
        with self._lock:
            waited = 0.0
            if self._last is not None:
                waited = max(0.0, self._last + self.interval - self.clock())
                if waited:
                    self.sleep(waited)
            self._last = self.clock()
            return waited

    def mark(self) -> None:
        """The call has been answered: count the interval from here, so that the quota, which API Gateway
        counts from each request's arrival, is kept even when a request takes a while to arrive."""
        with self._lock:
            self._last = self.clock()


class DeploymentInfo(msgspec.Struct, frozen=True):
    """A deployment as GetDeployment returns it: what the bot checks before pointing a stage at it."""

    deployment_id: str
    description: str
    created: float  # seconds since the epoch (GetDeployment's createdDate)


def _is_not_found(error: ClientError) -> bool:
    return error.response.get("Error", {}).get("Code") == "NotFoundException"


class ApiGatewayAdapter:
    def __init__(self, clients: ClientFactory, pacer: DeploymentPacer | None = None) -> None:
        self._clients = clients
        self.pacer = pacer or DeploymentPacer()

    def _client(self, region: str) -> Any:
        return self._clients.client("apigateway", region)

    def list_rest_apis(self, region: str) -> Iterator[RestApi]:
        """Every REST API of the region; the listing carries policy and tags, so no per-API call."""
        client = self._client(region)
        kwargs: dict[str, Any] = {"limit": PAGE_LIMIT}
        while True:
            page = client.get_rest_apis(**kwargs)
            for item in page.get("items", []):
                yield _rest_api(region, item)
            position = page.get("position")
            if not position:
                return
            kwargs["position"] = position

    def get_rest_api(self, region: str, api_id: str) -> RestApi:
        try:
            return _rest_api(region, self._client(region).get_rest_api(restApiId=api_id))
        except ClientError as error:
            if _is_not_found(error):
                raise ApiNotFound(api_id) from None
            raise

    def methods(self, region: str, api_id: str) -> list[Method]:
        """Every method of the API with what it enforces (authorizationType, apiKeyRequired): GetResources with
        embed=methods (API Gateway API reference, GetResources: "embed ... Currently, the request supports only
        retrieval of the embedded Method resources this way"), paged by `position` (limit at most 500). Read only
        for APIs with findings: it is one or more calls per API."""
        client = self._client(region)
        kwargs: dict[str, Any] = {"restApiId": api_id, "embed": ["methods"], "limit": PAGE_LIMIT}
        found: list[Method] = []
        while True:
            try:
                page = client.get_resources(**kwargs)
            except ClientError as error:
                if _is_not_found(error):
                    raise ApiNotFound(api_id) from None
                raise
            for resource in page.get("items", []):
                for verb, method in sorted((resource.get("resourceMethods") or {}).items()):
                    method = method or {}
                    found.append(Method(str(resource.get("path", "")), str(method.get("httpMethod") or verb),
                                        method.get("authorizationType"), bool(method.get("apiKeyRequired", False))))
            position = page.get("position")
            if not position:
                return sorted(found, key=lambda m: (m.path, m.http_method))
            kwargs["position"] = position

    def update_policy(self, region: str, api_id: str, patch_operations: list[dict[str, str]]) -> RestApi:
        try:
            response = self._client(region).update_rest_api(restApiId=api_id, patchOperations=patch_operations)
        except ClientError as error:
            if _is_not_found(error):
                raise ApiNotFound(api_id) from None
            raise
        return _rest_api(region, response)

    def list_stages(self, region: str, api_id: str) -> list[Stage]:
        try:
            items = self._client(region).get_stages(restApiId=api_id).get("item", [])
        except ClientError as error:
            if _is_not_found(error):
                raise ApiNotFound(api_id) from None
            raise
        return [Stage(item["stageName"], item.get("deploymentId")) for item in items]

    def create_deployment(self, region: str, api_id: str, stage: str, description: str) -> str:
        """One CreateDeployment for `stage` (paced by the account-wide quota); returns the deployment ID."""
        self.pacer.wait_turn()
        try:
            return str(self._client(region).create_deployment(restApiId=api_id, stageName=stage, description=description)["id"])
        except ClientError as error:
            if _is_not_found(error):
                raise ApiNotFound(api_id) from None
            raise
        finally:
            self.pacer.mark()

    def get_deployment(self, region: str, api_id: str, deployment_id: str) -> DeploymentInfo | None:
        """One deployment (None if it does not exist), read back from API Gateway rather than from a record."""
        try:
            item = self._client(region).get_deployment(restApiId=api_id, deploymentId=deployment_id)
        except ClientError as error:
            if _is_not_found(error):
                return None
            raise
        created = item.get("createdDate")
        seconds = created.timestamp() if hasattr(created, "timestamp") else float(created or 0)
        return DeploymentInfo(str(item.get("id", deployment_id)), str(item.get("description") or ""), seconds)

    def deployed_summary(self, region: str, api_id: str, deployment_id: str) -> Summary | None:
        """What a deployment serves: GetDeployment with embed=apisummary (API Gateway API Reference, GetDeployment:
        embed "supports only retrieval of the embedded API summary ... the "apisummary" string"; apiSummary: "A summary of the RestApi at
        the date and time that the deployment resource was created", path -> http method -> authorizationType and
        apiKeyRequired; https://docs.aws.amazon.com/apigateway/latest/api/API_GetDeployment.html). None if the
        deployment does not exist; SummaryError (one line) if the answer has no summary or not one of that form."""
        try:
            item = self._client(region).get_deployment(restApiId=api_id, deploymentId=deployment_id, embed=["apisummary"])
        except ClientError as error:
            if _is_not_found(error):
                return None
            raise
        if "apiSummary" not in item:  # fail closed: what a redeploy would publish cannot be told without it
            raise SummaryError(f"GetDeployment of {deployment_id} answered without its apiSummary")
        return summary_from_api(item["apiSummary"], f"deployment {deployment_id}'s apiSummary")

    def point_stage(self, region: str, api_id: str, stage: str, deployment_id: str) -> None:
        """Make `stage` serve `deployment_id`: only ever a deployment of the change in hand (remediator.transaction.deploying
        checks it is newer than what the stage serves)."""
        try:
            self._client(region).update_stage(
                restApiId=api_id, stageName=stage,
                patchOperations=[{"op": "replace", "path": "/deploymentId", "value": deployment_id}],
            )
        except ClientError as error:
            if _is_not_found(error):
                raise ApiNotFound(api_id) from None
            raise


def _rest_api(region: str, item: dict[str, Any]) -> RestApi:
    endpoint = item.get("endpointConfiguration") or {}
    return RestApi(region, item["id"], item.get("name", ""), item.get("policy") or None, dict(item.get("tags") or {}),
                   tuple(endpoint.get("types") or ()), tuple(endpoint.get("vpcEndpointIds") or ()))
