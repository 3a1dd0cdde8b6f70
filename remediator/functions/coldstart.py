"""A function's cold start: Python's cyclic garbage collector paused while its modules load, in Lambda only.

Loading boto3 and the package makes some hundred thousand objects, and every few hundred allocations the collector
walks them looking for cycles: about a tenth of the time `import boto3` takes (docs/figures/performance.md). None of
them is garbage: they live as long as the execution environment. So in Lambda the collector waits until the
handler's module has loaded, then what was loaded is frozen (moved where no later collection scans it again:
https://docs.python.org/3/library/gc.html#gc.freeze) and the collector runs as before for what the invocations make.

`remediator.functions` imports this module first, so the pause covers boto3 too; each handler module calls `loaded()`
as its last statement (tests/test_coldstart.py holds every function to it). The command line, the tests and the local
account import the same modules with the collector untouched: Lambda's runtime sets AWS_EXECUTION_ENV to
"AWS_Lambda_" and the runtime's name (Lambda developer guide, "Defined runtime environment variables"), nothing else
does.
"""

from __future__ import annotations

import gc
import os

_paused = os.environ.get("AWS_EXECUTION_ENV", "").startswith("AWS_Lambda_") and gc.isenabled()
if _paused:
    gc.disable()


def loaded() -> None:
    """The handler's modules are loaded: what they made is frozen, and the collector runs again."""
    global _paused
    if _paused:
        _paused = False
        gc.freeze()
        gc.enable()
