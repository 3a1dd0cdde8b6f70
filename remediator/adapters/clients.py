"""boto3 clients built one way: botocore's own retry modes handle throttling, never a hand-written loop."""

from __future__ import annotations

import os
import threading
from typing import Any

import boto3
import botocore.loaders
import botocore.session
from botocore.config import Config

# One loader of botocore's service models for every session of the process. Each botocore session otherwise makes
# its own loader and parses a service's model JSON again for its first client (tens of milliseconds for API Gateway):
# once per assumed-role session of the organization sweep, per account. The loader only reads botocore's data files
# and caches what it parsed, so sessions can share it (botocore.session.Session.register_component).
_MODELS = botocore.loaders.create_loader()


def new_session(core: botocore.session.Session | None = None, **settings: Any) -> boto3.session.Session:
    """A boto3 session (credentials, profile and region as boto3.session.Session takes them) on the shared loader;
    `core`, a botocore session to build it on (one with its own credential provider)."""
    core = core or botocore.session.Session()
    core.register_component("data_loader", _MODELS)
    session = boto3.session.Session(botocore_session=core, **settings)
    paths = _MODELS.search_paths  # boto3 appends its own data folder to the loader at every session: kept once
    paths[:] = list(dict.fromkeys(paths))
    return session


class ClientFactory:
    """Makes (and caches) clients per service and region, all against one endpoint when testing locally."""

    # Clients are made under a lock: a boto3 session is not thread-safe, its clients are (boto3 documentation,
    # "Multithreading or multiprocessing with clients", https://boto3.amazonaws.com/v1/documentation/api/latest/guide/
    # clients.html: "Low-level clients are thread safe"; sessions are not). The organization sweep's child sweeps its
    # account's regions on threads sharing one factory.
    def __init__(self, endpoint_url: str | None = None, session: boto3.session.Session | None = None,
                 retry_mode: str = "adaptive", max_attempts: int | None = None) -> None:
        self.endpoint_url = endpoint_url
        self.session = session if session is not None else new_session()
        self.retry_mode = retry_mode
        self.max_attempts = max_attempts if max_attempts is not None else int(os.environ.get("AWS_MAX_ATTEMPTS", "10"))
        self._cache: dict[tuple[str, str | None], Any] = {}
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"ClientFactory(endpoint_url={self.endpoint_url!r}, retry_mode={self.retry_mode!r}, max_attempts={self.max_attempts})"

    def client(self, service: str, region: str | None = None) -> Any:
        key = (service, region)
        with self._lock:
            if key not in self._cache:
                config = Config(retries={"mode": self.retry_mode, "max_attempts": self.max_attempts}, user_agent_extra="apigw-remediator")
                self._cache[key] = self.session.client(service, region_name=region, endpoint_url=self.endpoint_url, config=config)
            return self._cache[key]

    @property
    def default_region(self) -> str:
        return self.session.region_name or "us-east-1"
