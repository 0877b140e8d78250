"""Who is calling, for key policies: the client's address behind trusted proxies, and the client program.

- The address is the TCP peer's unless the peer is a trusted proxy (`SWITCHBOARD_EDGE_TRUSTED_PROXIES`,
  CIDRs: the ingress, the load balancer); then it is the right-most `X-Forwarded-For` entry that is not a
  trusted proxy itself, since everything left of that was written by whoever sent the request. Without
  trusted proxies the header is ignored: anyone could write it.
- The program is recognised from what each client sends (`../shared/design/CLIENTS.md`): Claude Code's
  `claude-cli/` User-Agent or `x-claude-code-session-id`, Codex's `codex_cli_rs/`/`codex_exec/` User-Agent or
  `originator`, Gemini CLI's `GeminiCLI/` User-Agent. A convenience for policies, not a proof.
"""

import ipaddress
from collections.abc import Mapping, Sequence

Network = ipaddress.IPv4Network | ipaddress.IPv6Network

_CODEX_ORIGINATORS = frozenset({"codex_cli_rs", "codex_exec", "codex_vscode"})


def trusted_networks(setting: str) -> tuple[Network, ...]:
    """The setting's comma-separated CIDRs; raises ValueError naming a bad one."""
    networks = []
    for part in setting.split(","):
        if part.strip():
            try:
                networks.append(ipaddress.ip_network(part.strip(), strict=False))
            except ValueError:
                raise ValueError(f"not an address or CIDR: {part.strip()!r}") from None
    return tuple(networks)


def _trusted(address: str, trusted: Sequence[Network]) -> bool:
    try:
        parsed = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(parsed in network for network in trusted)


def client_address(peer: str, headers: Mapping[str, str], trusted: Sequence[Network]) -> str:
    if not trusted or not _trusted(peer, trusted):
        return peer
    hops = [hop.strip() for hop in headers.get("x-forwarded-for", "").split(",") if hop.strip()]
    for hop in reversed(hops):
        if not _trusted(hop, trusted):
            return hop
    return hops[0] if hops else peer


def client_app(headers: Mapping[str, str]) -> str:
    agent = headers.get("user-agent", "")
    if agent.startswith("claude-cli/") or "x-claude-code-session-id" in headers:
        return "claude-code"
    if agent.startswith(("codex_cli_rs/", "codex_exec/")) or headers.get("originator", "") in _CODEX_ORIGINATORS:
        return "codex-cli"
    if agent.startswith("GeminiCLI/"):
        return "gemini-cli"
    return ""
