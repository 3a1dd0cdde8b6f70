"""SNS: notifications, dry-run proposals and failures go to one topic."""

from __future__ import annotations

import json
from typing import Any

from remediator.adapters.clients import ClientFactory

_SUBJECT_LIMIT = 100


def publish(clients: ClientFactory, topic_arn: str, subject: str, message: dict[str, Any]) -> str:
    region = topic_arn.split(":")[3]
    response = clients.client("sns", region).publish(
        TopicArn=topic_arn,
        Subject=subject[:_SUBJECT_LIMIT],
        Message=json.dumps(message, indent=2, default=str),
        MessageAttributes={"kind": {"DataType": "String", "StringValue": str(message.get("kind", "notice"))}},
    )
    return str(response["MessageId"])
