"""The faults, by name: each injects itself into a running `Topology`, holds, and undoes itself.

Upstream faults swap an account's key in the accounts file for one the simulator answers with a fault
(`topology.FAULT_KEYS`); the routers reload the file within half a second. The simulator has no mid-stream
stall (a stream that stops sending but stays open): `stall` uses its `hang` (no first byte) instead.
"""

import asyncio
import signal
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

import grpc

from switchboard.router.v1 import router_pb2, router_pb2_grpc
from switchboard_stack.chaos.topology import REVOKED_KEY, Topology

API_KEY_KINDS = ("claude", "openai", "responses", "gemini")
# With the OAuth account: its requests go to one account alone, so one in error starves them (the baseline shows
# whether it serves across replicas, `oauth-refresh-down` whether it comes back).
OAUTH_KINDS = (*API_KEY_KINDS, "oauth")
FIRST = ("claude-console-a", "openai-a", "openai-responses-a", "gemini-a")
SECOND = ("claude-console-b", "openai-b", "openai-responses-b", "gemini-b")


@dataclass(frozen=True)
class Fault:
    name: str
    what: str
    run: Callable[[Topology, float], Awaitable[None]]
    # Accounts the fault makes unusable (sticky sessions may move off them).
    unusable: frozenset[str] = frozenset()
    # A replica is killed: its clients' connections may be reset (nothing can answer them).
    resets: bool = False
    # Redis is lost: per-key limits and session bindings may restart from nothing.
    loses_redis: bool = False
    # An edge's auth is lost: that edge counts a key's requests per minute on its own meanwhile (README,
    # Degradation), from its last ALLOW.
    loses_auth: bool = False
    # What the load sends: the OAuth account's requests only where it is the subject (see `OAUTH_KINDS`).
    kinds: tuple[str, ...] = API_KEY_KINDS


async def _swap_keys(topology: Topology, accounts: Sequence[str], key: str, hold: float) -> None:
    for name in accounts:
        topology.account(name)["api_key"] = key
    topology.write_accounts()
    try:
        await asyncio.sleep(hold)
    finally:
        for name in accounts:
            topology.account(name)["api_key"] = topology.original_key(name)
        topology.write_accounts()


def _upstream(key: str, accounts: Sequence[str]) -> Callable[[Topology, float], Awaitable[None]]:
    async def run(topology: Topology, hold: float) -> None:
        await _swap_keys(topology, accounts, key, hold)
    return run


async def clear_holds(topology: Topology, account_id: str) -> None:
    """What an operator does for an account left in error: ClearHolds (it reaches every replica)."""
    for router in topology.routers:
        if router.pid is None:
            continue
        async with grpc.aio.insecure_channel(f"127.0.0.1:{router.ready_port}") as channel:
            await router_pb2_grpc.RouterServiceStub(channel).ClearHolds(
                router_pb2.ClearHoldsRequest(account_id=account_id), timeout=5)
        return


async def _oauth_down(topology: Topology, hold: float) -> None:
    assert topology.oauth_proxy is not None
    await topology.oauth_proxy.down()
    try:
        await asyncio.sleep(hold)
    finally:
        await topology.oauth_proxy.resume()
    await clear_holds(topology, "claude-official/claude-oauth")


async def _redis_restart(topology: Topology, hold: float) -> None:
    assert topology.redis_proxy is not None
    await topology.redis_proxy.down()
    await topology.clear_redis()
    try:
        await asyncio.sleep(min(hold, 3.0))
    finally:
        await topology.redis_proxy.resume()
    await asyncio.sleep(max(0.0, hold - 3.0))


async def _postgres_down(topology: Topology, hold: float) -> None:
    assert topology.postgres_proxy is not None
    await topology.postgres_proxy.down()
    try:
        await asyncio.sleep(10.0)
    finally:
        await topology.postgres_proxy.resume()


