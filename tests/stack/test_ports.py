"""Port settings of the local stack: read from variables, checked before anything starts."""

import socket
from pathlib import Path

import pytest

from switchboard_stack.launcher import PortsUnavailable, Stack
from switchboard_stack.ports import PORT_SETTINGS, Ports, PortSettingError, free_port


def test_defaults_without_variables() -> None:
    assert Ports.from_environment({}) == Ports() == Ports(8080, 50051, 50052, 8090, 9100, 9101, 9102)


def test_every_port_has_its_own_variable() -> None:
    env = {variable: str(20000 + index) for index, (variable, _) in enumerate(PORT_SETTINGS.values())}
    ports = Ports.from_environment(env)
    assert [getattr(ports, name) for name in PORT_SETTINGS] == list(range(20000, 20007))
    assert len({variable for variable, _ in PORT_SETTINGS.values()}) == 7


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        pytest.param("SWITCHBOARD_EDGE_PORT", "http", id="not-a-number"),
        pytest.param("SWITCHBOARD_AUTH_PORT", "0", id="zero"),
        pytest.param("SWITCHBOARD_SIMULATOR_PORT", "70000", id="too-large"),
        pytest.param("SWITCHBOARD_ROUTER_PORT", "-1", id="off-is-only-for-metrics"),
        pytest.param("SWITCHBOARD_EDGE_METRICS_PORT", "-2", id="negative-metrics"),
    ],
)
def test_bad_value_names_the_variable(variable: str, value: str) -> None:
    with pytest.raises(PortSettingError, match=f"^{variable}='{value}' is not a port"):
        Ports.from_environment({variable: value})


def test_metrics_can_be_turned_off_and_are_then_not_checked() -> None:
    ports = Ports.from_environment({"SWITCHBOARD_AUTH_METRICS_PORT": "-1", "SWITCHBOARD_EDGE_METRICS_PORT": "-1"})
    assert (ports.auth_metrics, ports.edge_metrics) == (-1, -1)
    free = Ports.free()
    assert Ports(free.edge, free.auth, free.router, free.simulator, -1, -1, free.router_metrics).problems() == []


def test_busy_and_doubled_ports_are_each_reported() -> None:
    free = Ports.free()
    ports = Ports(free.edge, free.auth, free.router, free.simulator, free.edge_metrics, free.edge, free.router_metrics)
    doubled = (f"port {free.edge} is set for both edge and auth metrics; "
               "set SWITCHBOARD_AUTH_METRICS_PORT to move the auth metrics")
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", free.simulator))
        sock.listen()
        assert ports.problems() == [
            f"port {free.simulator} is in use (simulator); set SWITCHBOARD_SIMULATOR_PORT to move it", doubled]
    assert ports.problems() == [doubled]


def test_stack_starts_nothing_over_a_busy_port(tmp_path: Path) -> None:
    ports = Ports.free()
    stack = Stack(tmp_path / "run", ports)
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", ports.auth))
        sock.listen()
        with pytest.raises(PortsUnavailable) as refused:
            stack.start()
    assert refused.value.problems == [f"port {ports.auth} is in use (auth gRPC); set SWITCHBOARD_AUTH_PORT to move it"]
    assert stack.processes == [] and not (tmp_path / "run").exists()


def test_environment_moves_every_service_and_the_edge_spool(tmp_path: Path) -> None:
    ports = Ports(*(free_port() for _ in range(7)))
    env = Stack(tmp_path, ports).environment()
    assert env["SWITCHBOARD_EDGE_SPOOL_DIR"] == str(tmp_path / "edge-spool")
    assert env["SWITCHBOARD_AUTH_LISTEN"] == f"127.0.0.1:{ports.auth}"
    assert env["SWITCHBOARD_ROUTER_LISTEN"] == f"127.0.0.1:{ports.router}"
    assert env["SWITCHBOARD_EDGE_AUTH_TARGET"] == f"127.0.0.1:{ports.auth}"
    assert env["SWITCHBOARD_EDGE_ROUTER_TARGET"] == f"127.0.0.1:{ports.router}"
    assert [env[f"SWITCHBOARD_{name}_METRICS_PORT"] for name in ("EDGE", "AUTH", "ROUTER")] == [
        str(ports.edge_metrics), str(ports.auth_metrics), str(ports.router_metrics)]
