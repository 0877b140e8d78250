"""Proto messages the edge builds from an exchange: outcome reports for the router, usage records for auth."""

import time

from google.protobuf.timestamp_pb2 import Timestamp

from switchboard.auth.v1 import auth_pb2
from switchboard.router.v1 import router_pb2
from switchboard_edge.durations import duration
from switchboard_edge.exchange import ERROR, Exchange


def outcome(exchange: Exchange, result: int, status: int, error_type: str) -> router_pb2.ReportOutcomeRequest:
    """The outcome of the exchange's current attempt (which returns its lease)."""
    pick = exchange.admission.pick  # type: ignore[union-attr]
    return router_pb2.ReportOutcomeRequest(
        lease_id=pick.lease_id,
        account_id=pick.account.id,
        outcome=result,
        status_code=status,
        time_to_first_byte=duration(exchange.first_byte),
        duration=duration(time.perf_counter() - exchange.upstream_started),
        error_type=error_type,
        session_hint=exchange.session,
        upstream_headers=exchange.upstream_hints,
    )


def usage_record(exchange: Exchange, status: int, truncated: bool, elapsed: float) -> auth_pb2.UsageRecord:
    admission = exchange.admission
    assert admission is not None
    whole, nanos = divmod(int(exchange.started_wall * 1e9), 1_000_000_000)
    started = Timestamp(seconds=whole, nanos=nanos)
    usage = exchange.usage
    return auth_pb2.UsageRecord(
        request_id=exchange.request_id,
        key_id=admission.identity.key_id,
        platform=exchange.platform,
        account_id=admission.pick.account.id,
        model=exchange.model,
        upstream_model=exchange.upstream_model,
        usage=auth_pb2.TokenUsage(
            input_tokens=usage.input_tokens,
            output_tokens=usage.output_tokens,
            cache_read_input_tokens=usage.cache_read_input_tokens,
            cache_creation_input_tokens=usage.cache_creation_input_tokens,
            reasoning_tokens=usage.reasoning_tokens,
            cache_creation_5m_input_tokens=usage.cache_creation_5m_input_tokens,
            cache_creation_1h_input_tokens=usage.cache_creation_1h_input_tokens,
        ),
        status_code=status,
        stream=exchange.stream,
        truncated=truncated,
        started_at=started,
        duration=duration(elapsed),
        time_to_first_token=duration(exchange.first_byte),
        client_format=exchange.endpoint.client_format.value,
        session_id=exchange.session,
        usage_estimated=exchange.usage_estimated,
        end_reason=exchange.end_reason or ERROR,
        admission_id=admission.admission_id,
        client_app=exchange.client_app,
    )
