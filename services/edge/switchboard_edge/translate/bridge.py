"""One attempt across formats: the request rewritten for the upstream, its answers rewritten for the client.

Usually both directions use one translator (client format ⇄ upstream format). A route whose requests and
answers are in different formats (`/gemini/v1/chat`: OpenAI messages in, Gemini answers out) takes the
request through (request format → upstream) and the answers through (answer format ← upstream).
"""

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from switchboard_edge.errors import ClientFormat
from switchboard_edge.translate.base import Conversion, StreamConverter, Target, Translator
from switchboard_edge.translate.registry import translator


class _Unchanged(StreamConverter):
    """A stream already in the client's format (only the request was translated)."""

    def feed(self, event: Any) -> list[Any]:
        return [event]


@dataclass(frozen=True, slots=True)
class Bridge:
    inbound: Translator | None
    outbound: Translator | None
    target: Target

    def request(self, body: Mapping[str, Any], headers: Mapping[str, str]) -> Conversion | None:
        """The upstream's request, or None when the client's own request goes as it is."""
        if self.inbound is None:
            return None
        return self.inbound.request(body, headers, self.target)

    def response(self, body: Mapping[str, Any]) -> Any:
        return body if self.outbound is None else self.outbound.response(body, self.target)

    def error(self, status: int, payload: bytes) -> bytes:
        return payload if self.outbound is None else self.outbound.error(status, payload)

    def stream(self) -> StreamConverter:
        return _Unchanged() if self.outbound is None else self.outbound.stream(self.target)


def bridge(request_format: ClientFormat, answer_format: ClientFormat, upstream: ClientFormat,
           target: Target, body: Mapping[str, Any]) -> Bridge | None:
    """The crossing for an attempt (`body` the client's request); None when the client and the upstream speak
    the same format."""
    inbound = translator(request_format, upstream)
    outbound = translator(answer_format, upstream)
    if inbound is None and outbound is None:
        return None
    if outbound is not None and request_format is answer_format:
        target = outbound.answer_target(body, target)
    return Bridge(inbound, outbound, target)
