"""DynamoDB: the IAM actions of a call (with dynamodb:LeadingKeys), and Time to Live's deletions.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from remediator.local.iam import Call
from remediator.local.strict.protocol import Request

if TYPE_CHECKING:
    from remediator.local.strict.layer import StrictLayer


def dynamodb_calls(request: Request, account: str, hash_key: Callable[[str, str], str | None]) -> list[Call]:
    body = request.json()

    def one(action: str, params: dict[str, Any]) -> Call:
        table = str(params.get("TableName", ""))
        arn = f"arn:aws:dynamodb:{request.region}:{account}:table/{table}"
        key_name = hash_key(request.region, table)
        item = params.get("Key") or params.get("Item") or {}
        context: dict[str, tuple[str, ...]] = {}
        if key_name and isinstance(item, dict) and key_name in item:
            context["dynamodb:LeadingKeys"] = tuple(str(v) for v in item[key_name].values())
        elif key_name and action == "dynamodb:Query":
            values = params.get("ExpressionAttributeValues") or {}
            found = re.search(rf"\b{re.escape(key_name)}\s*=\s*(:\w+)", str(params.get("KeyConditionExpression", "")))
            if found and found.group(1) in values:
                context["dynamodb:LeadingKeys"] = tuple(str(v) for v in values[found.group(1)].values())
        return Call(action, arn, context)

    if request.operation in ("TransactWriteItems", "TransactGetItems"):
        names = {"Put": "PutItem", "Update": "UpdateItem", "Delete": "DeleteItem", "ConditionCheck": "ConditionCheckItem",
                 "Get": "GetItem"}
        return [one(f"dynamodb:{names[kind]}", params) for entry in body.get("TransactItems", [])
                for kind, params in entry.items() if kind in names]
    if request.operation in ("BatchWriteItem", "BatchGetItem"):
        raise NotImplementedError("batch operations are not authorized locally; the remediator makes none")
    return [one(f"dynamodb:{request.operation}", body)]


def hash_key_of(account: str, region: str, table: str) -> str | None:
    from moto.dynamodb.models import dynamodb_backends

    try:
        return dynamodb_backends[account][region].get_table(table).hash_key_attr
    except Exception:  # no such table: DynamoDB answers ResourceNotFound itself
        return None


def reap_expired(layer: StrictLayer, share: float = 1.0) -> list[tuple[str, str, str]]:
    """DynamoDB's Time to Live: delete (a `share` of) the items whose TTL attribute, a Number of epoch seconds,
    is past on the local clock, in every table with TTL enabled. Returns (table, pk, sk) of each deleted item.

    DynamoDB developer guide, "Time to Live (TTL)": expired items are deleted in the background, "typically
    within a few days of their expiration time" (UpdateTimeToLive: "within two days"); until then they still
    show up in reads; an item whose TTL attribute is not a Number, or whose expiry is more than five years
    past, is never deleted. So code may neither count on an expired item being gone nor on it staying."""
    from moto.dynamodb.models import dynamodb_backends

    now = layer.clock.time()
    deleted: list[tuple[str, str, str]] = []
    with layer._lock:
        for account in list(dynamodb_backends.keys()):
            for region in list(dynamodb_backends[account].keys()):
                for table in list(dynamodb_backends[account][region].tables.values()):
                    ttl = table.ttl or {}
                    attribute = ttl.get("AttributeName")
                    if ttl.get("TimeToLiveStatus") != "ENABLED" or not attribute:
                        continue
                    for item in list(table.all_items()):
                        value = item.attrs.get(attribute)
                        if value is None or value.type != "N":
                            continue
                        expires = float(value.value)
                        if not now - 5 * 365 * 86400 < expires < now:
                            continue
                        if share < 1.0 and layer.ttl_random.random() >= share:
                            continue
                        table.delete_item(item.hash_key, item.range_key)
                        deleted.append((table.name, str(item.hash_key.value), str(getattr(item.range_key, "value", ""))))
    return deleted
