"""The SSE splitter keeps events byte-exact across any chunking."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from switchboard_edge.sse import SSEDecoder

STREAM = (
    b"event: message_start\ndata: {\"type\":\"message_start\"}\n\n"
    b"event: ping\ndata: {\"type\": \"ping\"}\n\n"
    b"data: {\"a\":1}\r\n\r\n"
    b"event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n"
)


@pytest.mark.parametrize("size", [1, 2, 7, 64, len(STREAM)])
def test_events_survive_any_chunking(size: int) -> None:
    decoder = SSEDecoder()
    events = []
    for start in range(0, len(STREAM), size):
        events.extend(decoder.feed(STREAM[start : start + size]))
    assert b"".join(event.raw for event in events) == STREAM
    assert [event.name for event in events] == ["message_start", "ping", "", "message_stop"]
    assert events[2].data == b'{"a":1}'
    assert decoder.flush() == b""


def test_unterminated_tail_is_kept_for_flush() -> None:
    decoder = SSEDecoder()
    assert decoder.feed(b"data: [DONE]") == []
    assert decoder.flush() == b"data: [DONE]"


def test_multiline_data_is_joined() -> None:
    (event,) = SSEDecoder().feed(b"event: x\ndata: one\ndata:two\n\n")
    assert event.name == "x" and event.data == b"one\ntwo"


def _reference_events(stream: bytes) -> tuple[list[bytes], bytes]:
    """The events of a whole stream, found the slow, obvious way: the earliest separator at each step."""
    events, start = [], 0
    while True:
        matches = [(stream.find(sep, start), -len(sep)) for sep in (b"\r\n\r\n", b"\n\n", b"\r\r")]
        found = [(index, size) for index, size in matches if index != -1]
        if not found:
            return events, stream[start:]
        index, size = min(found)
        events.append(stream[start:index - size])
        start = index - size


@settings(max_examples=300, derandomize=True, database=None)
@given(stream=st.binary(min_size=0, max_size=300).map(lambda b: bytes(b"a\r\n:"[x % 4] for x in b)),
       cuts=st.lists(st.integers(min_value=0, max_value=300), max_size=12))
def test_decoding_in_any_chunks_finds_the_events_of_the_whole_stream(stream: bytes, cuts: list[int]) -> None:
    decoder = SSEDecoder()
    got: list[bytes] = []
    previous = 0
    for cut in sorted({min(c, len(stream)) for c in cuts} | {len(stream)}):
        got.extend(event.raw for event in decoder.feed(stream[previous:cut]))
        previous = cut
    expected, rest = _reference_events(stream)
    assert got == expected
    assert decoder.flush() == rest


def test_a_chunk_of_many_events_is_split_in_one_pass() -> None:
    event = b'event: content_block_delta\ndata: {"delta":{"text":"hi"}}\n\n'
    events = SSEDecoder().feed(event * 500)
    assert len(events) == 500 and all(e.raw == event and e.name == "content_block_delta" for e in events)
