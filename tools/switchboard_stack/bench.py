"""`make bench`: a fixed load against the gateway and, in the same run, straight at the simulator.

Both targets see the same simulator (no artificial latency, replies as fast as
it can write), so the difference is what the gateway adds: admission (auth and
router over gRPC), forwarding, stream relaying and accounting. The translated
scenarios (a client of one format, a model of another vendor) are measured
against the gateway serving the same upstream natively, so their difference is
the conversion's cost. Before them, the router's own cost per choice and per
gRPC round trip (`router_bench`), set against the gateway's added latency at
the end. The native scenarios also run against a bare forwarder (`forwarder`:
Starlette + aiohttp, no auth, no routing), started here, as the floor a Python
gateway can reach; the gateway is set against it in ratios. Numbers are printed,
never asserted; ratios are only meaningful within one run. All of them are also
written to a JSON file (`--json`).
"""

import argparse
import asyncio
import dataclasses
import json
import math
import os
import platform
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp

from switchboard_stack import auth_bench, conversion_bench, router_bench
from switchboard_stack.demo import create_demo_key
from switchboard_stack.launcher import SIMULATOR_ANTHROPIC_KEY, SIMULATOR_OPENAI_KEY, Ports, Stack
from switchboard_stack.ports import free_port

CLAUDE_BODY = b'{"model":"claude-sonnet-4-20250514","max_tokens":64,"messages":[{"role":"user","content":"Hello!"}]}'
CLAUDE_STREAM_BODY = CLAUDE_BODY[:-1] + b',"stream":true}'
OPENAI_BODY = b'{"model":"gpt-4o-mini","messages":[{"role":"user","content":"Hello!"}]}'
# An OpenAI chat client asking for a Claude model (the contract's first example), and Claude's own client
# asking for a GPT model: both through a translator.
OPENAI_TO_CLAUDE_BODY = b'{"model":"claude-sonnet-4-20250514","messages":[{"role":"user","content":"Hello!"}]}'
CLAUDE_TO_GPT_STREAM_BODY = (b'{"model":"gpt-4o-mini","max_tokens":64,"stream":true,'
                             b'"messages":[{"role":"user","content":"Hello!"}]}')
OPENAI_STREAM_BODY = OPENAI_BODY[:-1] + b',"stream":true}'


@dataclass(frozen=True)
class Scenario:
    name: str
    path: str
    body: bytes
    concurrency: int
    requests: int
    stream: bool = False
    # A translated scenario's baseline: the route and body that reach the same upstream natively.
    native: tuple[str, bytes] | None = None


@dataclass(frozen=True)
class Result:
    latencies: list[float]
    first_bytes: list[float]
    seconds: float
    errors: int

    @property
    def throughput(self) -> float:
        return len(self.latencies) / self.seconds if self.seconds else 0.0

    def percentile(self, q: float, values: list[float] | None = None) -> float:
        data = sorted(self.latencies if values is None else values)
        if not data:
            return float("nan")
        return data[min(len(data) - 1, int(q * len(data)))]

    def summary(self) -> dict[str, Any]:
        """The numbers of the JSON file: counts, req/s, latency (and stream first byte) p50/p99 in ms."""
        numbers: dict[str, Any] = {
            "requests": len(self.latencies), "errors": self.errors, "seconds": self.seconds,
            "req_per_s": self.throughput,
            "p50_ms": self.percentile(0.5) * 1000, "p99_ms": self.percentile(0.99) * 1000}
        if self.first_bytes:
            numbers.update(ttfb_p50_ms=self.percentile(0.5, self.first_bytes) * 1000,
                           ttfb_p99_ms=self.percentile(0.99, self.first_bytes) * 1000)
        return numbers


async def run(session: aiohttp.ClientSession, url: str, headers: dict[str, str], scenario: Scenario) -> Result:
    latencies: list[float] = []
    first_bytes: list[float] = []
    errors = 0
    remaining = scenario.requests

    async def worker() -> None:
        nonlocal remaining, errors
        while remaining > 0:
            remaining -= 1
            start = time.perf_counter()
            try:
                async with session.post(url, data=scenario.body, headers=headers) as response:
                    if scenario.stream:
                        first = None
                        async for _ in response.content.iter_any():
                            if first is None:
                                first = time.perf_counter() - start
                        first_bytes.append(first or 0.0)
                    else:
                        await response.read()
                    if response.status != 200:
                        errors += 1
                        continue
            except aiohttp.ClientError:
                errors += 1
                continue
            latencies.append(time.perf_counter() - start)

    began = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(scenario.concurrency)))
    return Result(latencies, first_bytes, time.perf_counter() - began, errors)


