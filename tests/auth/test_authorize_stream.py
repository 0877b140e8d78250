"""AuthorizeBatches: Authorize's answers over one long-lived stream, in batches (real grpc.aio server, generated
stub)."""

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path

import grpc

from switchboard.auth.v1 import auth_pb2, auth_pb2_grpc
from switchboard_auth.keys import KeyHasher, KeyLimits, create_key
from switchboard_auth.limits import LimitCheck, MemoryLimiter
from switchboard_auth.service import AuthServicer
from switchboard_auth.sqlite_store import SqliteKeyStore, SqliteLedger

from .auth_testing import PEPPER, Harness

ALLOW, DENY = auth_pb2.DECISION_ALLOW, auth_pb2.DECISION_DENY


def _request(credential: str, call_id: int) -> auth_pb2.AuthorizeRequest:
    return auth_pb2.AuthorizeRequest(credential=credential, platforms=["openai"], model="gpt-4o", call_id=call_id)


async def test_each_answer_echoes_its_call_id_and_is_the_unary_decision(harness: Harness) -> None:
    good, record = await harness.create("streamed")
    requests = [_request(good, 7), _request("sk-sb-" + "q" * 40, 8), _request("", 9)]
    call = harness.stub.AuthorizeBatches(iter([auth_pb2.AuthorizeBatch(requests=requests)]))
    answers = {}
    async for message in call:
        answers.update((answer.call_id, answer) for answer in message.responses)
        if len(answers) == len(requests):
            break
    call.cancel()
    assert answers[7].decision == ALLOW and answers[7].identity.key_id == record.key_id
    assert (answers[8].decision, answers[8].reason) == (DENY, auth_pb2.REASON_KEY_INVALID)
    assert (answers[9].decision, answers[9].reason) == (DENY, auth_pb2.REASON_KEY_MISSING)
    unary = await harness.authorize(good)
    assert unary.decision == ALLOW and unary.allowed_platforms == answers[7].allowed_platforms


async def test_a_store_failure_is_answered_unavailable_and_the_stream_stays_open(harness: Harness) -> None:
    good, _ = await harness.create("streamed")
    outbox: asyncio.Queue[auth_pb2.AuthorizeRequest] = asyncio.Queue()

    async def requests() -> AsyncIterator[auth_pb2.AuthorizeBatch]:
        while True:
            yield auth_pb2.AuthorizeBatch(requests=[await outbox.get()])

    call = harness.stub.AuthorizeBatches(requests())

    async def answer() -> auth_pb2.AuthorizeResponse:
        message = await call.read()
        assert len(message.responses) == 1
        return message.responses[0]

    outbox.put_nowait(_request(good, 1))
    first = await answer()
    assert first.decision == ALLOW and not first.unavailable
    await harness.keys.close()
    outbox.put_nowait(_request("sk-sb-" + "r" * 40, 2))  # not cached: needs the store
    second = await answer()
    assert second.call_id == 2 and second.unavailable and second.message == "key store unavailable"
    assert second.decision == auth_pb2.DECISION_UNSPECIFIED
    outbox.put_nowait(_request(good, 3))  # cached: still decided on the same stream
    third = await answer()
    assert third.call_id == 3 and third.decision == ALLOW
    call.cancel()


class _GatedLimiter(MemoryLimiter):
    """Admits only once `gate` is set: an answer that is decided after its caller has gone."""

    def __init__(self) -> None:
        super().__init__()
        self.gate = asyncio.Event()
        self.waiting = asyncio.Event()

    async def admit(self, key_id: str, limits: KeyLimits, now: float) -> LimitCheck:
        self.waiting.set()
        await self.gate.wait()
        return await super().admit(key_id, limits, now)


async def test_an_admission_decided_after_its_caller_left_is_released(db_path: Path) -> None:
    keys, ledger = await SqliteKeyStore.open(str(db_path)), await SqliteLedger.open(str(db_path))
    limiter = _GatedLimiter()
    servicer = AuthServicer(keys, ledger, hasher=KeyHasher(PEPPER), cache_ttl_seconds=2, cache_max_entries=10,
                            limiter=limiter)
    server = grpc.aio.server()
    servicer.register(server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{port}")
    try:
        good, record = await create_key(keys, "one-at-a-time", pepper=PEPPER, limits=KeyLimits(concurrency=1))
        stub = auth_pb2_grpc.AuthServiceStub(channel)
        call = stub.AuthorizeBatches(iter([auth_pb2.AuthorizeBatch(requests=[_request(good, 1)])]))
        await asyncio.wait_for(limiter.waiting.wait(), 5)
        call.cancel()  # the caller leaves while its request is being decided
        await asyncio.sleep(0.1)
        limiter.gate.set()  # now it is admitted, with nobody to deliver it to
        for _ in range(100):
            await asyncio.sleep(0.02)
            check = await limiter.peek(record.key_id, KeyLimits(concurrency=1), time.time())
            if check.allowed and not any(s.name == "concurrency" and s.remaining == 0 for s in check.statuses):
                break
        else:
            raise AssertionError("the undelivered admission still holds the key's only slot")
        answer = await stub.Authorize(_request(good, 0), timeout=5)
        assert answer.decision == ALLOW and answer.admission_id
    finally:
        await channel.close()
        await server.stop(None)
        await ledger.close()
        await keys.close()


async def test_admission_releases_on_their_stream_free_the_slot_and_echo_the_call_id(harness: Harness) -> None:
    good, _ = await harness.create("one-at-a-time", limits=KeyLimits(concurrency=1))
    held = await harness.authorize(good)
    assert held.decision == ALLOW and held.admission_id
    assert (await harness.authorize(good)).reason == auth_pb2.REASON_CONCURRENCY_LIMITED
    release = auth_pb2.ReleaseAdmissionsRequest(call_id=5, admissions=[auth_pb2.ReleaseAdmissionsRequest.Admission(
        key_id=held.identity.key_id, admission_id=held.admission_id)])
    answers = [answer.call_id async for answer in harness.stub.ReleaseAdmissionStream(iter([release]))]
    assert answers == [5]
    assert (await harness.authorize(good)).decision == ALLOW
