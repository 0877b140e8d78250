"""The edge's usage backlog gauge: records settled here that auth has not taken yet."""

import grpc
from prometheus_client import REGISTRY

from switchboard.auth.v1 import auth_pb2, auth_pb2_grpc
from switchboard.router.v1 import router_pb2_grpc
from switchboard_edge.reports import Reports

from .control_fakes import FakeAuth


async def test_the_usage_backlog_gauge_counts_records_auth_has_not_taken() -> None:
    auth = FakeAuth()
    auth.available = False  # auth takes nothing
    server = grpc.aio.server()
    auth_pb2_grpc.add_AuthServiceServicer_to_server(auth, server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        reports = Reports(auth_pb2_grpc.AuthServiceStub(channel), router_pb2_grpc.RouterServiceStub(channel),
                          rpc_timeout=5, usage_flush_seconds=3600, usage_batch_size=100)
        for n in range(3):
            reports.record_usage(auth_pb2.UsageRecord(request_id=f"r{n}", key_id="k1"))
        assert REGISTRY.get_sample_value("switchboard_edge_usage_backlog_records") == 3
        await reports.flush_usage()  # refused: the records stay
        assert REGISTRY.get_sample_value("switchboard_edge_usage_backlog_records") == 3
        auth.available = True
        await reports.flush_usage()
        assert REGISTRY.get_sample_value("switchboard_edge_usage_backlog_records") == 0
    await server.stop(None)
