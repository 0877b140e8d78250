"""What one router choice costs, in-process, and what a gRPC round trip to the router costs here.

Two measurements, printed by `make bench` before the HTTP scenarios and runnable alone
(`python -m switchboard_stack.router_bench`):

1. **One choice, no network**, with 10, 100 and 1,000 accounts spread over several platforms, priorities,
   weights and groups; some accounts have a concurrency limit (some of those full), holds and usage windows
   in a `MemoryState`, and sessions bound. Each scenario is timed for `Selector.pick` alone (plus `explain`
   when it finds nothing, as the servicer calls it) and for the whole `RouterServicer.Pick` coroutine (proto
   in, state reads, session lookup, lease taken, proto out):
   - `plain`: a Claude client's request, every platform allowed, the Anthropic ones preferred;
   - `sticky`: the same with a session already bound to an account (it stays there);
   - `none free`: a model every candidate is held, out of window or full for: the 503 path, `explain` included.
   Leases are returned every 32 picks, as with 32 requests in flight. `cpu µs` is process CPU time per
   choice over the run; p50/p99 are per-call wall times (this machine is shared: read the ratios).
2. **A grpc.aio round trip**: the real servicer with one account on 127.0.0.1, sequential `Pick`s from a
   client in the same process (the `cpu µs` column is client and server together), unary and over one open
   `PickBatches` through the edge's own `Picker` (what the edge uses), next to the same `Pick` called
   in-process, so their difference is what gRPC itself costs.

Numbers are printed, never asserted.
"""

import argparse
import asyncio
import cProfile
import pstats
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any, cast

import grpc

from switchboard.router.v1 import router_pb2, router_pb2_grpc
from switchboard_edge.picks import Picker
from switchboard_router.accounts import Account
from switchboard_router.leases import LeaseTable
from switchboard_router.pool import AccountPool, PoolSnapshot
from switchboard_router.selection import Candidate, Live, PickQuery, Refusal, Selector, Unavailable
from switchboard_router.server import RouterServicer
from switchboard_router.state import Hold, HoldKind, MemoryState, Window

SIZES = (10, 100, 1000)
BATCH = 32  # picks between lease returns: as many requests in flight
HOLDER = "edge-bench:8080"
KEY_ID = "bench-key"
GROUPS = ("team-a",)
# A Claude client with every platform allowed: natives first (`preferred` of them), the rest via a translator.
PLATFORMS = ("claude-official", "claude-console", "claude-ccr", "bedrock",
             "openai", "azure-openai", "gemini", "openai-responses")
PREFERRED = 4
SERVED_MODEL = "claude-sonnet-4-20250514"
HELD_MODEL = "claude-opus-4-1"  # every candidate is held, out of window or full for this one
STICKY_SESSIONS = 64
OTHER_SESSIONS = 2000  # bound conversations the scenarios never ask for: a populated session table

# Pool make-up, by account index: one platform in ten, in this proportion.
_PLATFORM_CYCLE = ("claude-console", "claude-console", "claude-console", "claude-console", "claude-official",
                   "claude-official", "bedrock", "openai", "openai", "gemini")


@dataclass(frozen=True)
class Choice:
    """One scenario at one pool size and layer: per-choice CPU and wall percentiles, in microseconds."""

    scenario: str
    accounts: int
    layer: str  # "selector" or "Pick"
    calls: int
    cpu_us: float
    p50_us: float
    p99_us: float
    outcome: str  # "ok", "ok, bound account", "no account" (the 503 path), or what went wrong


@dataclass(frozen=True)
class RoundTrip:
    calls: int
    p50_us: float
    p99_us: float
    cpu_us: float  # client and server together (same process)
    in_process_p50_us: float  # the same servicer's Pick without gRPC
    # The same picks over one PickBatches stream through the edge's own `Picker`, as the edge sends them.
    stream_p50_us: float = 0.0
    stream_p99_us: float = 0.0
    stream_cpu_us: float = 0.0


@dataclass(frozen=True)
class Report:
    choices: list[Choice]
    round_trip: RoundTrip


