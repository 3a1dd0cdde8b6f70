"""An emulated AWS account on loopback (moto's threaded server) for the demo, the tests and the benchmarks.

Two gaps of the emulator are closed here so that local runs exercise the same code paths
as AWS: REST API listings are paged as API Gateway pages them, and requests are counted
per operation at the server, which is how the benchmarks measure what a sweep costs.
"""

from __future__ import annotations

import collections
import email.utils
import io
import json
import os
import re
import threading
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import parse_qs

from moto.apigateway.responses import APIGatewayResponse
from moto.core.request import Request as MotoRequest
from moto.core.routing import get_service_router
from moto.moto_server.werkzeug_app import MotoRequestHandler
from moto.server import DomainDispatcherApplication, ThreadedMotoServer, create_backend_app
from werkzeug.serving import make_server

from remediator.adapters.clients import ClientFactory
from remediator.local import eventbridge
from remediator.local.strict import OPERATION_KEY, StrictLayer, install_clock

LOCAL_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_SESSION_TOKEN": "testing"}
_SCOPE = re.compile(r"Credential=[^/]+/\d{8}/([^/]+)/([^/]+)/aws4_request")


def _paged_get_rest_apis(self: APIGatewayResponse) -> str:
    """GetRestApis with limit/position as API Gateway implements them (the emulator returns one page)."""
    apis = sorted(self.backend.list_apis(), key=lambda api: api.id)
    limit = int(self._get_param("limit") or 25)
    position = self._get_param("position")
    start = next((i for i, api in enumerate(apis) if api.id == position), 0) if position else 0
    page: dict[str, Any] = {"item": [api.to_dict() for api in apis[start : start + limit]]}
    if start + limit < len(apis):
        page["position"] = apis[start + limit].id
    return json.dumps(page)


def enable_listing_pages() -> None:
    APIGatewayResponse.get_rest_apis = _paged_get_rest_apis  # type: ignore[method-assign]
    complete_event_envelopes()
    eventbridge.install()  # rules match as EventBridge's do, arrays of objects included
    lighter_server()


def lighter_server() -> None:
    """Two costs of the emulator that no AWS behaviour needs, taken off every request and every key:
    - the server lists moto's package folder (one stat per service) to route each request: listed once;
    - a KMS key of any spec gets a new RSA-2048 private key, which only asymmetric keys use (Sign, Verify,
      GetPublicKey): a symmetric or HMAC key shares one, made on first use."""
    from moto import backends
    from moto.kms import models as kms_models

    if getattr(backends, "_remediator_listed", False):
        return
    modules = tuple(backends.list_of_moto_modules())
    backends.list_of_moto_modules = lambda: modules  # type: ignore[assignment]
    backends._remediator_listed = True  # type: ignore[attr-defined]
    generate = kms_models.generate_private_key
    unused: list[Any] = []

    def private_key(key_spec: str) -> Any:
        if key_spec.startswith(("RSA_", "ECC_", "SM2")):  # the asymmetric specs (KeySpec)
            return generate(key_spec)
        if not unused:
            unused.append(generate(key_spec))
        return unused[0]

    kms_models.generate_private_key = private_key  # type: ignore[assignment]


def complete_event_envelopes() -> None:
    """EventBridge delivers an event with its `account` (the account that sent it); the emulator's default target
    input leaves it out, and organization mode decides whose API an event is about by it."""
    from moto.events.utils import EventTemplateParser

    template = EventTemplateParser.DEFAULT_EVENT_INPUT_TEMPLATE
    if '"account"' not in template:
        EventTemplateParser.DEFAULT_EVENT_INPUT_TEMPLATE = template.replace('"version": "0", ', '"version": "0", "account": "<account>", ')


def operation_of(environ: dict[str, Any]) -> tuple[str, str]:
    """(service, operation) of a request as the server sees it."""
    path = environ.get("PATH_INFO", "")
    if path.startswith("/moto-api"):
        return ("emulator", path)
    match = _SCOPE.search(environ.get("HTTP_AUTHORIZATION", ""))
    service = match.group(2) if match else "?"
    if environ.get("HTTP_X_AMZ_TARGET"):
        return (service, environ["HTTP_X_AMZ_TARGET"].split(".")[-1])
    length = int(environ.get("CONTENT_LENGTH") or 0)
    body = environ["wsgi.input"].read(length) if length else b""
    environ["wsgi.input"] = io.BytesIO(body)
    if body.startswith(b"Action="):
        return (service, parse_qs(body.decode())["Action"][0])
    try:
        router_service = {"execute-api": "apigateway", "states": "stepfunctions"}.get(service, service)
        operation, _ = get_service_router(router_service).match(MotoRequest(dict(environ, **{"wsgi.input": io.BytesIO(body)})))
        return (service, operation.name)
    except Exception:  # an operation the router does not know is still counted, by method and path
        return (service, f"{environ.get('REQUEST_METHOD')} {path}")


class _QuietHandler(MotoRequestHandler):
    def log_request(self, *args: Any, **kwargs: Any) -> None:
        pass

    def date_time_string(self, timestamp: float | None = None) -> str:
        """Every answer's Date header is the service's time, as AWS's are (HTTP's Date, RFC 9110 §6.6.1): on the strict
        account, its local clock, which the tests move; what the product decides on the service's clock (claims,
        deployment turns: remediator.adapters.dynamodb.ServerClock) follows it."""
        from remediator.local import strict

        if timestamp is None and strict._installed:
            timestamp = strict.local_clock().time()
        return email.utils.formatdate(timestamp, usegmt=True)


