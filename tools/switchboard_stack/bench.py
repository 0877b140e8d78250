"""`make bench`: the gateway, a bare forwarder and the simulator straight, under the same load in one run.

Every target sees the same simulator (no simulated latency), so what a target adds over the simulator straight
("direct") is its own cost. The scenarios, as issue 20 names them:

- A. overhead: 1 concurrent client, non-stream → added latency p50/p99 (target minus direct);
- B. throughput: 32 concurrent clients for a fixed duration, non-stream and stream → req/s, p50/p99;
- C. streaming: replies of 200 SSE events → added time to first byte and per event, and whether any event is
  held back: the same streams paced by a simulator of their own (100 tokens/s), the gaps between events as
  they arrive and how many came together with the one before, set against the same streams read direct;
- D. conversion: B with an OpenAI-format client served by a Claude account, against B's native Claude client;
- E. memory: the edge's (and the forwarder's) RSS with 1,000 concurrent open streams (a simulator at
  2 tokens/s keeps them open);
- F. cost per decision: account choice at 1,000 accounts (`router_bench`), key authorization at 100,000 keys
  (`auth_bench`);
- G. A–C against the bare forwarder (`forwarder`: Starlette + aiohttp, no auth, no routing; the floor), in
  ratios: gateway / forwarder.

Each run also reads CPU time: the load generator's own (this process: it is not the bottleneck while its CPU
per request stays well under the servers'), and each server's from /proc (the edge's; auth's and router's
together), per request. Numbers are printed, never asserted; ratios are only meaningful within one run. All of
them are written to a JSON file (`--json`). `make bench-peers` (`bench_peers`) adds LiteLLM's proxy to A–C.
"""

import argparse
import asyncio
import dataclasses
import json
import math
import os
import platform
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

from switchboard_auth.keys import KeyLimits
from switchboard_stack import auth_bench, conversion_bench, router_bench
from switchboard_stack.bench_load import Result, Target, bursts, gaps, percentile, ratio, run
from switchboard_stack.bench_proc import CpuReading, cpu_ms_per_request, rss_bytes
from switchboard_stack.bench_servers import Server, forwarder, forwarder_server, simulator_server
from switchboard_stack.demo import create_demo_key
from switchboard_stack.launcher import SIMULATOR_ANTHROPIC_KEY, SIMULATOR_OPENAI_KEY, Ports, Stack, demo_accounts

__all__ = ["forwarder"]  # the bare forwarder's context manager, here since `make bench` starts it

CLAUDE_MODEL = "claude-sonnet-4-20250514"
REPLY_TOKENS = 35  # short replies (A, B, D): the simulator's default length, asked for with max_tokens
LONG_TOKENS = 200  # C's replies: 200 text deltas (a token each), as many SSE events and a few more
PACED_TOKENS_PER_SECOND = 100  # C's paced streams: one event every 10 ms
SLOW_TOKENS_PER_SECOND = 2  # E's streams: open for 100 s unless closed
PACED_MODEL = "paced-claude"  # served only by the paced simulator (its account, its forwarder)
SLOW_MODEL = "slow-claude"
# The bench key's limits: every kind set, none ever reached.
UNBINDING_LIMITS = KeyLimits(requests_per_minute=10_000_000, tokens_per_minute=10_000_000_000,
                             tokens_per_day=10_000_000_000_000, concurrency=100_000,
                             daily_budget_micro_usd=10**15, monthly_budget_micro_usd=10**16)


def claude_body(model: str = CLAUDE_MODEL, max_tokens: int = REPLY_TOKENS, stream: bool = False) -> bytes:
    return (f'{{"model":"{model}","max_tokens":{max_tokens},' + ('"stream":true,' if stream else "")
            + '"messages":[{"role":"user","content":"Hello!"}]}').encode()


def openai_body(model: str = "gpt-4o-mini", max_tokens: int = REPLY_TOKENS, stream: bool = False) -> bytes:
    return (f'{{"model":"{model}","max_tokens":{max_tokens},' + ('"stream":true,' if stream else "")
            + '"messages":[{"role":"user","content":"Hello!"}]}').encode()