def build_accounts(count: int) -> list[Account]:
    """`count` accounts over five platforms, three priorities, weights 1-3, two groups, some limited,
    a few disabled. Deterministic: account i is the same whatever the count."""
    accounts = []
    for i in range(count):
        platform = _PLATFORM_CYCLE[i % len(_PLATFORM_CYCLE)]
        models: tuple[str, ...] = ("*",)
        mapping: dict[str, str] = {}
        if platform in ("openai", "gemini"):
            models = ("gpt-*", "o*") if platform == "openai" else ("gemini-*",)
        elif platform == "bedrock":
            models = ("claude-*",)
            mapping = {SERVED_MODEL: "us.anthropic.claude-sonnet-4-20250514-v1:0", "claude-opus-*": "opus"}
        elif i % 5 == 0:
            models = ("claude-sonnet-4*", "claude-opus-4*", "claude-3-5-haiku-*")
        groups = frozenset({"team-a"}) if i % 8 == 3 else frozenset({"team-b"}) if i % 8 == 6 else frozenset()
        accounts.append(Account(
            name=f"acct-{i:04d}", platform=platform, base_url=f"http://127.0.0.1:8090/{i}/",
            api_key=f"sk-bench-{i}", priority=(10, 50, 50, 90)[i % 4], weight=1 + i % 3,
            max_concurrency=2 if i % 6 == 5 else 0, enabled=i % 50 != 49, models=models, model_mapping=mapping,
            groups=groups))
    return accounts


async def build_router(count: int) -> RouterServicer:
    """A servicer over `count` accounts with their live state: holds, windows, full slots, bound sessions.

    Every account is unavailable for `HELD_MODEL` (a whole-account throttle, a spent whole-account window, or
    an opus-family hold), so that request takes the 503 path at every size; `SERVED_MODEL` finds most free."""
    state = MemoryState()
    leases = LeaseTable(ttl_seconds=600, holder_ttl_seconds=3600)
    accounts = build_accounts(count)
    servicer = RouterServicer(AccountPool(accounts), leases, Selector(), state)
    now = time.time()
    for i, account in enumerate(accounts):
        if i % 7 == 0:
            await state.put_hold(account.id, "", Hold(HoldKind.THROTTLED, now + 3600 + i, "bench: 429"))
        elif i % 7 == 1:
            await state.put_window(account.id, "", Window("5h", 0.99, now + 3600))
        else:
            await state.put_hold(account.id, "opus", Hold(HoldKind.WINDOW, now + 7200 + i, "bench: 7d_opus spent"))
        if i % 3 == 0:
            await state.put_window(account.id, "", Window("7d", 0.4, now + 86400))
        elif i % 3 == 1:
            await state.put_window(account.id, "sonnet", Window("7d_sonnet", 0.6, now + 86400))
        if account.max_concurrency and i % 12 == 5:  # half the limited accounts are full
            for slot in range(account.max_concurrency):
                await state.acquire(account.id, f"other-{i}-{slot}", account.max_concurrency, now + 3600)
    for n in range(OTHER_SESSIONS):
        await state.bind(f"other-key:conv-{n}", accounts[n % count].id, 3600)
    return servicer


def pick_request(scenario: str, n: int = 0) -> router_pb2.PickRequest:
    return router_pb2.PickRequest(
        platforms=PLATFORMS, preferred=PREFERRED, model=HELD_MODEL if scenario == "none free" else SERVED_MODEL,
        key_id=KEY_ID, groups=GROUPS, holder=HOLDER, request_id=f"req-{n}",
        session_hint=f"conv-{n % STICKY_SESSIONS}" if scenario == "sticky" else "")


def query_of(request: router_pb2.PickRequest) -> PickQuery:
    """The PickQuery the servicer makes of `request` (as `server._query` does)."""
    return PickQuery(platforms=tuple(request.platforms), model=request.model,
                     preferred=frozenset(request.platforms[:request.preferred]), groups=tuple(request.groups),
                     session_hint=request.session_hint)


def _context() -> grpc.aio.ServicerContext:
    # The servicer touches its context only to refuse a malformed request, which these never are.
    return cast(grpc.aio.ServicerContext, None)


