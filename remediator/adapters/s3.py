"""S3: the organization sweep's items and results in the hub's results bucket."""

from __future__ import annotations

import json
from typing import Any

from remediator.adapters.clients import ClientFactory


class ResultsBucket:
    def __init__(self, clients: ClientFactory, bucket: str, region: str | None = None) -> None:
        self._client = clients.client("s3", region)
        self.bucket = bucket

    def put_json(self, key: str, value: Any) -> None:
        self._client.put_object(Bucket=self.bucket, Key=key, Body=json.dumps(value, separators=(",", ":")).encode(),
                                ContentType="application/json")

    def get_json(self, key: str) -> Any:
        return json.loads(self._client.get_object(Bucket=self.bucket, Key=key)["Body"].read())
