"""The multi-replica local topology: simulator, two auth, two router and two edge replicas, a balancer in front.

Auth and router replicas share one PostgreSQL schema and one Redis namespace of their own, each reached through
a `FaultProxy` (so PostgreSQL and Redis can be cut or refused without touching the machine's servers); the
edges' Anthropic OAuth token endpoint goes through a third proxy. Edge N talks to auth N and router N, and to
the other set's while those cannot be reached. Accounts
live in one file both routers read; a fault rewrites an account's key there (`set_account_key`).
"""

import asyncio
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import redis.asyncio as aioredis
import yaml

from switchboard_stack.chaos.balancer import Balancer
from switchboard_stack.faultproxy import FaultProxy
from switchboard_stack.launcher import _die_with_this_thread  # the launcher's PR_SET_PDEATHSIG hook
from switchboard_stack.ports import free_port

POSTGRES_URL = os.environ.get("SWITCHBOARD_CHAOS_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
REDIS_URL = os.environ.get("SWITCHBOARD_CHAOS_REDIS_URL", "redis://127.0.0.1:6379/0")

# Valid upstream keys of the accounts, and keys the simulator answers with a fault (they are valid keys too).
CLAUDE_MODEL, OAUTH_MODEL = "claude-sonnet-4-20250514", "claude-opus-4-20250514"
OPENAI_MODEL, RESPONSES_MODEL, GEMINI_MODEL = "gpt-4o-mini", "gpt-5", "gemini-2.5-flash"
FAULT_KEYS: dict[str, str] = {
    "sk-chaos-fault-5xx": "500@0.8",
    "sk-chaos-fault-429": "429:1@0.8",
    "sk-chaos-fault-529": "overloaded@0.8",
    "sk-chaos-fault-cut": "disconnect:4@0.6",
    "sk-chaos-fault-stall": "hang@0.4",
}
REVOKED_KEY = "sk-chaos-revoked"
OAUTH_REFRESH_TOKEN = "chaos-refresh-token-1"


def _accounts(simulator: str, tag: str) -> list[dict[str, Any]]:
    """Two accounts per API-key platform (so a request can fail over) and one Claude OAuth account."""
    rows: list[dict[str, Any]] = []
    for platform, models in (("claude-console", ["claude-sonnet-*"]), ("openai", ["gpt-4o*"]),
                             ("openai-responses", ["gpt-5*"]), ("gemini", ["gemini-*"])):
        for side in ("a", "b"):
            rows.append({"name": f"{platform}-{side}", "platform": platform, "base_url": simulator,
                         "api_key": f"sk-chaos-{tag}-{platform}-{side}", "models": models})
    rows.append({"name": "claude-oauth", "platform": "claude-official", "base_url": simulator,
                 "oauth": {"refresh_token": OAUTH_REFRESH_TOKEN}, "models": ["claude-opus-*"]})
    return rows


@dataclass
class Replica:
    """One service process; restarted on the same port with the same settings, its log appended to."""

    name: str
    module: str
    env: dict[str, str]
    log_path: Path
    ready_port: int
    args: Sequence[str] = ()
    popen: subprocess.Popen[bytes] | None = None
    pids: list[int] = field(default_factory=list)

    @property
    def pid(self) -> int | None:
        return self.popen.pid if self.popen is not None and self.popen.poll() is None else None

    def start(self) -> None:
        with open(self.log_path, "ab") as output:
            self.popen = subprocess.Popen(
                [sys.executable, "-m", self.module, *self.args], env=self.env, stdout=output,
                stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True,
                preexec_fn=_die_with_this_thread(),
            )
        self.pids.append(self.popen.pid)

    def signal(self, signum: signal.Signals) -> None:
        if self.popen is not None and self.popen.poll() is None:
            self.popen.send_signal(signum)

    async def wait_exit(self, timeout: float) -> int | None:
        """The exit status, or None (and a SIGKILL) when it did not exit in time."""
        if self.popen is None:
            return None
        deadline = time.monotonic() + timeout
        while self.popen.poll() is None:
            if time.monotonic() > deadline:
                self.popen.kill()
                self.popen.wait()
                return None
            await asyncio.sleep(0.05)
        return self.popen.returncode

    async def wait_listening(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while True:
            if self.popen is not None and self.popen.poll() is not None:
                tail = self.log_path.read_text(errors="replace").splitlines()[-30:]
                raise RuntimeError(f"{self.name} exited with {self.popen.returncode}:\n" + "\n".join(tail))
            try:
                _, writer = await asyncio.open_connection("127.0.0.1", self.ready_port)
                writer.close()
                return
            except OSError:
                if time.monotonic() > deadline:
                    raise TimeoutError(f"{self.name} not listening on {self.ready_port} after {timeout}s") from None
                await asyncio.sleep(0.1)

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


@dataclass
class Topology:
    """Start with `async with Topology(workdir) as topology:`; everything started is stopped afterwards."""

    workdir: Path
    edge_drain_seconds: float = 5.0
    upstream_timeout_seconds: float = 6.0
    tokens_per_second: float = 150.0
    reply_tokens: int = 30
    tag: str = field(default_factory=lambda: secrets.token_hex(4))
    simulator: Replica | None = None
    auths: list[Replica] = field(default_factory=list)
    routers: list[Replica] = field(default_factory=list)
    edges: list[Replica] = field(default_factory=list)
    accounts: list[dict[str, Any]] = field(default_factory=list)
    postgres_proxy: FaultProxy | None = None
    redis_proxy: FaultProxy | None = None
    oauth_proxy: FaultProxy | None = None
    balancer: Balancer | None = None
    # Restarts that did not come up at once ("auth-1 exited with 3 ..."), each retried until it did.
    restart_problems: list[str] = field(default_factory=list)

    @property
    def schema(self) -> str:
        return f"chaos_{self.tag}"

    @property
    def namespace(self) -> str:
        return f"chaos-{self.tag}"

    @property
    def database_url(self) -> str:
        """The schema straight, not through the proxy (for keys and ledger reads by the suite itself)."""
        return f"{POSTGRES_URL}?search_path={self.schema}"

    @property
    def base_url(self) -> str:
        assert self.balancer is not None
        return f"http://127.0.0.1:{self.balancer.port}"

    @property
    def simulator_url(self) -> str:
        assert self.simulator is not None
        return f"http://127.0.0.1:{self.simulator.ready_port}"

    @property
    def replicas(self) -> list[Replica]:
        return [*self.auths, *self.routers, *self.edges]

    @property
    def accounts_path(self) -> Path:
        return self.workdir / "accounts.yaml"

    def secrets(self) -> list[str]:
        """Every upstream credential of the run: none may appear in a log line."""
        values = [account["api_key"] for account in self.accounts if "api_key" in account]
        return [*values, OAUTH_REFRESH_TOKEN]

    async def __aenter__(self) -> "Topology":
        try:
            await self.start()
        except BaseException:
            await self.stop()
            raise
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.stop()

    async def start(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        admin = await asyncpg.connect(POSTGRES_URL, timeout=5)
        try:
            await admin.execute(f'CREATE SCHEMA "{self.schema}"')
        finally:
            await admin.close()
        pg_host, pg_port = _host_port(POSTGRES_URL, 5432)
        redis_host, redis_port = _host_port(REDIS_URL, 6379)
        self.postgres_proxy = FaultProxy(pg_host, pg_port)
        self.redis_proxy = FaultProxy(redis_host, redis_port)
        simulator_port = free_port()
        self.oauth_proxy = FaultProxy("127.0.0.1", simulator_port)
        for proxy in (self.postgres_proxy, self.redis_proxy, self.oauth_proxy):
            await proxy.start()
        self.simulator = self._simulator(simulator_port)
        self.simulator.start()
        await self.simulator.wait_listening()
        self.accounts = _accounts(self.simulator_url, self.tag)
        self.write_accounts()
        ports = {index: (free_port(), free_port(), free_port()) for index in (1, 2)}
        for index in (1, 2):
            auth, router, edge = self._replicas(index, ports)
            self.auths.append(auth)
            self.routers.append(router)
            self.edges.append(edge)
        for replica in self.replicas:
            replica.start()
        for replica in self.replicas:
            await replica.wait_listening()
        await self.wait_edges_ready()
        self.balancer = Balancer([("127.0.0.1", edge.ready_port) for edge in self.edges])
        await self.balancer.start()

    async def stop(self) -> None:
        if self.balancer is not None:
            await self.balancer.close()
        for group in (self.edges, [*self.auths, *self.routers], [self.simulator] if self.simulator else []):
            for replica in group:
                replica.signal(signal.SIGTERM)
            await asyncio.gather(*(replica.wait_exit(self.edge_drain_seconds + 10) for replica in group))
        for proxy in (self.postgres_proxy, self.redis_proxy, self.oauth_proxy):
            if proxy is not None:
                await proxy.close()
        try:
            admin = await asyncpg.connect(POSTGRES_URL, timeout=5)
            try:
                await admin.execute(f'DROP SCHEMA IF EXISTS "{self.schema}" CASCADE')
            finally:
                await admin.close()
            await self.clear_redis()
        except (OSError, asyncpg.PostgresError):
            pass

    async def clear_redis(self) -> int:
        """Deletes this run's Redis keys (what a restarted Redis without persistence has lost)."""
        client = aioredis.Redis.from_url(REDIS_URL)
        try:
            keys = [key async for key in client.scan_iter(match=f"{self.namespace}:*", count=1000)]
            if keys:
                await client.delete(*keys)
            return len(keys)
        finally:
            await client.aclose()

    def write_accounts(self) -> None:
        temporary = self.accounts_path.with_suffix(".tmp")
        temporary.write_text(yaml.safe_dump({"accounts": self.accounts}, sort_keys=False))
        temporary.replace(self.accounts_path)

    def account(self, name: str) -> dict[str, Any]:
        return next(account for account in self.accounts if account["name"] == name)

    def set_account_key(self, name: str, key: str) -> None:
        self.account(name)["api_key"] = key
        self.write_accounts()

    def original_key(self, name: str) -> str:
        platform, _, side = name.rpartition("-")
        return f"sk-chaos-{self.tag}-{platform}-{side}"

    async def wait_edges_ready(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        async with httpx.AsyncClient(timeout=2.0) as client:
            for edge in self.edges:
                while True:
                    try:
                        if (await client.get(f"http://127.0.0.1:{edge.ready_port}/readyz")).status_code == 200:
                            break
                    except httpx.TransportError:
                        pass
                    if time.monotonic() > deadline:
                        raise TimeoutError(f"{edge.name} not ready after {timeout}s")
                    await asyncio.sleep(0.1)

    async def restart(self, replica: Replica, timeout: float = 60.0) -> None:
        """Starts a replica that was killed or stopped again, on its port, and waits until it listens; one that
        exits is started again a second later (as an orchestrator would), and noted in `restart_problems`."""
        deadline = time.monotonic() + timeout
        while True:
            replica.start()
            try:
                await replica.wait_listening()
                break
            except RuntimeError as exc:
                lines = str(exc).strip().splitlines()
                last = lines[-1].split(" ", 2)[-1] if lines[-1][:1].isdigit() else lines[-1]  # no timestamp
                self.restart_problems.append(f"{lines[0].rstrip(':')} on restart: {last[:200]}")
                if time.monotonic() > deadline:
                    raise
                await asyncio.sleep(1.0)
        if replica in self.edges:
            await self.wait_edges_ready()

    def _environment(self, extra: Mapping[str, str]) -> dict[str, str]:
        env = {name: value for name, value in os.environ.items() if not name.startswith("SWITCHBOARD_")}
        env.update(extra)
        return env

    def _simulator(self, port: int) -> Replica:
        args = ["--host", "127.0.0.1", "--port", str(port), "--tokens-per-second", str(self.tokens_per_second),
                "--reply-tokens", str(self.reply_tokens), "--no-record",
                "--anthropic-refresh-token", OAUTH_REFRESH_TOKEN, "--oauth-token-lifetime", "306"]
        for platform, flag in (("claude-console", "--anthropic-key"), ("openai", "--openai-key"),
                               ("openai-responses", "--openai-responses-key"), ("gemini", "--gemini-key")):
            for side in ("a", "b"):
                args += [flag, f"sk-chaos-{self.tag}-{platform}-{side}"]
        for key, spec in FAULT_KEYS.items():
            args += ["--key-fault", f"{key}={spec}"]
        return Replica("simulator", "switchboard_simulator", self._environment({}), self.workdir / "simulator.log",
                       port, args)

    def _replicas(self, index: int, ports: Mapping[int, tuple[int, int, int]]) -> tuple[Replica, Replica, Replica]:
        """Replica set `index` on its `ports` (auth, router, edge). Its edge reaches its own auth and router
        first and the other set's when those cannot be reached (gRPC's pick_first over both addresses, as a
        Service in front of the pods would do)."""
        assert self.postgres_proxy and self.redis_proxy and self.oauth_proxy
        auth_port, router_port, edge_port = ports[index]
        other_auth, other_router, _ = ports[3 - index]
        database = f"{_with_port(POSTGRES_URL, self.postgres_proxy.port)}?search_path={self.schema}"
        redis = _with_port(REDIS_URL, self.redis_proxy.port)
        auth = Replica(f"auth-{index}", "switchboard_auth", self._environment({
            "SWITCHBOARD_AUTH_LISTEN": f"127.0.0.1:{auth_port}",
            "SWITCHBOARD_AUTH_METRICS_PORT": "-1",
            "SWITCHBOARD_AUTH_DATABASE_URL": database,
            "SWITCHBOARD_AUTH_REDIS_URL": redis,
            "SWITCHBOARD_AUTH_REDIS_NAMESPACE": self.namespace,
        }), self.workdir / f"auth-{index}.log", auth_port)
        router = Replica(f"router-{index}", "switchboard_router", self._environment({
            "SWITCHBOARD_ROUTER_LISTEN": f"127.0.0.1:{router_port}",
            "SWITCHBOARD_ROUTER_METRICS_PORT": "-1",
            "SWITCHBOARD_ROUTER_ACCOUNTS_FILE": str(self.accounts_path),
            # Each replica its own, as each pod has its own filesystem.
            "SWITCHBOARD_ROUTER_CREDENTIALS_FILE": str(self.workdir / f"router-{index}.credentials.json"),
            "SWITCHBOARD_ROUTER_RELOAD_INTERVAL_SECONDS": "0.5",
            "SWITCHBOARD_ROUTER_REDIS_URL": redis,
            "SWITCHBOARD_ROUTER_REDIS_NAMESPACE": self.namespace,
            "SWITCHBOARD_ROUTER_BREAKER_OPEN_SECONDS": "5",
        }), self.workdir / f"router-{index}.log", router_port)
        edge = Replica(f"edge-{index}", "switchboard_edge", self._environment({
            "SWITCHBOARD_EDGE_HOST": "127.0.0.1",
            "SWITCHBOARD_EDGE_PORT": str(edge_port),
            "SWITCHBOARD_EDGE_METRICS_PORT": "-1",
            "SWITCHBOARD_EDGE_AUTH_TARGET": f"ipv4:127.0.0.1:{auth_port},127.0.0.1:{other_auth}",
            "SWITCHBOARD_EDGE_ROUTER_TARGET": f"ipv4:127.0.0.1:{router_port},127.0.0.1:{other_router}",
            "SWITCHBOARD_EDGE_SPOOL_DIR": str(self.workdir / f"edge-{index}-spool"),
            "SWITCHBOARD_EDGE_INSTANCE_ID": f"edge-{index}",
            "SWITCHBOARD_EDGE_DRAIN_SECONDS": str(self.edge_drain_seconds),
            "SWITCHBOARD_EDGE_UPSTREAM_TIMEOUT_SECONDS": str(self.upstream_timeout_seconds),
            "SWITCHBOARD_EDGE_FAILOVER_BUDGET_SECONDS": str(self.upstream_timeout_seconds * 2),
            "SWITCHBOARD_EDGE_USAGE_FLUSH_SECONDS": "0.2",
            "SWITCHBOARD_EDGE_OAUTH_TOKEN_URL": f"http://127.0.0.1:{self.oauth_proxy.port}/v1/oauth/token",
        }), self.workdir / f"edge-{index}.log", edge_port)
        return auth, router, edge


def _host_port(url: str, default: int) -> tuple[str, int]:
    netloc = url.split("://", 1)[1].split("/", 1)[0].rpartition("@")[2]
    host, _, port = netloc.partition(":")
    return host or "127.0.0.1", int(port) if port else default


def _with_port(url: str, port: int) -> str:
    """`url` pointed at 127.0.0.1:`port` (a proxy), its user, path and query kept."""
    scheme, rest = url.split("://", 1)
    netloc, _, path = rest.partition("/")
    user, at, _ = netloc.rpartition("@")
    return f"{scheme}://{user}{at}127.0.0.1:{port}/{path}"


def can_reach(url: str, default_port: int) -> str | None:
    """None when a TCP connection to the URL's server opens, else why not."""
    host, port = _host_port(url, default_port)
    try:
        socket.create_connection((host, port), timeout=2).close()
    except OSError as exc:
        return f"{host}:{port}: {exc}"
    return None
