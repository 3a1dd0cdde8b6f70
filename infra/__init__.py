"""CDK app for the API Gateway resource policy remediator (see infra/README.md).

Holds the stacks (`stack`, `spoke`), their settings (`config`), the names they share (`names`) and the Lambda
asset (`asset`). May import of the package: the core (the settings' rules), `events`, the workflow's definition
and `remediator.functions` with `functions.needs` (each function's grants): nothing a function runs.
"""

from __future__ import annotations

import json
import os
from typing import Any

import aws_cdk as cdk
from cdk_nag import AwsSolutionsChecks

from infra.config import ConfigError, RemediatorConfig, cdk_json_context, check_keys, from_context
from infra.stack import RemediatorStack

STACK_ID = "ApiPolicyRemediator"

__all__ = ["STACK_ID", "ConfigError", "RemediatorConfig", "RemediatorStack", "build_app"]


def build_app(
    context: dict[str, Any] | None = None, *, outdir: str | None = None, nag: bool = True
) -> tuple[cdk.App, RemediatorStack]:
    """The app and its one stack, as `cdk synth` and `python app.py` build them.

    cdk.json's context comes first, then ``context``; the CDK CLI's own context (CDK_CONTEXT_JSON,
    which includes cdk.json, cdk.context.json and -c flags) is applied on top by App itself.
    With ``nag``, cdk-nag's AwsSolutions pack runs at synth and any unacknowledged finding stops it.
    """
    given = {**cdk_json_context(), **(context or {})}
    # Every remediator:* key must be one we know: a misspelt trust list would otherwise read as "trust no one".
    check_keys([*given, *json.loads(os.environ.get("CDK_CONTEXT_JSON") or "{}")])
    app = cdk.App(context=given, outdir=outdir)
    config = from_context(app.node.try_get_context)
    # Environment-agnostic: deploy with the CLI's credentials and region; ARNs use Aws.REGION/PARTITION.
    stack = RemediatorStack(app, STACK_ID, config=config)
    if nag:
        # cdk-nag 3: packs are policy-validation plugins (Validations), no longer Aspects.
        cdk.Validations.of(app).add_plugins(AwsSolutionsChecks(app))
    return app, stack
