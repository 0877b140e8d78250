"""Redis gone under a running stack (a fault proxy between it and auth and the router): auth set to refuse
answers a limited key's requests "unavailable" (503 and Retry-After at the edge), the router set to local keeps
picking, both say so in their gauges, and both use Redis again once it is back.

The limited key refused is one the edge has not seen allowed: one it has may be admitted from the edge's own
last answers while auth is "unavailable" (the edge's outage grace), which is the edge's rule, not auth's."""

import json
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest
import redis

from switchboard_stack.demo import create_demo_key
from switchboard_stack.faultproxy import ThreadedFaultProxy
from switchboard_stack.launcher import SIMULATOR_OPENAI_KEY, Ports, Stack

from ..redis_testing import REDIS_URL
from ..required import unavailable
from .conftest import cli

OPENAI = "/openai/v1/chat/completions"
BODY = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "redis outage"}]}


@pytest.fixture(scope="module")
def proxy() -> Iterator[ThreadedFaultProxy]:
    target = urlsplit(REDIS_URL)
    client = redis.Redis(host=target.hostname or "127.0.0.1", port=target.port or 6379, socket_connect_timeout=1)
    try:
        client.ping()
    except redis.RedisError as exc:
        unavailable(f"Redis at {REDIS_URL}", exc)
    namespace = f"sbtest-{uuid.uuid4().hex[:12]}"
    with ThreadedFaultProxy(target.hostname or "127.0.0.1", target.port or 6379) as running:
        running.namespace = namespace  # type: ignore[attr-defined]
        yield running
    keys = list(client.scan_iter(match=f"{namespace}:*"))
    if keys:
        client.delete(*keys)
    client.close()


@pytest.fixture(scope="module")
def redis_stack(tmp_path_factory: pytest.TempPathFactory, proxy: ThreadedFaultProxy) -> Iterator[Stack]:
    ports = Ports.free()
    url = f"redis://127.0.0.1:{proxy.port}{urlsplit(REDIS_URL).path}"
    namespace = proxy.namespace  # type: ignore[attr-defined]
    env = {"SWITCHBOARD_AUTH_REDIS_URL": url, "SWITCHBOARD_AUTH_REDIS_NAMESPACE": namespace,
           "SWITCHBOARD_AUTH_REDIS_UNAVAILABLE": "refuse",
           "SWITCHBOARD_ROUTER_REDIS_URL": url, "SWITCHBOARD_ROUTER_REDIS_NAMESPACE": namespace,
           "SWITCHBOARD_ROUTER_REDIS_UNAVAILABLE": "local"}
    accounts = [{"name": "sim-openai", "platform": "openai", "base_url": f"http://127.0.0.1:{ports.simulator}",
                 "api_key": SIMULATOR_OPENAI_KEY, "models": ["gpt-*"], "max_concurrency": 4}]
    with Stack(Path(tmp_path_factory.mktemp("redis-stack")), ports, accounts=accounts, env=env) as running:
        yield running


def _gauge(port: int, name: str) -> float:
    for line in httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    raise AssertionError(f"{name} not served")


def _eventually(check: Callable[[], bool], within: float = 10.0) -> None:
    deadline = time.monotonic() + within
    while not check():
        assert time.monotonic() < deadline, f"not true within {within} s"
        time.sleep(0.1)


def test_refused_limited_keys_and_local_picks_while_redis_is_gone(redis_stack: Stack,
                                                                   proxy: ThreadedFaultProxy) -> None:
    def limited_key(name: str) -> str:
        return str(json.loads(cli(redis_stack, "keys", "create", name, "--json", "--rpm", "1000").stdout)["key"])

    limited, first_seen_in_outage = limited_key("e2e-redis-rpm"), limited_key("e2e-redis-rpm-2")
    plain = create_demo_key(redis_stack.db_path, "e2e-redis-plain")
    auth_metrics, router_metrics = redis_stack.ports.auth_metrics, redis_stack.ports.router_metrics
    with httpx.Client(base_url=redis_stack.base_url, timeout=15) as http:
        def status(key: str) -> httpx.Response:
            return http.post(OPENAI, json=BODY, headers={"authorization": f"Bearer {key}"})

        assert status(limited).status_code == 200 and status(plain).status_code == 200
        proxy.down()
        try:
            refused = status(first_seen_in_outage)
            assert refused.status_code == 503 and refused.headers["retry-after"] == "1"
            # A key the edge allowed a moment ago too: auth answered it cannot decide, which the edge passes on
            # rather than riding out on its last decision (that is for an auth it cannot reach).
            refused_known = status(limited)
            assert refused_known.status_code == 503 and refused_known.headers["retry-after"] == "1"
            assert [status(plain).status_code for _ in range(5)] == [200] * 5  # picks from the router's memory
            assert _gauge(auth_metrics, "switchboard_auth_redis_degraded") == 1.0
            assert _gauge(router_metrics, "switchboard_router_redis_degraded") == 1.0
            assert _gauge(router_metrics, "switchboard_router_redis_degraded_operations_total") > 0
        finally:
            proxy.resume()
        _eventually(lambda: _gauge(auth_metrics, "switchboard_auth_redis_degraded") == 0.0
                    and _gauge(router_metrics, "switchboard_router_redis_degraded") == 0.0)
        assert status(limited).status_code == 200 and status(plain).status_code == 200
        assert status(first_seen_in_outage).status_code == 200
