"""Redis that auth (limits) and the router (shared state) depend on: a client that fails fast, and one
record of whether it can be reached now.

- `fast_client`: short socket and connect timeouts and one immediate retry (a pooled connection Redis closed
  is replaced at once), so a stalled or gone Redis costs a request about a second, not the client's default
  ten retries with backoff.
- `RedisOutage`: told of a failure by the service's fallback wrapper, it marks Redis down, logs one warning
  for the whole outage, sets the service's degraded gauge, and probes Redis every `probe_interval` seconds
  until it answers; then it logs the recovery, clears the gauge and calls `on_recovery`.

`UNAVAILABLE_POLICIES`: what a service does while Redis is down — "local" (per-replica state in memory) or
"refuse" (requests that need Redis are refused).
"""

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Protocol

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

LOCAL = "local"
REFUSE = "refuse"
UNAVAILABLE_POLICIES = (LOCAL, REFUSE)


def fast_client(url: str, timeout_seconds: float = 0.5) -> aioredis.Redis:
    """A client on `url` whose commands give up after `timeout_seconds` (plus one immediate retry)."""
    return aioredis.Redis.from_url(url, socket_timeout=timeout_seconds, socket_connect_timeout=timeout_seconds,
                                   retry=Retry(NoBackoff(), 1))


def checked_policy(policy: str, variable: str) -> str:
    """The policy, or ValueError naming the variable that set it."""
    if policy not in UNAVAILABLE_POLICIES:
        raise ValueError(f"{variable}={policy!r}: expected one of {', '.join(UNAVAILABLE_POLICIES)}")
    return policy


class Gauge(Protocol):
    """What `RedisOutage` needs of a gauge: prometheus_client's Gauge (or a child of one) fits."""

    def set(self, value: float) -> None: ...


class RedisOutage:
    """Whether Redis is down now, as the last failed call or probe found."""

    def __init__(self, probe: Callable[[], Awaitable[object]], *, what: str, policy: str, log: logging.Logger,
                 degraded: Gauge, on_recovery: Callable[[], Awaitable[None]] | None = None,
                 probe_interval: float = 1.0) -> None:
        self._probe = probe
        self._what = what
        self._policy = policy
        self._log = log
        self._degraded = degraded
        self._on_recovery = on_recovery
        self._interval = probe_interval
        self._prober: asyncio.Task[None] | None = None
        self.down = False
        self.down_since = 0.0  # time.monotonic() of the failure that started the outage
        degraded.set(0)

    def failed(self, exc: BaseException) -> None:
        """A call to Redis failed: the outage starts (if it had not) and probing begins."""
        if self.down:
            return
        self.down = True
        self.down_since = time.monotonic()
        self._degraded.set(1)
        then = "per-replica state in memory" if self._policy == LOCAL else "refusing requests that need it"
        self._log.warning("redis unreachable for %s, %s until it answers again: %s", self._what, then, exc)
        self._prober = asyncio.get_running_loop().create_task(self._probe_until_up(), name="redis-probe")

    async def _probe_until_up(self) -> None:
        while True:
            await asyncio.sleep(self._interval)
            try:
                await self._probe()
            except Exception:  # any failure means still down; the next probe tells more
                continue
            break
        if self._on_recovery is not None:
            try:
                await self._on_recovery()
            except Exception as exc:  # Redis went again meanwhile: probe on
                self._log.warning("redis for %s answered, then failed again: %s", self._what, exc)
                self._prober = asyncio.get_running_loop().create_task(self._probe_until_up(), name="redis-probe")
                return
        self.down = False
        self._degraded.set(0)
        self._log.warning("redis reachable again for %s after %.1f s: shared state in use", self._what,
                          time.monotonic() - self.down_since)

    async def close(self) -> None:
        prober, self._prober = self._prober, None
        if prober is not None and not prober.done():
            prober.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await prober
