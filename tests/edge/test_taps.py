"""Stream taps read usage and completion without altering what the client receives."""

import orjson

from switchboard.router.v1 import router_pb2
from switchboard_edge.sse import SSEDecoder
from switchboard_edge.upstream.anthropic import AnthropicMessages
from switchboard_edge.upstream.base import Call
from switchboard_edge.upstream.openai import OpenAIChat


def _call(body: dict, model: str, raw: bytes | None = None) -> Call:  # type: ignore[type-arg]
    return Call(router_pb2.Account(base_url="http://up"), model, body, raw if raw is not None else orjson.dumps(body),
                bool(body.get("stream")), "", {})


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
    tap = AnthropicMessages("claude-console").tap({})
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
    adapter = OpenAIChat()
    client_body = {"model": "gpt-4o", "stream": True}
    upstream_body = orjson.loads(adapter.build(_call(client_body, "gpt-4o")).body)
    assert upstream_body["stream_options"] == {"include_usage": True}
    assert "stream_options" not in client_body
    tap = adapter.tap(client_body)
    kept = [event for event in _events(_openai_stream()) if tap.observe(event)]
    assert len(kept) == 2 and kept[-1].data == b"[DONE]"
    assert (tap.usage.input_tokens, tap.usage.cache_read_input_tokens, tap.usage.output_tokens,
            tap.usage.reasoning_tokens) == (12, 8, 5, 2)
    assert tap.complete


def test_openai_tap_keeps_usage_chunk_the_client_asked_for() -> None:
    adapter = OpenAIChat()
    client_body = {"model": "gpt-4o", "stream": True, "stream_options": {"include_usage": True}}
    raw = orjson.dumps(client_body)
    assert adapter.build(_call(client_body, "gpt-4o", raw)).body is raw
    tap = adapter.tap(client_body)
    assert len([event for event in _events(_openai_stream()) if tap.observe(event)]) == 3


def test_the_body_is_rewritten_only_when_something_must_change() -> None:
    platform = AnthropicMessages("claude-console")
    raw = b'{"model": "claude-x"}'
    assert platform.build(_call({"model": "claude-x"}, "claude-x", raw)).body is raw
    rewritten = platform.build(_call({"model": "claude-x", "a": 1}, "claude-y")).body
    assert orjson.loads(rewritten) == {"model": "claude-y", "a": 1}


def test_anthropic_version_is_added_only_when_the_client_sent_none() -> None:
    platform = AnthropicMessages("claude-console")
    call = _call({"model": "m"}, "m")
    assert platform.build(call).headers["anthropic-version"] == "2023-06-01"
    own = Call(call.account, "m", call.body, call.raw, False, "", {"anthropic-version": "2024-01-01",
                                                                    "anthropic-beta": "a,b"})
    headers = platform.build(own).headers
    assert headers["anthropic-version"] == "2024-01-01" and headers["anthropic-beta"] == "a,b"


def test_openai_organization_and_project_come_from_the_account() -> None:
    account = router_pb2.Account(base_url="http://up", organization="org-1", project="proj-1",
                                 credential=router_pb2.Credential(api_key="sk-x"))
    call = Call(account, "gpt-4o", {"model": "gpt-4o"}, b"{}", False, "", {"openai-organization": "client-org"})
    headers = OpenAIChat().build(call).headers
    assert headers["openai-organization"] == "org-1" and headers["openai-project"] == "proj-1"
    assert headers["authorization"] == "Bearer sk-x"


def _anthropic_cut_after(deltas: int) -> bytes:
    start = {"type": "message_start", "message": {"usage": {"input_tokens": 250, "output_tokens": 1}}}
    raw = b"event: message_start\ndata: " + orjson.dumps(start) + b"\n\n"
    for _ in range(deltas):
        delta = {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "abcdefgh"}}
        raw += b"event: content_block_delta\ndata: " + orjson.dumps(delta) + b"\n\n"
    return raw


def test_anthropic_stream_cut_short_is_estimated_from_message_start_and_the_deltas() -> None:
    tap = AnthropicMessages("claude-console").tap({})
    for event in _events(_anthropic_cut_after(15)):
        tap.observe(event)
    usage, estimated = tap.settled_usage({"messages": [{"role": "user", "content": "x" * 4000}]})
    # Input is what the vendor said, not the request estimate; output is 15 deltas of 8 characters.
    assert estimated and usage.input_tokens == 250 and usage.output_tokens == 30
    assert not tap.complete and not tap.errored


def test_openai_stream_cut_short_estimates_input_from_the_request() -> None:
    adapter = OpenAIChat()
    tap = adapter.tap({"stream": True})
    content = {"object": "chat.completion.chunk", "choices": [{"index": 0, "delta": {"content": "abcd"}}]}
    raw = b"".join(b"data: " + orjson.dumps(content) + b"\n\n" for _ in range(15))
    for event in _events(raw):
        tap.observe(event)
    body = {"messages": [{"role": "system", "content": "s" * 40},
                         {"role": "user", "content": [{"type": "text", "text": "u" * 360},
                                                      {"type": "image_url", "image_url": {"url": "d" * 9999}}]}]}
    usage, estimated = tap.settled_usage(body)
    assert estimated and usage.input_tokens == 100 and usage.output_tokens == 15


def test_final_usage_is_not_an_estimate() -> None:
    tap = OpenAIChat().tap({"stream": True})
    for event in _events(_openai_stream()):
        tap.observe(event)
    usage, estimated = tap.settled_usage({"messages": [{"role": "user", "content": "x" * 4000}]})
    assert not estimated and usage.output_tokens == 5


def test_vendor_error_events_are_seen() -> None:
    anthropic = AnthropicMessages("claude-console").tap({})
    for event in _events(b'event: error\ndata: {"type":"error","error":{"type":"overloaded_error"}}\n\n'):
        assert anthropic.observe(event)
    openai = OpenAIChat().tap({})
    for event in _events(b'data: {"error":{"message":"boom","type":"server_error"}}\n\n'):
        assert openai.observe(event)
    assert anthropic.errored and openai.errored


def test_malformed_events_do_not_break_the_tap() -> None:
    anthropic = AnthropicMessages("claude-console").tap({})
    openai = OpenAIChat().tap({})
    for event in _events(b"event: message_start\ndata: {not json\n\ndata: [1, 2\n\n"):
        assert anthropic.observe(event) and openai.observe(event)
