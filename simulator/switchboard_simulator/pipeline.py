"""The one request pipeline every vendor endpoint runs through: auth → faults → validate → reply.

The pipeline reads and parses the body once, records the request, and then asks the endpoint, in
order, to

1. ``admit`` the caller (route checks such as a required header or query parameter, then the key,
   signature or token); it returns the identity key faults are looked up by;
2. suffer a fault, if one fires (header ``x-simulator-fault``, then the key's fault, then the global
   ones): ``hang`` never answers, ``slow`` delays, status faults answer at once with the endpoint's
   own error (`fault_refusal`), stream faults are handed on to the reply;
3. ``validate`` the request, returning whatever the reply needs;
4. ``reply``, owning the success format and its delivery.

Any stage may raise a `Refusal`: an error answer already in the vendor's format. Vendors therefore
only describe what differs between them; ordering, fault handling, recording and counting are here.
"""

from __future__ import annotations

import abc
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import orjson
from aiohttp import web

from . import delivery, faults
from .faults import Fault
from .metrics import RequestCounter
from .recorder import APPLIED_FAULT, RequestLog
from .settings import VendorConfig

if TYPE_CHECKING:
    from .config import SimulatorConfig


class Refusal(Exception):
    """An error answer in the vendor's own format, decided before any reply byte is sent."""

    status: int

    @abc.abstractmethod
    def parts(self) -> tuple[dict[str, str], bytes]:
        """Headers and body of the answer."""

    def response(self) -> web.Response:
        headers, body = self.parts()
        return web.Response(status=self.status, headers=headers, body=body)


@dataclass(slots=True)
class Exchange:
    """One request on its way through the pipeline: the request, its body as read and as parsed."""

    request: web.Request
    raw: bytes
    body: Any
    bad_json: str | None
    key: str = ""

    @property
    def json_object(self) -> dict[str, Any] | None:
        return self.body if isinstance(self.body, dict) else None


class Endpoint(abc.ABC):
    """One vendor route's behaviour; the pipeline decides when each part runs."""

    #: Label of the request log entries and of the ``api`` metric label.
    api: str
    #: The vendor's config section (its name in `vendors.VENDORS`).
    section: str
    #: False for endpoints that never suffer faults (e.g. token counting).
    faults: bool = True

    def __init__(self, config: SimulatorConfig) -> None:
        self.config = config
        self.vendor: VendorConfig = config.section(self.section)

    @abc.abstractmethod
    def admit(self, ex: Exchange) -> str:
        """Route checks and authentication; returns the caller's key or raises a Refusal."""

    def fault_sources(self, ex: Exchange) -> tuple[Mapping[str, Fault], Sequence[Fault]]:
        """The per-key faults and the global faults this endpoint draws from."""
        return self.vendor.key_faults, self.config.faults

    def streams(self, ex: Exchange) -> bool:
        """Whether the caller asked for a stream (decides what a ``stream_error`` fault does)."""
        body = ex.json_object
        return body is not None and body.get("stream") is True

    @abc.abstractmethod
    def bad_request(self, message: str) -> Refusal:
        """The vendor's 400 with `message` (used for an unusable fault header)."""

    @abc.abstractmethod
    def fault_refusal(self, ex: Exchange, fault: Fault) -> Refusal:
        """The vendor's answer for a status or overloaded fault."""

    @abc.abstractmethod
    def validate(self, ex: Exchange) -> Any:
        """Checks the request the way the vendor does; returns what `reply` needs or raises a Refusal."""

    @abc.abstractmethod
    async def reply(self, ex: Exchange, plan: Any, fault: Fault | None) -> web.StreamResponse:
        """The successful answer (a stream fault such as ``disconnect`` or ``stream_error`` applies here)."""


async def run(endpoint: Endpoint, ex: Exchange) -> web.StreamResponse:
    """The four stages for one request; every Refusal becomes the vendor's error answer."""
    config = endpoint.config
    request = ex.request
    try:
        ex.key = endpoint.admit(ex)
        fault = None
        if endpoint.faults:
            key_faults, global_faults = endpoint.fault_sources(ex)
            header = request.headers.get(faults.FAULT_HEADER) if config.fault_header else None
            try:
                fault = faults.choose(header, ex.key, key_faults, global_faults)
            except faults.FaultSpecError as exc:
                raise endpoint.bad_request(f"{faults.FAULT_HEADER}: {exc}") from None
        if fault is not None:
            request[APPLIED_FAULT] = fault.spec
            if fault.kind == "hang":
                await delivery.hang()
            if fault.answers_early(endpoint.streams(ex)):
                refusal = endpoint.fault_refusal(ex, fault)
                headers, body = refusal.parts()
                return await delivery.send_body(request, refusal.status, headers, body,
                                                delay=config.first_byte_delay)
        plan = endpoint.validate(ex)
        return await endpoint.reply(ex, plan, fault)
    except Refusal as refusal:
        return refusal.response()


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def handler(endpoint: Endpoint, log: RequestLog, counter: RequestCounter) -> Handler:
    """The aiohttp handler for `endpoint`: read and parse the body once, record, run, count."""

    async def handle(request: web.Request) -> web.StreamResponse:
        raw = await request.read()
        body: Any
        try:
            body, bad_json = orjson.loads(raw), None
        except orjson.JSONDecodeError as exc:
            body, bad_json = None, str(exc)
        entry = log.add(endpoint.api, request, body, raw, bad_json is None)
        try:
            response = await run(endpoint, Exchange(request, raw, body, bad_json))
        finally:
            if entry is not None:
                entry["fault"] = request.get(APPLIED_FAULT)
        if entry is not None:
            entry["status"] = response.status
        counter.add(endpoint.api, response.status)
        return response

    return handle
