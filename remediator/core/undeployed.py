"""What a redeploy would publish besides the fix: the difference between what a stage serves and the API now.

A CreateDeployment snapshots the whole REST API, not only its policy, so redeploying a stage to publish the fix also
publishes every edit made since the stage's deployment (a method added, one deleted, its authorization changed).
Such an edit may be someone's unfinished work; publishing it can take the API down. This module compares two
summaries of the API's methods, in the form of GetDeployment's `apiSummary` (API Gateway API Reference,
"GetDeployment" / "Deployment": apiSummary, "A summary of the RestApi at the date and time that the deployment
resource was created", a map of path to http method to MethodSnapshot{authorizationType, apiKeyRequired};
https://docs.aws.amazon.com/apigateway/latest/api/API_Deployment.html).

What it cannot see: apiSummary holds a method's authorizationType and apiKeyRequired only. A change inside an
existing method (its integration's URI or backend, request parameters, models, validators, responses), and changes
to authorizers, gateway responses or models, are not in it and are not reported here. The policy is not part of it
either: the fix is the one change the bot means to publish.

Pure: no AWS SDK, no I/O. The adapter reads the two summaries; untrusted input is decoded strictly here.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Annotated, Any, Literal

import msgspec

from remediator.codec import Record

# What a fix does when its redeploy would also publish such edits (the undeployed_changes setting): ask a person (in
# approval mode; elsewhere the API is reported), publish them with the fix, or report the API and write nothing.
UNDEPLOYED_SETTINGS = ("ask", "publish", "report")
# The kinds of change, as they are recorded (UndeployedChange.kind) and told.
KINDS = ("method-added", "method-removed", "authorization-changed", "api-key-changed")
# API Gateway's HTTP methods for a REST API method (PutMethod: "httpMethod ... GET, POST, PUT, PATCH, DELETE, HEAD,
# OPTIONS, ANY"); a summary naming anything else is not one API Gateway wrote.
HTTP_METHODS = frozenset({"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS", "ANY"})
SUMMARY_LIMIT = 10_000  # methods: a REST API has at most 300 resources by default (adjustable), each at most 8 verbs
TEXT_LIMIT = 1024  # a resource path or an authorization type

# {path: {httpMethod: (authorizationType, apiKeyRequired)}}
Summary = dict[str, dict[str, tuple[str, bool]]]


class SummaryError(ValueError):
    """A summary that is not what API Gateway returns: one line; nothing is decided from it."""


class UndeployedChange(Record, frozen=True, order=True):
    """One edit of the API that a stage does not serve yet, and that a redeploy of that stage would publish.
    Stored in intents, audit records and approval requests (remediator.codec decodes it strictly)."""

    stage: Annotated[str, msgspec.Meta(pattern=r"^[A-Za-z0-9_-]{1,128}\Z")]  # a stage name (remediator.stored.StageName)
    path: Annotated[str, msgspec.Meta(pattern=r"^/", max_length=TEXT_LIMIT)]
    http_method: Literal["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS", "ANY"]  # HTTP_METHODS
    kind: Literal["method-added", "method-removed", "authorization-changed", "api-key-changed"]  # KINDS
    # what the stage serves: the authorization type, or "true"/"false" for an API key
    deployed: Annotated[str, msgspec.Meta(max_length=TEXT_LIMIT)] | None = None
    now: Annotated[str, msgspec.Meta(max_length=TEXT_LIMIT)] | None = None  # what the API has now, likewise

    @property
    def what(self) -> str:
        """Without the stage: the same edit seen from two stages is one edit."""
        return f"{self.http_method} {self.path} {self.kind}"

    def describe(self) -> str:
        method = f"{self.http_method} {self.path}"
        if self.kind == "method-added":
            return f"stage {self.stage}: {method} added (authorization {self.now})"
        if self.kind == "method-removed":
            return f"stage {self.stage}: {method} removed (it serves authorization {self.deployed})"
        if self.kind == "authorization-changed":
            return f"stage {self.stage}: {method} authorization {self.deployed} -> {self.now}"
        return f"stage {self.stage}: {method} apiKeyRequired {self.deployed} -> {self.now}"


def summary_from_api(data: Any, where: str = "apiSummary") -> Summary:
    """GetDeployment's apiSummary, decoded strictly: {path: {verb: {authorizationType, apiKeyRequired}}}."""
    if not isinstance(data, dict):
        raise SummaryError(f"{where} is not an object")
    summary: Summary = {}
    count = 0
    for path, methods in data.items():
        if not isinstance(path, str) or not path.startswith("/") or len(path) > TEXT_LIMIT:
            raise SummaryError(f"{where} names a path that is not a resource path: {str(path)[:80]!r}")
        if not isinstance(methods, dict):
            raise SummaryError(f"{where}[{path[:80]!r}] is not an object")
        for verb, snapshot in methods.items():
            count += 1
            if count > SUMMARY_LIMIT:
                raise SummaryError(f"{where} has more than {SUMMARY_LIMIT} methods")
            if verb not in HTTP_METHODS:
                raise SummaryError(f"{where}[{path[:80]!r}] names {str(verb)[:20]!r}, not an HTTP method")
            if not isinstance(snapshot, dict):
                raise SummaryError(f"{where}[{path[:80]!r}][{verb}] is not an object")
            summary.setdefault(path, {})[verb] = _snapshot(snapshot, f"{where}[{path[:80]!r}][{verb}]")
    return summary