CLAUDE_BODY = claude_body()
CLAUDE_STREAM_BODY = claude_body(stream=True)
OPENAI_BODY = openai_body()
OPENAI_STREAM_BODY = openai_body(stream=True)
# An OpenAI chat client asking for a Claude model (the contract's first example): through a translator.
OPENAI_TO_CLAUDE_BODY = openai_body(CLAUDE_MODEL)
OPENAI_TO_CLAUDE_STREAM_BODY = openai_body(CLAUDE_MODEL, stream=True)
LONG_STREAM_BODY = claude_body(max_tokens=LONG_TOKENS, stream=True)
PACED_STREAM_BODY = claude_body(PACED_MODEL, LONG_TOKENS, stream=True)
SLOW_STREAM_BODY = claude_body(SLOW_MODEL, LONG_TOKENS, stream=True)

_PATHS = {"claude": "/v1/messages", "openai": "/v1/chat/completions"}


@dataclass(frozen=True)
class Endpoint:
    """One target's base URL and how a client signs requests to it; `cpu` names the processes it runs as."""

    name: str
    base: str
    claude_key: str
    openai_key: str
    cpu: dict[str, int] = field(default_factory=dict)
    prefixed: bool = False  # the gateway's routes: /claude/v1/messages, /openai/v1/chat/completions
    bearer: bool = False  # every route signed with Authorization: Bearer (LiteLLM's master key)
    slow: bool = False  # fewer requests (LiteLLM)

    def target(self, api: str, body: bytes) -> Target:
        path = (f"/{api}" if self.prefixed else "") + _PATHS[api]
        headers = {"content-type": "application/json"}
        if api == "claude":
            headers["anthropic-version"] = "2023-06-01"
        if api == "claude" and not self.bearer:
            headers["x-api-key"] = self.claude_key
        else:
            headers["authorization"] = f"Bearer {self.claude_key if api == 'claude' else self.openai_key}"
        return Target(self.name, self.base + path, headers, body)


@dataclass
class Servers:
    """What the HTTP scenarios run against. `paced`/`slow` hold the endpoints reaching the paced and slow
    simulators (the gateway reaches them by model, the others have their own)."""

    endpoints: list[Endpoint]
    paced: list[Endpoint]
    slow: list[Endpoint]
    pids: dict[str, int]


def _stack_accounts(simulator_url: str, paced_url: str, slow_url: str) -> list[dict[str, Any]]:
    def own(name: str, url: str, model: str) -> dict[str, Any]:
        return {"name": name, "platform": "claude-console", "base_url": url, "api_key": SIMULATOR_ANTHROPIC_KEY,
                "models": [model]}

    return [*demo_accounts(simulator_url), own("bench-paced", paced_url, PACED_MODEL),
            own("bench-slow", slow_url, SLOW_MODEL)]


@contextmanager
def servers(workdir: Path) -> Iterator[Servers]:
    """The stack (its simulator answering at full speed), the paced and slow simulators, a forwarder in front
    of each simulator."""
    own_models = ["--reply-tokens", str(LONG_TOKENS), "--anthropic-model"]
    with ExitStack() as started:
        paced = started.enter_context(simulator_server(
            ["--tokens-per-second", str(PACED_TOKENS_PER_SECOND), *own_models, PACED_MODEL]))
        slow = started.enter_context(simulator_server(
            ["--tokens-per-second", str(SLOW_TOKENS_PER_SECOND), *own_models, SLOW_MODEL]))
        ports = Ports.free()
        simulator_url = f"http://127.0.0.1:{ports.simulator}"
        stack = Stack(workdir, ports, accounts=_stack_accounts(simulator_url, paced.url, slow.url),
                      simulator_args=["--latency-ms", "0", "--tokens-per-second", "0", "--no-record",
                                      "--reply-tokens", str(LONG_TOKENS)],
                      env={"SWITCHBOARD_LOG_LEVEL": "WARNING", "SWITCHBOARD_EDGE_DRAIN_SECONDS": "2"})
        started.enter_context(stack)
        pids = {process.name: process.popen.pid for process in stack.processes}
        # Every feature on: limits that never bind but are admitted and settled on every request (so Authorize
        # is asked each time, a concurrency admission taken and released), besides stickiness, cooldowns,
        # the ledger and metrics, which are always on.
        key = create_demo_key(stack.db_path, limits=UNBINDING_LIMITS)
        fwd, paced_fwd, slow_fwd = (started.enter_context(forwarder_server(url))
                                    for url in (simulator_url, paced.url, slow.url))

        def direct(server: Server) -> Endpoint:
            return Endpoint("direct", server.url, SIMULATOR_ANTHROPIC_KEY, SIMULATOR_OPENAI_KEY)

        def bare(server: Server) -> Endpoint:
            # The forwarder puts the simulator's key in; the client's is sent as to the gateway.
            return Endpoint("forwarder", server.url, key, key, {"forwarder": server.pid}, prefixed=True)

        gateway = Endpoint("gateway", stack.base_url, key, key,
                           {name: pids[name] for name in ("edge", "auth", "router")}, prefixed=True)
        pids.update(forwarder=fwd.pid)
        print(f"switchboard bench: edge {stack.base_url}, simulator {simulator_url}, bare forwarder {fwd.url}, "
              f"paced simulator {paced.url}, slow simulator {slow.url}\n")
        yield Servers([direct(Server(simulator_url, pids["simulator"])), gateway, bare(fwd)],
                      [direct(paced), gateway, bare(paced_fwd)], [gateway, bare(slow_fwd)], pids)


