#!/usr/bin/env python
"""Throughput of `remediator.core.evaluate_policy` against Cloud Custodian's PolicyChecker.

Run from the repository root (Cloud Custodian installed per bench/requirements.txt):

    .venv/bin/python -m bench.bench_evaluate

A seeded generator builds a corpus of API Gateway resource policies (Allow and Deny
statements; principals "*", {"AWS": "*"}, account IDs, iam/sts ARNs of trusted and
untrusted accounts, lists, Service principals, left-over unique IDs; conditions on
aws:SourceIp, aws:SourceVpce, aws:PrincipalOrgID, aws:PrincipalAccount,
aws:SourceAccount; sometimes a single-object Statement). Each policy is handed to both
tools as the same text, in one process:

  ours  evaluate_policy(text, config) and its .patch_operations (so the fix is computed
        and serialized, as the bot does before calling update-rest-api);
  c7n   PolicyChecker(checker_config).check(text), configured as the `cross-account`
        filter configures it with its defaults (see c7n_checker()).

Timing: CPU time (time.process_time) per row, after one warm-up pass over the corpus (our
engine's per-configuration memos and principal cache stay warm, as in a sweep); then --rounds
timed rounds, each walking the corpus chunk by chunk (--chunk policies) and running every row
on a chunk before the next, in rotating order, so that a noisy neighbour hits every row alike.
Medians of the rounds are printed; a ratio is the median of the rounds' ratios (Custodian's
time over the row's). "JSON work alone" decodes each policy and serializes the fixes ours
writes, and nothing else: c7n's time over it is the ratio an engine would reach if its
evaluation cost nothing.

--form json hands both tools plain JSON text; --form sdk hands them the value
boto3's get_rest_api returns (quotes and slashes backslash-escaped); c7n then gets it the
way its aws.rest-api `cross-account` filter does, after policy.replace('\\\\', '').
--form both (default) does the first, then the second.

Verdicts are compared as a sanity check: a policy is "flagged" when our engine reports
any finding, or when c7n returns any violating statement. Disagreements are counted,
not resolved: the two tools do not define a violation the same way.
"""

from __future__ import annotations

import argparse
import gc
import json
import logging
import random
import statistics
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any, Callable

REPO_ROOT = Path(__file__).resolve().parent.parent

import msgspec

from remediator.core import TrustConfig, evaluate_policy
from remediator.core.trust import reference_evaluate

try:
    from c7n.filters.iamaccess import PolicyChecker
    from c7n.version import version as C7N_VERSION
except ImportError as error:  # pragma: no cover - a setup problem, said plainly
    sys.exit(f"Cloud Custodian is not importable ({error}); install it with:\n"
             f"    {sys.executable} -m pip install --no-deps -r bench/requirements.txt")

# ---------------------------------------------------------------------------------------
# Trust configuration shared by both tools
# ---------------------------------------------------------------------------------------

OWNER = "111122223333"
TRUSTED_ACCOUNTS = ("444455556666", "777788889999", "210987654321")
TRUSTED_ORG = "o-a1b2c3d4e5"
UNTRUSTED_ORGS = ("o-zz9y8x7w6v", "o-q1w2e3r4t5y6")
REGIONS = ("us-east-1", "us-west-2", "eu-west-1", "eu-central-1", "ap-southeast-2")
ROLE_NAMES = ("Admin", "developer", "ci-deployer", "LambdaExecutionRole", "data-pipeline", "ReadOnly",
              "partner-integration", "OrganizationAccountAccessRole", "service-role/api-consumer", "qa-runner")
USER_NAMES = ("alice", "bob", "svc-batch", "integration-user", "reporting")
SERVICES = ("lambda.amazonaws.com", "apigateway.amazonaws.com", "events.amazonaws.com",
            "states.amazonaws.com", "sns.amazonaws.com")
UNIQUE_ID_PREFIXES = ("AROA", "AIDA")
ID_CHARS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"


