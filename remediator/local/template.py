"""The stack's CloudFormation template, synthesized for a mode, and its intrinsics resolved locally.

The strict local account takes each function's IAM policy, timeout and the event rule's pattern from
the template the real CDK stack synthesizes, so that a grant missing from the stack is a failure
here and not an AccessDenied in a real account. Synthesizing takes a few seconds (Node.js and the
CDK's jsii runtime), so templates are cached under build/local-templates, keyed by a digest of
everything that goes into them (infra/, remediator/, cdk.json, requirements.txt). The first process to need one
synthesizes every variant in one run under a file lock (the jsii runtime starts once), and the test session's
other processes read what it wrote.

Where the CDK toolchain is not installed (`make demo` installs only what the demo needs), the
templates committed under remediator/local/templates are used: the same synth, with the code asset's
hash left out. The tests compare them with a fresh synth, so they cannot drift from the stack;
`make templates` (`python -m remediator.local.template --write`) rewrites them.
"""

from __future__ import annotations

import argparse
import fcntl
import hashlib
import importlib.util
import json
import os
import re
import subprocess
import sys
import tempfile
from collections.abc import Callable, Mapping
from functools import cache
from pathlib import Path
from typing import Any

from remediator.workflow import MODES

ROOT = Path(__file__).resolve().parents[2]
CACHE = ROOT / "build" / "local-templates"
COMMITTED = Path(__file__).resolve().parent / "templates"
VARIANTS = (("auto", False, False), ("auto", True, False), ("dry-run", False, False), ("dry-run", True, False),
            ("approval", True, False), ("auto", False, True), ("dry-run", False, True))
# With the CloudFormation hook on (remediator:cloudFormationHook): (mode, slack, organization, hook).
HOOK_VARIANTS = (("auto", False, False, "fail"),)
ALL_VARIANTS = tuple((mode, slack, organization, "off") for mode, slack, organization in VARIANTS) + HOOK_VARIANTS
_ASSET_HASH = re.compile(r"\b[0-9a-f]{64}\b")

# A channel and an approver: their values change no grant, whether there is a channel does (the
# functions that post to Slack may read the bot token only when there is one).
SLACK_CHANNEL = "C0LOCALAPPROVALS"


# Organization mode's settings for the local organization; LOCAL_ORGANIZATION_ID stands for the organization the
# local account creates (its ID is random), and is replaced by it wherever the template names it.
LOCAL_ORGANIZATION_ID = "o-localorgid00"
LOCAL_ROOT_ID = "r-local"
LOCAL_SWEEP_REGIONS = ("us-east-1", "eu-west-1", "ap-southeast-2")  # the first holds the spoke role


def _context(mode: str, slack: bool, organization: bool = False, hook: str = "off") -> dict[str, Any]:
    context: dict[str, Any] = {"remediator:mode": mode}
    if hook != "off":
        context["remediator:cloudFormationHook"] = hook
    if organization:
        context.update({"remediator:deployment": "organization", "remediator:organizationId": LOCAL_ORGANIZATION_ID,
                        "remediator:spokeOrganizationalUnits": [LOCAL_ROOT_ID],
                        "remediator:spokeRegions": list(LOCAL_SWEEP_REGIONS)})
    if slack or mode == "approval":
        context["remediator:slackChannel"] = SLACK_CHANNEL
    if mode == "approval":
        context["remediator:approverUserIds"] = ["U0APPROVER"]
        # Off by default (accounts with a low concurrency quota cannot reserve any); set here, so that the strict
        # account caps the public URL as Lambda would (tests/test_strict_account.py).
        context["remediator:callbackReservedConcurrency"] = 5
    return context

# One process synthesizes every variant asked for (the CDK's jsii runtime starts once): [[name, context], ...].
_SYNTH = """
import glob, json, os, shutil, sys
from infra import build_app
for name, context in json.loads(sys.argv[1]):
    outdir = os.path.join(sys.argv[2], name)
    app, stack = build_app(context, outdir=outdir, nag=False)
    template = app.synth().get_stack_by_name(stack.stack_name).template
    for spoke in glob.glob(os.path.join(outdir, "*.stackset.template.json")):
        shutil.copyfile(spoke, os.path.join(sys.argv[2], name + ".json.spoke"))
    with open(os.path.join(sys.argv[2], name + ".json"), "w", encoding="utf-8") as out:
        json.dump(template, out)
"""


class TemplateError(RuntimeError):
    """The stack did not synthesize, or the template holds something the local account cannot resolve."""


