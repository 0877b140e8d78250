"""Secrets are compared in constant time: the admin token at the edge, a presented key's hash at auth.

Each test spies on `hmac.compare_digest` as the module calls it and checks two things: it is called with the
presented value, and its answer decides (forced to False it refuses the right secret, forced to True it admits a
wrong one). A comparison rewritten with `==` fails both.
"""

import hmac
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from unittest import mock

import grpc
import pytest

from switchboard.auth.v1 import auth_pb2, auth_pb2_grpc
from switchboard_auth import policy
from switchboard_auth.keys import KeyHasher, create_key, rotate_key
from switchboard_auth.sqlite_store import SqliteKeyStore
from switchboard_edge import admin_routes

from .edge_testing import ADMIN_TOKEN, PEPPER, SecuredEdge, secured_edge

_REAL = hmac.compare_digest


@contextmanager
def compare_digest(answer: bool | None = None) -> Iterator[mock.MagicMock]:
    """`hmac.compare_digest` spied on (the real answer) or forced to `answer`."""
    spy = mock.MagicMock(side_effect=_REAL if answer is None else lambda a, b: answer)
    with mock.patch.object(hmac, "compare_digest", spy):
        yield spy


@pytest.fixture
async def edge(tmp_path: Path) -> AsyncIterator[SecuredEdge]:
    async with secured_edge(tmp_path) as running:
        yield running


def presented(spy: mock.MagicMock) -> list[object]:
    """Every first argument the spy was called with."""
    return [call.args[0] for call in spy.call_args_list]


async def test_the_admin_token_is_compared_with_compare_digest(edge: SecuredEdge) -> None:
    assert admin_routes.hmac is hmac  # the module the gate calls through is the one patched here
    async with edge.client() as client:
        with compare_digest() as spy:
            wrong = await client.get("/admin/v1/keys", headers={"authorization": "Bearer not-the-token"})
        assert wrong.status_code == 401
        spy.assert_called_once_with(b"not-the-token", ADMIN_TOKEN.encode())
        with compare_digest() as spy:
            right = await client.get("/admin/v1/keys", headers={"authorization": f"Bearer {ADMIN_TOKEN}"})
        assert right.status_code == 200
        assert ADMIN_TOKEN.encode() in presented(spy)


async def test_the_admin_gate_decides_by_compare_digest(edge: SecuredEdge) -> None:
    async with edge.client() as client:
        with compare_digest(False):
            refused = await client.get("/admin/v1/keys", headers={"authorization": f"Bearer {ADMIN_TOKEN}"})
        with compare_digest(True):
            admitted = await client.get("/admin/v1/keys", headers={"authorization": "Bearer not-the-token"})
    assert refused.status_code == 401
    assert admitted.status_code == 200 and "data" in admitted.json()


async def test_a_presented_keys_hash_is_compared_with_compare_digest(edge: SecuredEdge) -> None:
    expected = KeyHasher(PEPPER)(edge.key)
    async with grpc.aio.insecure_channel(edge.settings.auth_target) as channel:
        stub = auth_pb2_grpc.AuthServiceStub(channel)

        async def authenticate() -> int:
            reply = await stub.Authenticate(auth_pb2.AuthenticateRequest(credential=edge.key), timeout=5)
            return int(reply.decision)

        with compare_digest() as spy:
            assert await authenticate() == auth_pb2.DECISION_ALLOW
        assert spy.call_args_list and all(expected in call.args for call in spy.call_args_list)
        with compare_digest(False):  # the stored hash equals the presented one: only the comparison can refuse
            assert await authenticate() == auth_pb2.DECISION_DENY


async def test_a_rotated_out_secret_is_compared_with_compare_digest(tmp_path: Path) -> None:
    keys = await SqliteKeyStore.open(str(tmp_path / "keys.db"))
    try:
        old, _ = await create_key(keys, "rotating", pepper=PEPPER)
        _, record = await rotate_key(keys, "rotating", pepper=PEPPER, grace=timedelta(hours=1))
    finally:
        await keys.close()
    old_hash = KeyHasher(PEPPER)(old)
    assert policy.hmac is hmac
    with compare_digest() as spy:
        matched = policy.matching_key(record, old_hash)
    assert matched is not None and matched.retired_at is not None
    assert spy.call_args_list == [mock.call(record.key_hash, old_hash), mock.call(record.previous_key_hash, old_hash)]
    with compare_digest(False):
        assert policy.matching_key(record, old_hash) is None
    with compare_digest(True):  # the current secret's comparison admits first
        forced = policy.matching_key(record, "0" * 64)
    assert forced is not None and forced.retired_at is None
