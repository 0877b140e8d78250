"""`make soak`: the chaos topology under a moderate load for a bounded time, with faults at random.

Every `--sample-seconds` the RSS and open file descriptors of each edge, auth and router replica are read from
/proc; every `--window-seconds` the p50 latency of the complete answers is taken. The faults are the ones that
leave the replicas running (their memory is what is watched): upstream errors, cuts and stalls, a revoked key,
Redis restarted, PostgreSQL down. The load leaves out the OAuth account (see `faults.OAUTH_KINDS`). At the end
the chaos checks run over the whole load, then the summary:

- RSS: the median of the last fifth of the samples may exceed the median of the first fifth (after the
  warm-up) by at most max(`RSS_GROWTH_MB`, `RSS_GROWTH_SHARE` of it);
- file descriptors: the last fifth's highest count at most `FD_GROWTH` above the first fifth's highest;
- latency: the last full window's p50 at most `LATENCY_GROWTH` times the first's plus `LATENCY_SLACK_SECONDS`.

Exit status 1 when a bound or a check fails, 2 when PostgreSQL or Redis is missing.
"""

import argparse
import asyncio
import os
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from switchboard_stack.chaos import checks
from switchboard_stack.chaos.faults import API_KEY_KINDS, FAULTS, Fault
from switchboard_stack.chaos.load import WEIGHTS, Load, Outcome
from switchboard_stack.chaos.run import missing_servers, phase_keys
from switchboard_stack.chaos.topology import Replica, Topology

SOAK_FAULTS = ("upstream-5xx", "upstream-429", "upstream-529", "mid-stream-cut", "stall", "credential-revoked",
               "redis-restart", "postgres-down")
WARMUP_SECONDS = 30.0
RSS_GROWTH_MB = 25.0
RSS_GROWTH_SHARE = 0.15
FD_GROWTH = 8
LATENCY_GROWTH = 1.5
LATENCY_SLACK_SECONDS = 0.05


@dataclass
class Sample:
    at: float
    rss_mb: float
    fds: int


@dataclass
class Series:
    name: str
    samples: list[Sample] = field(default_factory=list)


def read_proc(pid: int) -> tuple[float, int] | None:
    """(RSS in MB, open file descriptors) of a live process, from /proc."""
    try:
        with open(f"/proc/{pid}/status") as status:
            rss_kb = next(int(line.split()[1]) for line in status if line.startswith("VmRSS:"))
        return rss_kb / 1024.0, len(os.listdir(f"/proc/{pid}/fd"))
    except (OSError, StopIteration, ValueError):
        return None


async def sample(replicas: Sequence[Replica], series: dict[str, Series], every: float, stop: asyncio.Event,
                 begun: float) -> None:
    while not stop.is_set():
        for replica in replicas:
            pid = replica.pid
            reading = read_proc(pid) if pid is not None else None
            if reading is not None:
                series.setdefault(replica.name, Series(replica.name)).samples.append(
                    Sample(time.monotonic() - begun, *reading))
        try:
            await asyncio.wait_for(stop.wait(), every)
        except TimeoutError:
            pass


async def inject(topology: Topology, every: float, stop: asyncio.Event, done: list[str], begun: float,
                 rng: random.Random) -> None:
    """A random fault of `SOAK_FAULTS` every `every` seconds (the first after one period)."""
    while True:
        try:
            await asyncio.wait_for(stop.wait(), every)
            return
        except TimeoutError:
            pass
        fault = FAULTS[rng.choice(SOAK_FAULTS)]
        done.append(f"{fault.name}@{time.monotonic() - begun:.0f}s")
        await fault.run(topology, 6.0)


def latency_windows(outcomes: Sequence[Outcome], begun_wall: float, window: float, end: float) -> list[float]:
    """p50 duration of the complete answers per full window (after the warm-up)."""
    medians: list[float] = []
    start = WARMUP_SECONDS
    while start + window <= end + 0.001:
        durations = [outcome.duration for outcome in outcomes if outcome.complete
                     and start <= outcome.started - begun_wall < start + window]
        if durations:
            medians.append(statistics.median(durations))
        start += window
    return medians


@dataclass(frozen=True)
class Bound:
    what: str
    passed: bool
    detail: str


