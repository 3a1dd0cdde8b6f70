"""One adapter per AWS service; the only modules that talk to AWS.

May import: the core and the records and values (stored, audit, journal, approvals, organization, clock, containers,
workflow.errors, ...) and each other; never the transaction, the guard, the functions, the command line or the
local account, which all build on the adapters.
"""
