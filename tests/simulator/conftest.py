"""Fixtures: the simulator running in-process on a free port, and HTTP clients for it."""

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack
from typing import Any

import httpx
import pytest

from switchboard_simulator.app import serve
from switchboard_simulator.config import from_mapping

Start = Callable[..., Awaitable[str]]


@pytest.fixture
async def start() -> AsyncIterator[Start]:
    """Starts a simulator with the given config keys (YAML names) and returns its base URL."""
    async with AsyncExitStack() as stack:

        async def start_simulator(**raw: Any) -> str:
            config = from_mapping({"host": "127.0.0.1", "port": 0, **raw})
            return await stack.enter_async_context(serve(config))

        yield start_simulator


@pytest.fixture
async def base_url(start: Start) -> str:
    return await start()


@pytest.fixture
async def client(base_url: str) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=base_url, timeout=5) as http:
        yield http
