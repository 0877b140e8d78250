"""The gemini platform: requests as Gemini expects them, usage and completion read from its recorded answers,
and errors the gateway makes in Gemini's own format."""

from pathlib import Path

import orjson
import pytest
import yaml

from switchboard.router.v1 import router_pb2
from switchboard_edge.errors import ClientFormat, ModelNotFound, RateLimited, error_payload, format_for_path
from switchboard_edge.sse import SSEDecoder
from switchboard_edge.upstream.base import Call
from switchboard_edge.upstream.gemini import Gemini
from switchboard_edge.upstream.registry import reachable

RECORDINGS = Path(__file__).resolve().parents[1] / "fixtures" / "vendor-recordings" / "gemini"
ACCOUNT = router_pb2.Account(platform="gemini", base_url="https://generativelanguage.googleapis.com",
                             credential=router_pb2.Credential(api_key="AIza-account-key"))
BODY = {"contents": [{"role": "user", "parts": [{"text": "Hi"}]}]}


def _body(name: str) -> bytes:
    recording = yaml.safe_load((RECORDINGS / name).read_text())
    body = recording["interactions"][0]["response"]["body"]["string"]
    return body if isinstance(body, bytes) else body.encode()


@pytest.mark.parametrize("stream, operation, tail", [
    pytest.param(False, "chat", "/v1beta/models/gemini-2.5-flash:generateContent", id="generate"),
    pytest.param(True, "chat", "/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse", id="stream"),
    pytest.param(False, "count_tokens", "/v1beta/models/gemini-2.5-flash:countTokens", id="count"),
])
def test_requests_name_model_and_action_in_the_path(stream: bool, operation: str, tail: str) -> None:
    raw = orjson.dumps(BODY)
    call = Call(ACCOUNT, "gemini-2.5-flash", BODY, raw, stream, "key=client-key", {"x-goog-api-key": "client-key",
                                                                                 "user-agent": "GeminiCLI/0.9"},
                operation)
    built = Gemini().build(call)
    assert built.url == "https://generativelanguage.googleapis.com" + tail
    assert built.headers["x-goog-api-key"] == "AIza-account-key" and built.headers["user-agent"] == "GeminiCLI/0.9"
    assert built.body is raw  # thought parts and signatures travel untouched


def test_stream_usage_and_completion_from_the_recorded_thinking_stream() -> None:
    tap = Gemini().tap({})
    for event in SSEDecoder().feed(_body("streamGenerateContent-sse-thinking.yaml")):
        assert tap.observe(event)
    assert tap.complete and tap.final_usage and not tap.errored
    # The recording's last chunk: prompt 30, thoughts 1947, total 1977 (thoughts are billed as output).
    assert tap.usage.input_tokens == 30 and tap.usage.reasoning_tokens == 1947
    assert tap.usage.input_tokens + tap.usage.output_tokens == 1977


def test_a_stream_cut_before_the_finish_reason_is_incomplete() -> None:
    events = SSEDecoder().feed(_body("streamGenerateContent-sse.yaml"))
    tap = Gemini().tap({})
    for event in events[:-1]:
        tap.observe(event)
    assert not tap.complete


def test_non_stream_usage() -> None:
    usage = Gemini().usage(orjson.loads(_body("generateContent.yaml")))
    assert usage.input_tokens > 0 and usage.output_tokens > 0


def test_gemini_routes_and_errors_speak_gemini() -> None:
    assert reachable(ClientFormat.GEMINI)[0] == "gemini"
    assert reachable(ClientFormat.GEMINI, "count_tokens") == ("gemini",)
    assert format_for_path("/gemini/v1beta/models") is ClientFormat.GEMINI
    assert error_payload(ModelNotFound("no account serves model 'x'"), ClientFormat.GEMINI) == {
        "error": {"code": 404, "message": "no account serves model 'x'", "status": "NOT_FOUND"}}
    assert error_payload(RateLimited("slow down"), ClientFormat.GEMINI)["error"]["status"] == "RESOURCE_EXHAUSTED"  # type: ignore[index]
