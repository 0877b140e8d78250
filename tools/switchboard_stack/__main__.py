"""`make run`: the whole stack on this machine, pointed at the built-in upstream simulator.

Ports default to edge 8080, auth 50051, router 50052, simulator 8090 and
metrics 9100-9102; set SWITCHBOARD_RUN_DIR to keep state elsewhere than .run/.
A demo key is minted on every start and printed with a curl line to paste.
Ctrl-C stops every process started here.
"""

import os
import signal
import sys
import threading
from pathlib import Path

from switchboard_stack.demo import create_demo_key
from switchboard_stack.launcher import Ports, Stack


def main() -> None:
    workdir = Path(os.environ.get("SWITCHBOARD_RUN_DIR", ".run")).resolve()
    ports = Ports(edge=int(os.environ.get("SWITCHBOARD_EDGE_PORT", "8080")))
    stack = Stack(workdir, ports, log_to_files=False)
    print(f"Starting Switchboard (state in {workdir}) ...", flush=True)
    stack.start()
    key = create_demo_key(stack.db_path)
    base = stack.base_url
    print(f"""
Switchboard is up.
  Base URL (Claude):  {base}/claude/
  Base URL (OpenAI):  {base}/openai/
  Demo key:           {key}
  Metrics:            edge :{ports.edge_metrics}/metrics, auth :{ports.auth_metrics}/metrics, \
router :{ports.router_metrics}/metrics
  Upstream simulator: {stack.simulator_url} (accounts in {stack.accounts_path})

Try it:
  curl {base}/claude/v1/messages -H "x-api-key: {key}" -H "anthropic-version: 2023-06-01" \\
    -H "content-type: application/json" \\
    -d '{{"model": "claude-sonnet-4-20250514", "max_tokens": 256, "messages": [{{"role": "user", "content": "Hi"}}]}}'

  curl {base}/openai/v1/chat/completions -H "Authorization: Bearer {key}" -H "Content-Type: application/json" \\
    -d '{{"model": "gpt-4o-mini", "messages": [{{"role": "user", "content": "Hello!"}}], "stream": true}}'

Press Ctrl-C to stop.
""", flush=True)
    stopped = threading.Event()
    signal.signal(signal.SIGINT, lambda *_: stopped.set())
    signal.signal(signal.SIGTERM, lambda *_: stopped.set())
    while not stopped.is_set():
        for process in stack.processes:
            if process.popen.poll() is not None:
                print(f"{process.name} exited with {process.popen.returncode}; stopping.", file=sys.stderr)
                stopped.set()
        stopped.wait(0.5)
    print("Stopping ...", flush=True)
    stack.stop()


if __name__ == "__main__":
    main()