def memory_bounds(series: dict[str, Series]) -> list[Bound]:
    bounds: list[Bound] = []
    for name in sorted(series):
        samples = [item for item in series[name].samples if item.at >= WARMUP_SECONDS]
        if len(samples) < 5:
            bounds.append(Bound(name, False, "too few samples"))
            continue
        fifth = max(1, len(samples) // 5)
        first, last = samples[:fifth], samples[-fifth:]
        rss_start = statistics.median(item.rss_mb for item in first)
        rss_end = statistics.median(item.rss_mb for item in last)
        allowed = max(RSS_GROWTH_MB, RSS_GROWTH_SHARE * rss_start)
        fds_start = max(item.fds for item in first)
        fds_end = max(item.fds for item in last)
        passed = rss_end - rss_start <= allowed and fds_end - fds_start <= FD_GROWTH
        bounds.append(Bound(name, passed, f"RSS {rss_start:6.1f} -> {rss_end:6.1f} MB ({rss_end - rss_start:+.1f}, "
                                          f"bound +{allowed:.1f}); fds {fds_start} -> {fds_end} (bound +{FD_GROWTH})"))
    return bounds


def latency_bound(medians: Sequence[float]) -> Bound:
    if len(medians) < 2:
        return Bound("latency", False, "fewer than two windows")
    allowed = medians[0] * LATENCY_GROWTH + LATENCY_SLACK_SECONDS
    shown = " ".join(f"{value * 1000:.0f}" for value in medians)
    return Bound("latency", medians[-1] <= allowed,
                 f"p50 per window (ms): {shown}; last {medians[-1] * 1000:.0f} ms, bound {allowed * 1000:.0f} ms")


async def soak(workdir: Path, minutes: float, workers: int, fault_every: float, sample_every: float,
               window: float, seed: int | None) -> bool:
    rng = random.Random(seed)
    faults: list[str] = []
    series: dict[str, Series] = {}
    async with Topology(workdir) as topology:
        print(f"soak: {minutes:g} min, {workers} workers, a fault every {fault_every:.0f} s; logs in {workdir}",
              flush=True)
        keys = await phase_keys(topology, "soak")
        load = Load(topology.base_url, keys, workers=workers, pause=0.05, label="soak", seed=seed,
                    kinds=API_KEY_KINDS, weights=tuple(WEIGHTS[kind] for kind in API_KEY_KINDS))
        stop = asyncio.Event()
        begun, begun_wall = time.monotonic(), time.time()
        tasks = [asyncio.create_task(load.run(stop)),
                 asyncio.create_task(sample(topology.replicas, series, sample_every, stop, begun)),
                 asyncio.create_task(inject(topology, fault_every, stop, faults, begun, rng))]
        await asyncio.sleep(minutes * 60.0)
        stop.set()
        await asyncio.gather(*tasks)
        elapsed = time.monotonic() - begun
        unique = list({key.key_id: key for key in keys}.values())
        rows = await checks.settled_ledger(topology, unique, load.outcomes)
        leases, per_router = await checks.in_flight(topology)
        logs = [topology.workdir / f"{replica.name}.log" for replica in topology.replicas]
        together = Fault("soak", "random faults", FAULTS["none"].run, frozenset(), loses_redis=True)
        results = [
            checks.ledger_matches(load.outcomes, rows),
            checks.tokens_match(load.outcomes, rows),
            checks.failures_free(rows),
            checks.leases_returned(leases, per_router),
            checks.clean_answers(load.outcomes, together),
            checks.no_false_not_found(load.outcomes),
            checks.retry_after(load.outcomes),
            checks.no_secrets(logs, [*topology.secrets(), *(key.secret for key in unique)]),
        ]
    medians = latency_windows(load.outcomes, begun_wall, window, elapsed)
    bounds = [*memory_bounds(series), latency_bound(medians)]
    complete = [outcome.duration for outcome in load.outcomes if outcome.complete]
    print(f"\n== soak summary: {elapsed / 60:.1f} min, {workers} workers, {len(load.outcomes)} requests "
          f"({len(complete)} complete, p50 {statistics.median(complete) * 1000 if complete else 0:.0f} ms), "
          f"{len(faults)} faults: {', '.join(faults) or 'none'}")
    print(f"  bounds: RSS growth <= max({RSS_GROWTH_MB:g} MB, {RSS_GROWTH_SHARE:.0%}), fds growth <= {FD_GROWTH}, "
          f"latency p50 last window <= {LATENCY_GROWTH:g} x first + {LATENCY_SLACK_SECONDS * 1000:.0f} ms "
          f"(first fifth vs last fifth of the samples after a {WARMUP_SECONDS:.0f} s warm-up)")
    for bound in bounds:
        print(f"  {'PASS' if bound.passed else 'FAIL'}  {bound.what:<9} {bound.detail}")
    for check in results:
        print(f"  {'PASS' if check.passed else 'FAIL'}  {check.name}: {check.detail}")
    sys.stdout.flush()
    return all(bound.passed for bound in bounds) and all(check.passed for check in results)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=float(os.environ.get("SOAK_MINUTES") or 30))
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--fault-every", type=float, default=None,
                        help="seconds between faults (default: a tenth of the run, 20 to 120 s)")
    parser.add_argument("--sample-seconds", type=float, default=5.0)
    parser.add_argument("--window-seconds", type=float, default=None,
                        help="latency window (default: a tenth of the run after the warm-up, at least 20 s)")
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--workdir", type=Path, default=None)
    args = parser.parse_args(argv)
    problems = missing_servers()
    if problems:
        print("soak needs the machine's PostgreSQL and Redis:", *problems, sep="\n  ", file=sys.stderr)
        return 2
    total = args.minutes * 60.0
    fault_every = args.fault_every or min(120.0, max(20.0, total / 10))
    window = args.window_seconds or max(20.0, (total - WARMUP_SECONDS) / 10)
    workdir = (args.workdir or Path(tempfile.mkdtemp(prefix="switchboard-soak-"))).resolve()
    passed = asyncio.run(soak(workdir, args.minutes, args.workers, fault_every, args.sample_seconds, window,
                              args.seed))
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main())
