"""`make bench`'s bare forwarder against a real simulator: a non-stream and a stream reply pass through as the
simulator sends them straight (same status, same bytes), with the simulator's key put in place of the client's.

The simulator draws fresh ids for every reply (message, completion and request ids, the OpenAI stream's
padding is fixed per position); those are masked, keeping their length, before comparing bytes.
"""

import re
import subprocess
import sys
import time
from collections.abc import Iterator

import httpx
import pytest

from switchboard_stack.bench import CLAUDE_BODY, CLAUDE_STREAM_BODY, OPENAI_BODY, OPENAI_STREAM_BODY, forwarder
from switchboard_stack.launcher import SIMULATOR_ANTHROPIC_KEY, SIMULATOR_OPENAI_KEY
from switchboard_stack.ports import free_port

# Per-reply values the simulator draws anew: ids, and OpenAI's `created` second.
_FRESH = re.compile(rb'msg_01[1-9A-Za-z]{22}|chatcmpl-[0-9A-Za-z]{29}|"created": ?[0-9]+|fp_[0-9a-f]{10}')


def _masked(body: bytes) -> bytes:
    return _FRESH.sub(lambda match: b"#" * len(match.group()), body)


@pytest.fixture(scope="module")
def simulator() -> Iterator[str]:
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "switchboard_simulator", "--host", "127.0.0.1", "--port", str(port),
         "--latency-ms", "0", "--tokens-per-second", "0"], stdin=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            assert process.poll() is None, "the simulator exited during start-up"
            try:
                if httpx.get(f"{url}/healthz", timeout=1.0).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "the simulator is not ready after 60 s"
            time.sleep(0.05)
        yield url
    finally:
        process.terminate()
        process.wait(10)


CASES = [
    pytest.param("/claude/v1/messages", CLAUDE_BODY, {"anthropic-version": "2023-06-01"},
                 {"x-api-key": SIMULATOR_ANTHROPIC_KEY}, id="claude"),
    pytest.param("/claude/v1/messages", CLAUDE_STREAM_BODY, {"anthropic-version": "2023-06-01"},
                 {"x-api-key": SIMULATOR_ANTHROPIC_KEY}, id="claude-stream"),
    pytest.param("/openai/v1/chat/completions", OPENAI_BODY, {},
                 {"authorization": f"Bearer {SIMULATOR_OPENAI_KEY}"}, id="openai"),
    pytest.param("/openai/v1/chat/completions", OPENAI_STREAM_BODY, {},
                 {"authorization": f"Bearer {SIMULATOR_OPENAI_KEY}"}, id="openai-stream"),
]


@pytest.mark.parametrize(("path", "body", "headers", "credential"), CASES)
def test_replies_pass_through_as_sent_straight(simulator: str, path: str, body: bytes, headers: dict[str, str],
                                               credential: dict[str, str]) -> None:
    common = {"content-type": "application/json", **headers}
    upstream_path = path.removeprefix("/claude").removeprefix("/openai")
    with forwarder(simulator) as url, httpx.Client(timeout=10.0) as client:
        direct = client.post(f"{simulator}{upstream_path}", content=body, headers={**common, **credential})
        # The client's own key is not the simulator's: the forwarder replaces it.
        wrong = {"x-api-key": "sk-not-the-simulators"} if "x-api-key" in credential else {
            "authorization": "Bearer sk-not-the-simulators"}
        relayed = client.post(f"{url}{path}", content=body, headers={**common, **wrong})
    assert direct.status_code == 200, direct.text
    assert relayed.status_code == direct.status_code, relayed.text
    assert relayed.headers["content-type"] == direct.headers["content-type"]
    is_stream = b'"stream":true' in body
    assert direct.headers["content-type"].startswith("text/event-stream") == is_stream
    assert _masked(relayed.content) == _masked(direct.content)
