"""The bench's load generator and the arithmetic on what it measured.

One aiohttp session; a run is either a number of requests or a fixed duration, over some concurrent
clients. Every request's latency is kept, a stream's time to first byte too, and, when asked, the arrival
time of each SSE event (an event counts as arrived with the read that completed it), which is what shows
whether a relay holds events back.
"""

import asyncio
import math
import statistics
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import aiohttp


@dataclass(frozen=True)
class Target:
    """Where one scenario's requests go and how they are signed."""

    name: str
    url: str
    headers: dict[str, str]
    body: bytes


def percentile(values: Sequence[float], q: float) -> float:
    """The q-quantile (0..1) by nearest rank below; NaN for no values."""
    if not values:
        return float("nan")
    data = sorted(values)
    return data[min(len(data) - 1, int(q * len(data)))]


def ratio(numerator: float, denominator: float) -> float:
    """NaN (null in the JSON, n/a printed) over a denominator of zero or less, or over NaN: e.g. a forwarder that
    added nothing measurable (a small run's p99 is noisy enough for that)."""
    if not (math.isfinite(numerator) and math.isfinite(denominator)) or denominator <= 0:
        return float("nan")
    return numerator / denominator


@dataclass
class Result:
    latencies: list[float] = field(default_factory=list)
    first_bytes: list[float] = field(default_factory=list)
    # Per stream (only when recorded): each SSE event's arrival, seconds after the request was sent.
    events: list[list[float]] = field(default_factory=list)
    seconds: float = 0.0
    errors: int = 0
    # What went wrong, by kind ("status 502", "ServerDisconnectedError"): the first lines of a diagnosis.
    error_kinds: dict[str, int] = field(default_factory=dict)

    def error(self, kind: str) -> None:
        self.errors += 1
        self.error_kinds[kind] = self.error_kinds.get(kind, 0) + 1

    def add(self, other: "Result") -> None:
        """Takes in another run of the same scenario (a round of it): its requests, time and errors."""
        self.latencies += other.latencies
        self.first_bytes += other.first_bytes
        self.events += other.events
        self.seconds += other.seconds
        self.errors += other.errors
        for kind, count in other.error_kinds.items():
            self.error_kinds[kind] = self.error_kinds.get(kind, 0) + count

    @property
    def requests(self) -> int:
        return len(self.latencies)

    @property
    def throughput(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0

    def p(self, q: float) -> float:
        return percentile(self.latencies, q)

    def ttfb(self, q: float) -> float:
        return percentile(self.first_bytes, q)

    def events_per_stream(self) -> float:
        return statistics.median(len(times) for times in self.events) if self.events else float("nan")

    def summary(self) -> dict[str, Any]:
        """The JSON numbers: counts, req/s, latency (and stream first byte) p50/p99 in ms."""
        numbers: dict[str, Any] = {"requests": self.requests, "errors": self.errors, "seconds": self.seconds,
                                   "req_per_s": self.throughput, "p50_ms": self.p(0.5) * 1000,
                                   "p99_ms": self.p(0.99) * 1000}
        if self.error_kinds:
            numbers["error_kinds"] = self.error_kinds
        if self.first_bytes:
            numbers.update(ttfb_p50_ms=self.ttfb(0.5) * 1000, ttfb_p99_ms=self.ttfb(0.99) * 1000)
        if self.events:
            numbers["events_per_stream"] = self.events_per_stream()
        return numbers


async def _one(session: aiohttp.ClientSession, target: Target, stream: bool, record_events: bool,
               result: Result) -> None:
    start = time.perf_counter()
    try:
        async with session.post(target.url, data=target.body, headers=target.headers) as response:
            if stream:
                first: float | None = None
                arrivals: list[float] = []
                async for chunk in response.content.iter_any():
                    now = time.perf_counter() - start
                    if first is None:
                        first = now
                    if record_events:
                        # "\n\n" ends an SSE event; one never straddles two counts as each event is whole
                        # only once its terminator arrived.
                        arrivals.extend([now] * chunk.count(b"\n\n"))
                result.first_bytes.append(first or 0.0)
                if record_events:
                    result.events.append(arrivals)
            else:
                await response.read()
            if response.status != 200:
                result.error(f"status {response.status}")
                return
    except (TimeoutError, aiohttp.ClientError) as exc:
        result.error(type(exc).__name__)
        return
    result.latencies.append(time.perf_counter() - start)


async def run(session: aiohttp.ClientSession, target: Target, concurrency: int, *, requests: int | None = None,
              duration: float | None = None, stream: bool = False, record_events: bool = False) -> Result:
    """`requests` in all, or as many as fit in `duration` seconds (each client finishes its last one)."""
    assert (requests is None) != (duration is None), "a run has a request count or a duration"
    result = Result()
    remaining = requests or 0
    began = time.perf_counter()
    deadline = began + (duration or 0.0)

    async def client() -> None:
        nonlocal remaining
        while True:
            if requests is not None:
                if remaining <= 0:
                    return
                remaining -= 1
            elif time.perf_counter() >= deadline:
                return
            await _one(session, target, stream, record_events, result)

    await asyncio.gather(*(client() for _ in range(concurrency)))
    result.seconds = time.perf_counter() - began
    return result


def gaps(arrivals: Sequence[float]) -> list[float]:
    """The time between each event and the one before it (seconds)."""
    return [after - before for before, after in zip(arrivals, arrivals[1:], strict=False)]


def bursts(arrivals: Sequence[float], within: float) -> int:
    """Events that arrived less than `within` seconds after the one before (together with it). Of a stream the
    source paces, a relay that holds events back and sends them on together shows more of these than the
    stream read straight, and longer gaps before them."""
    return sum(1 for gap in gaps(arrivals) if gap < within)