def _digest() -> str:
    digest = hashlib.sha256()
    files = [ROOT / "cdk.json", ROOT / "requirements.txt"]
    for folder in ("infra", "remediator"):
        files += sorted(p for p in (ROOT / folder).rglob("*")
                        if p.suffix in (".py", ".json") and "__pycache__" not in p.parts and COMMITTED not in p.parents)
    for path in files:
        if path.is_file():
            digest.update(str(path.relative_to(ROOT)).encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()[:20]


def cdk_installed() -> bool:
    return importlib.util.find_spec("aws_cdk") is not None


def _variant(mode: str, slack: bool, organization: bool = False, hook: str = "off") -> str:
    if mode not in MODES:
        raise TemplateError(f"mode {mode!r} is not one of {', '.join(MODES)}")
    suffix = f"-hook-{hook}" if hook != "off" else ""
    return f"{'organization-' if organization else ''}{mode}{'-slack' if slack or mode == 'approval' else ''}{suffix}"


@cache
def synthesized_template(mode: str, slack: bool = False, organization: bool = False, hook: str = "off") -> dict[str, Any]:
    """The template `cdk synth` makes for this mode, with or without a Slack channel, for one account or an
    organization's hub, with or without the CloudFormation hook (cached on disk while the sources are unchanged);
    the committed one where the CDK is not installed."""
    return _synthesized(mode, slack, organization, hook)[0]


@cache
def spoke_template(mode: str, slack: bool = False) -> dict[str, Any]:
    """The spoke the hub's StackSet deploys to every member account (organization mode)."""
    spoke = _synthesized(mode, slack, True)[1]
    if spoke is None:
        raise TemplateError("the organization's hub synthesized no spoke template")
    return spoke


def _synthesized(mode: str, slack: bool, organization: bool, hook: str = "off") -> tuple[dict[str, Any], dict[str, Any] | None]:
    variant = _variant(mode, slack, organization, hook)
    if not cdk_installed():
        return committed_template(mode, slack, organization, hook), committed_spoke(mode, slack) if organization else None
    digest = _digest()
    path = CACHE / f"{digest}-{variant}.json"
    if not path.is_file():
        CACHE.mkdir(parents=True, exist_ok=True)
        # One synth per change of the sources, for every process of a test session: the first to miss takes the lock
        # and synthesizes every known variant (and this one) in one run; the others wait for it and read the files.
        with open(CACHE / f"{digest}.lock", "a+b") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                if not path.is_file():
                    wanted = {_variant(*v): _context(*v) for v in ALL_VARIANTS}
                    wanted[variant] = _context(mode, slack, organization, hook)
                    _synthesize_into(digest, {name: context for name, context in wanted.items()
                                              if not (CACHE / f"{digest}-{name}.json").is_file()})
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)
    spoke_path = path.with_name(path.name + ".spoke")
    return (json.loads(path.read_text(encoding="utf-8")),
            json.loads(spoke_path.read_text(encoding="utf-8")) if spoke_path.is_file() else None)


