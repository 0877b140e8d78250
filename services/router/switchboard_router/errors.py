"""Router errors and the one place they map to gRPC status codes.

```
RouterError
├── InvalidPick        → INVALID_ARGUMENT (the caller broke the Pick contract)
└── AccountsInvalid    → not an RPC error: a source refused a whole account list
```
"""

import grpc


class RouterError(Exception):
    """Base of every error the router raises on purpose."""

    grpc_code: grpc.StatusCode = grpc.StatusCode.INTERNAL


class InvalidPick(RouterError):
    """A PickRequest that violates the contract (no platforms, no model)."""

    grpc_code = grpc.StatusCode.INVALID_ARGUMENT


class AccountsInvalid(RouterError):
    """An account list failed validation; `problems` names each account and field."""

    def __init__(self, source: str, problems: list[str]) -> None:
        self.source = source
        self.problems = problems
        super().__init__(f"{source}: " + "; ".join(problems))