@dataclass
class Measured:
    """One target's run of one scenario: what the client saw, and CPU ms per request by process."""

    result: Result
    cpu_ms: dict[str, float]

    def server_cpu_ms(self) -> float:
        """The serving process's CPU per request: the edge's for the gateway, the forwarder's, LiteLLM's."""
        named = [ms for name, ms in self.cpu_ms.items() if name in ("edge", "forwarder", "litellm")]
        return named[0] if named else float("nan")

    def client_busy(self) -> float:
        """The share of one core the load generator used during the run (near 1: it may be the bottleneck)."""
        result = self.result
        return self.cpu_ms["client"] * result.requests / 1000 / result.seconds if result.seconds else float("nan")

    def json(self) -> dict[str, Any]:
        numbers = self.result.summary()
        numbers["cpu_ms_per_request"] = self.cpu_ms
        numbers["client_core_share"] = self.client_busy()
        if "auth" in self.cpu_ms:
            numbers["auth_router_cpu_ms_per_request"] = self.cpu_ms["auth"] + self.cpu_ms["router"]
        return numbers


ROUNDS = 5  # each run is split in rounds, the targets taking turns: load from elsewhere falls on all alike


@dataclass(frozen=True)
class Run:
    """One target's share of a scenario: its name in the table, where the requests go, how many (None: for the
    scenario's duration)."""

    name: str
    endpoint: Endpoint
    target: Target
    requests: int | None = None


async def measure(session: aiohttp.ClientSession, runs: Sequence[Run], concurrency: int, *,
                  duration: float | None = None, stream: bool = False, record_events: bool = False,
                  rounds: int = ROUNDS) -> dict[str, Measured]:
    """A warm-up for each, then `rounds` rounds in which the runs take turns (in a rotating order), each doing its
    share of the requests or of `duration`; the CPU of each endpoint's processes (and this one's) is read around
    each turn. Returns each run's merged result."""
    for item in runs:
        await run(session, item.target, concurrency, requests=min(100, item.requests or 100), stream=stream)
    results = {item.name: Result() for item in runs}
    cpu_ms = {item.name: dict.fromkeys([*item.endpoint.cpu, "client"], 0.0) for item in runs}
    for turn in range(rounds):
        for item in [*runs[turn % len(runs):], *runs[:turn % len(runs)]]:
            share = None if item.requests is None else item.requests // rounds + (turn < item.requests % rounds)
            if share == 0:
                continue
            before = CpuReading.take(item.endpoint.cpu)
            part = await run(session, item.target, concurrency, requests=share,
                             duration=None if duration is None else duration / rounds, stream=stream,
                             record_events=record_events)
            spent = cpu_ms_per_request(before, CpuReading.take(item.endpoint.cpu), 1)
            results[item.name].add(part)
            for name, ms in spent.items():
                cpu_ms[item.name][name] += ms
    return {name: Measured(result, {process: total / result.requests if result.requests else float("nan")
                                    for process, total in cpu_ms[name].items()})
            for name, result in results.items()}


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:8.2f}" if math.isfinite(seconds) else "     n/a"


def _x(value: float) -> str:
    return f"x{value:.2f}" if math.isfinite(value) else "n/a"


