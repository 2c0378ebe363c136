"""Operating a stack of the bridge from a shell: `p4f-bridge replay`, `dlq` and `status`.

    stack = OperatedStack.deployed("p4f-bridge", profile=None, region=None)
    stack = OperatedStack.running_locally(Path(".local-stack"))   # `p4f-bridge local up`

The same commands run against both: a deployed stack through the user's AWS credentials,
the running local stack through its moto_server (local.stack notes where, in its log folder).
"""

from local.operate.stack import (
    DeadLetterQueue,
    FunctionLogs,
    LogLine,
    OperatedStack,
    StackNotFoundError,
)

__all__ = ["DeadLetterQueue", "FunctionLogs", "LogLine", "OperatedStack", "StackNotFoundError"]