def trust_config() -> TrustConfig:
    return TrustConfig(owner_account=OWNER, trusted_accounts=frozenset(TRUSTED_ACCOUNTS),
                       trusted_org_ids=frozenset({TRUSTED_ORG}))


def c7n_checker() -> PolicyChecker:
    """PolicyChecker as CrossAccountAccessFilter.process() builds it, with the filter's defaults.

    allowed_accounts: the `whitelist` plus the owner account (get_accounts() adds it);
    allowed_orgid: `whitelist_orgids`; whitelist_conditions: the filter's default
    ("aws:userid", "aws:username"); everyone_only / return_allowed: False; no actions,
    VPC, VPC endpoint, org unit or principal-pattern allowlists.
    """
    return PolicyChecker({
        "allowed_accounts": set(TRUSTED_ACCOUNTS) | {OWNER},
        "allowed_vpc": set(),
        "allowed_vpce": set(),
        "allowed_orgid": {TRUSTED_ORG},
        "allowed_org_units": set(),
        "check_actions": (),
        "everyone_only": False,
        "whitelist_conditions": {"aws:userid", "aws:username"},
        "whitelist_patterns": [],
        "return_allowed": False,
    })


# ---------------------------------------------------------------------------------------
# Corpus
# ---------------------------------------------------------------------------------------

