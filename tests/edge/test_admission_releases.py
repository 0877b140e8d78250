"""Settlement batches leave the edge over long-lived streams: the admission releases and the outcomes of one window
go in one message each (`ReleaseAdmissionStream`, `ReportOutcomeStream`), with the unary methods for services
without the streams. Real in-process gRPC servers."""

import asyncio
from collections.abc import AsyncIterator, Callable

import grpc
import pytest

from switchboard.auth.v1 import auth_pb2, auth_pb2_grpc
from switchboard.router.v1 import router_pb2, router_pb2_grpc
from switchboard_edge.reports import Reports


class _Auth(auth_pb2_grpc.AuthServiceServicer):
    def __init__(self, *, streams: bool, fail: bool = False) -> None:
        self.batches: list[tuple[str, list[str]]] = []  # (method, admission ids)
        self.streams = streams
        self.fail = fail

    async def ReleaseAdmissions(self, request, context):  # type: ignore[no-untyped-def]
        if self.fail:
            await context.abort(grpc.StatusCode.UNAVAILABLE, "down")
        self.batches.append(("unary", [a.admission_id for a in request.admissions]))
        return auth_pb2.ReleaseAdmissionsResponse()

    async def ReleaseAdmissionStream(self, requests, context):  # type: ignore[no-untyped-def]
        if not self.streams:
            await context.abort(grpc.StatusCode.UNIMPLEMENTED, "Method not found!")
        async for request in requests:
            self.batches.append(("stream", [a.admission_id for a in request.admissions]))
            yield auth_pb2.ReleaseAdmissionsResponse(call_id=request.call_id)


class _Router(router_pb2_grpc.RouterServiceServicer):
    def __init__(self, *, streams: bool) -> None:
        self.batches: list[tuple[str, list[str]]] = []  # (method, lease ids)
        self.streams = streams

    async def ReportOutcomes(self, request, context):  # type: ignore[no-untyped-def]
        self.batches.append(("unary", [o.lease_id for o in request.outcomes]))
        return router_pb2.ReportOutcomeResponse()

    async def ReportOutcomeStream(self, requests, context):  # type: ignore[no-untyped-def]
        if not self.streams:
            await context.abort(grpc.StatusCode.UNIMPLEMENTED, "Method not found!")
        async for request in requests:
            self.batches.append(("stream", [o.lease_id for o in request.outcomes]))
            yield router_pb2.ReportOutcomeResponse(call_id=request.call_id)


@pytest.fixture()
async def serve() -> AsyncIterator[Callable[[_Auth, _Router], "asyncio.Future[Reports]"]]:
    servers: list[grpc.aio.Server] = []
    channels: list[grpc.aio.Channel] = []
    made: list[Reports] = []

    async def start(auth: _Auth, router: _Router) -> Reports:
        server = grpc.aio.server()
        auth_pb2_grpc.add_AuthServiceServicer_to_server(auth, server)
        router_pb2_grpc.add_RouterServiceServicer_to_server(router, server)
        port = server.add_insecure_port("127.0.0.1:0")
        await server.start()
        channel = grpc.aio.insecure_channel(f"127.0.0.1:{port}")
        servers.append(server)
        channels.append(channel)
        reports = Reports(auth_pb2_grpc.AuthServiceStub(channel), router_pb2_grpc.RouterServiceStub(channel),
                          rpc_timeout=2.0, usage_flush_seconds=60, usage_batch_size=100, outcome_flush_seconds=0.02)
        made.append(reports)
        return reports

    yield start  # type: ignore[misc]
    for reports in made:
        await reports.close()
    for channel in channels:
        await channel.close()
    for server in servers:
        await server.stop(None)


async def _until(condition: Callable[[], bool]) -> None:
    for _ in range(200):
        if condition():
            return
        await asyncio.sleep(0.02)
    raise AssertionError("never happened")


def _outcome(lease: str) -> router_pb2.ReportOutcomeRequest:
    return router_pb2.ReportOutcomeRequest(lease_id=lease, outcome=router_pb2.OUTCOME_SUCCESS)


async def test_one_window_leaves_in_one_message_per_service_over_their_streams(serve) -> None:  # type: ignore[no-untyped-def]
    auth, router = _Auth(streams=True), _Router(streams=True)
    reports = await serve(auth, router)
    reports.release_admission("key-1", "adm-1")
    reports.release_admission("key-2", "adm-2")
    reports.release_admission("key-3", "")  # a key without a concurrency limit has no admission
    reports.report(_outcome("lease-1"))
    reports.report(_outcome("lease-2"))
    await _until(lambda: bool(auth.batches and router.batches))
    assert auth.batches == [("stream", ["adm-1", "adm-2"])]
    assert router.batches == [("stream", ["lease-1", "lease-2"])]
    reports.release_admission("key-1", "adm-3")  # a later window: a message of its own, on the same stream
    await _until(lambda: len(auth.batches) == 2)
    await asyncio.sleep(0.05)
    assert auth.batches[1] == ("stream", ["adm-3"])
    assert len(router.batches) == 1  # no empty outcome batch was sent


async def test_services_without_the_streams_get_the_same_batches_unary(serve) -> None:  # type: ignore[no-untyped-def]
    auth, router = _Auth(streams=False), _Router(streams=False)
    reports = await serve(auth, router)
    reports.release_admission("key-1", "adm-1")
    reports.report(_outcome("lease-1"))
    await _until(lambda: bool(auth.batches and router.batches))
    assert auth.batches == [("unary", ["adm-1"])] and router.batches == [("unary", ["lease-1"])]
    reports.report(_outcome("lease-2"))  # from now on unary straight away
    await _until(lambda: len(router.batches) == 2)
    assert router.batches[1] == ("unary", ["lease-2"])


async def test_a_release_auth_cannot_take_is_only_logged(serve, caplog: pytest.LogCaptureFixture) -> None:  # type: ignore[no-untyped-def]
    auth, router = _Auth(streams=False, fail=True), _Router(streams=True)
    reports = await serve(auth, router)
    reports.release_admission("key-1", "adm-1")
    await _until(lambda: "admission release failed" in caplog.text)
    assert auth.batches == []
