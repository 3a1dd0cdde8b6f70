"""Secrets Manager: a secret's ARN, which IAM checks, from the name a call gives.
"""

from __future__ import annotations




def secret_arn(account: str, region: str, secret_id: str) -> str:
    if secret_id.startswith("arn:"):
        return secret_id
    from moto.secretsmanager.models import secretsmanager_backends

    try:
        return secretsmanager_backends[account][region].describe_secret(secret_id).arn
    except Exception:
        return f"arn:aws:secretsmanager:{region}:{account}:secret:{secret_id}"
