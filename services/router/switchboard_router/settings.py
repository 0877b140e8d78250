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
    # How often the accounts file is checked for changes.
    reload_interval_seconds: float = 2.0
    # A lease nobody returned is dropped after this long (longer than the default
    # 600 s upstream timeout, so a live request keeps its lease).
    lease_ttl_seconds: float = 900.0


def load() -> RouterSettings:
    return from_env(RouterSettings, "SWITCHBOARD_ROUTER_")
