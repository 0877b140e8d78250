"""Outbound proxies: one pooled session per proxy URL, the proxy kinds the account YAML allows."""

import pytest
from aiohttp_socks import ProxyType

from switchboard_edge.upstream_http import Upstreams, proxy_connector


@pytest.mark.parametrize("url, kind, rdns", [
    pytest.param("http://proxy:3128", ProxyType.HTTP, False, id="http"),
    pytest.param("https://proxy:3129", ProxyType.HTTP, False, id="https"),
    pytest.param("socks5://user:pass@proxy:1080", ProxyType.SOCKS5, False, id="socks5"),
    pytest.param("socks5h://proxy:1080", ProxyType.SOCKS5, True, id="socks5h"),
])
async def test_proxy_kinds(url: str, kind: ProxyType, rdns: bool) -> None:
    connector = proxy_connector(url)
    try:
        assert connector._proxy_type is kind and bool(connector._rdns) is rdns
        assert connector._proxy_host == "proxy" and (connector._proxy_ssl is not None) is url.startswith("https")
    finally:
        await connector.close()


@pytest.mark.parametrize("url", ["ftp://proxy:21", "socks5://proxy", "http://:3128"])
async def test_unusable_proxy_urls_are_refused_without_echoing_them(url: str) -> None:
    with pytest.raises(ValueError) as caught:
        proxy_connector(url)
    assert "proxy" not in str(caught.value).split("://", 1)[-1]


async def test_one_session_per_way_out() -> None:
    upstreams = Upstreams()
    try:
        direct = upstreams.session("")
        proxied = upstreams.session("socks5://proxy:1080")
        assert upstreams.session("") is direct and upstreams.session("socks5://proxy:1080") is proxied
        assert proxied is not direct
    finally:
        await upstreams.close()
