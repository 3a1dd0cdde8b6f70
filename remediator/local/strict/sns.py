"""SNS: the encrypted topic's KMS key, which Publish uses as the caller.
"""

from __future__ import annotations




def topic_key(account: str, region: str, topic_arn: str) -> str | None:
    from moto.kms.models import kms_backends
    from moto.sns.models import sns_backends

    try:
        key_id = sns_backends[account][region].get_topic(topic_arn).kms_master_key_id
    except Exception:
        return None
    if not key_id:
        return None
    if key_id.startswith("arn:"):
        return key_id
    try:
        return kms_backends[account][region].describe_key(key_id).arn
    except Exception:
        return f"arn:aws:kms:{region}:{account}:key/{key_id}"
