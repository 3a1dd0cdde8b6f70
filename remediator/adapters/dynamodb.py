"""DynamoDB: the audit table (and, later, pending approvals), one item per change."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from typing import Any

from remediator.adapters.clients import ClientFactory
from remediator.audit import AuditRecord


class AuditTable:
    """Stores the same AuditRecord the CLI writes to JSON Lines, keyed by API and time."""

    def __init__(self, clients: ClientFactory, table_name: str, region: str | None = None) -> None:
        self._client = clients.client("dynamodb", region)
        self.table_name = table_name

    def append(self, record: AuditRecord) -> None:
        item = {
            "pk": {"S": f"api#{record.region}#{record.api_id}"},
            "sk": {"S": f"audit#{record.timestamp}#{record.action}#{uuid.uuid4().hex[:12]}"},
            "account": {"S": record.account},
            "region": {"S": record.region},
            "api_id": {"S": record.api_id},
            "action": {"S": record.action},
            "recorded_at": {"S": record.timestamp},
            "record": {"S": json.dumps(record.to_dict(), separators=(",", ":"))},
        }
        # Never overwrite an earlier record: an audit log only grows.
        self._client.put_item(TableName=self.table_name, Item=item, ConditionExpression="attribute_not_exists(pk)")

    def records(self) -> Iterator[AuditRecord]:
        kwargs: dict[str, Any] = {"TableName": self.table_name}
        items: list[dict[str, Any]] = []
        while True:
            page = self._client.scan(**kwargs)
            items.extend(item for item in page.get("Items", []) if item["sk"]["S"].startswith("audit#"))
            if "LastEvaluatedKey" not in page:
                break
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]
        for item in sorted(items, key=lambda i: i["sk"]["S"]):
            yield AuditRecord.from_dict(json.loads(item["record"]["S"]))
