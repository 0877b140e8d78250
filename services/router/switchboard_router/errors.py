"""Router errors and the one place they map to gRPC status codes.

```
RouterError
├── InvalidRequest     → INVALID_ARGUMENT (the caller broke an RPC's contract)
│   ├── InvalidPick
│   └── InvalidHeartbeat
└── AccountsInvalid    → not an RPC error: a source refused a whole account list
```
"""

import grpc


class RouterError(Exception):
    """Base of every error the router raises on purpose."""

    grpc_code: grpc.StatusCode = grpc.StatusCode.INTERNAL


class InvalidRequest(RouterError):
    """A request that violates its RPC's contract."""

    grpc_code = grpc.StatusCode.INVALID_ARGUMENT


class InvalidPick(InvalidRequest):
    """A PickRequest that violates the contract (no platforms, no model, an oversized holder)."""


class InvalidHeartbeat(InvalidRequest):
    """A HeartbeatRequest without a holder, or with an oversized one."""


class AccountsInvalid(RouterError):
    """An account list failed validation; `problems` names each account and field."""

    def __init__(self, source: str, problems: list[str]) -> None:
        self.source = source
        self.problems = problems
        super().__init__(f"{source}: " + "; ".join(problems))