def _synthesize_into(digest: str, contexts: Mapping[str, dict[str, Any]]) -> None:
    """Synthesize the stack once per context, in one process, into the cache (each file moved in whole)."""
    env = {**os.environ, "JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION": "1",
           "JSII_SILENCE_WARNING_UNTESTED_NODE_VERSION": "1", "JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION": "20",
           "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    for key in ("AWS_ENDPOINT_URL", "MOTO_PORT"):  # the synth calls no AWS, and must not see the emulator
        env.pop(key, None)
    with tempfile.TemporaryDirectory(prefix="synth-", dir=CACHE) as outdir:
        done = subprocess.run([sys.executable, "-c", _SYNTH, json.dumps(list(contexts.items())), outdir],
                              cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)
        for name in contexts:
            partial = Path(outdir) / f"{name}.json"
            if done.returncode != 0 or not partial.is_file():
                tail = (done.stderr or done.stdout).strip().splitlines()[-1:] or ["no output"]
                raise TemplateError(f"the {name} stack did not synthesize: {tail[0]}")
            target = CACHE / f"{digest}-{name}.json"
            if Path(str(partial) + ".spoke").is_file():
                os.replace(str(partial) + ".spoke", str(target) + ".spoke")
            os.replace(partial, target)


def committed_template(mode: str, slack: bool = False, organization: bool = False, hook: str = "off") -> dict[str, Any]:
    return _committed(f"{_variant(mode, slack, organization, hook)}.json")


def committed_spoke(mode: str, slack: bool = False) -> dict[str, Any]:
    return _committed(f"{_variant(mode, slack, True)}-spoke.json")


def _committed(name: str) -> dict[str, Any]:
    path = COMMITTED / name
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except OSError as error:
        raise TemplateError(f"no committed template {path.name} ({error.strerror}); run `make templates`") from None


def comparable(template: Mapping[str, Any]) -> dict[str, Any]:
    """The template without what changes with every build of the code asset (its content hash)."""
    return json.loads(_ASSET_HASH.sub("ASSET-HASH", json.dumps(template)))


def write_committed() -> list[Path]:
    """Synthesize every variant and write it under remediator/local/templates (what `make templates` does)."""
    COMMITTED.mkdir(exist_ok=True)
    written = []
    for mode, slack, organization in VARIANTS:
        path = COMMITTED / f"{_variant(mode, slack, organization)}.json"
        path.write_text(json.dumps(comparable(synthesized_template(mode, slack, organization)), indent=1, sort_keys=True) + "\n",
                        encoding="utf-8")
        written.append(path)
        if organization:
            spoke = COMMITTED / f"{_variant(mode, slack, organization)}-spoke.json"
            spoke.write_text(json.dumps(comparable(spoke_template(mode, slack)), indent=1, sort_keys=True) + "\n", encoding="utf-8")
            written.append(spoke)
    for mode, slack, organization, hook in HOOK_VARIANTS:
        path = COMMITTED / f"{_variant(mode, slack, organization, hook)}.json"
        path.write_text(json.dumps(comparable(synthesized_template(mode, slack, organization, hook)), indent=1, sort_keys=True)
                        + "\n", encoding="utf-8")
        written.append(path)
    return written


def of_type(template: Mapping[str, Any], cfn_type: str) -> dict[str, dict[str, Any]]:
    return {k: v for k, v in template["Resources"].items() if v["Type"] == cfn_type}


class Resolver:
    """Resolves Ref, Fn::GetAtt, Fn::Join, Fn::Select and Fn::Split against local resources."""

    def __init__(self, account: str, region: str, partition: str = "aws") -> None:
        self.pseudo = {"AWS::AccountId": account, "AWS::Region": region, "AWS::Partition": partition,
                       "AWS::URLSuffix": "amazonaws.com", "AWS::StackName": "ApiPolicyRemediator"}
        self.refs: dict[str, str] = {}
        self.attrs: dict[tuple[str, str], str] = {}

    def bind(self, logical_id: str, ref: str, **attrs: str) -> None:
        self.refs[logical_id] = ref
        for name, value in attrs.items():
            self.attrs[(logical_id, name)] = value

    def __call__(self, value: Any) -> Any:
        if isinstance(value, list):
            return [self(v) for v in value]
        if not isinstance(value, dict):
            return value
        if len(value) == 1:
            (key, arg), = value.items()
            handler: Callable[[Any], Any] | None = {
                "Ref": self._ref, "Fn::GetAtt": self._get_att, "Fn::Join": self._join,
                "Fn::Select": lambda a: self(a[1])[int(self(a[0]))], "Fn::Split": lambda a: self(a[1]).split(a[0]),
            }.get(key)
            if handler is not None:
                return handler(arg)
            if key.startswith("Fn::"):
                raise TemplateError(f"the local account cannot resolve {key}")
        return {k: self(v) for k, v in value.items()}

    def _ref(self, name: str) -> str:
        if name in self.pseudo:
            return self.pseudo[name]
        if name not in self.refs:
            raise TemplateError(f"no local resource for Ref {name}")
        return self.refs[name]

    def _get_att(self, arg: Any) -> str:
        logical_id, attr = arg if isinstance(arg, list) else arg.split(".", 1)
        if (logical_id, attr) not in self.attrs:
            raise TemplateError(f"no local value for Fn::GetAtt {logical_id}.{attr}")
        return self.attrs[(logical_id, attr)]

    def _join(self, arg: Any) -> str:
        separator, parts = arg
        return separator.join(str(self(p)) for p in self(parts))


if __name__ == "__main__":  # make templates
    parser = argparse.ArgumentParser(prog="python -m remediator.local.template", description=__doc__.splitlines()[0])
    parser.add_argument("--write", action="store_true", help="synthesize every variant and rewrite remediator/local/templates")
    if parser.parse_args().write:
        if not cdk_installed():
            sys.exit("error: the CDK toolchain is not installed (make install)")
        for written in write_committed():
            print(written.relative_to(ROOT))
