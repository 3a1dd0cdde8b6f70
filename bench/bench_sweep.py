#!/usr/bin/env python
"""Cost of an account sweep: `python -m remediator scan` against Cloud Custodian's `custodian run`.

Run from the repository root (Cloud Custodian installed per bench/requirements.txt):

    .venv/bin/python -m bench.bench_sweep

One emulated account (remediator.local.emulator: moto's threaded server on 127.0.0.1,
GetRestApis paged with limit/position as API Gateway pages it, every request counted per
(service, operation) at the server) is seeded with --apis REST APIs over three regions
(default 2,100: 1,000 in us-east-1, 600 in eu-west-1, 500 in ap-southeast-2), a seeded
mix of

  no-policy    no resource policy at all
  trusted      Allow statements naming only the owner and trusted accounts (ID, root,
               role and assumed-role ARNs), sometimes with a Deny on aws:SourceIp
  org-scoped   Principal "*" restricted by aws:PrincipalOrgID to the trusted organization
  untrusted    trusted principals plus one account nobody trusts
  wildcard     Principal "*" / {"AWS": "*"}, open or only scoped to a VPC endpoint
  exempt       an untrusted account, but tagged remediator:exempt=true

with the policy text in the form API Gateway returns it (backslash-escaped). Seeding is
not measured. Then, for each tool, the server's counters are cleared, the sweep of the
three regions runs, and its wall time and the requests the server received are recorded:

  ours  in-process   remediator.cli.main(["scan", ...]): the code path of the CLI, in this
                     process (imports already done)
  ours  subprocess   python -m remediator scan ... (interpreter start and imports included)
  c7n   in-process   c7n.cli.main(["run", ...]): the code path of `custodian run`, in this
                     process, AWS_ENDPOINT_URL set for the duration of the run
  c7n   subprocess   custodian run ... (interpreter start and imports included)

Both tools get the same trust settings (owner: the caller's account, found through STS by
both; trusted accounts; trusted organization) and the same exemption (c7n: a `not` tag
filter in front of `cross-account`). c7n runs with its defaults except `--cache-period 0`
(otherwise every run after the first would be served from its resource cache instead of
the emulator); its policy file and output directories live in a temporary directory.

Pairs compared like for like: in-process against in-process, subprocess against
subprocess. The moto server runs inside this process, so in-process runs share the
interpreter (its GIL and its heap) with the server; subprocess runs do not. Each row is run
once untimed as a warm-up; then (unless --no-gc-freeze) gc.collect() and gc.freeze() move
the emulator's state and both tools' imports out of the collector's way, as they would be
in a process of their own: otherwise a full collection over the ~220,000 objects of the
seeded emulator lands at random inside an in-process run (0.1-0.4 s each time). Then every
row runs --runs times, the rows interleaved round by round; the median counts, the best is
printed beside it. Request counts are those of the first timed run and must be the same in
every run (a difference is reported as a failed check). c7n in-process keeps its boto3
sessions between runs (c7n.utils.local_session caches them in the process); ours builds a
new session per invocation, as the CLI does.

Semantics differ, so "flagged" differs (both are printed per seeded category): c7n's
aws.rest-api cross-account filter treats an API without a policy as public (it substitutes
Principal "*"), and an aws:SourceVpce condition as a restriction when no whitelist_vpce is
given. Ours finds nothing on an API without a policy (it grants no other account anything),
and reports Principal "*" scoped only to a VPC endpoint as a (report-only) wildcard finding.

Checks: our scan reports every seeded API exactly once and flags exactly the untrusted and
wildcard ones; c7n's matches are counted per seeded category from
OUTDIR/<region>/<policy>/resources.json. Targets: our AWS requests for the whole sweep
<= sum over regions of ceil(N_region / 500) GetRestApis pages + 1 STS call, and our wall
time <= half of c7n's in each pair. Exit status 0 when every check and target holds, 1 when
a target is missed, 2 when a check fails.
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import gc
import io
import json
import math
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

REPO_ROOT = Path(__file__).resolve().parent.parent

import yaml

from remediator import cli as remediator_cli
from remediator.adapters.apigateway import PAGE_LIMIT
from remediator.local.emulator import LOCAL_CREDENTIALS, EmulatedAccount, emulated_account, escaped

try:
    import c7n.cli as c7n_cli
    from c7n.version import version as C7N_VERSION
except ImportError as error:  # pragma: no cover - a setup problem, said plainly
    sys.exit(f"Cloud Custodian is not importable ({error}); install it with:\n"
             f"    {sys.executable} -m pip install --no-deps -r bench/requirements.txt")

OWNER = "111122223333"
TRUSTED_ACCOUNTS = ("444455556666", "777788889999")
TRUSTED_ORG = "o-a1b2c3d4e5"
EXEMPT_TAG_KEY = "remediator:exempt"
REGION_SHARES = (("us-east-1", 10), ("eu-west-1", 6), ("ap-southeast-2", 5))
CATEGORIES = (("no-policy", 25), ("trusted", 50), ("org-scoped", 5), ("untrusted", 10), ("wildcard", 5), ("exempt", 5))
OURS_FLAGS = frozenset({"untrusted", "wildcard"})  # what our scan must flag (exempt ones are reported, not flagged)
C7N_POLICY_NAME = "rest-api-cross-account"
STS_CALLS = 1
ROLES = ("caller", "ci-deployer", "LambdaExecutionRole", "partner-integration", "reporting")
TEAMS = ("payments", "search", "identity", "platform", "data")


# ---------------------------------------------------------------------------------------
# The estate
# ---------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Seeded:
    region: str
    name: str
    category: str
    policy: str | None
    tags: dict[str, str]


class Estate:
    """A seeded mix of REST APIs, spread over the regions by REGION_SHARES."""

    def __init__(self, total: int, seed: int) -> None:
        self.rng = random.Random(seed)
        self.untrusted = [f"{self.rng.randrange(10**11, 10**12):012d}" for _ in range(50)]
        self.untrusted = [a for a in self.untrusted if a not in (OWNER, *TRUSTED_ACCOUNTS)]
        share_total = sum(share for _, share in REGION_SHARES)
        self.per_region = {region: total * share // share_total for region, share in REGION_SHARES}
        self.per_region[REGION_SHARES[0][0]] += total - sum(self.per_region.values())
        names, weights = zip(*CATEGORIES)
        self.apis: list[Seeded] = []
        for region, count in self.per_region.items():
            for index in range(count):
                category = self.rng.choices(names, weights)[0]
                self.apis.append(self._api(region, f"{category}-{region}-{index:04d}", category))

    # -- pieces ------------------------------------------------------------------------

    def trusted_principal(self) -> str:
        rng = self.rng
        account = OWNER if rng.random() < 0.4 else rng.choice(TRUSTED_ACCOUNTS)
        form = rng.random()
        if form < 0.25:
            return account
        if form < 0.5:
            return f"arn:aws:iam::{account}:root"
        if form < 0.9:
            return f"arn:aws:iam::{account}:role/{rng.choice(ROLES)}"
        return f"arn:aws:sts::{account}:assumed-role/{rng.choice(ROLES)}/session-{rng.randrange(100)}"

    def untrusted_principal(self) -> str:
        account = self.rng.choice(self.untrusted)
        return self.rng.choice((account, f"arn:aws:iam::{account}:root", f"arn:aws:iam::{account}:role/{self.rng.choice(ROLES)}"))

    def allow(self, principal: Any, condition: dict[str, Any] | None = None) -> dict[str, Any]:
        statement: dict[str, Any] = {"Effect": "Allow", "Principal": principal, "Action": "execute-api:Invoke",
                                     "Resource": "execute-api:/*"}
        if condition:
            statement["Condition"] = condition
        return statement

    def deny_outside_network(self) -> dict[str, Any]:
        return {"Effect": "Deny", "Principal": "*", "Action": "execute-api:Invoke", "Resource": "execute-api:/*",
                "Condition": {"NotIpAddress": {"aws:SourceIp": [f"10.{self.rng.randrange(256)}.0.0/16", "192.0.2.0/24"]}}}

    def aws(self, principals: list[str]) -> dict[str, Any]:
        return {"AWS": principals[0] if len(principals) == 1 and self.rng.random() < 0.5 else principals}

    def _api(self, region: str, name: str, category: str) -> Seeded:
        rng = self.rng
        tags = {"team": rng.choice(TEAMS), "env": rng.choice(("prod", "staging", "dev"))}
        statements: list[dict[str, Any]] = []
        if category == "trusted":
            statements.append(self.allow(self.aws([self.trusted_principal() for _ in range(rng.choice((1, 1, 2, 3)))])))
        elif category == "org-scoped":
            statements.append(self.allow("*", {"StringEquals": {"aws:PrincipalOrgID": TRUSTED_ORG}}))
        elif category in ("untrusted", "exempt"):
            principals = [self.trusted_principal() for _ in range(rng.choice((0, 1, 2)))]
            principals.insert(rng.randrange(len(principals) + 1), self.untrusted_principal())
            statements.append(self.allow(self.aws(principals)))
            if category == "exempt":
                tags[EXEMPT_TAG_KEY] = "true"
        elif category == "wildcard":
            everyone = rng.choice(("*", {"AWS": "*"}))
            vpce = {"StringEquals": {"aws:SourceVpce": f"vpce-{rng.getrandbits(68):017x}"}} if rng.random() < 0.5 else None
            statements.append(self.allow(everyone, vpce))
        if statements and category != "wildcard" and rng.random() < 0.3:
            statements.append(self.deny_outside_network())
        policy = escaped({"Version": "2012-10-17", "Statement": statements}) if statements else None
        return Seeded(region, name, category, policy, tags)


def seed(account: EmulatedAccount, estate: Estate, workers: int) -> dict[tuple[str, str], Seeded]:
    """Create every API (CreateRestApi only: a scan needs no method or stage); (region, id) -> what was seeded."""
    clients = {region: account.clients.client("apigateway", region) for region in estate.per_region}

    def create(api: Seeded) -> tuple[tuple[str, str], Seeded]:
        kwargs: dict[str, Any] = {"name": api.name, "tags": api.tags}
        if api.policy is not None:
            kwargs["policy"] = api.policy
        return (api.region, clients[api.region].create_rest_api(**kwargs)["id"]), api

    with ThreadPoolExecutor(max_workers=workers) as pool:
        return dict(pool.map(create, estate.apis))


# ---------------------------------------------------------------------------------------
# The runs
# ---------------------------------------------------------------------------------------

@dataclass
class Outcome:
    """What one run reported: (region, api_id) of every API reported, and of those flagged."""

    reported: list[tuple[str, str]]
    flagged: set[tuple[str, str]]
    status: int
    stderr: str = ""


@dataclass
class Row:
    tool: str
    mode: str
    run: Callable[[], Outcome]
    times: list[float] = field(default_factory=list)
    requests: collections.Counter[tuple[str, str]] | None = None
    request_variations: list[str] = field(default_factory=list)
    outcome: Outcome | None = None

    @property
    def label(self) -> str:
        return f"{self.tool} {self.mode}"


class Bench:
    def __init__(self, account: EmulatedAccount, regions: list[str], workdir: Path) -> None:
        self.account = account
        self.regions = regions
        self.workdir = workdir
        self.c7n_policy = workdir / "rest-api-cross-account.yml"
        self.c7n_policy_text = yaml.safe_dump({"policies": [{
            "name": C7N_POLICY_NAME,
            "resource": "aws.rest-api",
            "filters": [
                {"not": [{f"tag:{EXEMPT_TAG_KEY}": "true"}]},
                {"type": "cross-account", "whitelist": list(TRUSTED_ACCOUNTS), "whitelist_orgids": [TRUSTED_ORG]},
            ],
        }]}, sort_keys=False)
        self.c7n_policy.write_text(self.c7n_policy_text)
        # Both subprocesses: the emulator's credentials only, no profile or instance metadata to fall back on.
        self.base_env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
        self.base_env.update(LOCAL_CREDENTIALS, AWS_DEFAULT_REGION=regions[0], AWS_EC2_METADATA_DISABLED="true",
                             AWS_CONFIG_FILE=str(workdir / "no-aws-config"),
                             AWS_SHARED_CREDENTIALS_FILE=str(workdir / "no-aws-credentials"))
        self.c7n_env = {"AWS_ENDPOINT_URL": account.endpoint_url}
        self._runs = 0
        self._c7n_log = io.StringIO()

    # -- ours ----------------------------------------------------------------------------

    def ours_argv(self) -> list[str]:
        return ["scan", "--regions", ",".join(self.regions), "--endpoint-url", self.account.endpoint_url, "--format", "json",
                "--trusted-accounts", ",".join(TRUSTED_ACCOUNTS), "--trusted-org-ids", TRUSTED_ORG,
                "--exempt-tag-key", EXEMPT_TAG_KEY]

    def ours_in_process(self) -> Outcome:
        out, err = io.StringIO(), io.StringIO()
        status = remediator_cli.main(self.ours_argv(), out, err)
        return self._ours_outcome(out.getvalue(), err.getvalue(), status)

    def ours_subprocess(self) -> Outcome:
        done = subprocess.run([sys.executable, "-m", "remediator", *self.ours_argv()], cwd=REPO_ROOT, env=self.base_env,
                              capture_output=True, text=True, check=False)
        return self._ours_outcome(done.stdout, done.stderr, done.returncode)

    @staticmethod
    def _ours_outcome(stdout: str, stderr: str, status: int) -> Outcome:
        records = [json.loads(line) for line in stdout.splitlines() if line.strip()]
        reported = [(r["region"], r["api_id"]) for r in records]
        flagged = {(r["region"], r["api_id"]) for r in records
                   if not r["exempt"] and (r.get("error") or not r["compliant"])}
        return Outcome(reported, flagged, status, stderr)

    # -- Cloud Custodian ---------------------------------------------------------------

    def c7n_argv(self, output_dir: Path) -> list[str]:
        argv = ["run", "-s", str(output_dir), "--cache-period", "0"]
        for region in self.regions:
            argv += ["--region", region]
        return [*argv, str(self.c7n_policy)]

    def _output_dir(self) -> Path:
        self._runs += 1
        return self.workdir / f"c7n-out-{self._runs:03d}"

    def c7n_in_process(self) -> Outcome:
        output_dir = self._output_dir()
        status = 0
        start = self._c7n_log.tell()
        # c7n's logging.basicConfig binds its handler to the stderr of the first run: always the same buffer.
        with _environment(self.c7n_env), contextlib.redirect_stderr(self._c7n_log):
            try:
                c7n_cli.main(self.c7n_argv(output_dir))
            except SystemExit as exit_:
                status = int(exit_.code or 0)
        return self._c7n_outcome(output_dir, status, self._c7n_log.getvalue()[start:])

    def c7n_subprocess(self) -> Outcome:
        output_dir = self._output_dir()
        custodian = Path(sys.executable).with_name("custodian")
        command = [str(custodian)] if custodian.exists() else [sys.executable, "-m", "c7n.cli"]
        done = subprocess.run([*command, *self.c7n_argv(output_dir)], env={**self.base_env, **self.c7n_env},
                              capture_output=True, text=True, check=False)
        return self._c7n_outcome(output_dir, done.returncode, done.stderr)

    def _c7n_outcome(self, output_dir: Path, status: int, stderr: str) -> Outcome:
        flagged: set[tuple[str, str]] = set()
        for region in self.regions:
            found = [p for p in (output_dir / region / C7N_POLICY_NAME / "resources.json",
                                 output_dir / C7N_POLICY_NAME / region / "resources.json") if p.exists()]
            if not found:
                return Outcome([], flagged, status or 99, stderr + f"\nno resources.json for {region} under {output_dir}")
            flagged |= {(region, r["id"]) for r in json.loads(found[0].read_text())}
        shutil.rmtree(output_dir, ignore_errors=True)
        return Outcome([], flagged, status, stderr)

    # -- measuring ---------------------------------------------------------------------

    def measure(self, row: Row, timed: bool) -> None:
        self.account.server.counts.clear()
        started = time.perf_counter()
        outcome = row.run()
        elapsed = time.perf_counter() - started
        requests = self.account.server.aws_requests()
        if outcome.status not in (0, 1):
            raise SystemExit(f"{row.label} failed (exit status {outcome.status}):\n{outcome.stderr[-4000:]}")
        if not timed:
            return
        row.times.append(elapsed)
        if row.requests is None:
            row.requests, row.outcome = requests, outcome
        elif requests != row.requests:
            row.request_variations.append(f"run {len(row.times)}: {_top(requests, 10)}")


@contextlib.contextmanager
def _environment(values: dict[str, str]) -> Iterator[None]:
    previous = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, value in previous.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


# ---------------------------------------------------------------------------------------
# Report
# ---------------------------------------------------------------------------------------

def _top(counts: collections.Counter[tuple[str, str]], n: int) -> str:
    return ", ".join(f"{service}:{operation} {count}" for (service, operation), count in counts.most_common(n))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--apis", type=int, default=2100, help="REST APIs to seed over the three regions (default 2100)")
    parser.add_argument("--runs", type=int, default=5, help="timed runs per row (default 5)")
    parser.add_argument("--seed", type=int, default=20240611, help="seed of the estate generator")
    parser.add_argument("--no-gc-freeze", action="store_true",
                        help="do not move the emulator's heap out of the garbage collector's way before timing")
    parser.add_argument("--seed-workers", type=int, default=8, help="threads that seed the emulator (default 8)")
    args = parser.parse_args()

    estate = Estate(args.apis, args.seed)
    regions = list(estate.per_region)
    print(f"bench_sweep: {args.apis} REST APIs over {', '.join(f'{r} {n}' for r, n in estate.per_region.items())}; "
          f"c7n {C7N_VERSION}; Python {sys.version.split()[0]}; {os.cpu_count()} CPUs; --runs {args.runs}")
    problems: list[str] = []
    misses: list[str] = []
    workdir = Path(tempfile.mkdtemp(prefix="bench-sweep-"))
    try:
        with emulated_account(account_id=OWNER) as account:
            started = time.perf_counter()
            seeded = seed(account, estate, args.seed_workers)
            categories = collections.Counter(api.category for api in seeded.values())
            print(f"seeded {len(seeded)} APIs in {time.perf_counter() - started:.1f}s (not measured): "
                  + ", ".join(f"{name} {categories[name]}" for name, _ in CATEGORIES))
            bench = Bench(account, regions, workdir)
            rows = [Row("ours", "in-process", bench.ours_in_process), Row("c7n", "in-process", bench.c7n_in_process),
                    Row("ours", "subprocess", bench.ours_subprocess), Row("c7n", "subprocess", bench.c7n_subprocess)]
            for row in rows:
                bench.measure(row, timed=False)
            if not args.no_gc_freeze:
                # The emulator's state (every seeded API) and both tools' imports live in this process: without
                # this, a full collection over that heap lands at random inside the in-process runs.
                gc.collect()
                gc.freeze()
            for _ in range(args.runs):
                for row in rows:
                    bench.measure(row, timed=True)
            account.server.counts.clear()
    finally:
        shutil.rmtree(workdir, ignore_errors=True)

    expected_flags = {key for key, api in seeded.items() if api.category in OURS_FLAGS}
    pages = {region: max(1, math.ceil(n / PAGE_LIMIT)) for region, n in estate.per_region.items()}
    request_budget = sum(pages.values()) + STS_CALLS

    # -- checks ------------------------------------------------------------------------
    for row in rows:
        outcome = row.outcome
        assert outcome is not None and row.requests is not None
        if row.request_variations:
            problems.append(f"{row.label}: request counts differ between runs: " + "; ".join(row.request_variations))
        if row.tool == "ours":
            counted = collections.Counter(outcome.reported)
            missing = set(seeded) - set(counted)
            doubled = [key for key, n in counted.items() if n > 1]
            unknown = set(counted) - set(seeded)
            if missing or doubled or unknown:
                problems.append(f"{row.label}: {len(missing)} APIs not reported, {len(doubled)} reported twice, "
                                f"{len(unknown)} unknown")
            if outcome.flagged != expected_flags:
                unexpected, missed = len(outcome.flagged - expected_flags), len(expected_flags - outcome.flagged)
                problems.append(f"{row.label}: flagged {len(outcome.flagged)}, expected {len(expected_flags)} "
                                f"({unexpected} unexpected, {missed} missed)")
            if outcome.status != 1:
                problems.append(f"{row.label}: exit status {outcome.status}, expected 1 (findings)")
        else:
            unknown = outcome.flagged - set(seeded)
            if unknown:
                problems.append(f"{row.label}: {len(unknown)} matched resources were never seeded")
            missed_untrusted = {k for k in seeded if seeded[k].category == "untrusted"} - outcome.flagged
            if missed_untrusted:
                problems.append(f"{row.label}: did not match {len(missed_untrusted)} of the untrusted-account APIs")

    for tool in ("ours", "c7n"):
        in_process, sub = (r for r in rows if r.tool == tool)
        if in_process.outcome.flagged != sub.outcome.flagged:  # type: ignore[union-attr]
            problems.append(f"{tool}: in-process and subprocess runs flagged different APIs")

    # -- table -------------------------------------------------------------------------
    print()
    print(f"{'tool':<16} {'wall median':>11} {'(best)':>8} {'AWS requests':>12} {'APIs reported':>13} {'flagged':>8}"
          "  requests by operation")
    for row in rows:
        assert row.outcome is not None and row.requests is not None
        reported = len(row.outcome.reported) if row.tool == "ours" else "-"
        print(f"{row.label:<16} {statistics.median(row.times):>10.3f}s {min(row.times):>7.3f}s "
              f"{sum(row.requests.values()):>12} {reported!s:>13} {len(row.outcome.flagged):>8}  {_top(row.requests, 4)}")
    print()
    print("flagged per seeded category (seeded / ours / c7n):")
    ours_flagged, c7n_flagged = rows[0].outcome.flagged, rows[1].outcome.flagged  # type: ignore[union-attr]
    for name, _ in CATEGORIES:
        keys = {k for k, api in seeded.items() if api.category == name}
        print(f"  {name:<11} {len(keys):>5} / {len(keys & ours_flagged):>5} / {len(keys & c7n_flagged):>5}")
    print(f"c7n ran as: custodian {' '.join(bench.c7n_argv(Path('OUTDIR'))[:-1])} {bench.c7n_policy.name}, "
          "env AWS_ENDPOINT_URL=<emulator> + the emulator's fake credentials")
    print("  " + bench.c7n_policy_text.strip().replace("\n", "\n  "))

    print()
    print(f"target: our AWS requests <= {' + '.join(str(pages[r]) for r in regions)} GetRestApis pages "
          f"(ceil(N/{PAGE_LIMIT}) per region) + {STS_CALLS} STS = {request_budget}")
    for row in rows:
        if row.tool != "ours":
            continue
        total = sum(row.requests.values())  # type: ignore[union-attr]
        verdict = "PASS" if total <= request_budget else "MISS"
        print(f"  {row.label:<16} {total:>5} requests: {verdict}  ({_top(row.requests, 10)})")  # type: ignore[arg-type]
        if verdict == "MISS":
            misses.append(f"{row.label}: {total} AWS requests > {request_budget}")
    print("ratios ours / c7n (like for like):")
    for mode in ("in-process", "subprocess"):
        ours, c7n = (next(r for r in rows if r.tool == tool and r.mode == mode) for tool in ("ours", "c7n"))
        ours_median, c7n_median = statistics.median(ours.times), statistics.median(c7n.times)
        ours_total, c7n_total = sum(ours.requests.values()), sum(c7n.requests.values())  # type: ignore[union-attr]
        time_ratio, request_ratio = ours_median / c7n_median, ours_total / c7n_total
        verdict = "PASS" if time_ratio <= 0.5 else "MISS"
        print(f"  {mode:<11} requests {request_ratio:.3f} ({ours_total}/{c7n_total}), "
              f"wall time {time_ratio:.3f} ({ours_median:.3f}s/{c7n_median:.3f}s; target <= 0.5: {verdict})")
        if verdict == "MISS":
            misses.append(f"{mode}: wall time ratio {time_ratio:.3f} > 0.5")

    print()
    for problem in problems:
        print(f"CHECK FAILED: {problem}")
    for miss in misses:
        print(f"TARGET MISSED: {miss}")
    if not problems and not misses:
        print("all checks passed, all targets met")
    return 2 if problems else 1 if misses else 0


if __name__ == "__main__":
    sys.exit(main())
