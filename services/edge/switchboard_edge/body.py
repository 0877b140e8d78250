"""Reading request bodies: the per-request size limit and the edge-wide memory budget.

A body is read only after the key is known to be valid, and every byte held
counts against one budget shared by all requests in flight, so neither a flood
of big uploads with bad keys nor many big uploads at once can exhaust memory:
a body that would pass the budget is refused with 503 and `retry-after`.
"""

from starlette.requests import ClientDisconnect, Request

from switchboard_edge import inbound
from switchboard_edge.errors import ServiceUnavailable


class ClientLeft(Exception):
    """The client went away while its body was being read."""


class BodyBudget:
    """Bytes of request bodies held at once, across every request in flight."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.held = 0

    def take(self, size: int) -> None:
        if self.held + size > self.limit:
            raise ServiceUnavailable(
                "The gateway is receiving too much request data at once; retry shortly.", retry_after=1.0
            )
        self.held += size

    def give_back(self, size: int) -> None:
        self.held -= size


async def read_body(request: Request, limit: int, budget: BodyBudget) -> tuple[bytes, int]:
    """The whole body and the bytes it holds in the budget (which the caller gives back when done).

    Refused as soon as it passes `limit` (chunked uploads too) or the budget runs out; whatever was
    taken from the budget is given back on refusal.
    """
    chunks: list[bytes] = []
    size = 0
    try:
        async for chunk in request.stream():
            budget.take(len(chunk))
            size += len(chunk)
            if size > limit:
                raise inbound.too_large(limit)
            chunks.append(chunk)
    except ClientDisconnect:
        budget.give_back(size)
        raise ClientLeft from None
    except BaseException:
        budget.give_back(size)
        raise
    return b"".join(chunks), size
