"""Seed a running emulator with the demo's APIs: `python -m remediator.local.seed --endpoint-url URL`.

For trying scan, fix and rollback by hand against `moto_server` (see the README). It waits for the
emulator to answer (and shows the server's log when it never does), and `--check-free` tells whether
the port is free before a server is started on it.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

from botocore.exceptions import BotoCoreError, ClientError

from remediator.adapters.clients import ClientFactory
from remediator.cli.args import endpoint_address, unreachable
from remediator.demo import default_seed, load_seed
from remediator.local.emulator import LOCAL_CREDENTIALS, escaped, seed_rest_api


def wait_for(url: str, seconds: float, server_log: str | None) -> str | None:
    """None once something accepts connections at `url`; else why not, with the server log's last lines."""
    deadline = time.monotonic() + seconds
    told = False
    while unreachable(url, 1):
        if time.monotonic() >= deadline:
            tail = ""
            if server_log and Path(server_log).is_file():
                lines = Path(server_log).read_text(errors="replace").splitlines()[-15:]
                tail = "\nthe server's log ends with:\n" + "\n".join(f"  {line}" for line in lines) if lines else "\nthe server's log is empty"
            return f"error: nothing answers at {url} after {seconds:.0f} s; is the server running on that port?{tail}"
        if not told:
            print(f"waiting for the emulator at {url} ...", file=sys.stderr)
            told = True
        time.sleep(0.25)
    return None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m remediator.local.seed", description=__doc__.splitlines()[0])
    parser.add_argument("--endpoint-url", required=True, help="the emulator, e.g. http://127.0.0.1:5000")
    parser.add_argument("--regions", default="us-east-1,eu-west-1", help="comma-separated regions to seed")
    parser.add_argument("--seed", metavar="FILE", help="your own APIs (the demo's format, see examples/demo-apis.json)")
    parser.add_argument("--wait", type=float, default=20, metavar="SECONDS", help="how long to wait for the emulator (default 20)")
    parser.add_argument("--server-log", metavar="FILE", help="the server's log, shown when it does not answer")
    parser.add_argument("--check-free", action="store_true",
                        help="only check that nothing listens at the endpoint's port yet (exit 1 with one line if something does)")
    args = parser.parse_args(argv)
    if args.check_free:
        if not unreachable(args.endpoint_url, 1):
            host, port = endpoint_address(args.endpoint_url)
            print(f"error: port {port} on {host} is already in use (another emulator?); choose a free PORT", file=sys.stderr)
            return 1
        return 0
    problem = wait_for(args.endpoint_url, args.wait, args.server_log)
    if problem:
        print(problem, file=sys.stderr)
        return 2
    for key, value in LOCAL_CREDENTIALS.items():
        os.environ.setdefault(key, value)
    clients = ClientFactory(endpoint_url=args.endpoint_url)
    seed = load_seed(args.seed) if args.seed else default_seed()
    try:
        for region in [r.strip() for r in args.regions.split(",") if r.strip()]:
            for item in seed:
                text = escaped(item["policy"]) if item.get("escaped") else json.dumps(item["policy"])
                api_id = seed_rest_api(clients, region, item["name"], text, item.get("tags"), tuple(item.get("stages", ["prod"])))
                print(f"{region} {api_id} {item['name']}")
    except (BotoCoreError, ClientError) as error:
        print(f"error: the emulator at {args.endpoint_url} refused the seed: {' '.join(str(error).split())}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
