"""EventBridge: PutEvents to another account's bus, which that bus's resource policy must allow.
"""

from __future__ import annotations

import json
import time
import uuid
from typing import TYPE_CHECKING, Any

from remediator.local.iam import Call, resource_policy_decide
from remediator.local.strict.invocation import Principal
from remediator.local.strict.organizations import organization_of
from remediator.local.strict.protocol import CheckedCall, Request, error_response

if TYPE_CHECKING:
    from remediator.local.strict.layer import StrictLayer


def cross_account(layer: StrictLayer, request: Request, account: str) -> bool:
    return any(str(e.get("EventBusName", "")).startswith("arn:") and str(e["EventBusName"]).split(":")[4] != account
               for e in request.json().get("Entries", []) if isinstance(e, dict))


def put_events_across(layer: StrictLayer, request: Request, principal: Principal, start_response: Any) -> Any:
    """Events sent to another account's bus: that bus's resource policy must allow the sender (EventBridge
    checks aws:PrincipalOrgID there); delivered with `account` = the sender's account, which EventBridge
    sets and no sender can."""
    from moto.events.models import events_backends

    sender = layer.account_of(principal)
    org = organization_of(sender)
    results = []
    for entry in request.json().get("Entries", []):
        bus_arn = str(entry.get("EventBusName", ""))
        policy = layer.bus_policies.get(bus_arn)
        context = {"aws:PrincipalAccount": (sender,), **({"aws:PrincipalOrgID": (org,)} if org else {})}
        who = principal.role_arn or principal.arn
        decision = resource_policy_decide(policy, who, Call("events:PutEvents", bus_arn, context)) if policy else None
        with layer._lock:
            layer.checked.append(CheckedCall(principal.name, "events:PutEvents (bus policy)", bus_arn,
                                            bool(decision and decision.allowed), decision.reason if decision else "no bus policy",
                                            principal.scope))
        if decision is None or not decision.allowed:
            return error_response(start_response, "events", 400, "AccessDeniedException",
                          f"User: {principal.arn} is not authorized to perform: events:PutEvents on resource: {bus_arn} "
                          "because no resource-based policy allows the events:PutEvents action")
        _, _, _, region, owner, resource = bus_arn.split(":", 5)
        bus = events_backends[owner][region].describe_event_bus(resource.split("/", 1)[1])
        event_id = str(uuid.uuid4())
        message = {"version": "0", "id": event_id, "detail-type": entry.get("DetailType"), "source": entry.get("Source"),
                   "account": sender, "time": time.time(), "region": request.region, "resources": entry.get("Resources", []),
                   "detail": json.loads(entry.get("Detail") or "{}"), "ingestion-time": time.time()}
        for rule in list(bus.rules.values()):
            rule.send_to_targets(message)
        results.append({"EventId": event_id})
    body = json.dumps({"FailedEntryCount": 0, "Entries": results}).encode()
    start_response("200 OK", [("Content-Type", "application/x-amz-json-1.1"), ("Content-Length", str(len(body)))])
    return [body]
