"""The accounts file is reloaded when it changes; an invalid or vanished file keeps the old pool."""

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest

from switchboard.router.v1 import router_pb2

from .router_testing import Router, account, write_accounts, write_text


@pytest.fixture
async def watching(router: Router) -> AsyncIterator[Router]:
    """The router with its real watch task running (polls every 20 ms)."""
    task = asyncio.create_task(router.source.watch(router.pool.replace))
    yield router
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


async def eventually(check: Callable[[], Awaitable[bool]], timeout: float = 2.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not await check():
        assert asyncio.get_running_loop().time() < deadline, "condition not met in time"
        await asyncio.sleep(0.01)


async def ids(router: Router) -> list[str]:
    return list(await router.list_accounts())


async def ids_are(router: Router, expected: list[str]) -> bool:
    return await ids(router) == expected


async def test_file_change_is_picked_up_by_the_watcher(watching: Router) -> None:
    write_accounts(watching.path, [account("first")])

    await eventually(lambda: ids_are(watching, ["claude-console/first"]))

    write_accounts(watching.path, [account("second", platform="gemini")])

    await eventually(lambda: ids_are(watching, ["gemini/second"]))
    reply = await watching.pick(platforms=("gemini",), model="gemini-2.5-flash")
    assert reply.status == router_pb2.PICK_STATUS_OK and reply.account.name == "second"
    assert (await watching.pick()).status == router_pb2.PICK_STATUS_NO_MODEL  # old account gone


@pytest.mark.parametrize(
    "bad_text",
    [
        pytest.param("accounts:\n  - {name: x, platform: nope, base_url: 'http://x', api_key: k}\n", id="invalid"),
        pytest.param("accounts: [\n", id="broken-yaml"),
        pytest.param("", id="half-written"),
    ],
)
async def test_invalid_file_keeps_the_previous_pool(
    watching: Router, bad_text: str, caplog: pytest.LogCaptureFixture
) -> None:
    write_accounts(watching.path, [account("keeper")])

    await eventually(lambda: ids_are(watching, ["claude-console/keeper"]))

    write_text(watching.path, bad_text)
    await eventually(lambda: _logged(caplog, "keeping the previous pool"))
    assert await ids(watching) == ["claude-console/keeper"]
    assert (await watching.pick()).account.name == "keeper"

    write_accounts(watching.path, [account("fixed")])  # a later valid file still loads

    await eventually(lambda: ids_are(watching, ["claude-console/fixed"]))


async def test_vanished_file_keeps_the_previous_pool(watching: Router, caplog: pytest.LogCaptureFixture) -> None:
    write_accounts(watching.path, [account("keeper")])

    await eventually(lambda: ids_are(watching, ["claude-console/keeper"]))
    watching.path.unlink()
    await eventually(lambda: _logged(caplog, "missing or unreadable"))
    assert await ids(watching) == ["claude-console/keeper"]


async def test_file_created_after_start_is_loaded(watching: Router) -> None:
    watching.path.unlink()
    await asyncio.sleep(0.05)
    write_accounts(watching.path, [account("late")])
    await eventually(lambda: ids_are(watching, ["claude-console/late"]))


async def test_unchanged_file_is_not_reparsed(router: Router) -> None:
    router.set_accounts([account("a")])
    snapshot = router.pool.snapshot
    assert router.source.poll(router.pool.replace) is False
    assert router.pool.snapshot is snapshot


async def _logged(caplog: pytest.LogCaptureFixture, text: str) -> bool:
    return any(text in record.getMessage() for record in caplog.records)
