"""Auth settings, from SWITCHBOARD_AUTH_* environment variables (read once at start)."""

import dataclasses
from collections.abc import Mapping

from switchboard_common.settings import from_env

PREFIX = "SWITCHBOARD_AUTH_"


@dataclasses.dataclass(frozen=True)
class AuthSettings:
    # gRPC listen address (host:port).
    listen: str = "127.0.0.1:50051"
    # Prometheus endpoint on its own port; -1 disables it.
    metrics_port: int = 9101
    # SQLite file holding keys and the usage ledger; shared with the `switchboard` CLI. Unused when database_url
    # is set.
    db_path: str = "./switchboard.db"
    # PostgreSQL holding keys and the usage ledger for every auth replica (postgresql://USER:PASSWORD@HOST:PORT/DB,
    # `?search_path=SCHEMA` for a schema of its own); empty: the SQLite file at db_path.
    database_url: str = dataclasses.field(default="", repr=False)  # may hold a password
    # At start, while database_url cannot be reached (refused, timed out), how long auth keeps trying (backoff
    # 0.5 s doubling to 5 s) before it exits with status 3; 0: exits at once. It listens only once connected.
    # A refused login, an unknown database or a schema too new exits at once whatever this is.
    database_wait_seconds: float = 60.0
    # How long a key lookup (found or not) is reused; bounds how late a CLI change takes effect.
    cache_ttl_seconds: float = 2.0
    # How long the edge may reuse an ALLOW without asking again (0: ask on every request). A disabled
    # key is refused everywhere within cache_ttl_seconds + decision_reuse_seconds.
    decision_reuse_seconds: float = 1.0
    # Most key lookups cached, per kind (found / not found).
    cache_max_entries: int = 10_000
    # Optional HMAC pepper for key hashes; the CLI must see the same value. Changing it voids all keys.
    key_pepper: str = dataclasses.field(default="", repr=False)
    # YAML file of model prices (USD per million tokens, the format of the packaged switchboard_auth/prices.yaml)
    # whose entries replace or add to the packaged defaults; empty: the defaults alone. Read once at start.
    prices_file: str = ""
    # Redis shared by many auth replicas for per-key limits (requests, tokens, concurrency, budgets); empty: in
    # this process's memory (one auth replica).
    redis_url: str = dataclasses.field(default="", repr=False)  # may hold a password
    redis_namespace: str = "switchboard"
    # While redis_url cannot be reached: "local" keeps enforcing limits per replica in memory (each replica
    # alone, so a key may get up to replicas x its limit) and goes back to Redis once it answers; "refuse"
    # answers every request of a key with limits UNAVAILABLE (the edge: 503 with Retry-After).
    redis_unavailable: str = "local"
    # How long one Redis command may take before Redis counts as unreachable.
    redis_timeout_seconds: float = 0.5
    # While the key store (the database) cannot be reached, a key looked up within this long is still served
    # from the cache, as it was when last read; 0: never (lookups fail, the edge answers 503).
    stale_keys_seconds: float = 300.0


def load(environ: Mapping[str, str] | None = None) -> AuthSettings:
    return from_env(AuthSettings, PREFIX, environ)
