"""Claude subscription accounts (claude-official): Anthropic's Messages API with an OAuth access token.

`Authorization: Bearer <access token>` with the OAuth beta merged into the client's own `anthropic-beta`;
every other client header passes as it came (no client is disguised as another). The token is kept fresh
by `switchboard_edge.oauth` before the request is built. Subscription use is governed by Anthropic's terms.
"""

from switchboard.router.v1 import router_pb2
from switchboard_common import platforms
from switchboard_edge.upstream.anthropic import AnthropicMessages, anthropic_body, anthropic_headers, anthropic_url
from switchboard_edge.upstream.base import ANTHROPIC_SIGN_IN, Call, UpstreamRequest

OAUTH_BETA = "oauth-2025-04-20"


def with_beta(value: str, beta: str) -> str:
    betas = [item.strip() for item in value.split(",") if item.strip()]
    return ",".join(betas if beta in betas else [*betas, beta])


class ClaudeOfficial(AnthropicMessages):
    def __init__(self) -> None:
        super().__init__(platforms.CLAUDE_OFFICIAL)

    def sign_in(self, account: router_pb2.Account) -> str | None:
        return ANTHROPIC_SIGN_IN

    def build(self, call: Call) -> UpstreamRequest:
        headers = anthropic_headers(call)
        headers["anthropic-beta"] = with_beta(headers.get("anthropic-beta", ""), OAUTH_BETA)
        headers["authorization"] = f"Bearer {call.account.credential.secrets.get('access_token', '')}"
        return UpstreamRequest(anthropic_url(call), headers, anthropic_body(call))