async def release(servicer: RouterServicer, responses: Sequence[router_pb2.PickResponse]) -> None:
    """Returns the leases (and their concurrency slots) the way the edge does, through `Release`."""
    for response in responses:
        if response.lease_id:
            await servicer.Release(router_pb2.ReleaseRequest(lease_id=response.lease_id), _context())


def _percentile(values: list[float], q: float) -> float:
    data = sorted(values)
    return data[min(len(data) - 1, int(q * len(data)))] if data else float("nan")


async def _timed(call: Callable[[int], Any], calls: int, budget: float,
                 settle: Callable[[list[Any]], Awaitable[None] | None] | None = None
                 ) -> tuple[list[float], float, list[Any]]:
    """Runs `call(n)` (awaited when it returns an awaitable) up to `calls` times or until `budget` seconds
    have passed (at least one batch), `settle` after each batch of `BATCH`, after one untimed batch (caches
    filled). Returns per-call wall seconds, CPU seconds per call, and the last batch's (n, result) pairs."""
    walls: list[float] = []
    cpu = 0.0
    results: list[Any] = []
    warm = []
    for n in range(min(BATCH, calls)):
        result = call(n)
        warm.append(await result if isinstance(result, Awaitable) else result)
    if settle is not None:
        settled = settle(warm)
        if settled is not None:
            await settled
    began = time.perf_counter()
    n = 0
    while n < calls and (not walls or time.perf_counter() - began < budget):
        results = []
        cpu_began = time.process_time()
        for _ in range(min(BATCH, calls - n)):
            start = time.perf_counter()
            result = call(n)
            if isinstance(result, Awaitable):
                result = await result
            walls.append(time.perf_counter() - start)
            results.append((n, result))
            n += 1
        cpu += time.process_time() - cpu_began
        if settle is not None:
            settled = settle([result for _, result in results])
            if settled is not None:
                await settled
    return walls, cpu / len(walls), results


def _choice(scenario: str, accounts: int, layer: str, timing: tuple[list[float], float, list[Any]],
            outcome: str) -> Choice:
    walls, cpu, _ = timing
    return Choice(scenario, accounts, layer, len(walls), cpu * 1e6, _percentile(walls, 0.5) * 1e6,
                  _percentile(walls, 0.99) * 1e6, outcome)


async def _bind_sticky(servicer: RouterServicer) -> dict[str, str]:
    """Starts the sticky conversations with one Pick each (the router binds them); returns hint → account."""
    bound = {}
    for n in range(STICKY_SESSIONS):
        request = pick_request("sticky", n)
        response = await servicer.Pick(request, _context())
        bound[request.session_hint] = response.account.id
        await release(servicer, [response])
    return bound


async def measure_choices(sizes: Sequence[int] = SIZES, calls: int = 2000, budget: float = 1.0) -> list[Choice]:
    choices: list[Choice] = []
    for size in sizes:
        servicer = await build_router(size)
        bound = await _bind_sticky(servicer)
        snapshot = servicer.pool.snapshot
        live = servicer._live()  # what a Pick reads: holds, windows, slots in use (not changed by `pick`)

        def settle(responses: list[router_pb2.PickResponse], servicer: RouterServicer = servicer) -> Awaitable[None]:
            return release(servicer, responses)

        for scenario in ("plain", "sticky", "none free"):
            requests = [pick_request(scenario, n) for n in range(STICKY_SESSIONS)]
            queries = [query_of(r) for r in requests]
            binding = [bound[r.session_hint] if scenario == "sticky" else None for r in requests]
            selector = Selector()

            def choose(n: int, selector: Selector = selector, queries: list[PickQuery] = queries,
                       binding: list[str | None] = binding, snapshot: PoolSnapshot = snapshot,
                       live: Live = live) -> object:
                query = queries[n % STICKY_SESSIONS]
                live = replace(live)  # a fresh Live per choice, as each Pick has (no verdicts kept from the last)
                chosen = selector.pick(snapshot, query, live, binding[n % STICKY_SESSIONS])
                return chosen if chosen is not None else selector.explain(snapshot, query, live)

            timing = await _timed(choose, calls, budget)
            choices.append(_choice(scenario, size, "selector", timing, _selector_outcome(timing[2], binding)))

            def call(n: int, requests: list[router_pb2.PickRequest] = requests,
                     servicer: RouterServicer = servicer) -> Awaitable[router_pb2.PickResponse]:
                return servicer.Pick(requests[n % STICKY_SESSIONS], _context())

            timing = await _timed(call, calls, budget, settle)
            choices.append(_choice(scenario, size, "Pick", timing, _pick_outcome(
                timing[2], bound if scenario == "sticky" else None)))
    return choices