class Generator:
    """Seeded builder of realistic API Gateway resource policies."""

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        trusted = {OWNER, *TRUSTED_ACCOUNTS}
        pool: list[str] = []
        while len(pool) < 400:
            account = f"{self.rng.randrange(10**11, 10**12):012d}"
            if account not in trusted and account not in pool:
                pool.append(account)
        self.untrusted = pool
        self.api_ids = ["".join(self.rng.choice("abcdefghijklmnopqrstuvwxyz0123456789") for _ in range(10))
                        for _ in range(500)]
        self.vpces = [f"vpce-{self.rng.getrandbits(68):017x}" for _ in range(60)]

    # -- pieces ------------------------------------------------------------------------

    def account(self, trusted_share: float = 0.55) -> str:
        rng = self.rng
        if rng.random() < trusted_share:
            return OWNER if rng.random() < 0.35 else rng.choice(TRUSTED_ACCOUNTS)
        # A few untrusted accounts turn up often (a vendor), the rest rarely.
        return rng.choice(self.untrusted[:8]) if rng.random() < 0.5 else rng.choice(self.untrusted)

    def aws_principal(self, trusted_share: float = 0.55) -> str:
        rng = self.rng
        roll = rng.random()
        if roll < 0.04:
            return rng.choice(UNIQUE_ID_PREFIXES) + "".join(rng.choice(ID_CHARS) for _ in range(17))
        account = self.account(trusted_share)
        if roll < 0.18:
            return account
        if roll < 0.40:
            return f"arn:aws:iam::{account}:root"
        if roll < 0.78:
            return f"arn:aws:iam::{account}:role/{rng.choice(ROLE_NAMES)}"
        if roll < 0.88:
            return f"arn:aws:iam::{account}:user/{rng.choice(USER_NAMES)}"
        return f"arn:aws:sts::{account}:assumed-role/{rng.choice(ROLE_NAMES).split('/')[-1]}/session-{rng.randrange(400)}"

    def aws_principals(self, trusted_share: float = 0.55) -> str | list[str]:
        rng = self.rng
        count = rng.choices((1, 2, 3, 4, 6), weights=(40, 25, 15, 12, 8))[0]
        entries = [self.aws_principal(trusted_share) for _ in range(count)]
        return entries[0] if count == 1 and rng.random() < 0.6 else entries

    def everyone(self) -> Any:
        return "*" if self.rng.random() < 0.6 else {"AWS": "*"}

    def cidrs(self) -> str | list[str]:
        rng = self.rng
        values = [f"{rng.choice((10, 172, 192, 198, 203))}.{rng.randrange(256)}.{rng.randrange(256)}.0/"
                  f"{rng.choice((16, 24, 28, 32))}" for _ in range(rng.choice((1, 1, 2, 3)))]
        return values[0] if len(values) == 1 else values

    def resource(self, region: str, api_id: str) -> str | list[str]:
        rng = self.rng
        roll = rng.random()
        if roll < 0.35:
            return "execute-api:/*"
        if roll < 0.55:
            return [f"execute-api:/{rng.choice(('prod', 'stage', 'dev'))}/{rng.choice(('GET', 'POST', '*'))}/pets"]
        if roll < 0.85:
            return f"arn:aws:execute-api:{region}:{OWNER}:{api_id}/*"
        return [f"arn:aws:execute-api:{region}:{OWNER}:{api_id}/prod/{method}/{path}"
                for method, path in (("GET", "items/*"), ("POST", "orders"))[: rng.choice((1, 2))]]

    # -- statements --------------------------------------------------------------------

    def statement(self, kind: str, region: str, api_id: str) -> dict[str, Any]:
        rng = self.rng
        effect = "Deny" if kind.startswith("deny") else "Allow"
        principal: Any
        condition: dict[str, Any] | None = None
        if kind == "allow-public":
            principal = self.everyone()
        elif kind == "allow-public-ip":
            principal = self.everyone()
            condition = {"IpAddress": {"aws:SourceIp": self.cidrs()}}
        elif kind == "allow-public-vpce":
            principal = self.everyone()
            condition = {"StringEquals": {"aws:SourceVpce": rng.choice(self.vpces)}}
        elif kind == "allow-accounts":
            principal = {"AWS": self.aws_principals()}
        elif kind == "allow-accounts-trusted":
            principal = {"AWS": self.aws_principals(trusted_share=1.0)}
        elif kind == "allow-accounts-ip":
            principal = {"AWS": self.aws_principals()}
            condition = {"IpAddress": {"aws:SourceIp": self.cidrs()}}
        elif kind == "allow-bare-account":
            # Not what the console writes, but accepted and met in SAM/CDK output.
            principal = self.aws_principals() if rng.random() < 0.5 else self.account()
        elif kind == "allow-org":
            principal = self.everyone()
            org = TRUSTED_ORG if rng.random() < 0.7 else rng.choice(UNTRUSTED_ORGS)
            condition = {"StringEquals": {"aws:PrincipalOrgID": org}}
        elif kind == "allow-principal-account":
            principal = {"AWS": "*"}
            share = 1.0 if rng.random() < 0.6 else 0.5
            accounts = [self.account(share) for _ in range(rng.choice((1, 2, 3)))]
            condition = {"StringEquals": {"aws:PrincipalAccount": accounts[0] if len(accounts) == 1 else accounts}}
        elif kind == "allow-service":
            principal = {"Service": rng.choice(SERVICES)}
            if rng.random() < 0.6:
                condition = {"StringEquals": {"aws:SourceAccount": self.account(0.8)}}
        elif kind == "allow-service-and-accounts":
            principal = {"AWS": self.aws_principals(), "Service": rng.choice(SERVICES)}
        elif kind == "deny-not-ip":
            principal = "*"
            condition = {"NotIpAddress": {"aws:SourceIp": self.cidrs()}}
        elif kind == "deny-not-vpce":
            principal = "*"
            vpces = rng.sample(self.vpces, rng.choice((1, 1, 2)))
            condition = {"StringNotEquals": {"aws:SourceVpce": vpces[0] if len(vpces) == 1 else vpces}}
        elif kind == "deny-accounts":
            principal = {"AWS": self.aws_principals(trusted_share=0.0)}
        else:  # pragma: no cover
            raise ValueError(kind)

        statement: dict[str, Any] = {}
        if rng.random() < 0.45:
            statement["Sid"] = f"{kind.title().replace('-', '')}{rng.randrange(100)}"
        statement["Effect"] = effect
        statement["Principal"] = principal
        statement["Action"] = "execute-api:Invoke" if rng.random() < 0.9 else ["execute-api:Invoke"]
        statement["Resource"] = self.resource(region, api_id)
        if condition is not None:
            statement["Condition"] = condition
        return statement

    STATEMENT_KINDS = (
        ("allow-public", 4), ("allow-public-ip", 10), ("allow-public-vpce", 8),
        ("allow-accounts", 22), ("allow-accounts-trusted", 10), ("allow-accounts-ip", 4),
        ("allow-bare-account", 2), ("allow-org", 9), ("allow-principal-account", 6),
        ("allow-service", 7), ("allow-service-and-accounts", 3),
        ("deny-not-ip", 6), ("deny-not-vpce", 6), ("deny-accounts", 3),
    )
    # Whole-policy shapes the documentation and IaC tools produce, besides random mixes.
    TEMPLATES = (
        ("private-api", ("allow-public", "deny-not-vpce"), 10),
        ("ip-allowlist", ("allow-public", "deny-not-ip"), 8),
        ("cross-account", ("allow-accounts",), 12),
        ("org-only", ("allow-org",), 5),
    )

    def policy(self) -> tuple[str, dict[str, Any]]:
        """A (shape tag, policy document) pair."""
        rng = self.rng
        region, api_id = rng.choice(REGIONS), rng.choice(self.api_ids)
        roll = rng.random()
        if roll < 0.35:
            name, kinds = rng.choices([(t[0], t[1]) for t in self.TEMPLATES], weights=[t[2] for t in self.TEMPLATES])[0]
        else:
            names = [k for k, _ in self.STATEMENT_KINDS]
            weights = [w for _, w in self.STATEMENT_KINDS]
            count = rng.choices((1, 2, 3, 4), weights=(45, 30, 17, 8))[0]
            kinds = tuple(rng.choices(names, weights=weights, k=count))
            name = "mix"
        statements = [self.statement(kind, region, api_id) for kind in kinds]
        document: dict[str, Any] = {"Version": "2012-10-17"}
        if len(statements) == 1 and rng.random() < 0.25:
            document["Statement"] = statements[0]
            name += "+single-object"
        else:
            document["Statement"] = statements
        return name + ":" + ",".join(kinds), document