def scenarios(scale: float) -> list[Scenario]:
    def n(count: int) -> int:
        return max(50, int(count * scale))

    return [
        Scenario("claude non-stream, 1 concurrent", "/claude/v1/messages", CLAUDE_BODY, 1, n(600)),
        Scenario("claude non-stream, 32 concurrent", "/claude/v1/messages", CLAUDE_BODY, 32, n(6000)),
        Scenario("claude stream, 32 concurrent", "/claude/v1/messages", CLAUDE_STREAM_BODY, 32, n(3000), True),
        Scenario("openai non-stream, 32 concurrent", "/openai/v1/chat/completions", OPENAI_BODY, 32, n(4000)),
        Scenario("openai→claude non-stream, 32 conc.", "/openai/v1/chat/completions", OPENAI_TO_CLAUDE_BODY, 32,
                 n(3000), native=("/claude/v1/messages", CLAUDE_BODY)),
        Scenario("claude→gpt stream, 32 concurrent", "/claude/v1/messages", CLAUDE_TO_GPT_STREAM_BODY, 32, n(2000),
                 True, native=("/openai/v1/chat/completions", OPENAI_STREAM_BODY)),
    ]


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:7.2f}"


async def bench(stack: Stack, key: str, scale: float, forwarder_url: str | None = None,
                record: dict[str, Any] | None = None) -> dict[str, float]:
    """Runs the scenarios; returns the added p50 latency (seconds) of those measured against the simulator.

    With `forwarder_url`, the native scenarios also run against the bare forwarder there, and the gateway
    is set against it. Every number goes into `record` (scenario name → targets and ratios) when given.
    """
    added_by_scenario: dict[str, float] = {}
    record = {} if record is None else record
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector) as session:
        print(f"{'scenario':36} {'target':9} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8} {'ttfb50':>8} {'errors':>6}")
        for scenario in scenarios(scale):
            targets = _targets(stack, key, scenario, forwarder_url)
            results: dict[str, Result] = {}
            for target, (url, headers, body) in targets.items():
                measured = Scenario(scenario.name, scenario.path, body, scenario.concurrency, scenario.requests,
                                    scenario.stream)
                warm = Scenario(scenario.name, scenario.path, body, scenario.concurrency,
                                min(200, scenario.requests), scenario.stream)
                await run(session, url, headers, warm)
                result = await run(session, url, headers, measured)
                results[target] = result
                ttfb = _ms(result.percentile(0.5, result.first_bytes)) if scenario.stream else "      -"
                print(f"{scenario.name:36} {target:9} {result.throughput:8.0f} {_ms(result.percentile(0.5))} "
                      f"{_ms(result.percentile(0.99))} {ttfb} {result.errors:6d}")
            entry: dict[str, Any] = {"concurrency": scenario.concurrency, "stream": scenario.stream,
                                     "baseline": next(iter(results)),
                                     "targets": {name: r.summary() for name, r in results.items()}}
            record[scenario.name] = entry
            base, measured_result = list(results.values())[:2]
            added = measured_result.percentile(0.5) - base.percentile(0.5)
            ratio = measured_result.percentile(0.5) / base.percentile(0.5)
            share = measured_result.throughput / base.throughput if base.throughput else float("nan")
            against = "native" if scenario.native else "direct"
            entry.update(added_p50_ms=added * 1000, latency_ratio=ratio, throughput_share=share)
            if not scenario.native:
                added_by_scenario[scenario.name] = added
            print(f"{'':36} added p50 {added * 1000:.2f} ms (x{ratio:.2f} latency), "
                  f"throughput {share:.2f} of {against}")
            if "forwarder" in results:
                versus = against_forwarder(results["simulator"], results["gateway"], results["forwarder"])
                entry["versus_forwarder"] = versus
                print(f"{'':36} gateway/forwarder: req/s {_x(versus['req_per_s_ratio'])}, added p50 "
                      f"{_x(versus['added_p50_ratio'])}, added p99 {_x(versus['added_p99_ratio'])}"
                      + (f", added ttfb p50 {_x(versus['added_ttfb_p50_ratio'])}" if scenario.stream else ""))
        sys.stdout.flush()
    return added_by_scenario


def _ratio(numerator: float, denominator: float) -> float:
    """NaN (null in the JSON, n/a printed) over a denominator of zero or less: the forwarder added nothing
    measurable (a small run's p99 is noisy enough for that)."""
    return numerator / denominator if denominator > 0 else float("nan")


def _x(ratio: float) -> str:
    return f"x{ratio:.2f}" if math.isfinite(ratio) else "n/a"