HEADER = (f"{'scenario':30} {'target':9} {'reqs':>6} {'req/s':>7} {'p50 ms':>8} {'p99 ms':>8} {'ttfb50':>8} "
          f"{'err':>4} {'srv cpu':>8} {'a+r cpu':>8} {'gen cpu':>8}")


def row(scenario: str, target: str, measured: Measured) -> str:
    """A table line; the CPU columns are ms per request: the serving process's, auth + router's (gateway
    only), the load generator's."""
    r, cpu = measured.result, measured.cpu_ms
    ttfb = _ms(r.ttfb(0.5)) if r.first_bytes else "       -"
    auth_router = _ms((cpu["auth"] + cpu["router"]) / 1000) if "auth" in cpu else "       -"
    return (f"{scenario:30} {target:9} {r.requests:6d} {r.throughput:7.0f} {_ms(r.p(0.5))} {_ms(r.p(0.99))} "
            f"{ttfb} {r.errors:4d} {_ms(measured.server_cpu_ms() / 1000)} {auth_router} "
            f"{_ms(cpu['client'] / 1000)}" + (f"  errors: {r.error_kinds}" if r.error_kinds else ""))


def added(direct: Result, other: Result) -> dict[str, float]:
    """What `other` adds over direct, in ms: latency p50/p99, and for streams first byte p50/p99."""
    numbers = {"added_p50_ms": (other.p(0.5) - direct.p(0.5)) * 1000,
               "added_p99_ms": (other.p(0.99) - direct.p(0.99)) * 1000}
    if direct.first_bytes and other.first_bytes:
        numbers.update(added_ttfb_p50_ms=(other.ttfb(0.5) - direct.ttfb(0.5)) * 1000,
                       added_ttfb_p99_ms=(other.ttfb(0.99) - direct.ttfb(0.99)) * 1000)
    return numbers


def gateway_ratios(numbers: dict[str, dict[str, float]], keys: Sequence[str]) -> dict[str, dict[str, float]]:
    """gateway / each other target, for each number in `keys` both have: e.g. {"forwarder": {"req_per_s": 0.5}}."""
    gateway = numbers.get("gateway", {})
    return {name: {key: ratio(gateway[key], other[key]) for key in keys if key in gateway and key in other}
            for name, other in numbers.items() if name not in ("gateway", "direct")}


def _print_ratios(ratios: dict[str, dict[str, float]]) -> None:
    for name, values in ratios.items():
        print(f"{'':30} gateway/{name}: " + ", ".join(f"{key} {_x(value)}" for key, value in values.items()))


