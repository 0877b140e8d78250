"""At DEBUG, no service logs a key, its hash, or an upstream credential."""

import hashlib
from pathlib import Path

import httpx

from switchboard_stack.demo import create_demo_key
from switchboard_stack.launcher import SIMULATOR_ANTHROPIC_KEY, SIMULATOR_OPENAI_KEY, Ports, Stack


def test_no_key_hash_or_credential_in_any_log_at_debug(tmp_path: Path) -> None:
    stack = Stack(tmp_path, Ports.free(), env={"SWITCHBOARD_LOG_LEVEL": "DEBUG"})
    with stack:
        key = create_demo_key(stack.db_path)
        wrong = key[:-4] + "zzzz"
        with httpx.Client(base_url=stack.base_url, timeout=10) as client:
            for presented in (key, wrong):
                client.post("/claude/v1/messages", headers={"x-api-key": presented, "anthropic-version": "2023-06-01"},
                            json={"model": "claude-sonnet-4-20250514", "max_tokens": 8,
                                  "messages": [{"role": "user", "content": "Hi"}]})
                client.post("/openai/v1/chat/completions", headers={"authorization": f"Bearer {presented}"},
                            json={"model": "gpt-4o-mini", "stream": True,
                                  "messages": [{"role": "user", "content": "Hi"}]})
    logs = {name: (tmp_path / f"{name}.log").read_text() for name in ("edge", "auth", "router")}
    assert any("DEBUG" in text for text in logs.values())
    secrets = [key, wrong, hashlib.sha256(key.encode()).hexdigest(), hashlib.sha256(wrong.encode()).hexdigest(),
               SIMULATOR_ANTHROPIC_KEY, SIMULATOR_OPENAI_KEY]
    for name, text in logs.items():
        for secret in secrets:
            assert secret not in text, f"{name} log holds a secret"
