"""Router errors and the one place they map to gRPC status codes.

```
RouterError
├── InvalidRequest          → INVALID_ARGUMENT (the caller broke an RPC's contract)
│   ├── InvalidPick
│   ├── InvalidHeartbeat
│   ├── InvalidCredential   (StoreCredential: a credential the account's platform cannot use)
│   └── InvalidAccount      (UpsertAccount: a spec that is not a valid account)
├── UnknownAccount          → NOT_FOUND (StoreCredential for an account not in the pool)
├── FileAccount             → FAILED_PRECONDITION (Upsert/DeleteAccount of an account the file defines)
├── StoreUnavailable        → UNAVAILABLE (the state backend could not take a change)
├── CredentialNotSaved      → INTERNAL (applied in memory, but the credentials file was not written)
├── AccountsInvalid         → not an RPC error: a source refused a whole account list
└── CredentialsFileInvalid  → not an RPC error: the stored-credentials file cannot be read at start
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


class InvalidCredential(InvalidRequest):
    """A stored credential that lacks what its platform needs; the message names fields, never values."""


class InvalidAccount(InvalidRequest):
    """An UpsertAccount spec that is not a valid account; the message names fields, never values."""


class FileAccount(RouterError):
    """An UpsertAccount or DeleteAccount naming an account the accounts file defines."""

    grpc_code = grpc.StatusCode.FAILED_PRECONDITION


class StoreUnavailable(RouterError):
    """The state backend cannot be reached, so the change was not made."""

    grpc_code = grpc.StatusCode.UNAVAILABLE


class UnknownAccount(RouterError):
    """An RPC named an account id the pool does not hold."""

    grpc_code = grpc.StatusCode.NOT_FOUND


class CredentialNotSaved(RouterError):
    """A stored credential is live but could not be persisted (the reason is an OS error, no secret)."""


class CredentialsFileInvalid(RouterError):
    """The stored-credentials file exists but cannot be used; `problem` never holds a credential."""

    def __init__(self, source: str, problem: str) -> None:
        self.source = source
        self.problem = problem
        super().__init__(f"{source}: {problem}")