def sdk_form(text: str) -> str:
    """The policy as boto3's get_rest_api returns it: quotes and slashes backslash-escaped."""
    return json.dumps(text)[1:-1].replace("/", "\\/")


def build_corpus(count: int, seed: int) -> tuple[list[str], list[str], list[dict[str, Any]]]:
    """(compact JSON texts, shape tags, documents) of `count` policies."""
    generator = Generator(seed)
    tags, documents, texts = [], [], []
    for _ in range(count):
        tag, document = generator.policy()
        text = json.dumps(document, separators=(",", ":"))
        tags.append(tag)
        documents.append(document)
        texts.append(text)
    return texts, tags, documents


def describe_corpus(texts: list[str], documents: list[dict[str, Any]]) -> str:
    statements = entries = single = 0
    distinct: set[str] = set()
    for document in documents:
        body = document["Statement"]
        if isinstance(body, dict):
            single += 1
            body = [body]
        statements += len(body)
        for statement in body:
            principal = statement.get("Principal")
            values: list[Any]
            if isinstance(principal, dict):
                values = []
                for key, value in principal.items():
                    if key == "AWS":
                        values.extend(value if isinstance(value, list) else [value])
            else:
                values = principal if isinstance(principal, list) else [principal]
            entries += len(values)
            distinct.update(v for v in values if isinstance(v, str))
    mean_bytes = sum(len(t) for t in texts) / len(texts)
    return (f"{statements / len(documents):.2f} statements/policy, {entries} AWS principal entries "
            f"({len(distinct)} distinct), {single} single-object Statement, mean {mean_bytes:.0f} chars")


# ---------------------------------------------------------------------------------------
# Timing
# ---------------------------------------------------------------------------------------

def run_ours(texts: list[str], config: TrustConfig) -> None:
    """Verdict plus fix: the findings are not worded (the bot's hot path, `scan`'s table and `fix`)."""
    evaluate = evaluate_policy
    for text in texts:
        try:
            evaluate(text, config).patch_operations
        except Exception:  # noqa: BLE001 - a policy it cannot read costs what it costs
            pass