class Bench:
    """The HTTP scenarios over one session; every number goes into `record` (section → numbers)."""

    def __init__(self, session: aiohttp.ClientSession, servers: Servers, scale: float, record: dict[str, Any]):
        self.session = session
        self.servers = servers
        self.scale = scale
        self.record = record

    def count(self, full: int, endpoint: Endpoint, slow_cap: int) -> int:
        n = max(20, int(full * self.scale))
        return min(n, slow_cap) if endpoint.slow else n

    def duration(self, seconds: float) -> float:
        return max(1.0, seconds * self.scale)

    async def overhead(self) -> None:
        """A: 1 concurrent, non-stream."""
        print("A. overhead: 1 concurrent client, non-stream\n" + HEADER)
        runs = await measure(self.session, [Run(e.name, e, e.target("claude", CLAUDE_BODY), self.count(2000, e, 300))
                                            for e in self.servers.endpoints], 1)
        for name, measured in runs.items():
            print(row("claude non-stream", name, measured))
        self.record["A_overhead"] = self._compare(runs, ("added_p50_ms", "added_p99_ms"))

    async def throughput(self) -> None:
        """B: 32 concurrent for a fixed duration, non-stream and stream."""
        seconds = self.duration(10.0)
        print(f"\nB. throughput: 32 concurrent clients, {seconds:.0f} s each\n" + HEADER)
        for label, body, stream in (("claude non-stream", CLAUDE_BODY, False),
                                    ("claude stream", CLAUDE_STREAM_BODY, True)):
            runs = await measure(self.session, [Run(e.name, e, e.target("claude", body))
                                                for e in self.servers.endpoints], 32, duration=seconds, stream=stream)
            for name, measured in runs.items():
                print(row(label, name, measured))
            self.record[f"B_throughput_{'stream' if stream else 'non_stream'}"] = self._compare(
                runs, ("req_per_s", "server_cpu_ms", "added_p50_ms", "added_p99_ms"))

    async def streaming(self) -> None:
        """C: 200-event replies at full speed (1 concurrent), then paced (8 concurrent): per-event lags."""
        print(f"\nC. streaming: replies of {LONG_TOKENS} text events, 1 concurrent client\n" + HEADER)
        runs = await measure(self.session, [Run(e.name, e, e.target("claude", LONG_STREAM_BODY),
                                                self.count(500, e, 50)) for e in self.servers.endpoints],
                             1, stream=True, record_events=True)
        for name, measured in runs.items():
            print(row(f"{LONG_TOKENS}-event stream", name, measured))
        section = self._compare(runs, ("added_p50_ms", "added_p99_ms", "added_ttfb_p50_ms", "added_ttfb_p99_ms",
                                       "added_us_per_event"))
        per_event = {name: entry["added_us_per_event"] for name, entry in section["targets"].items()
                     if "added_us_per_event" in entry}
        print(f"{'':30} added per event (p50 stream time over its events), µs: "
              + ", ".join(f"{name} {value:.1f}" for name, value in per_event.items()))
        section["paced"] = await self.held_back()
        self.record["C_streaming"] = section

    async def held_back(self) -> dict[str, Any]:
        """C's paced streams: the gaps between events as they arrive, and how many came together with the one
        before (under a quarter of the pacing gap apart). The source's pacing drifts from stream to stream, so
        a relay is judged by its gaps against the same streams read straight, not by absolute times."""
        gap = 1 / PACED_TOKENS_PER_SECOND
        streams = max(8, int(16 * self.scale))
        print(f"\n   paced at {PACED_TOKENS_PER_SECOND} events/s ({gap * 1000:.0f} ms apart), {streams} streams, "
              f"8 concurrent: gaps between arriving events; together: < {gap * 250:.1f} ms after the one before")
        print(f"   {'target':9} {'streams':>7} {'events':>7} {'gap p50':>8} {'gap p99':>8} {'gap max':>8} "
              f"{'together/stream':>16}")
        numbers: dict[str, Any] = {"gap_ms": gap * 1000}
        for endpoint in self.servers.paced:
            target = endpoint.target("claude", PACED_STREAM_BODY)
            result = await run(self.session, target, 8, requests=streams, stream=True, record_events=True)
            between = [g for arrivals in result.events for g in gaps(arrivals)]
            together = sum(bursts(arrivals, gap / 4) for arrivals in result.events)
            entry = {"streams": len(result.events), "errors": result.errors,
                     "events_per_stream": result.events_per_stream(),
                     "gap_p50_ms": percentile(between, 0.5) * 1000, "gap_p99_ms": percentile(between, 0.99) * 1000,
                     "gap_max_ms": max(between, default=float("nan")) * 1000,
                     "together_per_stream": together / len(result.events) if result.events else float("nan")}
            numbers[endpoint.name] = entry
            print(f"   {endpoint.name:9} {entry['streams']:7d} {entry['events_per_stream']:7.0f} "
                  f"{_ms(entry['gap_p50_ms'] / 1000)} {_ms(entry['gap_p99_ms'] / 1000)} "
                  f"{_ms(entry['gap_max_ms'] / 1000)} {entry['together_per_stream']:16.1f}")
        return numbers

    async def conversion(self) -> None:
        """D: B's scenarios with an OpenAI client served by the Claude accounts, against the native Claude client
        (taking turns with it)."""
        seconds = self.duration(10.0)
        gateway = next(e for e in self.servers.endpoints if e.name == "gateway")
        print(f"\nD. conversion: an OpenAI-format client, Claude accounts, 32 concurrent, {seconds:.0f} s each\n"
              + HEADER)
        for kind, native_body, body, stream in (
                ("non-stream", CLAUDE_BODY, OPENAI_TO_CLAUDE_BODY, False),
                ("stream", CLAUDE_STREAM_BODY, OPENAI_TO_CLAUDE_STREAM_BODY, True)):
            runs = await measure(self.session, [Run("native", gateway, gateway.target("claude", native_body)),
                                                Run("openai→claude", gateway, gateway.target("openai", body))],
                                 32, duration=seconds, stream=stream)
            base, translated = runs["native"], runs["openai→claude"]
            print(row(f"claude {kind}", "native", base))
            print(row(f"openai→claude {kind}", "gateway", translated))
            share = ratio(translated.result.throughput, base.result.throughput)
            added_p50 = (translated.result.p(0.5) - base.result.p(0.5)) * 1000
            added_cpu = translated.server_cpu_ms() - base.server_cpu_ms()
            print(f"{'':30} translated/native: req/s {_x(share)}, added p50 {added_p50:.2f} ms, "
                  f"edge CPU {added_cpu:+.3f} ms/request")
            self.record[f"D_conversion_{kind.replace('-', '_')}"] = {
                "native": base.json(), "translated": translated.json(), "req_per_s_ratio": share,
                "added_p50_ms": added_p50, "edge_cpu_ms_added": added_cpu}

    async def memory(self, streams: int = 1000) -> None:
        """E: resident memory of the edge and the forwarder with `streams` open streams."""
        streams = max(50, int(streams * min(1.0, self.scale)))
        print(f"\nE. memory: {streams} concurrent open streams (paced at {SLOW_TOKENS_PER_SECOND} events/s)")
        print(f"   {'target':9} {'opened':>6} {'errors':>6} {'baseline MiB':>12} {'open MiB':>9} {'peak MiB':>9}")
        section: dict[str, Any] = {"streams": streams}
        for endpoint in self.servers.slow:
            pid = next(iter(endpoint.cpu.values()))
            numbers = await hold_open(self.session, endpoint.target("claude", SLOW_STREAM_BODY), pid, streams)
            section[endpoint.name] = numbers
            print(f"   {endpoint.name:9} {numbers['opened']:6d} {numbers['errors']:6d} "
                  f"{numbers['baseline_mib']:12.1f} {numbers['open_mib']:9.1f} {numbers['peak_mib']:9.1f}")
        self.record["E_memory"] = section

    def _compare(self, runs: dict[str, Measured], keys: Sequence[str]) -> dict[str, Any]:
        """Each target's numbers, what it adds over direct, and the gateway's ratios to the others (printed)."""
        direct = runs["direct"].result
        targets: dict[str, dict[str, float]] = {}
        for name, measured in runs.items():
            entry = measured.json()
            entry["server_cpu_ms"] = measured.server_cpu_ms()
            if name != "direct":
                entry.update(added(direct, measured.result))
                if measured.result.events and direct.events:
                    events = measured.result.events_per_stream()
                    entry["added_us_per_event"] = (measured.result.p(0.5) - direct.p(0.5)) / events * 1e6
            targets[name] = entry
        ratios = gateway_ratios(targets, keys)
        _print_ratios(ratios)
        print(f"{'':30} load generator busy (share of one core): "
              + ", ".join(f"{name} {measured.client_busy():.0%}" for name, measured in runs.items()))
        return {"targets": targets, "gateway_ratios": ratios}


