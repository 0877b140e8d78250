"""Edge settings, from SWITCHBOARD_EDGE_* environment variables."""

from dataclasses import dataclass

from switchboard_common.settings import from_env


@dataclass(frozen=True)
class EdgeSettings:
    host: str = "127.0.0.1"
    port: int = 8080
    # Prometheus endpoint on its own port; -1 disables it.
    metrics_port: int = 9100
    auth_target: str = "127.0.0.1:50051"
    router_target: str = "127.0.0.1:50052"
    # Deadline for each gRPC call to auth or router.
    rpc_timeout_seconds: float = 2.0
    # Largest request body accepted (Claude Code sends 50-90 KB; images make more).
    max_body_bytes: int = 32 * 1024 * 1024
    upstream_connect_timeout_seconds: float = 10.0
    # Whole upstream call, unless the account sets its own.
    upstream_timeout_seconds: float = 600.0
    # Attempts per request across accounts when an upstream fails before the first byte.
    max_attempts: int = 3
    usage_flush_seconds: float = 1.0
    usage_batch_size: int = 200


def load() -> EdgeSettings:
    return from_env(EdgeSettings, "SWITCHBOARD_EDGE_")
