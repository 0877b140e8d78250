"""One attempt across formats: the request rewritten for the upstream, its answers rewritten for the client.

Usually both directions use one translator (client format ⇄ upstream format). A route whose requests and
answers are in different formats (`/gemini/v1/chat`: OpenAI messages in, Gemini answers out) takes the
request through (request format → upstream) and the answers through (answer format ← upstream).

A translator is a pure function of the body it is given, so when one fails on a field of a type or shape its
own checks did not foresee (a KeyError, TypeError, …), that body is at fault: the client's request is refused
with 400 in its format, an upstream answer or stream event is the upstream's failure (502, or the stream's
error event), never a 500. Each such failure is logged with where it happened (never the body), to be given a
check of its own.
"""

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from switchboard_edge.errors import ClientFormat, InvalidRequest, UpstreamUnavailable
from switchboard_edge.sse import SSEEvent
from switchboard_edge.translate.base import Conversion, StreamConverter, Target, Translator
from switchboard_edge.translate.registry import translator

log = logging.getLogger(__name__)

# What a translator raises on a body whose shape its checks missed.
_SHAPE_ERRORS = (KeyError, IndexError, TypeError, AttributeError, ValueError)


def _where(exc: BaseException) -> str:
    """`module:line` of the innermost frame that raised `exc`."""
    trace = exc.__traceback__
    while trace is not None and trace.tb_next is not None:
        trace = trace.tb_next
    if trace is None:
        return "?"
    return f"{trace.tb_frame.f_globals.get('__name__', '?')}:{trace.tb_lineno}"


def _bad_request(exc: BaseException, direction: str) -> InvalidRequest:
    log.warning("a request could not be translated (%s): %s at %s", direction, type(exc).__name__, _where(exc))
    return InvalidRequest("The request has a field of an unexpected type or shape and cannot be translated for "
                          "the upstream; check it against the API reference.")


def _bad_answer(exc: BaseException, direction: str) -> UpstreamUnavailable:
    log.warning("an upstream answer could not be translated (%s): %s at %s", direction, type(exc).__name__,
                _where(exc))
    return UpstreamUnavailable("The upstream API sent an answer that could not be translated.")


def _direction(translator: Translator) -> str:
    return f"{translator.client.value} from {translator.upstream.value}"


class _Unchanged(StreamConverter):
    """A stream already in the client's format (only the request was translated)."""

    def feed(self, event: Any) -> list[Any]:
        return [event]


class _Checked(StreamConverter):
    """A translator's converter whose failure on an upstream event is the upstream's `UpstreamUnavailable`."""

    def __init__(self, converter: StreamConverter, direction: str) -> None:
        self._converter = converter
        self._direction = direction

    def feed(self, event: SSEEvent) -> list[SSEEvent]:
        try:
            return self._converter.feed(event)
        except _SHAPE_ERRORS as exc:
            raise _bad_answer(exc, self._direction) from None

    def finish(self) -> list[SSEEvent]:
        try:
            return self._converter.finish()
        except _SHAPE_ERRORS as exc:
            raise _bad_answer(exc, self._direction) from None


@dataclass(frozen=True, slots=True)
class Bridge:
    inbound: Translator | None
    outbound: Translator | None
    target: Target

    def request(self, body: Mapping[str, Any], headers: Mapping[str, str]) -> Conversion | None:
        """The upstream's request, or None when the client's own request goes as it is."""
        if self.inbound is None:
            return None
        try:
            return self.inbound.request(body, headers, self.target)
        except _SHAPE_ERRORS as exc:
            raise _bad_request(exc, _direction(self.inbound)) from None

    def response(self, body: Mapping[str, Any]) -> Any:
        if self.outbound is None:
            return body
        try:
            return self.outbound.response(body, self.target)
        except _SHAPE_ERRORS as exc:
            raise _bad_answer(exc, _direction(self.outbound)) from None

    def error(self, status: int, payload: bytes) -> bytes:
        return payload if self.outbound is None else self.outbound.error(status, payload)

    def stream(self) -> StreamConverter:
        if self.outbound is None:
            return _Unchanged()
        return _Checked(self.outbound.stream(self.target), _direction(self.outbound))


def bridge(request_format: ClientFormat, answer_format: ClientFormat, upstream: ClientFormat,
           target: Target, body: Mapping[str, Any]) -> Bridge | None:
    """The crossing for an attempt (`body` the client's request); None when the client and the upstream speak
    the same format."""
    inbound = translator(request_format, upstream)
    outbound = translator(answer_format, upstream)
    if inbound is None and outbound is None:
        return None
    if outbound is not None and request_format is answer_format:
        try:
            target = outbound.answer_target(body, target)
        except _SHAPE_ERRORS as exc:
            raise _bad_request(exc, _direction(outbound)) from None
    return Bridge(inbound, outbound, target)
