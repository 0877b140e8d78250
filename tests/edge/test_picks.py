"""The edge's picks over one PickBatches stream: requests waiting together sent together, answers matched by call
id, late answers' leases returned, a broken stream reopened, and unary Pick when the router has no stream."""

import asyncio
from collections.abc import AsyncIterator

import grpc
import pytest

from switchboard.router.v1 import router_pb2, router_pb2_grpc
from switchboard_edge.call_streams import MESSAGE_BYTES
from switchboard_edge.errors import ServiceUnavailable
from switchboard_edge.picks import Picker


class StreamRouter(router_pb2_grpc.RouterServiceServicer):
    """Holds every request of the stream until the test says how to answer."""

    def __init__(self) -> None:
        self.received: asyncio.Queue[router_pb2.PickRequest] = asyncio.Queue()
        self.answers: asyncio.Queue[router_pb2.PickResponse | None] = asyncio.Queue()
        self.streams = 0
        self.batch_sizes: list[int] = []
        self.unary: list[router_pb2.PickRequest] = []

    async def Pick(self, request, context):  # type: ignore[no-untyped-def]
        self.unary.append(request)
        return ok(request, "lease-unary")

    async def PickBatches(self, batches, context):  # type: ignore[no-untyped-def]
        self.streams += 1

        async def read() -> None:
            async for batch in batches:
                self.batch_sizes.append(len(batch.requests))
                for request in batch.requests:
                    self.received.put_nowait(request)

        reading = asyncio.create_task(read())
        try:
            while (answer := await self.answers.get()) is not None:
                yield router_pb2.PickAnswers(responses=[answer])
        finally:
            reading.cancel()


def ok(request: router_pb2.PickRequest, lease: str) -> router_pb2.PickResponse:
    return router_pb2.PickResponse(status=router_pb2.PICK_STATUS_OK, lease_id=lease, call_id=request.call_id,
                                   upstream_model=request.model)


async def serve(*handlers: grpc.GenericRpcHandler) -> tuple[grpc.aio.Server, int]:
    server = grpc.aio.server()
    for handler in handlers:
        server.add_generic_rpc_handlers((handler,))
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    return server, port


