"""Every change of an API's policy as a transaction, one module per responsibility:

- `planning`: the verdict and the plan (what should happen to an API, and its fix);
- `writing`: the intent written down, then the guarded write of the policy;
- `deploying`: the deployment in the account's turn, stages moved forward only, the change recorded;
- `recovery`: changes left open or failed, reconciled, finished or undone;
- `rollback`: a person's rollback of a remediation, checked against its record;
- `outcomes`: what each step tells its caller; `base`: what the steps share;
- `remediator`: `Remediator`, the facade the CLI and the workflow's functions call.

Nothing is imported here: a function that only plans loads only what planning needs.

May import: the core, the records and values, the adapters and `remediator.guard` (the guarded write, in the same
room); the functions and the command line import it, never the other way round.
"""