class CountingMotoServer(ThreadedMotoServer):
    """moto's threaded server, counting the requests it receives per (service, operation), behind the
    strict layer (remediator.local.strict) unless `strict` is None."""

    def __init__(self, strict: StrictLayer | None = None) -> None:
        super().__init__(ip_address="127.0.0.1", port=0, verbose=False)
        self.counts: collections.Counter[tuple[str, str]] = collections.Counter()
        self._count_lock = threading.Lock()
        self.strict = strict

    def _server_entry(self) -> None:
        app = DomainDispatcherApplication(create_backend_app)
        if self.strict is not None:
            app = self.strict.wrap(app, operation_of)

        def counting_app(environ: dict[str, Any], start_response: Any) -> Any:
            key = environ[OPERATION_KEY] = operation_of(environ)
            with self._count_lock:
                self.counts[key] += 1
            return app(environ, start_response)

        self._server = make_server(self._ip_address, self._port, counting_app, True, request_handler=_QuietHandler)
        self._server_ready_event.set()
        self._server.serve_forever()

    def aws_requests(self) -> collections.Counter[tuple[str, str]]:
        return collections.Counter({k: v for k, v in self.counts.items() if k[0] != "emulator"})


class EmulatedAccount:
    """A running emulator and a client factory pointed at it."""

    def __init__(self, server: CountingMotoServer, account_id: str = "111122223333") -> None:
        self.server = server
        self.account_id = account_id
        self.strict = server.strict
        host, port = server.get_host_and_port()
        self.endpoint_url = f"http://{host}:{port}"
        self.clients = ClientFactory(endpoint_url=self.endpoint_url)

    def post(self, path: str, body: dict[str, Any] | None = None) -> None:
        data = json.dumps(body).encode() if body is not None else None
        urllib.request.urlopen(urllib.request.Request(self.endpoint_url + path, data=data, method="POST"), timeout=10).close()

    def reset(self) -> None:
        from remediator.adapters import ssm

        ssm.forget_cached()  # what the functions kept of the old account's parameters
        self.post("/moto-api/reset")
        self.server.counts.clear()
        if self.strict is not None:
            self.strict.reset()


@contextmanager
def emulated_account(account_id: str = "111122223333", region: str = "us-east-1", strict: bool = True) -> Iterator[EmulatedAccount]:
    """Start the emulator on a free loopback port with Step Functions execution on and Lambda without Docker.

    `strict` (the default): behind the strict layer, which enforces IAM, API Gateway's quotas (on a
    local clock that sleeps without waiting), CloudTrail events and policy escaping as AWS does.
    """
    previous = {k: os.environ.get(k) for k in (*LOCAL_CREDENTIALS, "MOTO_ACCOUNT_ID", "AWS_DEFAULT_REGION", "MOTO_PORT")}
    os.environ.update(LOCAL_CREDENTIALS)
    # Without the strict layer every call is the one account's. With it, the layer says whose each call is (the
    # caller's account, by its credentials: a local organization has several), so the variable, which would
    # override that, is not set.
    if strict:
        os.environ.pop("MOTO_ACCOUNT_ID", None)
    else:
        os.environ["MOTO_ACCOUNT_ID"] = account_id
    os.environ["AWS_DEFAULT_REGION"] = region
    enable_listing_pages()
    layer = None
    if strict:
        layer = StrictLayer(account_id)
        install_clock(layer.clock)
    server = CountingMotoServer(layer)
    server.start()
    account = EmulatedAccount(server, account_id)
    # The emulator's Step Functions interpreter reaches Lambda through this port.
    os.environ["MOTO_PORT"] = str(server.get_host_and_port()[1])
    try:
        account.reset()  # the emulator's state lives in the process: start from an empty account
        account.post("/moto-api/config", {"stepfunctions": {"execute_state_machine": True}, "lambda": {"use_docker": False}})
        yield account
    finally:
        server.stop()
        for key, value in previous.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def seed_rest_api(
    clients: ClientFactory,
    region: str,
    name: str,
    policy: str | None,
    tags: dict[str, str] | None = None,
    stages: tuple[str, ...] = ("prod",),
) -> str:
    """Create a REST API with one method (a deployment needs one) and the given stages; returns its ID."""
    client = clients.client("apigateway", region)
    kwargs: dict[str, Any] = {"name": name, "tags": tags or {}}
    if policy is not None:
        kwargs["policy"] = policy
    api_id = client.create_rest_api(**kwargs)["id"]
    root = client.get_resources(restApiId=api_id)["items"][0]["id"]
    client.put_method(restApiId=api_id, resourceId=root, httpMethod="GET", authorizationType="NONE")
    client.put_integration(restApiId=api_id, resourceId=root, httpMethod="GET", type="MOCK")
    for stage in stages:
        client.create_deployment(restApiId=api_id, stageName=stage)
    return api_id


def escaped(policy: dict[str, Any]) -> str:
    """A policy in the form API Gateway returns it: a JSON string body, quotes and slashes escaped."""
    return json.dumps(json.dumps(policy, separators=(",", ":")))[1:-1].replace("/", "\\/")