def _kill(group: str, index: int) -> Callable[[Topology, float], Awaitable[None]]:
    async def run(topology: Topology, hold: float) -> None:
        replica = getattr(topology, group)[index]
        replica.signal(signal.SIGKILL)
        await replica.wait_exit(5)
        await asyncio.sleep(min(hold, 3.0))
        await topology.restart(replica)
    return run


async def _auth_restart_postgres_down(topology: Topology, hold: float) -> None:
    """auth-1 killed one second into a PostgreSQL outage and started again while it lasts."""

    async def kill_and_restart() -> None:
        await asyncio.sleep(1.0)
        await _kill("auths", 0)(topology, 1.0)

    await asyncio.gather(_postgres_down(topology, hold), kill_and_restart())


async def _edge_term(topology: Topology, hold: float) -> None:
    edge = topology.edges[1]
    edge.signal(signal.SIGTERM)
    await edge.wait_exit(topology.edge_drain_seconds + 15)
    await topology.restart(edge)


async def _together(topology: Topology, hold: float) -> None:
    await asyncio.gather(
        _swap_keys(topology, ["claude-console-a", "gemini-a"], "sk-chaos-fault-5xx", hold),
        _swap_keys(topology, ["openai-a", "openai-responses-b"], "sk-chaos-fault-cut", hold),
        _redis_restart(topology, hold),
        _postgres_down(topology, hold),
        _kill("routers", 1)(topology, hold),
        _kill("auths", 0)(topology, hold),
        _edge_term(topology, hold),
    )


FAULTS: dict[str, Fault] = {fault.name: fault for fault in (
    Fault("none", "no fault (baseline)", lambda topology, hold: asyncio.sleep(hold), kinds=OAUTH_KINDS),
    Fault("upstream-5xx", "80% 500s from one account per platform", _upstream("sk-chaos-fault-5xx", FIRST),
          frozenset(FIRST)),
    Fault("upstream-429", "80% 429s from one account per platform", _upstream("sk-chaos-fault-429", FIRST),
          frozenset(FIRST)),
    Fault("upstream-529", "80% overloaded (529/503) from one account per platform",
          _upstream("sk-chaos-fault-529", FIRST), frozenset(FIRST)),
    Fault("mid-stream-cut", "60% of streams cut after 4 events on one account per platform",
          _upstream("sk-chaos-fault-cut", FIRST), frozenset(FIRST)),
    Fault("stall", "40% of requests never answered (hang) on one account per platform",
          _upstream("sk-chaos-fault-stall", SECOND), frozenset(SECOND)),
    Fault("credential-revoked", "claude-console-a's key refused (401) until it is replaced",
          _upstream(REVOKED_KEY, ("claude-console-a",)), frozenset({"claude-console-a"})),
    Fault("oauth-refresh-down", "the OAuth token endpoint unreachable, then ClearHolds", _oauth_down,
          frozenset({"claude-oauth"}), kinds=OAUTH_KINDS),
    Fault("redis-restart", "Redis connections cut, its keys gone, refused for 3 s", _redis_restart,
          loses_redis=True),
    Fault("postgres-down", "PostgreSQL unreachable for 10 s", _postgres_down),
    Fault("auth-kill", "auth-1 SIGKILLed, restarted after 3 s", _kill("auths", 0), resets=False, loses_auth=True),
    Fault("auth-restart-postgres-down", "auth-1 SIGKILLed and restarted while PostgreSQL is unreachable (10 s)",
          _auth_restart_postgres_down, loses_auth=True),
    Fault("router-kill", "router-1 SIGKILLed, restarted after 3 s", _kill("routers", 0)),
    Fault("edge-kill", "edge-1 SIGKILLed with requests open, restarted after 3 s", _kill("edges", 0), resets=True),
    Fault("edge-sigterm", "edge-2 SIGTERMed with streams open (drains), restarted", _edge_term),
    Fault("together", "5xx, cuts, Redis restart, PostgreSQL down, auth-1 and router-2 killed, edge-2 SIGTERM",
          _together, frozenset({"claude-console-a", "gemini-a", "openai-a", "openai-responses-b"}),
          resets=True, loses_redis=True, loses_auth=True),
)}
