"""The edge's outbound HTTP: one pooled aiohttp session per way out (direct, or each proxy URL).

An account with `proxy_url` (http, https, socks5, socks5h) goes out through a session whose connector
speaks to that proxy (aiohttp-socks); every account without one shares the direct session. Sessions are
made once, on first use, and kept: never a client per request.
"""

import ssl
from typing import Any
from urllib.parse import urlsplit

import aiohttp
from aiohttp_socks import ProxyConnector, ProxyType

_CONNECTOR_OPTIONS: dict[str, Any] = {"limit": 0, "ttl_dns_cache": 300, "keepalive_timeout": 60}


class Upstreams:
    def __init__(self) -> None:
        self._direct = aiohttp.ClientSession(connector=aiohttp.TCPConnector(**_CONNECTOR_OPTIONS),
                                             auto_decompress=True)
        self._proxied: dict[str, aiohttp.ClientSession] = {}

    def session(self, proxy_url: str) -> aiohttp.ClientSession:
        if not proxy_url:
            return self._direct
        session = self._proxied.get(proxy_url)
        if session is None:
            session = self._proxied[proxy_url] = aiohttp.ClientSession(connector=proxy_connector(proxy_url),
                                                                       auto_decompress=True)
        return session

    async def close(self) -> None:
        for session in (self._direct, *self._proxied.values()):
            await session.close()


_PROXY_TYPES = {"http": ProxyType.HTTP, "https": ProxyType.HTTP, "socks5": ProxyType.SOCKS5,
                "socks5h": ProxyType.SOCKS5, "socks4": ProxyType.SOCKS4}


def proxy_connector(proxy_url: str) -> ProxyConnector:
    """A pooled connector through the proxy; socks5h resolves names at the proxy, https talks TLS to it."""
    parts = urlsplit(proxy_url)
    scheme = parts.scheme.lower()
    if scheme not in _PROXY_TYPES or not parts.hostname or not parts.port:
        raise ValueError(f"unsupported proxy URL scheme or address: {scheme}://…")
    return ProxyConnector(
        host=parts.hostname, port=parts.port, proxy_type=_PROXY_TYPES[scheme],
        username=parts.username, password=parts.password,
        rdns=scheme == "socks5h", proxy_ssl=ssl.create_default_context() if scheme == "https" else None,
        **_CONNECTOR_OPTIONS,
    )
