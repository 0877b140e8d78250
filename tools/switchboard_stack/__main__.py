"""`make run`: the whole stack on this machine, pointed at the built-in upstream simulator.

Ports default to edge 8080, auth 50051, router 50052, simulator 8090 and metrics
9100-9102; each moves with its variable (`ports.PORT_SETTINGS`), and nothing starts
while one of them is busy. SWITCHBOARD_RUN_DIR keeps state and logs elsewhere than
.run/; SWITCHBOARD_SIMULATOR_CONFIG names a YAML file of simulator settings (read by
the simulator itself). A demo key is minted on every start and printed with a curl
line to paste. Ctrl-C stops every process started here; so does killing this one.
"""

import os
import signal
import sys
import threading
from pathlib import Path

from switchboard_stack.demo import create_demo_key
from switchboard_stack.launcher import PortsUnavailable, Stack, StartupFailed
from switchboard_stack.ports import Ports, PortSettingError


def _metrics(name: str, port: int) -> str:
    return f"{name} :{port}/metrics" if port >= 0 else f"{name} off"


def main() -> int:
    workdir = Path(os.environ.get("SWITCHBOARD_RUN_DIR", ".run")).resolve()
    try:
        ports = Ports.from_environment(os.environ)
    except PortSettingError as exc:
        print(f"Switchboard not started: {exc}", file=sys.stderr)
        return 2
    stack = Stack(workdir, ports, echo_logs=sys.stdout)
    print(f"Starting Switchboard (state and logs in {workdir}) ...", flush=True)
    try:
        stack.start()
    except PortsUnavailable as exc:
        print("Switchboard not started:", *exc.problems, sep="\n  ", file=sys.stderr)
        return 1
    except (StartupFailed, TimeoutError) as exc:
        print(f"Switchboard not started: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:  # Ctrl-C during start-up: start() has stopped what it started
        return 130
    key = create_demo_key(stack.db_path)
    base = stack.base_url
    metrics = ", ".join(_metrics(name, port) for name, port in
                        (("edge", ports.edge_metrics), ("auth", ports.auth_metrics), ("router", ports.router_metrics)))
    simulator_config = os.environ.get("SWITCHBOARD_SIMULATOR_CONFIG")
    print(f"""
Switchboard is up.
  Base URL (Claude):  {base}/claude/
  Base URL (OpenAI):  {base}/openai/  (Responses API and Codex: {base}/openai/v1)
  Base URL (Gemini):  {base}/gemini/
  Demo key:           {key}
  Metrics:            {metrics}
  Upstream simulator: {stack.simulator_url} (accounts in {stack.accounts_path}; \
settings {simulator_config or "built in"})

Try it (the key as a bearer token, no anthropic-version, as the contract writes it):
  curl {base}/claude/v1/messages -H "Authorization: Bearer {key}" -H "Content-Type: application/json" \\
    -d '{{"model": "claude-sonnet-4-20250514", "max_tokens": 256, "messages": [{{"role": "user", "content": "Hi"}}]}}'

  curl {base}/openai/v1/chat/completions -H "Authorization: Bearer {key}" -H "Content-Type: application/json" \\
    -d '{{"model": "gpt-4o-mini", "messages": [{{"role": "user", "content": "Hello!"}}], "stream": true}}'

  curl {base}/openai/v1/responses -H "Authorization: Bearer {key}" -H "Content-Type: application/json" \\
    -d '{{"model": "gpt-5", "input": "Hello!", "stream": true}}'

  curl "{base}/gemini/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse" -H "x-goog-api-key: {key}" \\
    -H "Content-Type: application/json" -d '{{"contents": [{{"role": "user", "parts": [{{"text": "Hello!"}}]}}]}}'

Every platform has a demo account; pin one with "platform,model", e.g.
  "claude-official,claude-sonnet-4-20250514"  "bedrock,claude-sonnet-4-20250514"  "claude-ccr,claude-sonnet-4-20250514"
  "azure-openai,gpt-4o-mini"  "openai,gpt-4o-mini"  "gemini,gemini-2.5-flash"  "openai-responses,gpt-5"

Clients by base URL alone: ANTHROPIC_BASE_URL={base}/claude (Claude Code), GOOGLE_GEMINI_BASE_URL={base}/gemini
(Gemini CLI), base_url = "{base}/openai/v1" with wire_api = "responses" (Codex CLI; see the README).

Press Ctrl-C to stop.
""", flush=True)
    stopped = threading.Event()
    signal.signal(signal.SIGINT, lambda *_: stopped.set())
    signal.signal(signal.SIGTERM, lambda *_: stopped.set())
    status = 0
    while not stopped.is_set():
        for process in stack.processes:
            if process.popen.poll() is not None:
                print(f"{process.name} exited with status {process.popen.returncode}; stopping.", file=sys.stderr)
                status = 1
                stopped.set()
        stopped.wait(0.5)
    print("Stopping ...", flush=True)
    stack.stop()
    return status


if __name__ == "__main__":
    sys.exit(main())
