"""The SSE splitter keeps events byte-exact across any chunking."""

import pytest

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