@pytest.fixture
async def router() -> AsyncIterator[tuple[StreamRouter, router_pb2_grpc.RouterServiceStub, grpc.aio.Server]]:
    fake = StreamRouter()
    server = grpc.aio.server()
    router_pb2_grpc.add_RouterServiceServicer_to_server(fake, server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        yield fake, router_pb2_grpc.RouterServiceStub(channel), server
    await server.stop(None)


def ask(model: str) -> router_pb2.PickRequest:
    return router_pb2.PickRequest(platforms=["openai"], model=model)


async def test_answers_out_of_order_reach_their_own_picks_on_one_stream(router) -> None:  # type: ignore[no-untyped-def]
    fake, stub, _ = router
    picker = Picker(stub, timeout=5, release=lambda _: None)
    picks = [asyncio.create_task(picker.pick(ask(f"model-{i}"))) for i in range(3)]
    requests = [await fake.received.get() for _ in range(3)]
    assert len({request.call_id for request in requests}) == 3
    for request in reversed(requests):
        fake.answers.put_nowait(ok(request, f"lease-{request.model}"))
    answers = await asyncio.gather(*picks)
    assert [(a.upstream_model, a.lease_id) for a in answers] == [(f"model-{i}", f"lease-model-{i}") for i in range(3)]
    assert fake.streams == 1
    await picker.close()


async def test_picks_waiting_together_travel_in_one_message_and_a_lone_one_at_once(router) -> None:  # type: ignore[no-untyped-def]
    fake, stub, _ = router
    picker = Picker(stub, timeout=5, release=lambda _: None)
    # Asked in one turn of the loop: all five are waiting when the stream takes its first message.
    picks = [asyncio.create_task(picker.pick(ask(f"model-{i}"))) for i in range(5)]
    requests = [await fake.received.get() for _ in range(5)]
    assert fake.batch_sizes == [5]
    for request in requests:
        fake.answers.put_nowait(ok(request, f"lease-{request.model}"))
    assert [a.lease_id for a in await asyncio.gather(*picks)] == [f"lease-model-{i}" for i in range(5)]
    alone = asyncio.create_task(picker.pick(ask("alone")))  # nothing waits for company
    fake.answers.put_nowait(ok(await fake.received.get(), "lease-alone"))
    assert (await alone).lease_id == "lease-alone" and fake.batch_sizes == [5, 1]
    await picker.close()


async def test_picks_too_big_for_one_message_together_travel_in_several(router) -> None:  # type: ignore[no-untyped-def]
    fake, stub, _ = router
    picker = Picker(stub, timeout=5, release=lambda _: None)
    third = MESSAGE_BYTES // 3 - 1000  # three fit in a message, a fourth does not
    picks = [asyncio.create_task(picker.pick(ask(f"{i}" + "m" * third))) for i in range(5)]
    requests = [await fake.received.get() for _ in range(5)]
    assert fake.batch_sizes == [3, 2]
    for request in requests:
        fake.answers.put_nowait(ok(request, f"lease-{request.model[0]}"))
    assert [a.lease_id for a in await asyncio.gather(*picks)] == [f"lease-{i}" for i in range(5)]
    await picker.close()


async def test_a_pick_too_big_for_a_message_of_its_own_goes_alone_as_a_unary_call(router) -> None:  # type: ignore[no-untyped-def]
    fake, stub, _ = router
    picker = Picker(stub, timeout=5, release=lambda _: None)
    answer = await picker.pick(ask("m" * (MESSAGE_BYTES + 1)))
    assert answer.lease_id == "lease-unary" and len(fake.unary) == 1 and fake.batch_sizes == []
    following = asyncio.create_task(picker.pick(ask("small")))  # the stream still serves the others
    fake.answers.put_nowait(ok(await fake.received.get(), "lease-small"))
    assert (await following).lease_id == "lease-small"
    await picker.close()


async def test_an_answer_after_the_timeout_has_its_lease_returned(router) -> None:  # type: ignore[no-untyped-def]
    fake, stub, _ = router
    returned: list[router_pb2.PickResponse] = []
    picker = Picker(stub, timeout=0.2, release=returned.append)
    with pytest.raises(ServiceUnavailable):
        await picker.pick(ask("slow"))
    late = await fake.received.get()
    fake.answers.put_nowait(ok(late, "lease-late"))
    following = asyncio.create_task(picker.pick(ask("next")))
    request = await fake.received.get()
    fake.answers.put_nowait(ok(request, "lease-next"))
    assert (await following).lease_id == "lease-next"
    assert [response.lease_id for response in returned] == ["lease-late"]
    await picker.close()


async def test_an_invalid_pick_is_refused_and_the_stream_stays_open(router) -> None:  # type: ignore[no-untyped-def]
    fake, stub, _ = router
    picker = Picker(stub, timeout=5, release=lambda _: None)
    refused = asyncio.create_task(picker.pick(ask("")))
    request = await fake.received.get()
    fake.answers.put_nowait(router_pb2.PickResponse(status=router_pb2.PICK_STATUS_INVALID, call_id=request.call_id,
                                                    message="PickRequest.model must not be empty"))
    with pytest.raises(ServiceUnavailable):
        await refused
    following = asyncio.create_task(picker.pick(ask("m")))
    fake.answers.put_nowait(ok(await fake.received.get(), "lease-1"))
    assert (await following).lease_id == "lease-1" and fake.streams == 1
    await picker.close()


async def test_a_broken_stream_fails_its_picks_and_the_next_pick_opens_a_new_one() -> None:
    fake = StreamRouter()
    server = grpc.aio.server()
    router_pb2_grpc.add_RouterServiceServicer_to_server(fake, server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        picker = Picker(router_pb2_grpc.RouterServiceStub(channel), timeout=5, release=lambda _: None)
        waiting = asyncio.create_task(picker.pick(ask("m")))
        await fake.received.get()
        await server.stop(None)  # the router goes away with a pick in flight
        with pytest.raises(ServiceUnavailable):
            await waiting

        fake = StreamRouter()
        server = grpc.aio.server()
        router_pb2_grpc.add_RouterServiceServicer_to_server(fake, server)
        server.add_insecure_port(f"127.0.0.1:{port}")
        await server.start()
        request = None
        for _ in range(40):  # requests keep coming; one reaches the router once the channel has reconnected
            again = asyncio.create_task(picker.pick(ask("m")))
            try:
                request = await asyncio.wait_for(fake.received.get(), 0.5)
                break
            except TimeoutError:
                with pytest.raises(ServiceUnavailable):
                    await again
        assert request is not None, "no pick reached the restarted router"
        fake.answers.put_nowait(ok(request, "lease-after-restart"))
        assert (await again).lease_id == "lease-after-restart"
        await picker.close()
    await server.stop(None)


async def test_a_router_without_the_stream_is_asked_with_unary_calls() -> None:
    unary_calls = 0

    async def pick(request: router_pb2.PickRequest, context: grpc.aio.ServicerContext) -> router_pb2.PickResponse:
        nonlocal unary_calls
        unary_calls += 1
        return ok(request, f"lease-{unary_calls}")

    only_unary = grpc.method_handlers_generic_handler("switchboard.router.v1.RouterService", {
        "Pick": grpc.unary_unary_rpc_method_handler(
            pick, request_deserializer=router_pb2.PickRequest.FromString,
            response_serializer=router_pb2.PickResponse.SerializeToString)})
    server, port = await serve(only_unary)
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        picker = Picker(router_pb2_grpc.RouterServiceStub(channel), timeout=5, release=lambda _: None)
        answers = await asyncio.gather(*(picker.pick(ask("m")) for _ in range(3)))
        assert sorted(answer.lease_id for answer in answers) == ["lease-1", "lease-2", "lease-3"]
        assert (await picker.pick(ask("m"))).lease_id == "lease-4"
        await picker.close()
    await server.stop(None)
