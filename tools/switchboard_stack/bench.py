"""`make bench`: a fixed load against the gateway and, in the same run, straight at the simulator.

Both targets see the same simulator (no artificial latency, replies as fast as
it can write), so the difference is what the gateway adds: admission (auth and
router over gRPC), forwarding, stream relaying and accounting. The translated
scenarios (a client of one format, a model of another vendor) are measured
against the gateway serving the same upstream natively, so their difference is
the conversion's cost. Before them, the router's own cost per choice and per
gRPC round trip (`router_bench`), set against the gateway's added latency at
the end. Numbers are printed, never asserted; ratios are only meaningful within
one run.
"""

import argparse
import asyncio
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import aiohttp

from switchboard_stack import auth_bench, conversion_bench, router_bench
from switchboard_stack.demo import create_demo_key
from switchboard_stack.launcher import SIMULATOR_ANTHROPIC_KEY, SIMULATOR_OPENAI_KEY, Ports, Stack

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


async def bench(stack: Stack, key: str, scale: float) -> dict[str, float]:
    """Runs the scenarios; returns the added p50 latency (seconds) of those measured against the simulator."""
    added_by_scenario: dict[str, float] = {}
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector) as session:
        print(f"{'scenario':36} {'target':9} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8} {'ttfb50':>8} {'errors':>6}")
        for scenario in scenarios(scale):
            targets = _targets(stack, key, scenario)
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
            base, measured_result = results.values()
            added = measured_result.percentile(0.5) - base.percentile(0.5)
            ratio = measured_result.percentile(0.5) / base.percentile(0.5)
            share = measured_result.throughput / base.throughput if base.throughput else float("nan")
            against = "native" if scenario.native else "direct"
            if not scenario.native:
                added_by_scenario[scenario.name] = added
            print(f"{'':36} added p50 {added * 1000:.2f} ms (x{ratio:.2f} latency), "
                  f"throughput {share:.2f} of {against}")
        sys.stdout.flush()
    return added_by_scenario


def _targets(stack: Stack, key: str, scenario: Scenario) -> dict[str, tuple[str, dict[str, str], bytes]]:
    """Baseline first: the simulator straight, or for a translated scenario the gateway serving it natively."""
    is_claude = scenario.path.startswith("/claude")
    gateway = (f"{stack.base_url}{scenario.path}", _headers(key, is_claude), scenario.body)
    if scenario.native is not None:
        path, body = scenario.native
        return {"native": (f"{stack.base_url}{path}", _headers(key, path.startswith("/claude")), body),
                "gateway": gateway}
    direct_key = SIMULATOR_ANTHROPIC_KEY if is_claude else SIMULATOR_OPENAI_KEY
    upstream_path = scenario.path.removeprefix("/claude").removeprefix("/openai")
    return {"simulator": (f"{stack.simulator_url}{upstream_path}", _headers(direct_key, is_claude), scenario.body),
            "gateway": gateway}


def _headers(key: str, anthropic: bool) -> dict[str, str]:
    headers = {"content-type": "application/json"}
    if anthropic:
        headers.update({"x-api-key": key, "anthropic-version": "2023-06-01"})
    else:
        headers["authorization"] = f"Bearer {key}"
    return headers


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=float, default=1.0, help="multiply request counts (default 1.0)")
    args = parser.parse_args()
    conversion_bench.report()
    router = router_bench.report()
    auth_bench.report()
    with tempfile.TemporaryDirectory(prefix="switchboard-bench-") as workdir:
        stack = Stack(Path(workdir), Ports.free(), simulator_args=["--latency-ms", "0", "--tokens-per-second", "0"],
                      env={"SWITCHBOARD_LOG_LEVEL": "WARNING"})
        with stack:
            key = create_demo_key(stack.db_path)
            print(f"switchboard bench: edge {stack.base_url}, simulator {stack.simulator_url}\n")
            added = asyncio.run(bench(stack, key, args.scale))
    print()
    router_bench.compare(router.round_trip, added)


if __name__ == "__main__":
    main()
