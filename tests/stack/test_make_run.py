"""`make run` (python -m switchboard_stack) as a real process: busy ports, failed start-up, SIGKILL."""

import os
import signal
import socket
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from switchboard_stack.ports import PORT_SETTINGS, Ports, why_not_bindable

from .conftest import LAUNCHER, Lines, launcher_env, processes_of, wait_until

# Start-up of four Python processes on a slow two-core machine: a bound, not a measurement.
START_TIMEOUT = 120.0


@contextmanager
def listening(port: int) -> Iterator[None]:
    """Someone else's server on 127.0.0.1:port."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", port))
        sock.listen()
        yield


def _kill_leftovers(run_dir: Path) -> None:
    for pid in processes_of(run_dir):
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def test_busy_ports_are_refused_with_the_variable_that_moves_them(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    ports = Ports.free()
    try:
        with listening(ports.edge), listening(ports.router_metrics):
            result = subprocess.run(LAUNCHER, env=launcher_env(run_dir, ports), capture_output=True, text=True,
                                    timeout=START_TIMEOUT)
        assert result.returncode != 0
        assert f"port {ports.edge} is in use (edge); set SWITCHBOARD_EDGE_PORT to move it" in result.stderr
        assert (f"port {ports.router_metrics} is in use (router metrics); "
                f"set SWITCHBOARD_ROUTER_METRICS_PORT to move it") in result.stderr
        assert str(ports.auth) not in result.stderr, "free ports are not reported"
        assert "Switchboard is up" not in result.stdout
        assert not list(run_dir.glob("*.log")), "no process was started"
        assert processes_of(run_dir) == {}
    finally:
        _kill_leftovers(run_dir)


def test_a_child_failing_at_start_up_is_named_with_its_log(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    settings = tmp_path / "simulator.yaml"
    settings.write_text("tokens_per_secnd: 5\n")
    env = launcher_env(run_dir, Ports.free(), SWITCHBOARD_SIMULATOR_CONFIG=str(settings))
    try:
        result = subprocess.run(LAUNCHER, env=env, capture_output=True, text=True, timeout=START_TIMEOUT)
        assert result.returncode == 1
        assert "simulator exited with status 2 during start-up" in result.stderr
        assert "unknown config keys ['tokens_per_secnd']" in result.stderr, "the log tail is shown"
        assert "Switchboard is up" not in result.stdout
        assert wait_until(lambda: processes_of(run_dir) == {}, 10), "the others were stopped"
    finally:
        _kill_leftovers(run_dir)


def test_children_die_with_a_killed_launcher(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    ports = Ports.free()
    launcher = subprocess.Popen(LAUNCHER, env=launcher_env(run_dir, ports), stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, text=True)
    assert launcher.stdout is not None
    output = Lines(launcher.stdout)
    try:
        assert output.wait_for("Switchboard is up", START_TIMEOUT), "\n".join(output.seen[-40:])
        assert output.wait_for("Press Ctrl-C to stop.", 10)
        # Every "Try it" line answers as printed (Claude, OpenAI chat, Responses and Gemini).
        commands = _try_it_commands(output.seen)
        routes = ("/claude/v1/messages", "/chat/completions", "/openai/v1/responses", "/gemini/v1beta/models/")
        assert [route for route in routes if any(route in command for command in commands)] == list(routes)
        for command in commands:
            answered = subprocess.run(["bash", "-c", command + " -sS -o /dev/null -w '%{http_code}'"],
                                      capture_output=True, text=True, timeout=30)
            assert answered.stdout == "200", (command, answered.stdout, answered.stderr)
        children = {pid: command for pid, command in processes_of(run_dir).items() if pid != launcher.pid}
        modules = sorted(command.split(" -m ")[1].split()[0] for command in children.values())
        assert modules == ["switchboard_auth", "switchboard_edge", "switchboard_router", "switchboard_simulator"]
        # Every port came from its variable: the stack now holds each one.
        for name, (variable, _) in PORT_SETTINGS.items():
            assert why_not_bindable(getattr(ports, name)) == "is in use", variable
        echoed = any(line.startswith("edge      | ") for line in output.seen) or output.wait_for("edge      | ", 15)
        assert echoed, "children's logs are echoed"

        launcher.send_signal(signal.SIGKILL)
        launcher.wait(timeout=10)
        assert wait_until(lambda: processes_of(run_dir) == {}, 60), f"still running: {processes_of(run_dir)}"
    finally:
        if launcher.poll() is None:
            launcher.kill()
            launcher.wait()
        _kill_leftovers(run_dir)
        launcher.stdout.close()


def _try_it_commands(lines: list[str]) -> list[str]:
    """The curl commands `make run` prints, each joined across its backslash-continued lines."""
    commands: list[str] = []
    pending = ""
    for line in lines[lines.index(next(line for line in lines if line.startswith("Try it"))):]:
        text = line.strip()
        if pending or text.startswith("curl "):
            pending += text[:-1] + " " if text.endswith("\\") else text
            if not text.endswith("\\"):
                commands.append(pending)
                pending = ""
        elif text.startswith("Every platform"):
            break
    return commands
