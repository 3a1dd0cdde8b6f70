"""S3: the IAM action and resource of an object or bucket call.
"""

from __future__ import annotations

import re

from remediator.local.iam import Call
from remediator.local.strict.protocol import Request


_S3_ACTIONS = {"GetObject": "s3:GetObject", "HeadObject": "s3:GetObject", "PutObject": "s3:PutObject",
               "CreateMultipartUpload": "s3:PutObject", "UploadPart": "s3:PutObject", "CompleteMultipartUpload": "s3:PutObject",
               "AbortMultipartUpload": "s3:AbortMultipartUpload", "ListParts": "s3:ListMultipartUploadParts",
               "ListObjectsV2": "s3:ListBucket", "ListObjects": "s3:ListBucket", "HeadBucket": "s3:ListBucket"}


def s3_call(request: Request) -> Call:
    """S3 authorizes object calls on arn:aws:s3:::<bucket>/<key> and bucket calls on the bucket's ARN; the bucket is
    in the path, or in the host (virtual-hosted addressing)."""
    host = str(request.environ.get("HTTP_HOST", ""))
    path = request.path.lstrip("/")
    if host.count(".") >= 1 and not re.match(r"[\d.]+(:\d+)?$", host.split(".", 1)[1]) and not host.startswith(("127.", "localhost")):
        bucket, key = host.split(".", 1)[0], path
    else:
        bucket, _, key = path.partition("/")
    return Call(_S3_ACTIONS.get(request.operation, f"s3:{request.operation}"), f"arn:aws:s3:::{bucket}" + (f"/{key}" if key else ""))
