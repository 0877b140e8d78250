"""Fuzzing what the edge reads from a client before any translator: the key headers, content type and length,
the JSON body, `stream`, the model string (`platform,model`), the session hint of each format, and the SSE and
JSON-array framings of what streams back. A refusal is one of the edge's client errors; nothing else escapes.
"""

from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from switchboard_edge import framing, inbound, sessions
from switchboard_edge.errors import (
    AuthenticationFailed,
    ClientFormat,
    InvalidRequest,
    RequestTooLarge,
    UnsupportedMediaType,
    UpstreamUnavailable,
)
from switchboard_edge.sse import SSEDecoder, SSEEvent

from .fuzzing import JSON, WORDS, mutated_object, requests_in

FUZZ = settings(max_examples=60, derandomize=True, database=None, deadline=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
# Header values as Starlette hands them over: latin-1 text.
LATIN1 = st.text(st.characters(max_codepoint=255), max_size=30)
HEADER_NAMES = st.sampled_from(["authorization", "x-api-key", "x-goog-api-key", "content-type", "content-length",
                                "x-claude-code-session-id", "session_id", "session-id", "conversation_id"])
HEADERS = st.dictionaries(HEADER_NAMES, st.one_of(LATIN1, st.sampled_from(["Bearer ", "Bearer  x", "bearer\tk"])),
                          max_size=4)
SESSION_READERS = [sessions.anthropic_session, sessions.openai_session, sessions.responses_session,
                   sessions.gemini_session]
FORMAT_OF_READER = {sessions.anthropic_session: ClientFormat.ANTHROPIC, sessions.openai_session: ClientFormat.OPENAI,
                    sessions.responses_session: ClientFormat.RESPONSES, sessions.gemini_session: ClientFormat.GEMINI}


@FUZZ
@given(headers=HEADERS, query_key=LATIN1)
def test_the_key_is_found_or_refused_with_401(headers: dict[str, str], query_key: str) -> None:
    try:
        key = inbound.extract_key(headers, query_key)
    except AuthenticationFailed:
        return
    assert key and key == key.strip()


@FUZZ
@given(content_type=LATIN1, content_length=st.one_of(st.none(), LATIN1, st.integers(0, 2**70).map(str)),
       limit=st.integers(0, 2**40))
@example(content_type="application/json", content_length="\xb2", limit=1)  # "²".isdigit(), but int("²") fails
def test_content_type_and_length_checks_refuse_only_as_client_errors(content_type: str, content_length: str | None,
                                                                     limit: int) -> None:
    try:
        inbound.check_content_type(content_type)
    except UnsupportedMediaType:
        pass
    try:
        inbound.check_declared_length(content_length, limit)
    except RequestTooLarge:
        pass


@FUZZ
@given(raw=st.one_of(st.binary(max_size=60), JSON.map(orjson.dumps), st.just(b"[" * 1100 + b"]" * 1100)))
def test_a_body_is_a_json_object_or_refused_with_400(raw: bytes) -> None:
    try:
        body = inbound.parse_body(raw)
    except InvalidRequest:
        return
    assert isinstance(body, dict)


@FUZZ
@given(body=st.dictionaries(st.sampled_from(["model", "stream", "messages"]), JSON, max_size=3),
       model=st.one_of(WORDS, st.text(max_size=20), st.sampled_from([",", "openai,", ",gpt", "openai,a,b", " , "])),
       nullable=st.booleans())
def test_model_and_stream_are_read_or_refused_with_400(body: dict[str, Any], model: str, nullable: bool) -> None:
    for candidate in (body, {**body, "model": model}):
        try:
            ref = inbound.parse_model(candidate)
        except InvalidRequest:
            pass
        else:
            assert ref.model and (ref.platform is None or "," not in ref.model)
        try:
            assert isinstance(inbound.parse_stream(candidate, nullable), bool)
        except InvalidRequest:
            pass


@pytest.mark.parametrize("reader", SESSION_READERS, ids=lambda reader: reader.__name__)
@FUZZ
@given(data=st.data(), headers=HEADERS)
def test_a_session_hint_is_read_from_any_body(reader: Any, data: st.DataObject, headers: dict[str, str]) -> None:
    body = data.draw(st.one_of(mutated_object(requests_in(FORMAT_OF_READER[reader])),
                               st.dictionaries(WORDS, JSON, max_size=4)), label="body")
    hint = reader(body, headers)
    assert isinstance(hint, str) and len(hint) <= sessions.MAX_ID_CHARS


@FUZZ
@given(chunks=st.lists(st.one_of(st.binary(max_size=20), st.sampled_from(
    [b"\n\n", b"\r\n\r\n", b"\r\r", b"\r", b"\n", b"data:", b"data: x", b"event:", b"event: \xff", b":c"])),
    max_size=12))
def test_an_sse_stream_splits_into_events_whatever_its_bytes(chunks: list[bytes]) -> None:
    decoder = SSEDecoder()
    events: list[SSEEvent] = []
    for chunk in chunks:
        events += decoder.feed(chunk)
    rest = decoder.flush()
    assert b"".join(event.raw for event in events) + rest == b"".join(chunks)  # nothing lost, nothing added
    for event in events:
        assert isinstance(event.name, str) and isinstance(event.data, bytes)
    array = framing.JSONArrayFraming()
    out = b"".join(array.event(event) for event in events)
    out += array.error(UpstreamUnavailable("cut"), ClientFormat.GEMINI) + array.end()
    assert out.startswith(b"[") and out.endswith(b"]")
