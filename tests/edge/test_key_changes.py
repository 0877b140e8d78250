"""The edge forgets what it remembers of a key as soon as auth says the key changed."""

import asyncio
from collections.abc import Callable

import grpc

from switchboard.auth.v1 import auth_pb2, auth_pb2_grpc
from switchboard.router.v1 import router_pb2_grpc
from switchboard_edge.admission import Admissions
from switchboard_edge.reports import Reports

from .control_fakes import FakeAuth


class PushingAuth(FakeAuth):
    """Every key is valid and is its own key id; streams the key changes the test puts in `changes`."""

    def __init__(self) -> None:
        super().__init__()
        self.changes: asyncio.Queue[auth_pb2.KeyChangesEvent] = asyncio.Queue()

    async def Authenticate(self, request, context):  # type: ignore[no-untyped-def]
        self.authenticated += 1
        return auth_pb2.AuthorizeResponse(decision=auth_pb2.DECISION_ALLOW,
                                          identity=auth_pb2.KeyIdentity(key_id=request.credential))

    async def WatchKeyChanges(self, request, context):  # type: ignore[no-untyped-def]
        while True:
            yield await self.changes.get()


async def eventually(check: Callable[[], bool]) -> None:
    for _ in range(500):
        if check():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("not within 5 s")


async def test_a_changed_key_is_asked_about_again_and_the_others_stay_remembered() -> None:
    auth = PushingAuth()
    server = grpc.aio.server()
    auth_pb2_grpc.add_AuthServiceServicer_to_server(auth, server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        stub, router = auth_pb2_grpc.AuthServiceStub(channel), router_pb2_grpc.RouterServiceStub(channel)
        reports = Reports(stub, router, rpc_timeout=5, usage_flush_seconds=1, usage_batch_size=10)
        admissions = Admissions(stub, router, reports, rpc_timeout=5, holder="edge:1")
        client = auth_pb2.ClientMetadata()
        remembered = admissions._identities  # what the edge remembers, by key digest
        following = asyncio.create_task(admissions.follow_key_changes(retry_seconds=0.05))
        for _ in range(2):
            for key in ("alice", "bob"):
                await admissions.authenticate(key, client)
        assert auth.authenticated == 2 and len(remembered) == 2  # each asked once, then remembered

        auth.changes.put_nowait(auth_pb2.KeyChangesEvent(key_ids=["bob"]))
        await eventually(lambda: len(remembered) == 1)
        await admissions.authenticate("alice", client)
        assert auth.authenticated == 2  # another key's change: alice is still remembered
        await admissions.authenticate("bob", client)
        assert auth.authenticated == 3  # bob is asked about again

        auth.changes.put_nowait(auth_pb2.KeyChangesEvent(everything=True))
        await eventually(lambda: not remembered)
        following.cancel()
    await server.stop(None)

