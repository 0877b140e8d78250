"""The ports of the local stack: their defaults, the variables that move them, and whether they are free.

Every port comes from a SWITCHBOARD_*_PORT variable, so two stacks can run side by side; a busy or
doubly used port is reported with the variable that moves it before anything is started.
"""

import errno
import socket
from collections.abc import Mapping
from dataclasses import astuple, dataclass, fields


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def why_not_bindable(port: int, host: str = "127.0.0.1") -> str | None:
    """None when a server could listen on host:port now, else why not ("is in use", ...).

    Binds with SO_REUSEADDR as servers do, so a closed connection in TIME_WAIT is no obstacle.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                return "is in use"
            return f"cannot be used ({exc.strerror})"
        return None


class PortSettingError(ValueError):
    """A port variable that is not a usable port number."""


@dataclass(frozen=True)
class Ports:
    """The seven listening ports of a local stack. A negative metrics port turns that metrics server off."""

    edge: int = 8080
    auth: int = 50051
    router: int = 50052
    simulator: int = 8090
    edge_metrics: int = 9100
    auth_metrics: int = 9101
    router_metrics: int = 9102

    @classmethod
    def free(cls) -> "Ports":
        return cls(*(free_port() for _ in range(7)))

    @classmethod
    def from_environment(cls, environ: Mapping[str, str]) -> "Ports":
        """Defaults, each replaced by its variable (PORT_SETTINGS) when set; a bad value names the variable."""
        values: dict[str, int] = {}
        for item in fields(cls):
            variable, _ = PORT_SETTINGS[item.name]
            text = environ.get(variable, "").strip()
            if not text:
                continue
            metrics = item.name.endswith("_metrics")
            try:
                port = int(text)
            except ValueError:
                port = 0
            if not (1 <= port <= 65535 or (metrics and port == -1)):
                allowed = "-1 (off) or 1-65535" if metrics else "1-65535"
                raise PortSettingError(f"{variable}={text!r} is not a port; expected {allowed}")
            values[item.name] = port
        return cls(**values)

    def problems(self, host: str = "127.0.0.1") -> list[str]:
        """Why the stack could not listen on these ports (empty when it can): one line per port."""
        lines: list[str] = []
        owner: dict[int, str] = {}
        for item, port in zip(fields(self), astuple(self), strict=True):
            variable, label = PORT_SETTINGS[item.name]
            if port < 0:
                continue
            if port in owner:
                lines.append(f"port {port} is set for both {owner[port]} and {label}; "
                             f"set {variable} to move the {label}")
                continue
            owner[port] = label
            reason = why_not_bindable(port, host)
            if reason is not None:
                lines.append(f"port {port} {reason} ({label}); set {variable} to move it")
        return lines


# Field of Ports → (the variable that sets it, what listens there).
PORT_SETTINGS: dict[str, tuple[str, str]] = {
    "edge": ("SWITCHBOARD_EDGE_PORT", "edge"),
    "auth": ("SWITCHBOARD_AUTH_PORT", "auth gRPC"),
    "router": ("SWITCHBOARD_ROUTER_PORT", "router gRPC"),
    "simulator": ("SWITCHBOARD_SIMULATOR_PORT", "simulator"),
    "edge_metrics": ("SWITCHBOARD_EDGE_METRICS_PORT", "edge metrics"),
    "auth_metrics": ("SWITCHBOARD_AUTH_METRICS_PORT", "auth metrics"),
    "router_metrics": ("SWITCHBOARD_ROUTER_METRICS_PORT", "router metrics"),
}
