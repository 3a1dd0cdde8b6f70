"""Step Functions: the state machine a task token's execution belongs to (SendTask* are authorized on it).
"""

from __future__ import annotations




def state_machine_of_token(account: str, region: str, token: str) -> str | None:
    """Step Functions authorizes SendTask* against the state machine whose execution issued the token."""
    from moto.stepfunctions.parser.models import stepfunctions_parser_backends

    backend = stepfunctions_parser_backends[account][region]
    for execution in backend._get_executions():
        worker = getattr(execution, "exec_worker", None)
        pool = getattr(getattr(getattr(worker, "env", None), "callback_pool_manager", None), "_pool", {})
        if token in pool:
            return str(execution.state_machine_arn)
    return None
