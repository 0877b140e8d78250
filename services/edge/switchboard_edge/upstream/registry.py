"""The one table of upstream platforms: platform id -> implementation.

A chat route reaches every platform: those whose native client format is the route's own first, then
the others through a translator (`switchboard_edge.translate.registry`), each group in this table's order.
Other operations (count_tokens, compact) reach only the platforms of their own format. Adding a platform
is one module and one line here.
"""

from collections.abc import Mapping

from switchboard_common import platforms
from switchboard_edge.errors import ClientFormat
from switchboard_edge.translate.registry import translates
from switchboard_edge.upstream.anthropic import AnthropicMessages
from switchboard_edge.upstream.azure_openai import AzureOpenAI
from switchboard_edge.upstream.base import Platform
from switchboard_edge.upstream.bedrock import Bedrock
from switchboard_edge.upstream.claude_official import ClaudeOfficial
from switchboard_edge.upstream.gemini import Gemini
from switchboard_edge.upstream.openai import OpenAIChat
from switchboard_edge.upstream.openai_responses import OpenAIResponses

PLATFORMS: Mapping[str, Platform] = {
    platform.id: platform
    for platform in (
        ClaudeOfficial(),
        AnthropicMessages(platforms.CLAUDE_CONSOLE),
        AnthropicMessages(platforms.CLAUDE_CCR),
        Bedrock(),
        OpenAIChat(),
        AzureOpenAI(),
        Gemini(),
        OpenAIResponses(),
    )
}


def reachable(client_format: ClientFormat, operation: str = "chat",
              request_format: ClientFormat | None = None) -> tuple[str, ...]:
    """Every platform id a route reaches, natives (those answering in `client_format`) first.
    `request_format` is what the route's requests are written in, when that differs from what it answers
    in (the contract's `/gemini/v1/chat` takes OpenAI messages and answers in Gemini's format)."""
    asked = request_format or client_format

    def serves(platform: Platform) -> bool:
        own = platform.client_format is asked is client_format
        return (operation in platform.operations and (own or operation == "chat")
                and translates(asked, platform.client_format) and translates(client_format, platform.client_format))

    own = [p.id for p in PLATFORMS.values() if serves(p) and p.client_format is client_format]
    others = [p.id for p in PLATFORMS.values() if serves(p) and p.client_format is not client_format]
    return (*own, *others)


def natives(platforms: tuple[str, ...], client_format: ClientFormat) -> frozenset[str]:
    """Those of `platforms` that answer in `client_format` without a translator."""
    return frozenset(p for p in platforms if PLATFORMS[p].client_format is client_format)