def _selector_outcome(picked: list[tuple[int, Candidate | Refusal]], binding: list[str | None]) -> str:
    """What the last batch of choices did, as the table says it."""
    if all(isinstance(p, Refusal) and p.reason is Unavailable.NO_ACCOUNT for _, p in picked):
        return "no account"
    if not all(isinstance(p, Candidate) for _, p in picked):
        return "unexpected: " + ", ".join(sorted({type(p).__name__ for _, p in picked}))
    if any(binding):
        kept = all(isinstance(p, Candidate) and p.account.id == binding[n % STICKY_SESSIONS] for n, p in picked)
        return "ok, bound account" if kept else "unexpected: moved"
    return "ok"


def _pick_outcome(responses: list[tuple[int, router_pb2.PickResponse]], bound: dict[str, str] | None) -> str:
    """What the last batch of Picks did: every one refused as 503 (no account), or served, a sticky one by the
    account its conversation is bound to."""
    statuses = {r.status for _, r in responses}
    if statuses == {router_pb2.PICK_STATUS_NO_ACCOUNT}:
        return "no account"
    if statuses != {router_pb2.PICK_STATUS_OK}:
        return "unexpected: " + ", ".join(sorted(router_pb2.PickStatus.Name(s) for s in statuses))
    if bound is None:
        return "ok"
    kept = all(r.account.id == bound[f"conv-{n % STICKY_SESSIONS}"] for n, r in responses)
    return "ok, bound account" if kept else "unexpected: moved"


