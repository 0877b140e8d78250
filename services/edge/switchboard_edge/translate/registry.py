"""The one table of translators: (client format, upstream format) -> the direction's module.

Equal formats need none (the relay forwards the client's own bytes). Adding a direction is one module
and one line here; the relay and the routes find it through `translator` and `reachable`.
"""

from collections.abc import Mapping

from switchboard_edge.errors import ClientFormat
from switchboard_edge.translate import (
    anthropic_to_gemini,
    anthropic_to_openai,
    anthropic_to_responses,
    gemini_to_openai,
    openai_to_anthropic,
    openai_to_gemini,
    openai_to_responses,
    responses_to_anthropic,
    responses_to_openai,
)
from switchboard_edge.translate.base import Translator

_ALL: tuple[Translator, ...] = (
    openai_to_anthropic.TRANSLATOR,
    anthropic_to_openai.TRANSLATOR,
    openai_to_gemini.TRANSLATOR,
    gemini_to_openai.TRANSLATOR,
    anthropic_to_gemini.TRANSLATOR,
    openai_to_responses.TRANSLATOR,
    responses_to_openai.TRANSLATOR,
    anthropic_to_responses.TRANSLATOR,
    responses_to_anthropic.TRANSLATOR,
)
TRANSLATORS: Mapping[tuple[ClientFormat, ClientFormat], Translator] = {
    (translator.client, translator.upstream): translator for translator in _ALL
}


def translator(client: ClientFormat, upstream: ClientFormat) -> Translator | None:
    """The translator between two formats; None when they are the same."""
    if client is upstream:
        return None
    return TRANSLATORS[(client, upstream)]


def translates(client: ClientFormat, upstream: ClientFormat) -> bool:
    """Whether a client of one format can be served by an upstream of the other."""
    return client is upstream or (client, upstream) in TRANSLATORS
