"""Keeps API Gateway REST APIs from granting access to AWS accounts nobody trusts.

The package's rooms, and what each may import (tests/test_shape.py, ROOMS, holds the same rules; the layout:
docs/reference/layout.md):

- `core/`: the pure trust engine; nothing of ours but `codec` (msgspec, no I/O).
- records and values: `stored`, `audit`, `journal`, `approvals`, `organization`, `events`, `clock`, `containers`,
  `safe_files`, `logs`, `findings_formats`, `workflow/`; the core, the codec and each other.
- `adapters/`: one per AWS service; the core and the records only.
- `transaction/` and `guard`: each change as a transaction; the above and the adapters.
- `functions/`: one module per Lambda function; the above and the transaction; never the command line, `iac`,
  `local` or the demos, which the Lambda bundle leaves out (infra/asset.py).
- `cli/` with its helpers (`policy_forms`, `project_settings`, `shared_journal`) and `iac/`: the command line.
- `local/` and `demo*`: the strict local account and `make demo`, for tests, the demo and the benchmarks.

This module holds only the version and imports nothing.
"""

__version__ = "0.1.0"
