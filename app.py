#!/usr/bin/env python3
"""CDK entry point: `cdk synth` / `cdk deploy`, or `python app.py` to write cdk.out without the CLI.

Settings are CDK context keys (remediator:*) documented in infra/config.py and infra/README.md;
their defaults are in cdk.json. cdk-nag's AwsSolutions checks run on every synth.
"""

import os
import sys
from pathlib import Path

os.environ.setdefault("JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION", "1")
os.environ.setdefault("JSII_SILENCE_WARNING_UNTESTED_NODE_VERSION", "1")

from infra import ConfigError, build_app  # noqa: E402


def main() -> int:
    try:
        # The CDK CLI says where to write (CDK_OUTDIR); run directly, write ./cdk.out like the CLI.
        outdir = None if os.environ.get("CDK_OUTDIR") else str(Path(__file__).resolve().parent / "cdk.out")
        app, _stack = build_app(outdir=outdir)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    app.synth()
    return 0


if __name__ == "__main__":
    sys.exit(main())
