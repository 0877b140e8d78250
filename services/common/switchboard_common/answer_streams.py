"""The server side of a call stream: one long-lived bidirectional stream carrying many request/answer pairs.

A round trip on an open stream costs about a third of a unary call's (latency and CPU at both ends, measured by
the router bench), and the edge asks once per request. Each request carries a `call_id` its answer echoes;
requests are answered concurrently, in the order their answers are ready. Answers the stream could not deliver
(the caller went away) are handed to `undelivered`, so what they granted (a lease, an admission) goes back.

`answer_batches` serves the batched form (a message holds many requests, an answer message every answer ready
together): a stream message costs both ends about as much whatever it holds, so under load this is most of what
a call costs. `answer_stream` serves one request per message.
"""

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
from typing import Protocol, TypeVar


class _Call(Protocol):
    call_id: int


Request = TypeVar("Request", bound=_Call)
Answer = TypeVar("Answer", bound=_Call)
Message = TypeVar("Message")

# At most this many answers in one message (a message stays far below gRPC's 4 MiB limit).
BATCH_LIMIT = 256


async def answer_stream(requests: AsyncIterator[Request], answer: Callable[[Request], Awaitable[Answer]],
                        undelivered: Callable[[Answer], None]) -> AsyncIterator[Answer]:
    """Yields `answer(request)` for each request, its `call_id` set, as each is ready."""
    async def singly() -> AsyncIterator[Sequence[Request]]:
        async for request in requests:
            yield (request,)

    async for ready in _answers(singly(), answer, undelivered, 1):
        yield ready[0]


async def answer_batches(batches: AsyncIterator[Message],
                         requests_of: Callable[[Message], Awaitable[Iterable[Request]]],
                         answer: Callable[[Request], Awaitable[Answer]], undelivered: Callable[[Answer], None],
                         pack: Callable[[list[Answer]], Message]) -> AsyncIterator[Message]:
    """Yields `pack(answers)` of the answers ready together (each `answer(request)`, its `call_id` set) for the
    requests of each of `batches` (`await requests_of(batch)`, which may first act on the rest of the batch)."""
    async def unpacked() -> AsyncIterator[Iterable[Request]]:
        async for batch in batches:
            yield await requests_of(batch)

    async for ready in _answers(unpacked(), answer, undelivered, BATCH_LIMIT):
        yield pack(ready)


async def _answers(requests: AsyncIterator[Iterable[Request]], answer: Callable[[Request], Awaitable[Answer]],
                   undelivered: Callable[[Answer], None], most: int) -> AsyncIterator[list[Answer]]:
    """Lists of up to `most` answers, each list what was ready when the last was taken."""
    ready: asyncio.Queue[Answer | None] = asyncio.Queue()
    answering: set[asyncio.Task[None]] = set()

    async def one(request: Request) -> None:
        response = await answer(request)
        response.call_id = request.call_id
        ready.put_nowait(response)

    async def read() -> None:
        async for batch in requests:
            for request in batch:
                task = asyncio.create_task(one(request))
                answering.add(task)
                task.add_done_callback(answering.discard)
        if answering:
            await asyncio.wait(answering)
        ready.put_nowait(None)

    def return_undelivered() -> None:
        while not ready.empty():
            response = ready.get_nowait()
            if response is not None:
                undelivered(response)

    reading = asyncio.create_task(read())
    finished = False
    try:
        while not finished:
            response = await ready.get()
            if response is None:
                break
            answers = [response]
            while len(answers) < most and not ready.empty():
                following = ready.get_nowait()
                if following is None:
                    finished = True
                    break
                answers.append(following)
            yield answers
    finally:
        reading.cancel()
        # The caller is gone: what was answered for it and not delivered goes back.
        for task in answering:
            task.add_done_callback(lambda _: return_undelivered())
        return_undelivered()
