"""What each deployment of the strict local account publishes: the API as it was at its CreateDeployment.

A deployment is a snapshot of the whole REST API (API Gateway developer guide, "Deploy REST APIs in API Gateway":
"a deployment is a snapshot of your API's resources and methods"); GetDeployment with embed=apisummary returns
"a summary of the RestApi at the date and time that the deployment resource was created" (API Gateway API
Reference, GetDeployment / Deployment.apiSummary: path -> http method -> {authorizationType, apiKeyRequired};
https://docs.aws.amazon.com/apigateway/latest/api/API_Deployment.html). The emulator keeps no such snapshot and
returns no apiSummary, so the strict layer (remediator.local.strict) records one here at each CreateDeployment it
lets through, and answers GetDeployment's embed=apisummary from it: tests can then read what a deployment publishes.

Each snapshot also keeps, for the tests only, each method's integration (type, uri) and the policy: what the
deployment served that apiSummary does not show.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Snapshot:
    """One deployment's API, as it was when it was created."""

    api_summary: dict[str, dict[str, dict[str, Any]]]
    integrations: dict[str, dict[str, dict[str, Any] | None]]
    policy: str | None


@dataclass
class DeploymentSnapshots:
    """Every snapshot, by (account, region, API ID, deployment ID)."""

    _snapshots: dict[tuple[str, str, str, str], Snapshot] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def record(self, account: str, region: str, api_id: str, response: bytes) -> None:
        """After a CreateDeployment the emulator answered with success: the API as it is now, under the new ID."""
        try:
            deployment_id = json.loads(response).get("id")
        except (ValueError, AttributeError):
            return
        if not isinstance(deployment_id, str):
            return
        snapshot = take(account, region, api_id)
        if snapshot is not None:
            with self._lock:
                self._snapshots[(account, region, api_id, deployment_id)] = snapshot

    def get(self, account: str, region: str, api_id: str, deployment_id: str) -> Snapshot | None:
        with self._lock:
            return self._snapshots.get((account, region, api_id, deployment_id))

    def embed(self, account: str, region: str, api_id: str, deployment_id: str, response: bytes) -> bytes:
        """GetDeployment's answer with its apiSummary (embed=apisummary), from the snapshot taken at its creation.
        A deployment made before the layer saw it (none in the tests) gets none: the adapter then fails closed."""
        snapshot = self.get(account, region, api_id, deployment_id)
        if snapshot is None:
            return response
        try:
            document = json.loads(response)
        except ValueError:
            return response
        if not isinstance(document, dict):
            return response
        document["apiSummary"] = snapshot.api_summary
        return json.dumps(document).encode()

    def clear(self) -> None:
        with self._lock:
            self._snapshots.clear()


def take(account: str, region: str, api_id: str) -> Snapshot | None:
    """The API's resources, methods and policy as the emulator holds them now."""
    from moto.apigateway.models import apigateway_backends

    try:
        api = apigateway_backends[account][region].get_rest_api(api_id)
    except Exception:  # no such API: nothing was deployed
        return None
    summary: dict[str, dict[str, dict[str, Any]]] = {}
    integrations: dict[str, dict[str, dict[str, Any] | None]] = {}
    for resource in api.resources.values():
        path = resource.get_path()
        for verb, method in resource.resource_methods.items():
            summary.setdefault(path, {})[verb] = {"authorizationType": method.authorization_type or "NONE",
                                                  "apiKeyRequired": bool(method.api_key_required)}
            integration = method.method_integration
            integrations.setdefault(path, {})[verb] = (
                None if integration is None else {"type": integration.integration_type, "uri": integration.uri})
    return Snapshot(summary, integrations, api.policy)


# The in-process emulator (moto's mock_aws, without the strict layer in front): the same snapshots, taken and answered
# in moto's own API Gateway responses. Installed by the tests' `in_process` fixture (tests/conftest.py).
IN_PROCESS = DeploymentSnapshots()
_installed: list[bool] = []


def install_in_process() -> None:
    """Snapshot at CreateDeployment and answer embed=apisummary inside moto itself (idempotent)."""
    if _installed:
        return
    from moto.apigateway.responses import APIGatewayResponse

    create, get = APIGatewayResponse.create_deployment, APIGatewayResponse.get_deployment

    def create_deployment(self: Any) -> Any:
        status, headers, body = create(self)
        api_id = self.path.replace("/restapis/", "", 1).split("/")[0]
        IN_PROCESS.record(self.current_account, self.region, api_id, body.encode() if isinstance(body, str) else body)
        return status, headers, body

    def get_deployment(self: Any) -> Any:
        body = get(self)
        if "apisummary" in ",".join(self.querystring.get("embed", [])).lower().split(","):
            parts = self.path.split("/")
            return IN_PROCESS.embed(self.current_account, self.region, parts[2], parts[4], body.encode()).decode()
        return body

    APIGatewayResponse.create_deployment = create_deployment  # type: ignore[method-assign]
    APIGatewayResponse.get_deployment = get_deployment  # type: ignore[method-assign]
    _installed.append(True)