async def measure_round_trip(calls: int = 2000, warmup: int = 200) -> RoundTrip:
    servicer = await build_router(1)
    server = grpc.aio.server()
    servicer.register(server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    request = pick_request("plain")

    def settle(responses: list[router_pb2.PickResponse]) -> Awaitable[None]:
        return release(servicer, responses)

    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            stub = router_pb2_grpc.RouterServiceStub(channel)

            def rpc(n: int) -> Awaitable[router_pb2.PickResponse]:
                return cast(Awaitable[router_pb2.PickResponse], stub.Pick(request, timeout=5))

            await _timed(rpc, warmup, float("inf"), settle)
            walls, cpu, _ = await _timed(rpc, calls, float("inf"), settle)

            picker = Picker(stub, timeout=5, release=lambda _: None)

            def streamed(n: int) -> Awaitable[router_pb2.PickResponse]:
                return picker.pick(pick_request("plain"))

            await _timed(streamed, warmup, float("inf"), settle)
            stream_walls, stream_cpu, _ = await _timed(streamed, calls, float("inf"), settle)
            await picker.close()
    finally:
        await server.stop(None)

    def local(n: int) -> Awaitable[router_pb2.PickResponse]:
        return servicer.Pick(request, _context())

    in_process, _, _ = await _timed(local, calls, float("inf"), settle)
    return RoundTrip(len(walls), _percentile(walls, 0.5) * 1e6, _percentile(walls, 0.99) * 1e6, cpu * 1e6,
                     _percentile(in_process, 0.5) * 1e6, _percentile(stream_walls, 0.5) * 1e6,
                     _percentile(stream_walls, 0.99) * 1e6, stream_cpu * 1e6)


async def measure(sizes: Sequence[int] = SIZES, calls: int = 2000, rpc_calls: int = 2000,
                  budget: float = 1.0) -> Report:
    choices = await measure_choices(sizes, calls, budget)
    return Report(choices, await measure_round_trip(rpc_calls, warmup=min(200, rpc_calls)))


def print_report(report: Report) -> None:
    print(f"{'router choice (in-process)':26} {'accounts':>8} {'layer':>8} {'calls':>6} {'cpu µs':>8} "
          f"{'p50 µs':>8} {'p99 µs':>8}  outcome")
    for c in sorted(report.choices, key=lambda c: (("plain", "sticky", "none free").index(c.scenario), c.accounts)):
        print(f"{c.scenario:26} {c.accounts:8d} {c.layer:>8} {c.calls:6d} {c.cpu_us:8.1f} {c.p50_us:8.1f} "
              f"{c.p99_us:8.1f}  {c.outcome}")
    rt = report.round_trip
    print(f"{'router Pick over gRPC':26} {'accounts':>8} {'':>8} {'calls':>6} {'cpu µs':>8} {'p50 µs':>8} "
          f"{'p99 µs':>8}")
    print(f"{'127.0.0.1, sequential':26} {1:8d} {'':>8} {rt.calls:6d} {rt.cpu_us:8.1f} {rt.p50_us:8.1f} "
          f"{rt.p99_us:8.1f}  (client+server CPU; in-process Pick p50 {rt.in_process_p50_us:.1f} µs, "
          f"so gRPC adds {rt.p50_us - rt.in_process_p50_us:.0f} µs)")
    print(f"{'127.0.0.1, PickBatches':26} {1:8d} {'':>8} {rt.calls:6d} {rt.stream_cpu_us:8.1f} {rt.stream_p50_us:8.1f} "
          f"{rt.stream_p99_us:8.1f}  (the edge's Picker on one open stream: "
          f"{rt.stream_p50_us / rt.p50_us:.0%} of a unary round trip)")
    print()


def report(sizes: Sequence[int] = SIZES, calls: int = 2000, rpc_calls: int = 2000, budget: float = 1.0) -> Report:
    """Measures and prints; returns the numbers (for `bench` to set against the gateway's added latency)."""
    measured = asyncio.run(measure(sizes, calls, rpc_calls, budget))
    print_report(measured)
    return measured


def compare(round_trip: RoundTrip, added: dict[str, float]) -> None:
    """One router round trip's p50 against the gateway's added p50 latency (seconds) per scenario."""
    print(f"router Pick on the edge's stream (sequential, p50 {round_trip.stream_p50_us / 1000:.2f} ms; unary "
          f"{round_trip.p50_us / 1000:.2f} ms) against the gateway's added latency")
    for name, seconds in added.items():
        share = round_trip.stream_p50_us / (seconds * 1e6) if seconds > 0 else float("nan")
        print(f"{name:36} added p50 {seconds * 1000:6.2f} ms: one Pick round trip is {share:4.0%} of it")


def profile(size: int = 1000, calls: int = 300, top: int = 15) -> None:
    """cProfile of the whole in-process Pick at `size` accounts, per scenario: the hot spots."""
    async def run() -> None:
        servicer = await build_router(size)
        await _bind_sticky(servicer)
        for scenario in ("plain", "sticky", "none free"):
            requests = [pick_request(scenario, n) for n in range(STICKY_SESSIONS)]
            profiler = cProfile.Profile()
            for n in range(calls):
                profiler.enable()
                response = await servicer.Pick(requests[n % STICKY_SESSIONS], _context())
                profiler.disable()
                await release(servicer, [response])
            print(f"--- {scenario}, {size} accounts, {calls} Picks: top {top} by own time")
            pstats.Stats(profiler).sort_stats("tottime").print_stats(top)

    asyncio.run(run())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=2000, help="choices per scenario and size (default 2000)")
    parser.add_argument("--budget", type=float, default=1.0,
                        help="stop a row after this many seconds, at its next batch (default 1.0)")
    parser.add_argument("--rpc-calls", type=int, default=2000, help="gRPC round trips (default 2000)")
    parser.add_argument("--profile", action="store_true", help="also print cProfile hot spots at 1,000 accounts")
    args = parser.parse_args()
    report(calls=args.calls, rpc_calls=args.rpc_calls, budget=args.budget)
    if args.profile:
        profile()


if __name__ == "__main__":
    main()
