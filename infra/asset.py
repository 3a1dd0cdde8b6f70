"""The one Lambda code asset, built without Docker and cached under build/.

    build/lambda-deps/<hash of requirements.txt + pip options>/   pip install --target (slow step, rarely rebuilt)
    build/lambda-asset/<hash of the above + package sources>/     deps + a copy of remediator/ (cheap)

The asset holds the ``remediator`` package (without ``remediator/local``, which is emulator
tooling) and the runtime dependencies from requirements.txt, installed as wheels for the Lambda
platform (Linux, arm64, CPython 3.12) whatever machine runs the synth. boto3/botocore/s3transfer come
from the Lambda runtime and are never bundled.

Bytecode: Lambda cannot write __pycache__, so without shipped bytecode every cold start compiles
every module. The asset is compiled by a CPython 3.12 (the runtime's version: bytecode is specific to
a minor version) with ``--invalidation-mode unchecked-hash``, so the runtime uses it whatever the
files' times after unzipping. The interpreter is the synth's own when it is 3.12, else
$REMEDIATOR_RUNTIME_PYTHON, ``python3.12`` on the PATH or a pyenv 3.12; without one the asset ships
without bytecode (correct, slower to start) and says so on stderr.

Both directories are written under a temporary name and renamed into place, so a run that is
interrupted, or two runs at once (pytest-xdist, a synth beside a test), never see half an asset.
Repeated synths with unchanged inputs do no work; pip only runs when requirements.txt changes.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import stat
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = "remediator"
EXCLUDED_DIRS = frozenset({"__pycache__", ".pytest_cache", ".mypy_cache"})
# remediator/local: the moto emulator; remediator/iac: the `check` command's template readers; remediator/cli:
# the command line, one module per command. Not for Lambda.
EXCLUDED_SUBPACKAGES = frozenset({"local", "iac", "cli"})
# The command line's other modules (YAML and OpenAPI reading, project settings, the demo):
# no function imports them, and they import what the bundle does not hold (rich, PyYAML, boto3's CLI use).
EXCLUDED_MODULES = frozenset({"__main__.py", "demo.py", "demo_organization.py", "policy_forms.py", "project_settings.py",
                              "demo_check.py", "shared_journal.py"})
EXCLUDED_SUFFIXES = (".pyc", ".pyo")
PROVIDED_BY_RUNTIME = ("boto3", "botocore", "s3transfer")
KEEP_BUILDS = 4  # old cache entries kept per directory; older ones are removed

RUNTIME_VERSION = (3, 12)
ARCHITECTURE = "arm64"  # the functions' (infra/stack.py: lambda_.Architecture.ARM_64)
# Wheels for the function's platform, never the build machine's: msgspec ships a compiled extension,
# and pip picks the one for this manylinux platform and CPython version.
PLATFORMS = {"arm64": "manylinux2014_aarch64", "x86_64": "manylinux2014_x86_64"}
BUILD_FORMAT = "3"  # bump when the layout of the asset changes (2: bytecode for the runtime; 3: per architecture)


def pip_platform_options(architecture: str = ARCHITECTURE) -> tuple[str, ...]:
    return ("--platform", PLATFORMS[architecture], "--implementation", "cp",
            "--python-version", ".".join(map(str, RUNTIME_VERSION)), "--only-binary=:all:")


class AssetBuildError(RuntimeError):
    pass


def runtime_python() -> str | None:
    """A CPython of the functions' runtime version, to compile their bytecode with."""
    if sys.version_info[:2] == RUNTIME_VERSION:
        return sys.executable
    version = ".".join(map(str, RUNTIME_VERSION))
    candidates = [os.environ.get("REMEDIATOR_RUNTIME_PYTHON"), shutil.which(f"python{version}"),
                  *sorted(str(p) for p in Path.home().glob(f".pyenv/versions/{version}*/bin/python{version}"))]
    for candidate in candidates:
        if not candidate:
            continue
        try:
            found = subprocess.run([candidate, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
                                   capture_output=True, text=True, timeout=30, check=False)
        except OSError:
            continue
        if found.returncode == 0 and found.stdout.strip() == version:
            return candidate
    return None


def _compile(tree: Path) -> None:
    """Bytecode for the runtime, valid whatever the files' times (unchecked-hash)."""
    python = runtime_python()
    if python is None:
        print(f"warning: no CPython {'.'.join(map(str, RUNTIME_VERSION))} found: the Lambda asset ships without "
              "bytecode (set REMEDIATOR_RUNTIME_PYTHON)", file=sys.stderr)
        return
    result = subprocess.run([python, "-m", "compileall", "-q", "-j", "0", "--invalidation-mode", "unchecked-hash", str(tree)],
                            capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise AssetBuildError(f"compileall failed: {result.stderr.strip() or result.stdout.strip()}")


def package_files(root: Path = ROOT) -> list[Path]:
    """The files of the package that go into the asset, relative to root, sorted."""
    files = []
    base = root / PACKAGE
    for directory, dirnames, filenames in os.walk(base):
        rel_dir = Path(directory).relative_to(root)
        dirnames[:] = sorted(
            d for d in dirnames
            if d not in EXCLUDED_DIRS
            and not d.startswith(".")
            and not (Path(directory) == base and d in EXCLUDED_SUBPACKAGES)
        )
        files.extend(rel_dir / f for f in filenames if not f.endswith(EXCLUDED_SUFFIXES) and not f.startswith(".")
                     and not (Path(directory) == base and f in EXCLUDED_MODULES))
    return sorted(files)


def _digest(*parts: bytes) -> str:
    h = hashlib.sha256()
    for part in parts:
        h.update(len(part).to_bytes(8, "big"))
        h.update(part)
    return h.hexdigest()[:20]


def _make_readable(tree: Path) -> None:
    """Lambda runs the code as another user: directories 755, files 644 (755 if executable)."""
    for directory, _dirs, filenames in os.walk(tree):
        os.chmod(directory, 0o755)
        for name in filenames:
            path = os.path.join(directory, name)
            if os.path.islink(path):
                continue
            executable = os.stat(path).st_mode & stat.S_IXUSR
            os.chmod(path, 0o755 if executable else 0o644)


def _publish(tmp: Path, final: Path) -> None:
    """Rename a finished build into place; if another process got there first, keep theirs."""
    _make_readable(tmp)
    if final.is_dir():
        shutil.rmtree(tmp, ignore_errors=True)
        return
    try:
        os.rename(tmp, final)
    except OSError:
        shutil.rmtree(tmp, ignore_errors=True)
        if not final.is_dir():
            raise


def _prune(parent: Path, keep: Path) -> None:
    entries = sorted(
        (p for p in parent.iterdir() if p.is_dir() and not p.name.startswith(".") and p != keep),
        key=lambda p: p.stat().st_mtime,
        reverse=True,
    )
    for stale in entries[KEEP_BUILDS - 1:]:
        shutil.rmtree(stale, ignore_errors=True)
    for tmp in parent.glob(".tmp-*"):  # left by an interrupted run more than an hour ago
        try:
            if tmp.stat().st_mtime < time.time() - 3600:
                shutil.rmtree(tmp, ignore_errors=True)
        except OSError:
            pass


def _built_or_staging(parent: Path, key: str) -> tuple[Path, Path | None]:
    """(the build for `key`, None) when it exists, else (where it will go, a fresh staging directory)."""
    final = parent / key
    if final.is_dir():
        return final, None
    parent.mkdir(parents=True, exist_ok=True)
    return final, Path(tempfile.mkdtemp(prefix=".tmp-", dir=parent))


def _dependencies(requirements: Path, build_dir: Path, architecture: str) -> Path:
    text = requirements.read_bytes()
    key = _digest(BUILD_FORMAT.encode(), " ".join(pip_platform_options(architecture)).encode(), text)
    parent = build_dir / "lambda-deps"
    final, tmp = _built_or_staging(parent, key)
    if tmp is None:
        return final
    command = [
        sys.executable, "-m", "pip", "install",
        "--quiet", "--disable-pip-version-check", "--no-input", "--no-compile",
        "--target", str(tmp),
        *pip_platform_options(architecture),
        "-r", str(requirements),
    ]
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        shutil.rmtree(tmp, ignore_errors=True)
        raise AssetBuildError(
            f"pip could not install the Lambda dependencies from {requirements} "
            f"(exit {result.returncode}); the package index must be reachable the first time.\n"
            f"command: {' '.join(command)}\n{result.stderr.strip() or result.stdout.strip()}"
        )
    for name in PROVIDED_BY_RUNTIME:  # pulled in transitively? the runtime has its own
        for path in list(tmp.glob(name)) + list(tmp.glob(f"{name}-*.dist-info")):
            shutil.rmtree(path, ignore_errors=True)
    shutil.rmtree(tmp / "bin", ignore_errors=True)  # console scripts are of no use in Lambda
    _publish(tmp, final)
    _prune(parent, final)
    return final


def build_lambda_asset(root: Path = ROOT, build_dir: Path | None = None, architecture: str = ARCHITECTURE) -> Path:
    """Return the directory to hand to ``lambda_.Code.from_asset``, building it if needed.

    `architecture` is the functions' (arm64); the tests also build one for the build machine's, to import
    its compiled extensions under the runtime's Python version.
    """
    build_dir = build_dir or root / "build"
    requirements = root / "requirements.txt"
    if not (root / PACKAGE / "__init__.py").is_file():
        raise AssetBuildError(f"no {PACKAGE} package under {root}")
    deps = _dependencies(requirements, build_dir, architecture)

    # Read each file once: what is hashed is exactly what is written, even while someone edits.
    sources = {rel: (root / rel).read_bytes() for rel in package_files(root)}
    parts = [BUILD_FORMAT.encode(), deps.name.encode()]
    for rel, content in sources.items():
        parts += [rel.as_posix().encode(), content]
    key = _digest(*parts)
    parent = build_dir / "lambda-asset"
    final, tmp = _built_or_staging(parent, key)
    if tmp is None:
        return final
    try:
        shutil.copytree(deps, tmp, dirs_exist_ok=True)
        for rel, content in sources.items():
            target = tmp / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(content)
        _compile(tmp)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    _publish(tmp, final)
    _prune(parent, final)
    return final
