"""What authorizing one request costs auth, in-process: key lookup (cache warm), policy, limit admission.

Printed by `make bench` before the HTTP scenarios, and runnable alone (`python -m switchboard_stack.auth_bench`).
Each scenario calls the real `AuthServicer.Authorize` coroutine (proto in, proto out) on a SQLite store whose
key is already cached, so the store is not read per request (as in production):

- `plain`: a key with allow lists and no limits (the edge may reuse the answer; this is the case it does not);
- `policies`: deny lists, a client restriction and an IP allowlist on top;
- `limited (memory)`: requests and tokens per minute, concurrency and budgets, admitted in memory — each
  admission's concurrency handle is returned too (`ReleaseAdmissions`, counted in the time), as the edge does
  when the request ends;
- `limited (redis)`: the same against Redis (one Lua script per admission), when Redis answers at
  `SWITCHBOARD_TEST_REDIS_URL` (default redis://127.0.0.1:6379/0); skipped otherwise.

Then the same `plain` call among 100,000 keys (`measure_many`; written to the store in one bulk insert), a key
drawn at random for every call: with the service's default key cache (10,000 entries, 2 s), where most calls
read the store, and with the drawn keys all cached.

`cpu µs` is process CPU time per call over the run; p50/p99 are per-call wall times. Numbers are printed, never
asserted; this machine is shared, read the ratios.
"""

import argparse
import asyncio
import os
import random
import sqlite3
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import grpc
import redis.asyncio as aioredis
from redis.exceptions import RedisError

from switchboard.auth.v1 import auth_pb2
from switchboard_auth.keys import KeyHasher, KeyLimits, KeyPolicy, create_key, generate_key, new_key_id, visible_prefix
from switchboard_auth.limits import Limiter, MemoryLimiter, RedisLimiter
from switchboard_auth.service import AuthServicer
from switchboard_auth.settings import AuthSettings
from switchboard_auth.sqlite_store import SqliteKeyStore, SqliteLedger

