"""Who is calling: the client's address behind trusted proxies, and the client program from its headers."""

import pytest

from switchboard_edge.callers import client_address, client_app, trusted_networks

PROXIES = trusted_networks("10.0.0.0/8, 192.168.1.5")


@pytest.mark.parametrize(("peer", "forwarded", "trusted", "seen"), [
    ("203.0.113.9", "", PROXIES, "203.0.113.9"),  # direct: the peer
    ("203.0.113.9", "198.51.100.1", PROXIES, "203.0.113.9"),  # an untrusted peer's header is ignored
    ("10.1.2.3", "198.51.100.1", PROXIES, "198.51.100.1"),  # behind the ingress
    ("10.1.2.3", "6.6.6.6, 198.51.100.1, 192.168.1.5", PROXIES, "198.51.100.1"),  # left of the hops: forged
    ("10.1.2.3", "10.9.9.9", PROXIES, "10.9.9.9"),  # only proxies: the first hop
    ("10.1.2.3", "", PROXIES, "10.1.2.3"),
    ("10.1.2.3", "198.51.100.1", (), "10.1.2.3"),  # no trusted proxies: never the header
])
def test_client_address(peer: str, forwarded: str, trusted: tuple, seen: str) -> None:  # type: ignore[type-arg]
    headers = {"x-forwarded-for": forwarded} if forwarded else {}
    assert client_address(peer, headers, trusted) == seen


def test_trusted_proxies_setting_is_checked() -> None:
    assert [str(n) for n in trusted_networks("")] == []
    with pytest.raises(ValueError, match="not an address or CIDR: 'ten'"):
        trusted_networks("10.0.0.0/8,ten")


@pytest.mark.parametrize(("headers", "app"), [
    ({"user-agent": "claude-cli/2.1.331 (external, sdk-cli)", "x-app": "cli"}, "claude-code"),
    ({"user-agent": "something", "x-claude-code-session-id": "s"}, "claude-code"),
    ({"user-agent": "codex_cli_rs/0.169.0 (Ubuntu 24.4.0; x86_64)"}, "codex-cli"),
    ({"user-agent": "reqwest", "originator": "codex_exec"}, "codex-cli"),
    ({"user-agent": "GeminiCLI/0.61.0/gemini-2.5-flash (linux; x64; terminal)"}, "gemini-cli"),
    ({"user-agent": "OpenAI/Python 2.34.0"}, ""),
    ({}, ""),
])
def test_client_app(headers: dict[str, str], app: str) -> None:
    assert client_app(headers) == app
