"""Every error the auth package raises on purpose, and nothing else.

```
AuthError
├── KeyNotFound        no key has that name or key_id          → CLI exit 1
├── InvalidKeySpec     bad name, platform, model glob, expiry  → CLI exit 2
├── KeyNameTaken       another key already has that name       → CLI exit 2
└── StoreError         the backend cannot serve (schema, I/O)  → CLI exit 3 · gRPC UNAVAILABLE
    └── DatabaseUnreachable  no connection to the database at all  → auth waits at start, then exit 3
```
The CLI maps these to exit codes in `cli.EXIT_CODES`; the service maps
store failures to a gRPC status in `service.AuthServicer`. Nowhere else.
"""


class AuthError(Exception):
    """Base of every deliberate auth error. The message is safe to show an operator."""


class KeyNotFound(AuthError):
    def __init__(self, ref: str) -> None:
        super().__init__(f"no key named or with key_id {ref!r}")
        self.ref = ref


class InvalidKeySpec(AuthError):
    """A key's name or policy fails validation before it reaches the store."""


class KeyNameTaken(AuthError):
    def __init__(self, name: str) -> None:
        super().__init__(f"a key named {name!r} already exists")
        self.name = name


class StoreError(AuthError):
    """The storage backend is unusable (schema too new, file unreadable, ...)."""


class DatabaseUnreachable(StoreError):
    """No connection to the database could be made (refused, timed out, the server starting or going away):
    worth trying again later, unlike a refused login, an unknown database or a schema too new."""