def _snapshot(snapshot: Mapping[str, Any], where: str) -> tuple[str, bool]:
    authorization = snapshot.get("authorizationType", "NONE")
    key = snapshot.get("apiKeyRequired", False)
    if not isinstance(authorization, str) or not authorization or len(authorization) > TEXT_LIMIT:
        raise SummaryError(f"{where}.authorizationType is not a string")
    if not isinstance(key, bool):
        raise SummaryError(f"{where}.apiKeyRequired is not true or false")
    return authorization, key


def summary_of_methods(methods: Iterable[Any]) -> Summary:
    """The API now, in apiSummary's form, from its methods (remediator.core.access.Method: GetResources with
    embed=methods). A method whose authorizationType API Gateway did not say is NONE, its default (PutMethod)."""
    summary: Summary = {}
    for method in methods:
        summary.setdefault(method.path, {})[method.http_method] = (
            method.authorization_type or "NONE", bool(method.api_key_required))
    return summary


def undeployed_changes(stage: str, deployed: Summary, now: Summary) -> list[UndeployedChange]:
    """What redeploying `stage` (serving `deployed`) would publish besides the policy: every method added, removed,
    or whose authorization or API key requirement changed. Sorted, so that equal sets compare equal."""
    changes: list[UndeployedChange] = []
    paths = set(deployed) | set(now)
    for path in paths:
        before, after = deployed.get(path, {}), now.get(path, {})
        for verb in set(before) | set(after):
            if verb not in before:
                changes.append(UndeployedChange(stage, path, verb, "method-added", None, after[verb][0]))
            elif verb not in after:
                changes.append(UndeployedChange(stage, path, verb, "method-removed", before[verb][0], None))
            else:
                if before[verb][0] != after[verb][0]:
                    changes.append(UndeployedChange(stage, path, verb, "authorization-changed", before[verb][0], after[verb][0]))
                if before[verb][1] != after[verb][1]:
                    changes.append(UndeployedChange(stage, path, verb, "api-key-changed",
                                                    _flag(before[verb][1]), _flag(after[verb][1])))
    return sorted(changes)


def unaccepted(found: Iterable[UndeployedChange], accepted: Iterable[UndeployedChange]) -> list[UndeployedChange]:
    """The changes of `found` that are not among `accepted` (what a person approved, or the plan allowed)."""
    known = set(accepted)
    return [change for change in found if change not in known]


def _flag(value: bool) -> str:
    return "true" if value else "false"
