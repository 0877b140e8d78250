"""Fuzzing the translators, every direction in the registry, through the bridge the relay calls them by: a client
request changed anywhere, an upstream answer changed anywhere, an upstream stream with events changed, dropped,
repeated or moved, an upstream error body of any bytes.

A request may be refused only with a client error (400 in the client's format); an upstream answer or stream
event only with `UpstreamUnavailable` (502, or the stream's error event); nothing else escapes, since anything
else would be a 500 or a stream cut without its error event. Deterministic (derandomize) and bounded, so CI sees
the same examples every run. The examples the fuzzing once found are kept below as regressions.
"""

from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from switchboard_common import platforms
from switchboard_edge.errors import ClientError, ClientFormat, UpstreamUnavailable
from switchboard_edge.translate import seal
from switchboard_edge.translate.base import Target
from switchboard_edge.translate.bridge import Bridge, bridge
from switchboard_edge.translate.registry import TRANSLATORS
from switchboard_edge.translate.scrub import scrubbed

from .fuzzing import JSON, PLATFORM_OF, SEEDS, mutated_object, mutated_stream, requests_in, sse_event

FUZZ = settings(max_examples=40, derandomize=True, database=None, deadline=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
PAIRS = sorted(TRANSLATORS, key=lambda pair: (pair[0].value, pair[1].value))
Pair = tuple[ClientFormat, ClientFormat]


def _ids(pair: Pair) -> str:
    return f"{pair[0].value}-to-{pair[1].value}"


def _answers(upstream: ClientFormat) -> list[dict[str, Any]]:
    return [answer for seeds in SEEDS.values() if seeds.translator.upstream is upstream for answer in seeds.answers]


def _streams(upstream: ClientFormat) -> list[list[Any]]:
    return [stream for seeds in SEEDS.values() if seeds.translator.upstream is upstream for stream in seeds.streams]


def crossing(pair: Pair, body: dict[str, Any], *, stream: bool, include_usage: bool = False) -> Bridge:
    """The bridge the relay would build for a client of `pair[0]` served by an upstream of `pair[1]`."""
    client, upstream = pair
    target = Target(platform=PLATFORM_OF[upstream], model="fuzz-model", stream=stream, input_estimate=12,
                    include_usage=include_usage)
    made = bridge(client, client, upstream, target, body)
    assert made is not None
    return made


def translate_request(pair: Pair, body: dict[str, Any], stream: bool) -> None:
    try:
        crossing(pair, body, stream=stream).request(body, {"anthropic-beta": "fuzz", "user-agent": "fuzz"})
    except ClientError:
        pass


def convert_stream(pair: Pair, events: list[Any], include_usage: bool) -> None:
    converter = crossing(pair, {}, stream=True, include_usage=include_usage).stream()
    try:
        for payload in events:
            converter.feed(sse_event(payload, pair[1]))
        converter.finish()
    except UpstreamUnavailable:
        pass


@pytest.mark.parametrize("pair", PAIRS, ids=_ids)
@FUZZ
@given(data=st.data())
def test_a_request_is_translated_or_refused_as_a_client_error(pair: Pair, data: st.DataObject) -> None:
    translate_request(pair, data.draw(mutated_object(requests_in(pair[0])), label="body"),
                      data.draw(st.booleans(), label="stream"))


@pytest.mark.parametrize("pair", PAIRS, ids=_ids)
@FUZZ
@given(data=st.data())
def test_an_upstream_answer_is_converted_or_an_upstream_failure(pair: Pair, data: st.DataObject) -> None:
    answer = data.draw(mutated_object(_answers(pair[1])), label="answer")
    try:
        crossing(pair, {}, stream=False).response(answer)
    except UpstreamUnavailable:
        pass


@pytest.mark.parametrize("pair", PAIRS, ids=_ids)
@FUZZ
@given(data=st.data())
def test_an_upstream_stream_is_converted_or_an_upstream_failure(pair: Pair, data: st.DataObject) -> None:
    convert_stream(pair, data.draw(mutated_stream(_streams(pair[1])), label="events"),
                   data.draw(st.booleans(), label="include_usage"))


@pytest.mark.parametrize("pair", PAIRS, ids=_ids)
@FUZZ
@given(status=st.sampled_from([400, 401, 403, 404, 413, 429, 500, 502, 503, 529]),
       payload=st.one_of(st.binary(max_size=40), JSON.map(orjson.dumps)))
def test_an_upstream_error_body_is_always_converted(pair: Pair, status: int, payload: bytes) -> None:
    crossing(pair, {}, stream=False).error(status, payload)


@pytest.mark.parametrize("client_format", list(ClientFormat), ids=lambda fmt: fmt.value)
@FUZZ
@given(data=st.data())
def test_a_native_request_is_scrubbed_without_an_exception(client_format: ClientFormat, data: st.DataObject) -> None:
    body = data.draw(mutated_object(requests_in(client_format)), label="body")
    platform = data.draw(st.sampled_from(sorted(set(PLATFORM_OF.values()))), label="platform")
    scrubbed(body, orjson.dumps(body), client_format, platform)


# -- what the fuzzing found (each was a 500: a KeyError, TypeError or AttributeError out of a translator) --------

_USER = [{"role": "user", "content": "Hi"}]
FOUND_REQUESTS = [
    pytest.param((ClientFormat.GEMINI, ClientFormat.OPENAI),
                 {"contents": [{"parts": [{"text": "Hi"}]}], "generation_config": {"thinking_config": {
                     "thinking_level": []}}}, id="gemini-thinking-level-a-list"),
    pytest.param((ClientFormat.RESPONSES, ClientFormat.ANTHROPIC),
                 {"model": "m", "input": "Hi", "tools": [{"type": "function", "parameters": {"type": "object"}}]},
                 id="responses-function-tool-without-name"),
    pytest.param((ClientFormat.RESPONSES, ClientFormat.ANTHROPIC), {"model": "m", "input": "Hi", "tools": -9},
                 id="responses-tools-a-number"),
    pytest.param((ClientFormat.RESPONSES, ClientFormat.ANTHROPIC),
                 {"model": "m", "input": "Hi", "reasoning": {"effort": {"x": 1}}}, id="responses-effort-an-object"),
    pytest.param((ClientFormat.RESPONSES, ClientFormat.ANTHROPIC), {"model": "m", "input": "Hi", "service_tier": {}},
                 id="responses-service-tier-an-object"),
    pytest.param((ClientFormat.RESPONSES, ClientFormat.OPENAI), {"model": "m", "input": "Hi", "include": [{}]},
                 id="responses-include-an-object"),
    pytest.param((ClientFormat.ANTHROPIC, ClientFormat.OPENAI),
                 {"model": "m", "max_tokens": 8, "messages": _USER, "service_tier": {}}, id="claude-service-tier"),
    pytest.param((ClientFormat.ANTHROPIC, ClientFormat.GEMINI),
                 {"model": "m", "max_tokens": 8, "messages": _USER, "output_config": {"effort": {"x": []}}},
                 id="claude-effort-an-object"),
    pytest.param((ClientFormat.ANTHROPIC, ClientFormat.RESPONSES),
                 {"model": "m", "max_tokens": {}, "messages": _USER}, id="claude-max-tokens-an-object"),
    pytest.param((ClientFormat.ANTHROPIC, ClientFormat.RESPONSES),
                 {"model": "m", "max_tokens": 8, "messages": [{"role": "user", "content": [
                     {"type": "image", "source": 2.5}]}]}, id="claude-image-source-a-number"),
    pytest.param((ClientFormat.ANTHROPIC, ClientFormat.RESPONSES),
                 {"model": "m", "max_tokens": 8, "messages": _USER, "system": [{"type": "text", "text": {"a": 1}}]},
                 id="claude-system-text-an-object"),
    pytest.param((ClientFormat.ANTHROPIC, ClientFormat.RESPONSES),
                 {"model": "m", "max_tokens": 8, "messages": _USER, "tools": [{"input_schema": {"type": "object"}}]},
                 id="claude-tool-without-name"),
    pytest.param((ClientFormat.OPENAI, ClientFormat.ANTHROPIC),
                 {"model": "m", "messages": _USER, "service_tier": [0]}, id="chat-service-tier-a-list"),
    pytest.param((ClientFormat.OPENAI, ClientFormat.RESPONSES),
                 {"model": "m", "messages": [{"role": "developer", "content": [{"type": "text", "text": {}}]}, *_USER]},
                 id="chat-developer-text-an-object"),
    pytest.param((ClientFormat.RESPONSES, ClientFormat.ANTHROPIC),
                 {"model": "m", "input": "Hi", "tools": [{"type": "custom", "name": "t", "description": {"a": 1}}]},
                 id="responses-custom-tool-description-an-object"),
    pytest.param((ClientFormat.ANTHROPIC, ClientFormat.RESPONSES),
                 {"model": "m", "max_tokens": 8, "messages": _USER, "tools": 3}, id="claude-tools-a-number"),
    pytest.param((ClientFormat.ANTHROPIC, ClientFormat.RESPONSES),
                 {"model": "m", "max_tokens": 8, "messages": [{"role": "user", "content": [
                     {"type": "tool_result", "tool_use_id": "t", "content": 5}]}]}, id="claude-tool-result-a-number"),
    pytest.param((ClientFormat.ANTHROPIC, ClientFormat.RESPONSES),
                 {"model": "m", "max_tokens": 8, "messages": _USER, "tools": [None]}, id="claude-tool-null"),
    pytest.param((ClientFormat.ANTHROPIC, ClientFormat.RESPONSES),
                 {"model": "m", "max_tokens": 8, "messages": _USER, "service_tier": {}},
                 id="claude-service-tier-an-object-for-responses"),
    pytest.param((ClientFormat.GEMINI, ClientFormat.OPENAI),
                 {"contents": [{"parts": [{"text": "Hi"}]}], "tools": [{"functionDeclarations": [{"name": "f"}]}],
                  "toolConfig": {"functionCallingConfig": {"mode": "ANY", "allowedFunctionNames": {"f": 1}}}},
                 id="gemini-allowed-function-names-an-object"),
    pytest.param((ClientFormat.RESPONSES, ClientFormat.ANTHROPIC), {"model": "m", "input": "Hi", "include": 5},
                 id="responses-include-a-number"),
    pytest.param((ClientFormat.RESPONSES, ClientFormat.ANTHROPIC),
                 {"model": "m", "input": [
                     {"type": "reasoning", "encrypted_content": seal.sealed(platforms.CLAUDE_CONSOLE, "sig"),
                      "summary": [{"type": "summary_text", "text": None}]}, {"role": "user", "content": "Hi"}]},
                 id="responses-reasoning-summary-text-null"),
]


@pytest.mark.parametrize("pair, body", FOUND_REQUESTS)
def test_found_request_shapes_are_client_errors_naming_the_field(pair: Pair, body: dict[str, Any]) -> None:
    for stream in (False, True):
        with pytest.raises(ClientError) as refused:
            crossing(pair, body, stream=stream).request(body, {})
        assert refused.value.status == 400
        # Refused by the translator's own check, not only by the bridge's guard (which cannot name the field).
        assert "unexpected type or shape" not in refused.value.message


FOUND_ANSWERS = [
    pytest.param((ClientFormat.ANTHROPIC, ClientFormat.RESPONSES), {"id": "r", "status": "completed", "output": [None]},
                 id="responses-output-item-null"),
    pytest.param((ClientFormat.ANTHROPIC, ClientFormat.RESPONSES), {"id": "r", "status": "completed", "output": 1},
                 id="responses-output-a-number"),
]


@pytest.mark.parametrize("pair, answer", FOUND_ANSWERS)
def test_found_answer_shapes_are_upstream_failures(pair: Pair, answer: dict[str, Any]) -> None:
    with pytest.raises(UpstreamUnavailable):
        crossing(pair, {}, stream=False).response(answer)
