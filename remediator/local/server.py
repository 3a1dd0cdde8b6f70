"""moto's server, with what it lacks for this product: what each deployment publishes.

moto answers GetDeployment without `apiSummary` (embed=apisummary), and the bot refuses to redeploy when it cannot
tell what a deployment would publish besides its fix (remediator.core.undeployed). This runs moto's own server with the
deployment snapshots the strict layer and the in-process tests use (remediator.local.deployments), so the README's
walk-through (examples/emulator.sh) fixes as it would in AWS:

    .venv/bin/python -m remediator.local.server -p 5000
"""

from __future__ import annotations

from moto.server import main as moto_server

from remediator.local.deployments import install_in_process


def main(argv: list[str] | None = None) -> None:
    install_in_process()
    moto_server(argv)


if __name__ == "__main__":
    main()
