"""The edge's Prometheus metrics (names from shared/design/METRICS.md).

Keys and credentials never appear in labels; accounts appear by name only.
"""

from typing import Any, Generic, TypeVar

from prometheus_client import Counter, Gauge, Histogram
from prometheus_client.metrics import MetricWrapperBase

Metric = TypeVar("Metric", bound=MetricWrapperBase)

_LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120)
_OVERHEAD_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.002, 0.003, 0.005, 0.0075, 0.01, 0.025, 0.05, 0.1, 0.5)
# OpenTelemetry GenAI semconv token buckets: 1, 4, 16, ... 4^13.
_TOKEN_BUCKETS = tuple(4**i for i in range(14))

REQUESTS = Counter(
    "switchboard_edge_requests_total",
    "Client requests answered by the edge.",
    ["route", "client_format", "upstream_platform", "status_code"],
)
USAGE_BACKLOG = Gauge(
    "switchboard_edge_usage_backlog_records",
    "Usage records settled at this edge and not yet taken by auth (in memory and in the spool).",
)
DEGRADED_ANSWERS = Counter(
    "switchboard_edge_degraded_answers_total",
    "Requests admitted from the last answers of a service that could not be reached (auth or router).",
    ["service"],
)
ACTIVE_STREAMS = Gauge(
    "switchboard_edge_active_streams", "Streams currently being relayed.", ["client_format"]
)
OVERHEAD = Histogram(
    "switchboard_edge_overhead_seconds",
    "Time spent in the gateway itself, excluding waiting for the upstream.",
    ["route"],
    buckets=_OVERHEAD_BUCKETS,
)
REQUEST_DURATION = Histogram(
    "gen_ai_server_request_duration_seconds",
    "Whole request duration as the client sees it.",
    ["gen_ai_operation_name", "gen_ai_provider_name", "gen_ai_request_model", "error_type"],
    buckets=_LATENCY_BUCKETS,
)
TIME_TO_FIRST_TOKEN = Histogram(
    "gen_ai_server_time_to_first_token_seconds",
    "Time from request to the first streamed byte of the upstream's answer.",
    ["gen_ai_provider_name", "gen_ai_request_model"],
    buckets=_LATENCY_BUCKETS,
)
TIME_PER_OUTPUT_TOKEN = Histogram(
    "gen_ai_server_time_per_output_token_seconds",
    "Streaming time after the first token, per output token.",
    ["gen_ai_provider_name", "gen_ai_request_model"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 1),
)
TOKEN_USAGE = Histogram(
    "gen_ai_client_token_usage",
    "Tokens per request, by type.",
    ["gen_ai_operation_name", "gen_ai_provider_name", "gen_ai_request_model", "gen_ai_response_model",
     "gen_ai_token_type"],
    buckets=_TOKEN_BUCKETS,
)
REASONING_RESENDS = Counter(
    "switchboard_reasoning_resends_total",
    "Requests sent once more without the history's reasoning, which the upstream refused as made elsewhere.",
    ["platform"],
)
UPSTREAM_FAILOVERS = Counter(
    "switchboard_upstream_failovers_total",
    "Upstream attempts abandoned for another account before the first byte.",
    ["platform", "reason"],
)
STREAM_TRUNCATIONS = Counter(
    "switchboard_stream_truncations_total", "Streams that ended before the upstream finished them.", ["platform"]
)
USAGE_DROPPED = Counter(
    "switchboard_edge_usage_records_dropped_total",
    "Usage records dropped because auth could not take them and the buffer was full.",
)


class ModelLabels:
    """Model names as label values, from a bounded set.

    A model becomes a label value once an account served it (an upstream answered it successfully);
    at most `limit` of them. Anything else (refused requests, models nobody served, names past the
    limit) is "other", so no client can grow the series count.
    """

    OTHER = "other"

    def __init__(self, limit: int) -> None:
        self._limit = limit
        self._known: set[str] = set()

    def label(self, model: str, served: bool) -> str:
        if model in self._known:
            return model
        if served and len(self._known) < self._limit and 0 < len(model) <= 128:
            self._known.add(model)
            return model
        return self.OTHER


class Children(Generic[Metric]):
    """A labelled metric's children, found in a plain dict by their label values.

    prometheus_client's `labels()` checks its arguments and takes a lock on every call; the request path
    asks for the same few children over and over. Label values must already be bounded (see `ModelLabels`).
    """

    __slots__ = ("_metric", "_children")

    def __init__(self, metric: Metric) -> None:
        self._metric = metric
        self._children: dict[tuple[str, ...], Any] = {}

    def __call__(self, *values: str) -> Metric:
        child = self._children.get(values)
        if child is None:
            child = self._children[values] = self._metric.labels(*values)
        return child
