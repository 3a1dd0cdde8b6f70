"""Seed a running emulator with the demo's APIs: `python -m remediator.local.seed --endpoint-url URL`.

For trying scan, fix and rollback by hand against `moto_server` (see the README).
"""

from __future__ import annotations

import argparse
import json
import os
import sys

from remediator.adapters.clients import ClientFactory
from remediator.demo import default_seed
from remediator.local.emulator import LOCAL_CREDENTIALS, escaped, seed_rest_api


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m remediator.local.seed", description=__doc__.splitlines()[0])
    parser.add_argument("--endpoint-url", required=True, help="the emulator, e.g. http://127.0.0.1:5000")
    parser.add_argument("--regions", default="us-east-1,eu-west-1", help="comma-separated regions to seed")
    args = parser.parse_args(argv)
    for key, value in LOCAL_CREDENTIALS.items():
        os.environ.setdefault(key, value)
    clients = ClientFactory(endpoint_url=args.endpoint_url)
    for region in [r.strip() for r in args.regions.split(",") if r.strip()]:
        for item in default_seed():
            text = escaped(item["policy"]) if item.get("escaped") else json.dumps(item["policy"])
            api_id = seed_rest_api(clients, region, item["name"], text, item.get("tags"), tuple(item.get("stages", ["prod"])))
            print(f"{region} {api_id} {item['name']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
