"""Operator settings, from SWITCHBOARD_OPERATOR_* environment variables."""

from dataclasses import dataclass

from switchboard_common.settings import from_env


@dataclass(frozen=True)
class OperatorSettings:
    # The router's gRPC address (host:port), e.g. switchboard-router:50052 in the chart.
    router_target: str = "127.0.0.1:50052"
    # Deadline of one router call.
    router_timeout_seconds: float = 10.0
    # How often each UpstreamAccount's status is refreshed from the router (and refreshed tokens written back).
    status_interval_seconds: float = 15.0
    # Namespaces to watch, comma-separated; empty: every namespace (cluster-wide RBAC).
    namespaces: str = ""
    # Longest wait between retries after a router error (the wait doubles from 1 s up to this).
    max_backoff_seconds: float = 60.0


def load() -> OperatorSettings:
    return from_env(OperatorSettings, "SWITCHBOARD_OPERATOR_")