def against_forwarder(direct: Result, gateway: Result, forwarder: Result) -> dict[str, float]:
    """The gateway set against the bare forwarder: req/s ratio, and added latency (each minus direct) ratios.

    A ratio above 1 means the gateway adds (or, for req/s, serves) that many times the forwarder's.
    """
    numbers: dict[str, float] = {"req_per_s_ratio": _ratio(gateway.throughput, forwarder.throughput)}
    for q, label in ((0.5, "p50"), (0.99, "p99")):
        gateway_added = gateway.percentile(q) - direct.percentile(q)
        forwarder_added = forwarder.percentile(q) - direct.percentile(q)
        numbers[f"gateway_added_{label}_ms"] = gateway_added * 1000
        numbers[f"forwarder_added_{label}_ms"] = forwarder_added * 1000
        numbers[f"added_{label}_ratio"] = _ratio(gateway_added, forwarder_added)
    if direct.first_bytes:
        gateway_ttfb = gateway.percentile(0.5, gateway.first_bytes) - direct.percentile(0.5, direct.first_bytes)
        forwarder_ttfb = forwarder.percentile(0.5, forwarder.first_bytes) - direct.percentile(0.5, direct.first_bytes)
        numbers.update(gateway_added_ttfb_p50_ms=gateway_ttfb * 1000, forwarder_added_ttfb_p50_ms=forwarder_ttfb * 1000,
                       added_ttfb_p50_ratio=_ratio(gateway_ttfb, forwarder_ttfb))
    return numbers


def _targets(stack: Stack, key: str, scenario: Scenario,
             forwarder_url: str | None = None) -> dict[str, tuple[str, dict[str, str], bytes]]:
    """Baseline first: the simulator straight, or for a translated scenario the gateway serving it natively;
    then the gateway; then, for a native scenario with a forwarder running, the forwarder."""
    is_claude = scenario.path.startswith("/claude")
    gateway = (f"{stack.base_url}{scenario.path}", _headers(key, is_claude), scenario.body)
    if scenario.native is not None:
        path, body = scenario.native
        return {"native": (f"{stack.base_url}{path}", _headers(key, path.startswith("/claude")), body),
                "gateway": gateway}
    direct_key = SIMULATOR_ANTHROPIC_KEY if is_claude else SIMULATOR_OPENAI_KEY
    upstream_path = scenario.path.removeprefix("/claude").removeprefix("/openai")
    targets = {"simulator": (f"{stack.simulator_url}{upstream_path}", _headers(direct_key, is_claude), scenario.body),
               "gateway": gateway}
    if forwarder_url is not None:
        # The forwarder puts the simulator's key in; the client's is sent as to the gateway.
        targets["forwarder"] = (f"{forwarder_url}{scenario.path}", _headers(key, is_claude), scenario.body)
    return targets


def _headers(key: str, anthropic: bool) -> dict[str, str]:
    headers = {"content-type": "application/json"}
    if anthropic:
        headers.update({"x-api-key": key, "anthropic-version": "2023-06-01"})
    else:
        headers["authorization"] = f"Bearer {key}"
    return headers


@contextmanager
def forwarder(upstream: str, timeout: float = 30.0) -> Iterator[str]:
    """The bare forwarder (`python -m switchboard_stack.forwarder`) on a free port in front of `upstream`;
    yields its base URL and stops it after."""
    port = free_port()
    process = subprocess.Popen([sys.executable, "-m", "switchboard_stack.forwarder", "--port", str(port),
                                "--upstream", upstream], stdin=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline = time.monotonic() + timeout
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"the forwarder exited with status {process.returncode} during start-up")
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1.0).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise TimeoutError(f"the forwarder is not listening after {timeout}s") from None
                time.sleep(0.05)
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def default_json_path() -> Path:
    """`.run/bench.json` when the working directory has a `.run` (as after `make run`), else `bench.json`."""
    return Path(".run/bench.json") if Path(".run").is_dir() else Path("bench.json")


def _plain(value: Any) -> Any:
    """JSON-ready: dataclasses as objects, NaN and infinities as null."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return _plain(dataclasses.asdict(value))
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def write_json(path: Path, record: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(_plain(record), indent=2) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=float, default=1.0, help="multiply request counts (default 1.0)")
    parser.add_argument("--json", type=Path, default=None, metavar="PATH",
                        help="write every number of the run there (default .run/bench.json when ./.run exists, "
                             "else bench.json in the working directory)")
    args = parser.parse_args()
    json_path: Path = args.json or default_json_path()
    record: dict[str, Any] = {
        "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "scale": args.scale,
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version()}}
    conversion_bench.report()  # printed only: it returns no numbers to record
    router = router_bench.report()
    record["router"] = router
    auth = auth_bench.report()
    if auth:
        record["auth"] = auth
    http: dict[str, Any] = {}
    record["http"] = http
    with tempfile.TemporaryDirectory(prefix="switchboard-bench-") as workdir:
        stack = Stack(Path(workdir), Ports.free(), simulator_args=["--latency-ms", "0", "--tokens-per-second", "0"],
                      env={"SWITCHBOARD_LOG_LEVEL": "WARNING"})
        with stack, forwarder(stack.simulator_url) as forwarder_url:
            key = create_demo_key(stack.db_path)
            print(f"switchboard bench: edge {stack.base_url}, simulator {stack.simulator_url}, "
                  f"bare forwarder {forwarder_url}\n")
            added = asyncio.run(bench(stack, key, args.scale, forwarder_url, http))
    print()
    router_bench.compare(router.round_trip, added)
    write_json(json_path, record)
    print(f"\nall numbers written to {json_path}")


if __name__ == "__main__":
    main()
