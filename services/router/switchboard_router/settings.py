"""Router settings, from SWITCHBOARD_ROUTER_* environment variables."""

from dataclasses import dataclass

from switchboard_common.settings import from_env


@dataclass(frozen=True)
class RouterSettings:
    # gRPC listen address (host:port).
    listen: str = "127.0.0.1:50052"
    # Prometheus endpoint on its own port; -1 disables it.
    metrics_port: int = 9102
    # YAML account list (format: switchboard_router.accounts_yaml).
    accounts_file: str = "./accounts.yaml"
    # Credentials stored at run time (OAuth refreshes), written 0600; empty: "<accounts_file>.credentials.json".
    # Set it when the accounts file's directory is read-only (a mounted ConfigMap or Secret).
    credentials_file: str = ""
    # How often the accounts file is checked for changes.
    reload_interval_seconds: float = 2.0
    # A lease taken without a holder and never returned is dropped after this long
    # (longer than the default 600 s upstream timeout, so a live request keeps its lease).
    lease_ttl_seconds: float = 900.0
    # A holder's leases (an edge instance's) are returned when no Heartbeat or Pick
    # from it arrived for this long; the edge beats every third of it.
    holder_ttl_seconds: float = 30.0
    # Shared state (holds, usage windows, breaker counters) for many router replicas; empty: in memory.
    redis_url: str = ""
    redis_namespace: str = "switchboard"
    # While redis_url cannot be reached: "local" keeps holds, windows, the breaker, sessions and concurrency
    # slots per replica in memory and goes back to Redis once it answers; "refuse" refuses every pick (the edge:
    # 503 with Retry-After). Managed accounts cannot be changed either way.
    redis_unavailable: str = "local"
    # How long one Redis command may take before Redis counts as unreachable.
    redis_timeout_seconds: float = 0.5
    # An account whose usage window is at least this full takes no new requests (steer before the 429).
    window_threshold: float = 0.95
    # This many upstream failures in a row (5xx, connection errors, timeouts) open the account's breaker...
    breaker_threshold: int = 5
    # ... for this long; then it is tried again, and one success closes it.
    breaker_open_seconds: float = 30.0
    # A conversation stays on its account while it can serve, for this long after its last request.
    session_ttl_seconds: float = 3600.0


def credentials_path(settings: RouterSettings) -> str:
    return settings.credentials_file or f"{settings.accounts_file}.credentials.json"


def load() -> RouterSettings:
    return from_env(RouterSettings, "SWITCHBOARD_ROUTER_")