REDIS_URL = os.environ.get("SWITCHBOARD_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
LIMITS = KeyLimits(requests_per_minute=10_000_000, tokens_per_minute=10_000_000, concurrency=1_000_000,
                   daily_budget_micro_usd=10**12, monthly_budget_micro_usd=10**13, total_budget_micro_usd=10**14)


@dataclass(frozen=True)
class Measured:
    scenario: str
    calls: int
    cpu_us: float
    p50_us: float
    p99_us: float
    allowed: bool


def _context() -> grpc.aio.ServicerContext:
    """Authorize only touches its context to abort on a store failure, which a warm cache never has."""
    return cast(grpc.aio.ServicerContext, None)


async def _redis_reachable() -> bool:
    client = aioredis.Redis.from_url(REDIS_URL, socket_connect_timeout=1.0)
    try:
        await client.ping()
        return True
    except (RedisError, OSError):
        return False
    finally:
        await client.aclose()


async def _measure(name: str, call: Callable[[], Awaitable[auth_pb2.AuthorizeResponse]], calls: int,
                   after: Callable[[auth_pb2.AuthorizeResponse], Awaitable[None]] | None = None,
                   warm: int = 200) -> Measured:
    for _ in range(min(warm, calls)):
        response = await call()
        if after is not None:
            await after(response)
    walls: list[float] = []
    cpu = time.process_time()
    allowed = True
    for _ in range(calls):
        started = time.perf_counter()
        response = await call()
        walls.append(time.perf_counter() - started)
        allowed = allowed and response.decision == auth_pb2.DECISION_ALLOW
        if after is not None:
            await after(response)
    cpu = time.process_time() - cpu
    walls.sort()
    return Measured(name, calls, cpu / calls * 1e6, walls[len(walls) // 2] * 1e6,
                    walls[min(len(walls) - 1, int(len(walls) * 0.99))] * 1e6, allowed)


async def measure(calls: int = 5000) -> list[Measured]:
    results: list[Measured] = []
    with tempfile.TemporaryDirectory(prefix="switchboard-auth-bench-") as workdir:
        db = str(Path(workdir) / "auth.db")
        keys, ledger = await SqliteKeyStore.open(db), await SqliteLedger.open(db)
        hasher = KeyHasher("bench-pepper")
        plain, _ = await create_key(keys, "plain", pepper="bench-pepper", platforms=["openai", "claude-console"],
                                    models=["gpt-*", "claude-*"])
        policed, _ = await create_key(keys, "policies", pepper="bench-pepper", models=["gpt-*"],
                                      policy=KeyPolicy(denied_models=("gpt-4o-audio*",),
                                                       allowed_clients=("codex-cli",),
                                                       allowed_ips=("10.0.0.0/8", "192.168.0.0/16")))
        limited, _ = await create_key(keys, "limited", pepper="bench-pepper", limits=LIMITS)
        client = auth_pb2.ClientMetadata(remote_addr="10.1.2.3", client_app="codex-cli", client_format="responses")
        limiters: list[tuple[str, Limiter]] = [("memory", MemoryLimiter())]
        if await _redis_reachable():
            limiters.append(("redis", RedisLimiter(REDIS_URL, f"bench-{uuid.uuid4().hex[:8]}")))
        try:
            for label, limiter in limiters:
                servicer = AuthServicer(keys, ledger, hasher=hasher, cache_ttl_seconds=3600, cache_max_entries=100,
                                        limiter=limiter)

                def authorize(key: str, servicer: AuthServicer = servicer
                              ) -> Callable[[], Awaitable[auth_pb2.AuthorizeResponse]]:
                    request = auth_pb2.AuthorizeRequest(credential=key, platforms=["openai"], model="gpt-4o-mini",
                                                        client=client)
                    return lambda: servicer.Authorize(request, _context())

                async def release(response: auth_pb2.AuthorizeResponse, servicer: AuthServicer = servicer) -> None:
                    if response.admission_id:
                        await servicer.ReleaseAdmissions(auth_pb2.ReleaseAdmissionsRequest(admissions=[
                            auth_pb2.ReleaseAdmissionsRequest.Admission(key_id=response.identity.key_id,
                                                                        admission_id=response.admission_id)]),
                            _context())

                if label == "memory":
                    results.append(await _measure("plain", authorize(plain), calls))
                    results.append(await _measure("policies", authorize(policed), calls))
                results.append(await _measure(f"limited ({label})", authorize(limited), calls, release))
        finally:
            for _, limiter in limiters:
                await _cleanup(limiter)
            await keys.close()
            await ledger.close()
    return results


def bulk_keys(db: str, template_name: str, count: int, pepper: str) -> list[str]:
    """`count` more keys like the stored key `template_name` (same policy, fresh id, name and secret), written in
    one transaction; returns their secrets."""
    hasher = KeyHasher(pepper)
    secrets = [generate_key() for _ in range(count)]
    with sqlite3.connect(db) as conn:
        conn.row_factory = sqlite3.Row
        template = dict(conn.execute("SELECT * FROM api_keys WHERE name = ?", (template_name,)).fetchone())
        columns = ", ".join(template)
        values = ", ".join(f":{column}" for column in template)
        conn.executemany(f"INSERT INTO api_keys ({columns}) VALUES ({values})", (
            {**template, "key_id": new_key_id(), "name": f"bulk-{n:06d}", "key_hash": hasher(secret),
             "key_prefix": visible_prefix(secret)} for n, secret in enumerate(secrets)))
    return secrets


async def measure_many(count: int = 100_000, calls: int = 5000, cached: int = 5000) -> list[Measured]:
    """Authorize among `count` keys, a random one per call: with the default cache, then with `cached` keys
    (the ones drawn from) already in it."""
    defaults = AuthSettings()
    with tempfile.TemporaryDirectory(prefix="switchboard-auth-bench-") as workdir:
        db = str(Path(workdir) / "auth.db")
        keys, ledger = await SqliteKeyStore.open(db), await SqliteLedger.open(db)
        try:
            await create_key(keys, "template", pepper="bench-pepper", platforms=["openai", "claude-console"],
                             models=["gpt-*", "claude-*"])
            secrets = bulk_keys(db, "template", count, "bench-pepper")
            client = auth_pb2.ClientMetadata(remote_addr="10.1.2.3", client_app="codex-cli")
            picker = random.Random(20)

            def servicer(ttl: float = defaults.cache_ttl_seconds) -> AuthServicer:
                return AuthServicer(keys, ledger, hasher=KeyHasher("bench-pepper"), cache_ttl_seconds=ttl,
                                    cache_max_entries=defaults.cache_max_entries)

            def random_call(service: AuthServicer, among: list[str]
                            ) -> Callable[[], Awaitable[auth_pb2.AuthorizeResponse]]:
                return lambda: service.Authorize(auth_pb2.AuthorizeRequest(
                    credential=picker.choice(among), platforms=["openai"], model="gpt-4o-mini", client=client),
                    _context())

            label = f"{count // 1000}k keys"
            results = [await _measure(f"{label}, random, default cache", random_call(servicer(), secrets), calls)]
            drawn = picker.sample(secrets, min(cached, count))
            warm_service = servicer(ttl=3600)  # cached all along the run, however slow the warm-up
            for secret in drawn:
                await random_call(warm_service, [secret])()
            results.append(await _measure(f"{label}, random, cached", random_call(warm_service, drawn), calls))
        finally:
            await keys.close()
            await ledger.close()
    return results


async def _cleanup(limiter: Any) -> None:
    if isinstance(limiter, RedisLimiter):
        client = aioredis.Redis.from_url(REDIS_URL)
        keys = [key async for key in client.scan_iter(match=f"{limiter.namespace}:*")]
        if keys:
            await client.delete(*keys)
        await client.aclose()
    await limiter.close()


def print_report(results: list[Measured]) -> None:
    print(f"{'auth Authorize (in-process)':34} {'calls':>6} {'cpu µs':>8} {'p50 µs':>8} {'p99 µs':>8}  outcome")
    for m in results:
        print(f"{m.scenario:34} {m.calls:6d} {m.cpu_us:8.1f} {m.p50_us:8.1f} {m.p99_us:8.1f}  "
              f"{'allowed' if m.allowed else 'REFUSED'}")
    print()


def report(calls: int = 5000, many: int = 100_000) -> list[Measured]:
    """The scenarios above, then (with `many` > 0) Authorize among `many` keys."""
    results = asyncio.run(measure(calls))
    if many > 0:
        results += asyncio.run(measure_many(many, calls))
    print_report(results)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=5000, help="calls per scenario (default 5000)")
    parser.add_argument("--keys", type=int, default=100_000, help="keys of the many-keys scenarios (0: skip them)")
    args = parser.parse_args()
    report(args.calls, args.keys)


if __name__ == "__main__":
    main()