def run_ours_findings(texts: list[str], config: TrustConfig) -> None:
    """Verdict, fix and every finding worded (its detail string built), as `scan --format json` needs them."""
    evaluate = evaluate_policy
    for text in texts:
        try:
            evaluation = evaluate(text, config)
            evaluation.patch_operations
            evaluation.findings
        except Exception:  # noqa: BLE001
            pass


def run_reference(texts: list[str], config: TrustConfig) -> None:
    """The stdlib oracle the differential tests hold the engine to (today's engine before this work)."""
    for text in texts:
        try:
            evaluation = reference_evaluate(text, config)
            evaluation.patch_operations
        except Exception:  # noqa: BLE001
            pass


_STDLIB_DECODE = json.JSONDecoder().decode
_STDLIB_ENCODE = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode


def run_stdlib_floor(texts: list[str], fixes: list[dict[str, Any] | None], sdk: bool) -> None:
    """What any engine pays that decodes each policy and writes its fix with the stdlib json, evaluating
    nothing and validating nothing (the escaped form decoded as the JSON string it is, then as JSON)."""
    decode, encode = _STDLIB_DECODE, _STDLIB_ENCODE
    for text, fix in zip(texts, fixes):
        decode(decode(f'"{text}"')) if sdk else decode(text)
        if fix is not None:
            encode(fix)


def run_msgspec_floor(texts: list[str], fixes: list[dict[str, Any] | None], sdk: bool) -> None:
    """The same JSON work with msgspec (no round-trip check): the floor of this engine's approach."""
    decode, encode = msgspec.json.decode, msgspec.json.encode
    for text, fix in zip(texts, fixes):
        decode(decode(f'"{text}"')) if sdk else decode(text)
        if fix is not None:
            encode(fix)


def run_c7n(texts: list[str], checker: PolicyChecker, sdk: bool) -> None:
    check = checker.check
    if sdk:
        for text in texts:
            try:
                check(text.replace("\\", ""))  # what aws.rest-api's cross-account filter does
            except Exception:  # noqa: BLE001
                pass
    else:
        for text in texts:
            try:
                check(text)
            except Exception:  # noqa: BLE001
                pass


Row = tuple[str, Callable[[int], None]]  # name, body over the corpus' chunk of that number


def measure(rows: list[Row], chunks: int, rounds: int) -> dict[str, list[float]]:
    """CPU seconds per round for each row. Each round walks the corpus chunk by chunk and runs every row
    on a chunk before the next chunk (rows interleaved at a fine grain, in a rotating order), so that a
    noisy neighbour or a change of clock speed hits every row alike."""
    for number in range(chunks):  # warm-up: caches, memos and the interpreter's specialisation
        for _, body in rows:
            body(number)
    times: dict[str, list[float]] = {name: [] for name, _ in rows}
    clock = time.process_time
    for round_number in range(rounds):
        spent = dict.fromkeys(times, 0.0)
        gc.collect()
        for number in range(chunks):
            turn = (round_number + number) % len(rows)
            for name, body in rows[turn:] + rows[:turn]:
                start = clock()
                body(number)
                spent[name] += clock() - start
        for name, seconds in spent.items():
            times[name].append(seconds)
    return times


# ---------------------------------------------------------------------------------------
# Verdicts
# ---------------------------------------------------------------------------------------

def verdicts(texts: list[str], config: TrustConfig, checker: PolicyChecker, sdk: bool
             ) -> tuple[list[bool | None], list[bool | None], Counter[str], Counter[str]]:
    ours: list[bool | None] = []
    theirs: list[bool | None] = []
    ours_errors: Counter[str] = Counter()
    c7n_errors: Counter[str] = Counter()
    for text in texts:
        try:
            ours.append(not evaluate_policy(text, config).compliant)
        except Exception as error:  # noqa: BLE001
            ours.append(None)
            ours_errors[type(error).__name__ + ": " + str(error)[:80]] += 1
        try:
            theirs.append(bool(checker.check(text.replace("\\", "") if sdk else text)))
        except Exception as error:  # noqa: BLE001
            theirs.append(None)
            c7n_errors[type(error).__name__ + ": " + str(error)[:80]] += 1
    return ours, theirs, ours_errors, c7n_errors


