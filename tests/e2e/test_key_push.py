"""A disabled or rotated key is refused by the edge about as soon as the change is made, whatever the caches:
auth follows the store's change log and pushes each change to the edges."""

import json
import time
from pathlib import Path

import httpx

from switchboard_stack.launcher import Ports, Stack

from .conftest import cli

OPENAI = "/openai/v1/chat/completions"
BODY = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "push"}]}
# Caches that, on their own, would keep a disabled key working for a minute.
LONG_CACHES = {"SWITCHBOARD_AUTH_CACHE_TTL_SECONDS": "60", "SWITCHBOARD_AUTH_DECISION_REUSE_SECONDS": "60"}


def refused_within(http: httpx.Client, key: str, seconds: float) -> float:
    """Seconds until the key is refused (401), sending requests meanwhile; fails past `seconds`."""
    started = time.monotonic()
    while (response := http.post(OPENAI, json=BODY, headers={"authorization": f"Bearer {key}"})).status_code != 401:
        assert response.status_code == 200, response.text
        assert time.monotonic() - started < seconds, f"still served {seconds} s after the change"
        time.sleep(0.05)
    return time.monotonic() - started


def test_disable_and_rotate_reach_the_edge_at_once(tmp_path: Path) -> None:
    with Stack(tmp_path, Ports.free(), env=LONG_CACHES) as stack, httpx.Client(base_url=stack.base_url,
                                                                               timeout=10) as http:
        key = json.loads(cli(stack, "keys", "create", "pushed", "--json").stdout)["key"]
        for _ in range(3):  # the edge and auth both remember it now
            assert http.post(OPENAI, json=BODY, headers={"authorization": f"Bearer {key}"}).status_code == 200
        cli(stack, "keys", "disable", "pushed")
        refused_within(http, key, 5.0)  # the caches alone would take 60 s

        cli(stack, "keys", "enable", "pushed")
        rotated = json.loads(cli(stack, "keys", "rotate", "pushed", "--json").stdout)["key"]
        refused_within(http, key, 5.0)  # no grace: the old secret stops at once
        served = http.post(OPENAI, json=BODY, headers={"authorization": f"Bearer {rotated}"})
        assert served.status_code == 200, served.text
