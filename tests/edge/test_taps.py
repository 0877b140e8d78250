"""Stream taps read usage and completion without altering what the client receives."""

import orjson

from switchboard_edge.sse import SSEDecoder
from switchboard_edge.upstream.anthropic import AnthropicAdapter
from switchboard_edge.upstream.openai import OpenAIAdapter


def _events(raw: bytes) -> list:
    return SSEDecoder().feed(raw)


def test_anthropic_tap_merges_usage_and_sees_the_end() -> None:
    start = {"type": "message_start", "message": {"usage": {"input_tokens": 12, "output_tokens": 1,
                                                            "cache_read_input_tokens": 3}}}
    delta = {"type": "message_delta", "usage": {"output_tokens": 40}}
    raw = (
        b"event: message_start\ndata: " + orjson.dumps(start) + b"\n\n"
        b"event: message_delta\ndata: " + orjson.dumps(delta) + b"\n\n"
        b"event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n"
    )
    tap = AnthropicAdapter().tap({})
    kept = [event for event in _events(raw) if tap.observe(event)]
    assert len(kept) == 3
    assert (tap.usage.input_tokens, tap.usage.output_tokens, tap.usage.cache_read_input_tokens) == (12, 40, 3)
    assert tap.complete


def _openai_stream() -> bytes:
    content = {"object": "chat.completion.chunk", "choices": [{"index": 0, "delta": {"content": "hi"}}],
               "usage": None}
    usage = {"object": "chat.completion.chunk", "choices": [],
             "usage": {"prompt_tokens": 20, "completion_tokens": 5, "total_tokens": 25,
                       "prompt_tokens_details": {"cached_tokens": 8},
                       "completion_tokens_details": {"reasoning_tokens": 2}}}
    return (b"data: " + orjson.dumps(content) + b"\n\n" + b"data: " + orjson.dumps(usage) + b"\n\n"
            + b"data: [DONE]\n\n")


def test_openai_tap_hides_injected_usage_chunk() -> None:
    adapter = OpenAIAdapter()
    client_body = {"model": "gpt-4o", "stream": True}
    upstream_body = adapter.prepare(client_body, "gpt-4o")
    assert upstream_body is not None and upstream_body["stream_options"] == {"include_usage": True}
    assert "stream_options" not in client_body
    tap = adapter.tap(client_body)
    kept = [event for event in _events(_openai_stream()) if tap.observe(event)]
    assert len(kept) == 2 and kept[-1].data == b"[DONE]"
    assert (tap.usage.input_tokens, tap.usage.cache_read_input_tokens, tap.usage.output_tokens,
            tap.usage.reasoning_tokens) == (12, 8, 5, 2)
    assert tap.complete


def test_openai_tap_keeps_usage_chunk_the_client_asked_for() -> None:
    adapter = OpenAIAdapter()
    client_body = {"model": "gpt-4o", "stream": True, "stream_options": {"include_usage": True}}
    assert adapter.prepare(client_body, "gpt-4o") is None
    tap = adapter.tap(client_body)
    assert len([event for event in _events(_openai_stream()) if tap.observe(event)]) == 3


def test_prepare_rewrites_only_what_must_change() -> None:
    assert AnthropicAdapter().prepare({"model": "claude-x"}, "claude-x") is None
    assert AnthropicAdapter().prepare({"model": "claude-x", "a": 1}, "claude-y") == {"model": "claude-y", "a": 1}
