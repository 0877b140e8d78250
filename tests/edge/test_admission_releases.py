"""Concurrency admissions end with their requests, batched: the releases of one outcome window go to auth in one
`ReleaseAdmissions` call (one call per request cost auth as much CPU as the admission itself)."""

import asyncio

import grpc
import pytest

from switchboard.auth.v1 import auth_pb2
from switchboard.router.v1 import router_pb2
from switchboard_edge.reports import Reports


class _Auth:
    def __init__(self, fail: bool = False) -> None:
        self.calls: list[auth_pb2.ReleaseAdmissionsRequest] = []
        self.fail = fail

    async def ReleaseAdmissions(self, request: auth_pb2.ReleaseAdmissionsRequest,  # noqa: N802 - gRPC's name
                                timeout: float) -> auth_pb2.ReleaseAdmissionsResponse:
        self.calls.append(request)
        if self.fail:
            raise grpc.aio.AioRpcError(grpc.StatusCode.UNAVAILABLE, grpc.aio.Metadata(), grpc.aio.Metadata())
        return auth_pb2.ReleaseAdmissionsResponse()


class _Router:
    def __init__(self) -> None:
        self.calls: list[router_pb2.ReportOutcomesRequest] = []

    async def ReportOutcomes(self, request: router_pb2.ReportOutcomesRequest,  # noqa: N802 - gRPC's name
                             timeout: float) -> router_pb2.ReportOutcomeResponse:
        self.calls.append(request)
        return router_pb2.ReportOutcomeResponse()


def _reports(auth: _Auth, router: _Router) -> Reports:
    return Reports(auth, router, rpc_timeout=1.0, usage_flush_seconds=60, usage_batch_size=100,  # type: ignore[arg-type]
                   outcome_flush_seconds=0.01)


async def _settled(*lists: list[object]) -> None:
    for _ in range(100):
        await asyncio.sleep(0.02)
        if all(lists):
            return


async def test_releases_within_one_window_leave_in_one_call_with_the_outcomes() -> None:
    auth, router = _Auth(), _Router()
    reports = _reports(auth, router)
    reports.release_admission("key-1", "adm-1")
    reports.release_admission("key-2", "adm-2")
    reports.report(router_pb2.ReportOutcomeRequest(lease_id="lease-1", outcome=router_pb2.OUTCOME_SUCCESS))
    await _settled(auth.calls, router.calls)
    assert len(auth.calls) == 1
    assert [(a.key_id, a.admission_id) for a in auth.calls[0].admissions] == [("key-1", "adm-1"), ("key-2", "adm-2")]
    assert [o.lease_id for o in router.calls[0].outcomes] == ["lease-1"]
    assert router.calls and len(router.calls) == 1

    reports.release_admission("key-1", "adm-3")  # a later window: a call of its own
    await _settled(auth.calls[1:])
    assert [[a.admission_id for a in call.admissions] for call in auth.calls] == [["adm-1", "adm-2"], ["adm-3"]]
    assert len(router.calls) == 1  # no empty outcome batch was sent
    await reports.close()


async def test_no_admission_nothing_sent_and_a_failed_release_is_only_logged(caplog: pytest.LogCaptureFixture) -> None:
    auth, router = _Auth(fail=True), _Router()
    reports = _reports(auth, router)
    reports.release_admission("key-1", "")  # a key without a concurrency limit has no admission
    await asyncio.sleep(0.05)
    assert auth.calls == []
    reports.release_admission("key-1", "adm-1")
    await _settled(auth.calls)
    await asyncio.sleep(0.02)
    assert len(auth.calls) == 1
    assert "admission release failed" in caplog.text
    await reports.close()
