#!/usr/bin/env python
"""Cold start: importing each function's handler module from the Lambda asset as shipped, against
`import boto3` alone, in the same environment.

Run from the repository root:

    .venv/bin/python -m bench.bench_coldstart [--runs 15] [--clock wall|cpu]

Each measurement is a fresh CPython of the runtime's version (3.12, as the asset's bytecode is), run
with -B (Lambda cannot write __pycache__), the asset first on sys.path and boto3/botocore from this
environment's site-packages (the runtime provides them). It times the import alone, after the
interpreter started: the runs of all rows are interleaved, and the median counts. Every function of the
stacks has a row (remediator.functions NAMES, ORGANIZATION_NAMES, HOOK_NAMES). Target: each handler at most
1.15 x `import boto3`. Each run has the variables Lambda's runtime sets, so a handler loads as there: with Python's
collector paused until its module has loaded (remediator/functions/coldstart.py). A second column divides by boto3
loaded with the same pause: the package's own weight, apart from what the pause saves on boto3's part. The runtime's own boto3 comes with bytecode: here a copy of boto3 and
its dependencies is compiled once by the same 3.12 (under build/bench-runtime-libs), so that `import
boto3` is timed as Lambda runs it, not compiled at every start.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import platform
import sysconfig
import tempfile
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]

from infra.asset import build_lambda_asset, runtime_python
from remediator.functions import HOOK_NAMES, NAMES, ORGANIZATION_NAMES

TIMER = ("import sys, time; sys.path[:0] = [sys.argv[1]]; sys.path.append(sys.argv[2]); t = time.{clock}(); "
         "{statement}; print(time.{clock}() - t)")
# wall: what a cold start takes on an idle machine; cpu: the process's own CPU time, which other work on a busy
# machine does not inflate (imports hardly wait on anything but the CPU: the files are in the page cache).
CLOCKS = {"wall": "perf_counter", "cpu": "process_time"}


RUNTIME_LIBS = ("boto3", "botocore", "s3transfer", "jmespath", "dateutil", "urllib3", "six.py")


def runtime_libs(python: str) -> str:
    """boto3 and what it imports, as the Lambda runtime has them: with the runtime's bytecode."""
    source = Path(sysconfig.get_paths()["purelib"])
    target = REPO_ROOT / "build" / "bench-runtime-libs"
    if not (target / "boto3" / "__pycache__").is_dir():
        shutil.rmtree(target, ignore_errors=True)
        target.mkdir(parents=True)
        for name in RUNTIME_LIBS:
            path = source / name
            if path.is_dir():
                shutil.copytree(path, target / name, ignore=shutil.ignore_patterns("__pycache__"))
            elif path.is_file():
                shutil.copy2(path, target / name)
        subprocess.run([python, "-m", "compileall", "-q", "-j", "0", str(target)], check=True)
    return str(target)


# What Lambda's runtime sets (Lambda developer guide, "Defined runtime environment variables"): a function's modules
# load as they do there, with the collector paused (remediator/functions/coldstart.py).
LAMBDA_ENV = {"AWS_EXECUTION_ENV": "AWS_Lambda_python3.12", "AWS_LAMBDA_FUNCTION_NAME": "bench", "AWS_DEFAULT_REGION": "us-east-1"}
# The second reference: boto3 loaded with the collector paused as the functions pause it, so that the figures also
# show the package's own weight, apart from what the pause saves on boto3's part.
PAUSED_BOTO3 = "import gc; gc.disable(); import boto3"


def measure(python: str, asset: Path, site: str, statement: str, clock: str = "wall") -> float:
    """The time `statement` (an import) takes in a fresh interpreter."""
    done = subprocess.run([python, "-B", "-c", TIMER.format(statement=statement, clock=CLOCKS[clock]), str(asset), site],
                          capture_output=True, text=True, timeout=120,
                          env={"PYTHONDONTWRITEBYTECODE": "1", "PATH": "/usr/bin:/bin", **LAMBDA_ENV})
    if done.returncode != 0:
        raise RuntimeError(f"{statement}: {done.stderr.strip()}")
    return float(done.stdout.strip())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--clock", choices=sorted(CLOCKS), default="wall",
                        help="wall time (default), or the process's CPU time on a machine busy with other work")
    args = parser.parse_args(argv)
    python = runtime_python()
    if python is None:
        print("no CPython 3.12 found (set REMEDIATOR_RUNTIME_PYTHON)", file=sys.stderr)
        return 2
    # The asset as built for the functions (arm64), but with the compiled extensions (msgspec) for this
    # machine's architecture, so that they load here as they do in Lambda.
    built = build_lambda_asset(architecture={"x86_64": "x86_64", "aarch64": "arm64", "arm64": "arm64"}[platform.machine()])
    # A private copy: another build (a test, a synth) may prune the cached one while the runs go on.
    scratch = tempfile.TemporaryDirectory(prefix="bench-coldstart-")
    asset = Path(scratch.name) / "asset"
    shutil.copytree(built, asset, symlinks=True)
    site = runtime_libs(python)
    # Every function's handler module: the workflow's, the organization's and the CloudFormation Hook's.
    rows = {"boto3": "import boto3", "boto3, paused": PAUSED_BOTO3,
            **{name: f"import remediator.functions.{name}" for name in (*NAMES, *ORGANIZATION_NAMES, *HOOK_NAMES)}}
    times: dict[str, list[float]] = {row: [] for row in rows}
    for _ in range(args.runs):
        for row, statement in rows.items():
            times[row].append(measure(python, asset, site, statement, args.clock))
    base, paused = statistics.median(times["boto3"]), statistics.median(times["boto3, paused"])
    print(f"{'module':24}{'median ms':>12}{'ratio to boto3':>16}{'to paused boto3':>17}   ({args.clock} time)")
    worst = worst_own = 0.0
    for row in rows:
        median = statistics.median(times[row])
        ratio = median / base
        if row not in ("boto3", "boto3, paused"):
            worst, worst_own = max(worst, ratio), max(worst_own, median / paused)
        print(f"{row:24}{median * 1000:12.1f}{ratio:16.2f}{median / paused:17.2f}")
    print(f"worst handler: {worst:.2f} x import boto3 (target <= 1.15): {'met' if worst <= 1.15 else 'NOT met'}; "
          f"{worst_own:.2f} x boto3 loaded with the same pause (the package's own weight)")
    scratch.cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(main())
