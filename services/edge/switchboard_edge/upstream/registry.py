"""The one table of upstream platforms: platform id -> implementation.

A route reaches every platform whose native client format is the route's own, in this table's order
(the order in which a bare model name tries them). Adding a platform is one module and one line here.
"""

from collections.abc import Mapping

from switchboard_common import platforms
from switchboard_edge.errors import ClientFormat
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


def native(client_format: ClientFormat, operation: str = "chat") -> tuple[str, ...]:
    """The platform ids a route of this format and operation reaches, in preference order."""
    return tuple(platform.id for platform in PLATFORMS.values()
                 if platform.client_format is client_format and operation in platform.operations)