async def hold_open(session: aiohttp.ClientSession, target: Target, pid: int, streams: int) -> dict[str, Any]:
    """Opens `streams` streams (100 at a time, each until its first bytes), samples `pid`'s RSS while they are
    all open, then closes them."""
    baseline = rss_bytes(pid)
    release = asyncio.Event()
    opened = 0
    errors = 0

    async def one(started: asyncio.Event) -> None:
        nonlocal opened, errors
        try:
            async with session.post(target.url, data=target.body, headers=target.headers) as response:
                if response.status != 200:
                    errors += 1
                    return
                await response.content.readany()
                opened += 1
                started.set()
                await release.wait()
        except (TimeoutError, aiohttp.ClientError):
            errors += 1
        finally:
            started.set()

    tasks: list[asyncio.Task[None]] = []
    for batch in range(0, streams, 100):
        events = [asyncio.Event() for _ in range(min(100, streams - batch))]
        tasks += [asyncio.create_task(one(event)) for event in events]
        await asyncio.gather(*(event.wait() for event in events))
    samples = []
    for _ in range(10):
        samples.append(rss_bytes(pid))
        await asyncio.sleep(0.2)
    release.set()
    await asyncio.gather(*tasks)
    mib = 1024 * 1024
    return {"opened": opened, "errors": errors, "baseline_mib": baseline / mib, "open_mib": samples[-1] / mib,
            "peak_mib": max(samples) / mib}


