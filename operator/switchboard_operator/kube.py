"""The few Kubernetes calls the operator makes itself (kopf does the watching): read a Secret, patch one.

It connects with the `kopf.ConnectionInfo` kopf logged in with (`login`), so one login serves both. Values
read or written are never logged; errors name the Secret, never its data.
"""

import base64
import contextlib
import os
import ssl
import tempfile
from collections.abc import Iterator, Mapping
from typing import Any

import aiohttp
import kopf


class SecretNotFound(Exception):
    pass


class KubeError(Exception):
    pass


def _pem(data: str | bytes) -> bytes:
    raw = data.encode() if isinstance(data, str) else data
    return raw if raw.lstrip().startswith(b"-----") else base64.b64decode(raw)


@contextlib.contextmanager
def _files(*blobs: bytes) -> Iterator[list[str]]:
    paths = []
    try:
        for blob in blobs:
            fd, path = tempfile.mkstemp(prefix="switchboard-operator-", suffix=".pem")
            with os.fdopen(fd, "wb") as out:
                out.write(blob)
            paths.append(path)
        yield paths
    finally:
        for path in paths:
            with contextlib.suppress(OSError):
                os.unlink(path)


def ssl_context(info: kopf.ConnectionInfo) -> ssl.SSLContext | bool:
    if not info.server.startswith("https://"):
        return False
    context = ssl.create_default_context()
    if info.insecure:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    if info.ca_path:
        context.load_verify_locations(cafile=os.fsdecode(info.ca_path))
    elif info.ca_data:
        context.load_verify_locations(cadata=_pem(info.ca_data).decode())
    if info.certificate_path and info.private_key_path:
        context.load_cert_chain(os.fsdecode(info.certificate_path), os.fsdecode(info.private_key_path))
    elif info.certificate_data and info.private_key_data:
        with _files(_pem(info.certificate_data), _pem(info.private_key_data)) as (cert, key):
            context.load_cert_chain(cert, key)
    return context


class Kube:
    """Secrets over the API server kopf uses; `connect` is called by the operator's login handler."""

    def __init__(self) -> None:
        self._info: kopf.ConnectionInfo | None = None
        self._session: aiohttp.ClientSession | None = None

    def connect(self, info: kopf.ConnectionInfo) -> None:
        self._info = info
        self._session = None  # rebuilt on next use, with the new credentials

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    def _client(self) -> tuple[aiohttp.ClientSession, str]:
        if self._info is None:
            raise KubeError("not logged in to Kubernetes yet")
        if self._session is None or self._session.closed:
            headers = {}
            if self._info.token:
                headers["Authorization"] = f"{self._info.scheme or 'Bearer'} {self._info.token}"
            auth = (aiohttp.BasicAuth(self._info.username, self._info.password or "")
                    if self._info.username and not self._info.token else None)
            self._session = aiohttp.ClientSession(
                headers=headers, auth=auth, connector=aiohttp.TCPConnector(ssl=ssl_context(self._info)),
                timeout=aiohttp.ClientTimeout(total=30))
        return self._session, self._info.server.rstrip("/")

    async def get_secret(self, namespace: str, name: str) -> Mapping[str, Any]:
        session, server = self._client()
        async with session.get(f"{server}/api/v1/namespaces/{namespace}/secrets/{name}") as response:
            if response.status == 404:
                raise SecretNotFound(f"Secret {namespace}/{name} not found")
            if response.status >= 400:
                raise KubeError(f"reading Secret {namespace}/{name}: HTTP {response.status}")
            body: Mapping[str, Any] = await response.json()
            return body

    async def patch_secret_data(self, namespace: str, name: str, data: Mapping[str, str]) -> None:
        """Merge-patches `data` (base64 values) into the Secret."""
        session, server = self._client()
        async with session.patch(f"{server}/api/v1/namespaces/{namespace}/secrets/{name}",
                                 json={"data": dict(data)},
                                 headers={"Content-Type": "application/merge-patch+json"}) as response:
            if response.status >= 400:
                raise KubeError(f"writing Secret {namespace}/{name}: HTTP {response.status}")
