"""`make bench-peers`: A–C of `make bench` against Switchboard, the bare forwarder and LiteLLM's proxy, in one run.

LiteLLM (`litellm[proxy]`, pinned below) is installed once into a virtualenv of its own under
`.cache/bench-peers/` and reused. It gets a config for the same simulators the gateway uses: an OpenAI and an
Anthropic model (and the paced simulator's, for C), the simulators' keys, a master key the bench signs with,
`LITELLM_LOCAL_MODEL_COST_MAP=True` (no price list fetched), one worker. LiteLLM is slow, so it gets fewer
requests in A and C (durations are the same). When it cannot be installed or started, this says why and exits
non-zero.
"""

import argparse
import asyncio
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import yaml

from switchboard_stack import bench
from switchboard_stack.bench_servers import Server, serve
from switchboard_stack.launcher import SIMULATOR_ANTHROPIC_KEY, SIMULATOR_OPENAI_KEY
from switchboard_stack.ports import free_port

LITELLM = "litellm[proxy]==1.106.2"
CACHE = Path(".cache/bench-peers")
MASTER_KEY = "sk-bench-litellm-master"


class PeerUnavailable(RuntimeError):
    """LiteLLM could not be installed or started; the message says why."""


def litellm_config(simulator_url: str, paced_url: str) -> dict[str, Any]:
    """The proxy's config: each model the bench asks for, pointed at the simulator that serves it."""
    def model(name: str, provider_model: str, api_base: str, key: str) -> dict[str, Any]:
        return {"model_name": name,
                "litellm_params": {"model": provider_model, "api_base": api_base, "api_key": key}}

    return {
        "model_list": [
            model("gpt-4o-mini", "openai/gpt-4o-mini", f"{simulator_url}/v1", SIMULATOR_OPENAI_KEY),
            model(bench.CLAUDE_MODEL, f"anthropic/{bench.CLAUDE_MODEL}", simulator_url, SIMULATOR_ANTHROPIC_KEY),
            model(bench.PACED_MODEL, f"anthropic/{bench.PACED_MODEL}", paced_url, SIMULATOR_ANTHROPIC_KEY),
        ],
        "general_settings": {"master_key": MASTER_KEY},
        "litellm_settings": {"telemetry": False, "drop_params": True},
    }


def install(cache: Path = CACHE) -> Path:
    """The virtualenv with LiteLLM's proxy (created and installed on first use); returns its `litellm` command."""
    venv = cache / "litellm-venv"
    command = venv / "bin" / "litellm"
    marker = venv / f".installed-{LITELLM}"
    if marker.exists() and command.exists():
        return command
    cache.mkdir(parents=True, exist_ok=True)
    log = cache / "install.log"
    print(f"bench-peers: installing {LITELLM} into {venv} (once; output in {log})", flush=True)
    with open(log, "wb") as output:
        for step in ([sys.executable, "-m", "venv", str(venv)],
                     [str(venv / "bin" / "python"), "-m", "pip", "install", "-q", LITELLM]):
            if subprocess.run(step, stdout=output, stderr=subprocess.STDOUT).returncode != 0:
                tail = "\n".join(log.read_text(errors="replace").splitlines()[-15:])
                raise PeerUnavailable(f"`{' '.join(step)}` failed; the end of {log}:\n{tail}")
    if not command.exists():
        raise PeerUnavailable(f"{LITELLM} installed, but {command} is missing")
    marker.touch()
    return command


@contextmanager
def litellm_server(command: Path, simulator_url: str, paced_url: str, workdir: Path) -> Iterator[Server]:
    config = workdir / "litellm.yaml"
    config.write_text(yaml.safe_dump(litellm_config(simulator_url, paced_url), sort_keys=False))
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = workdir / "litellm.log"
    try:
        with serve("LiteLLM", [str(command), "--config", str(config), "--host", "127.0.0.1", "--port", str(port),
                               "--num_workers", "1"], f"{url}/health/liveliness", timeout=180.0, log=str(log),
                   env={"LITELLM_LOCAL_MODEL_COST_MAP": "True", "LITELLM_LOG": "ERROR"}) as pid:
            yield Server(url, pid)
    except (RuntimeError, TimeoutError) as exc:
        tail = "\n".join(log.read_text(errors="replace").splitlines()[-15:]) if log.exists() else ""
        raise PeerUnavailable(f"{exc}\n{tail}") from exc


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=float, default=1.0, help="multiply request counts and durations")
    parser.add_argument("--json", type=Path, default=None, metavar="PATH",
                        help="where the numbers go (default .run/bench-peers.json)")
    args = parser.parse_args()
    json_path: Path = args.json or bench.default_json_path().with_name("bench-peers.json")
    record = bench.new_record(args.scale)
    try:
        command = install()
        with tempfile.TemporaryDirectory(prefix="switchboard-bench-peers-") as workdir, \
                bench.servers(Path(workdir)) as running:
            simulator_url = running.endpoints[0].base
            paced_url = running.paced[0].base
            with litellm_server(command, simulator_url, paced_url, Path(workdir)) as litellm:
                peer = bench.Endpoint("litellm", litellm.url, MASTER_KEY, MASTER_KEY, {"litellm": litellm.pid},
                                      bearer=True, slow=True)
                running.endpoints.append(peer)
                running.paced.append(peer)
                record["litellm"] = {"package": LITELLM, "workers": 1}
                asyncio.run(bench.http(running, args.scale, record, sections="ABC"))
    except PeerUnavailable as exc:
        print(f"bench-peers: LiteLLM is not available: {exc}", file=sys.stderr)
        sys.exit(1)
    bench.write_json(json_path, record)
    print(f"\nall numbers written to {json_path}")


if __name__ == "__main__":
    main()