def headline(record: dict[str, Any]) -> list[dict[str, Any]]:
    """The issue's table, one row per target: B's req/s, A's added p50/p99, C's added first byte p50, B's server
    CPU per request, E's RSS with the streams open, and the RSS after the run."""
    rows = []
    a, c = record.get("A_overhead", {}).get("targets", {}), record.get("C_streaming", {}).get("targets", {})
    b = record.get("B_throughput_non_stream", {}).get("targets", {})
    b_stream = record.get("B_throughput_stream", {}).get("targets", {})
    memory = record.get("E_memory", {})
    names = dict.fromkeys(name for section in (a, b, c) for name in section if name != "direct")
    nan = float("nan")
    for name in names:
        rows.append({"target": name, "req_per_s": b.get(name, {}).get("req_per_s", nan),
                     "stream_req_per_s": b_stream.get(name, {}).get("req_per_s", nan),
                     "added_p50_ms": a.get(name, {}).get("added_p50_ms", nan),
                     "added_p99_ms": a.get(name, {}).get("added_p99_ms", nan),
                     "added_ttfb_p50_ms": c.get(name, {}).get("added_ttfb_p50_ms", nan),
                     "server_cpu_ms": b.get(name, {}).get("server_cpu_ms", nan),
                     "rss_open_streams_mib": memory.get(name, {}).get("peak_mib", nan),
                     "rss_after_run_mib": record.get("rss_after_run_mib", {}).get(name, nan)})
    return rows


def print_headline(rows: list[dict[str, Any]]) -> None:
    def cell(value: float, digits: int = 2) -> str:
        return f"{value:.{digits}f}" if math.isfinite(value) else "n/a"

    print("\n| target | req/s (stream) | added p50 / p99 at 1 concurrent | added stream TTFB p50 "
          "| server CPU per request | RSS, 1,000 open streams | RSS after the run |\n|---|---|---|---|---|---|---|")
    gateway = next((r for r in rows if r["target"] == "gateway"), None)
    for r in rows:
        versus = ""
        if gateway is not None and r is not gateway:
            versus = (f" (gateway x{cell(ratio(gateway['req_per_s'], r['req_per_s']))}"
                      f" / x{cell(ratio(gateway['stream_req_per_s'], r['stream_req_per_s']))})")
        print(f"| {r['target']} | {cell(r['req_per_s'], 0)} ({cell(r['stream_req_per_s'], 0)}){versus} "
              f"| {cell(r['added_p50_ms'])} / {cell(r['added_p99_ms'])} ms | {cell(r['added_ttfb_p50_ms'])} ms "
              f"| {cell(r['server_cpu_ms'])} ms | {cell(r['rss_open_streams_mib'], 0)} MiB "
              f"| {cell(r['rss_after_run_mib'], 0)} MiB |")


def _get(record: dict[str, Any], *path: str) -> float:
    value: Any = record
    for key in path:
        value = value.get(key, {}) if isinstance(value, dict) else {}
    return float(value) if isinstance(value, int | float) else float("nan")