def shape_of(tag: str) -> str:
    """A tag without its template name, e.g. 'allow-public,deny-not-vpce'."""
    return tag.split(":", 1)[1] + (" (single-object)" if "+single-object" in tag else "")


def table(title: str, rows: list[Row], count: int, rounds: int, chunk: int) -> dict[str, float]:
    """Print one form's table; return the median ratio (Custodian's CPU time over the row's) per row."""
    times = measure(rows, -(-count // chunk), rounds)
    c7n = times[C7N_ROW]
    print(f"{title} ({count} policies, {rounds} rounds, chunks of {chunk})")
    print(f"  {'':<44}{'median us/policy':>17}{'policies/s':>12}{'x Custodian':>13}")
    ratios = {}
    for name, values in times.items():
        median = statistics.median(values)
        ratios[name] = statistics.median(theirs / ours for theirs, ours in zip(c7n, values))
        print(f"  {name:<44}{median / count * 1e6:>17.2f}{count / median:>12,.0f}{ratios[name]:>12.2f}x")
    print()
    return ratios


C7N_ROW = "Cloud Custodian PolicyChecker.check"
VERDICT_ROW = "ours: verdict + fix (patch text)"
FINDINGS_ROW = "ours: verdict + fix + every finding worded"


def rows_for(texts: list[str], config: TrustConfig, checker: PolicyChecker, sdk: bool, chunk: int) -> list[Row]:
    fixes = [_fix_of(text, config) for text in texts]
    parts = [texts[start:start + chunk] for start in range(0, len(texts), chunk)]
    fix_parts = [fixes[start:start + chunk] for start in range(0, len(fixes), chunk)]
    return [
        (VERDICT_ROW, lambda n: run_ours(parts[n], config)),
        (FINDINGS_ROW, lambda n: run_ours_findings(parts[n], config)),
        (C7N_ROW, lambda n: run_c7n(parts[n], checker, sdk)),
        ("stdlib oracle (reference_evaluate) + fix", lambda n: run_reference(parts[n], config)),
        ("JSON work alone, stdlib (no evaluation)", lambda n: run_stdlib_floor(parts[n], fix_parts[n], sdk)),
        ("JSON work alone, msgspec (no evaluation)", lambda n: run_msgspec_floor(parts[n], fix_parts[n], sdk)),
    ]


def _fix_of(text: str, config: TrustConfig) -> dict[str, Any] | None:
    try:
        return evaluate_policy(text, config).remediated_policy
    except Exception:  # noqa: BLE001
        return None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=20_000, help="policies in the corpus (default 20000)")
    parser.add_argument("--seed", type=int, default=20240611, help="corpus seed (default 20240611)")
    parser.add_argument("--rounds", type=int, default=9, help="timed rounds per table; medians are printed (default 9)")
    parser.add_argument("--chunk", type=int, default=250, help="policies per interleaved chunk (default 250)")
    parser.add_argument("--form", choices=("json", "sdk", "both"), default="both",
                        help="json: plain JSON text; sdk: boto3 get_rest_api's escaped string; both (default)")
    args = parser.parse_args(argv)

    # c7n logs a warning per condition key it has no handler for; keep stderr readable.
    logging.getLogger("custodian.iamaccess").setLevel(logging.ERROR)

    config = trust_config()
    checker = c7n_checker()
    forms = ("json", "sdk") if args.form == "both" else (args.form,)

    started = time.perf_counter()
    texts, tags, documents = build_corpus(args.count, args.seed)
    sdk_texts = [sdk_form(text) for text in texts] if "sdk" in forms else []
    print(f"corpus: {len(texts)} policies, seed {args.seed} (built in {time.perf_counter() - started:.1f} s)")
    print(f"        {describe_corpus(texts, documents)}")
    print(f"config: owner {OWNER}, trusted {', '.join(TRUSTED_ACCOUNTS)}, trusted org {TRUSTED_ORG}")
    print(f"c7n:    {C7N_VERSION}, PolicyChecker as the cross-account filter builds it, with its defaults")
    print("        (allowed_accounts = trusted + owner, allowed_orgid = trusted org, "
          "whitelist_conditions aws:userid/aws:username)")
    print(f"python: {sys.version.split()[0]}, msgspec {msgspec.__version__}; CPU time (time.process_time) per row, "
          f"rows interleaved chunk by chunk, after a warm-up round; medians of {args.rounds} rounds")
    print()

    results: list[tuple[str, float, float]] = []  # (what, ratio, target)
    if "json" in forms:
        ratios = table("plain JSON text, all policies", rows_for(texts, config, checker, False, args.chunk),
                       len(texts), args.rounds, args.chunk)
        results += [("plain JSON, verdict + fix", ratios[VERDICT_ROW], 1.5),
                    ("plain JSON, every finding worded", ratios[FINDINGS_ROW], 1.0)]
        list_only = [t for t, d in zip(texts, documents) if isinstance(d["Statement"], list)]
        table("plain JSON text, list Statement only (c7n raises on a single-object Statement)",
              rows_for(list_only, config, checker, False, args.chunk), len(list_only), args.rounds, args.chunk)
    if "sdk" in forms:
        ratios = table("SDK form (get_rest_api's escaped string; c7n gets it after its filter's replace('\\\\', '')), "
                       "all policies", rows_for(sdk_texts, config, checker, True, args.chunk), len(sdk_texts),
                       args.rounds, args.chunk)
        results.append(("escaped form, verdict + fix", ratios[VERDICT_ROW], 1.3))
    print("parity (throughput over Cloud Custodian's, median of the rounds' ratios): >= 1.0x for verdict + fix, "
          "every rule on, on each form")
    for what, ratio, _ in results:
        if what.endswith("verdict + fix"):
            print(f"  {what:<36}{ratio:>6.2f}x  {'met' if ratio >= 1.0 else 'NOT met'}")
    print("earlier targets")
    for what, ratio, target in results:
        print(f"  {what:<36}{ratio:>6.2f}x  target >= {target}x: {'met' if ratio >= target else 'NOT met'}")
    print()

    ours, theirs, ours_errors, c7n_errors = verdicts(texts, config, checker, False)
    print("verdicts on the plain JSON text (flagged = any finding / any violating statement)")
    print(f"  ours flags {sum(1 for v in ours if v)} of {len(texts)}"
          + (f"; raised on {sum(ours_errors.values())}" if ours_errors else "; raised on none"))
    print(f"  c7n  flags {sum(1 for v in theirs if v)} of {len(texts)}"
          + (f"; raised on {sum(c7n_errors.values())}" if c7n_errors else "; raised on none"))
    for label, errors in (("ours", ours_errors), ("c7n", c7n_errors)):
        for message, count in errors.most_common(3):
            print(f"    {label} error x{count}: {message}")
    both = [(o, t, tag) for o, t, tag in zip(ours, theirs, tags) if o is not None and t is not None]
    c7n_only = Counter(shape_of(tag) for o, t, tag in both if t and not o)
    ours_only = Counter(shape_of(tag) for o, t, tag in both if o and not t)
    print(f"  disagreements over the {len(both)} policies both could read (most common statement shapes):")
    print(f"    c7n flags, ours compliant: {sum(c7n_only.values())}")
    for shape, count in c7n_only.most_common(3):
        print(f"      x{count}: {shape}")
    print(f"    ours flags, c7n compliant: {sum(ours_only.values())}")
    for shape, count in ours_only.most_common(3):
        print(f"      x{count}: {shape}")
    if sdk_texts:
        sdk_ours, sdk_theirs, _, _ = verdicts(sdk_texts, config, checker, True)
        same = sdk_ours == ours and sdk_theirs == theirs
        print(f"  SDK form gives the same verdicts for both tools: {'yes' if same else 'NO'}")
    print(f"\ntotal wall time {time.perf_counter() - started:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