def targets(record: dict[str, Any]) -> list[tuple[str, float, str, bool]]:
    """Issue 20's targets against this run's numbers: (what, measured, the bound, met). Targets whose numbers the
    run does not have are left out."""
    checks: list[tuple[str, float, str, bool]] = []

    def at_least(what: str, value: float, bound: float) -> None:
        if math.isfinite(value):
            checks.append((what, value, f">= {bound:g}", value >= bound))

    def at_most(what: str, value: float, bound: float) -> None:
        if math.isfinite(value):
            checks.append((what, value, f"<= {bound:g}", value <= bound))

    for kind in ("non_stream", "stream"):
        ratios = record.get(f"B_throughput_{kind}", {}).get("gateway_ratios", {})
        at_least(f"B {kind} req/s, gateway/forwarder", _get(ratios, "forwarder", "req_per_s"), 0.8)
        at_least(f"B {kind} req/s, gateway/litellm", _get(ratios, "litellm", "req_per_s"), 20)
    for label in ("p50", "p99"):
        at_most(f"A added {label}, gateway/forwarder",
                _get(record, "A_overhead", "gateway_ratios", "forwarder", f"added_{label}_ms"), 1.5)
    at_most("C added TTFB p50, gateway/forwarder",
            _get(record, "C_streaming", "gateway_ratios", "forwarder", "added_ttfb_p50_ms"), 1.5)
    paced = record.get("C_streaming", {}).get("paced", {})
    # Zero buffering: the gateway bunches no more events than the bare forwarder does on the same machine (a busy
    # machine makes any relay send some events together; one that buffers bunches nearly all of them).
    at_most("C paced: events together per stream, gateway minus forwarder",
            _get(paced, "gateway", "together_per_stream") - _get(paced, "forwarder", "together_per_stream"), 1.0)
    at_most("B edge CPU per request, gateway/forwarder",
            _get(record, "B_throughput_non_stream", "gateway_ratios", "forwarder", "server_cpu_ms"), 1.5)
    at_most("E edge RSS MiB, 1,000 open streams", _get(record, "E_memory", "gateway", "peak_mib"), 150)
    router = record.get("F_router")
    if isinstance(router, router_bench.Report):
        for layer, what in (("selector", "the selector alone"), ("Pick", "the whole Pick servicer call")):
            cpu = [c.cpu_us for c in router.choices if (c.accounts, c.layer, c.scenario) == (1000, layer, "plain")]
            at_most(f"F account choice at 1,000 accounts, {what}: CPU µs", cpu[0] if cpu else float("nan"), 50)
    for measured in record.get("F_auth", []):
        if "keys, random" in measured.scenario:
            at_most(f"F Authorize ({measured.scenario}) CPU µs", measured.cpu_us, 50)
    return checks


def print_targets(checks: list[tuple[str, float, str, bool]]) -> None:
    print("\nissue 20's targets")
    for what, value, bound, met in checks:
        print(f"  {what:72} {value:9.2f} {bound:>8}  {'met' if met else 'MISSED'}")


async def http(servers: Servers, scale: float, record: dict[str, Any], sections: str = "ABCDE") -> None:
    timeout = aiohttp.ClientTimeout(total=300, sock_read=60)
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0), timeout=timeout) as session:
        bench = Bench(session, servers, scale, record)
        if "A" in sections:
            await bench.overhead()
        if "B" in sections:
            await bench.throughput()
        if "C" in sections:
            await bench.streaming()
        if "D" in sections:
            await bench.conversion()
        if "E" in sections:
            await bench.memory()
    record["rss_after_run_mib"] = {e.name: rss_bytes(next(iter(e.cpu.values()))) / 2**20
                                   for e in servers.endpoints if e.cpu}
    rows = headline(record)
    record["headline"] = rows
    print_headline(rows)
    checks = targets(record)
    record["targets"] = [{"what": what, "value": value, "bound": bound, "met": met}
                         for what, value, bound, met in checks]
    print_targets(checks)
    sys.stdout.flush()


def default_json_path() -> Path:
    """`.run/bench.json` under the working directory (`.run` is the stack's own, ignored by git)."""
    return Path(".run/bench.json")


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


def new_record(scale: float) -> dict[str, Any]:
    return {"started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "scale": scale,
            "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version()}}


def decisions(record: dict[str, Any], keys: int) -> None:
    """F: the router's choice (all its pool sizes, 1,000 accounts among them) and auth's Authorize (at `keys`)."""
    print("F. cost per decision")
    conversion_bench.report()  # printed only: it returns no numbers to record
    record["F_router"] = router_bench.report()
    record["F_auth"] = auth_bench.report(many=keys)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=float, default=1.0,
                        help="multiply request counts and durations (default 1.0)")
    parser.add_argument("--sections", default="ABCDEF", help="which scenarios to run (default ABCDEF; G is A-C's "
                        "forwarder rows)")
    parser.add_argument("--json", type=Path, default=None, metavar="PATH",
                        help="write every number of the run there (default .run/bench.json when ./.run exists, "
                             "else bench.json in the working directory)")
    args = parser.parse_args()
    json_path: Path = args.json or default_json_path()
    record = new_record(args.scale)
    if "F" in args.sections:
        decisions(record, max(1000, int(100_000 * min(1.0, args.scale))))
    with tempfile.TemporaryDirectory(prefix="switchboard-bench-") as workdir, servers(Path(workdir)) as running:
        asyncio.run(http(running, args.scale, record, args.sections))
    write_json(json_path, record)
    print(f"\nall numbers written to {json_path}")


if __name__ == "__main__":
    main()
