"""Usage as the vendors report it (usage.py): every billed token kind, from bodies and from streams.

The payloads are shaped like the recordings in shared/vendor-recordings: Anthropic's message_start and
non-stream bodies carry `usage.cache_creation` (the 5-minute / 1-hour split of the cache writes), its
message_delta repeats the totals without the split and, on newer models, adds
`output_tokens_details.thinking_tokens`.
"""

from typing import Any

import pytest
from prometheus_client import CollectorRegistry, Counter

from switchboard_edge.metrics import Children
from switchboard_edge.usage import Usage, from_openai, merge_anthropic


def anthropic_usage(input_tokens: int = 17, output_tokens: int = 15, cache_read: int = 0, cache_write: int = 0,
                    **extra: Any) -> dict[str, Any]:
    return {"input_tokens": input_tokens, "cache_creation_input_tokens": cache_write,
            "cache_read_input_tokens": cache_read, **extra, "output_tokens": output_tokens,
            "service_tier": "standard"}


def split(five_minutes: int, one_hour: int) -> dict[str, int]:
    return {"ephemeral_5m_input_tokens": five_minutes, "ephemeral_1h_input_tokens": one_hour}


def merged(*reports: Any) -> Usage:
    usage = Usage()
    for reported in reports:
        merge_anthropic(usage, reported)
    return usage


@pytest.mark.parametrize(
    ("reports", "expected"),
    [
        pytest.param(
            [anthropic_usage(cache_creation=split(0, 0))],
            Usage(input_tokens=17, output_tokens=15),
            id="nonstream-no-caching",
        ),
        pytest.param(
            [anthropic_usage(input_tokens=21, cache_read=3000, cache_write=1500, cache_creation=split(1000, 500))],
            Usage(input_tokens=21, output_tokens=15, cache_read_input_tokens=3000, cache_creation_input_tokens=1500,
                  cache_creation_5m_input_tokens=1000, cache_creation_1h_input_tokens=500),
            id="nonstream-both-durations",
        ),
        pytest.param(
            [anthropic_usage(cache_write=2048, cache_creation=split(0, 2048))],
            Usage(input_tokens=17, output_tokens=15, cache_creation_input_tokens=2048,
                  cache_creation_1h_input_tokens=2048),
            id="nonstream-one-hour-only",
        ),
        pytest.param(
            [anthropic_usage(cache_write=1500)],
            Usage(input_tokens=17, output_tokens=15, cache_creation_input_tokens=1500),
            id="total-without-split",
        ),
        pytest.param(
            [
                anthropic_usage(input_tokens=46, output_tokens=3, cache_write=1500, cache_creation=split(1000, 500),
                                inference_geo="not_available"),
                anthropic_usage(input_tokens=46, output_tokens=84, cache_write=1500),
            ],
            Usage(input_tokens=46, output_tokens=84, cache_creation_input_tokens=1500,
                  cache_creation_5m_input_tokens=1000, cache_creation_1h_input_tokens=500),
            id="stream-split-in-message-start-kept-through-message-delta",
        ),
        pytest.param(
            [
                anthropic_usage(output_tokens=1, cache_write=100, cache_creation=split(100, 0)),
                anthropic_usage(output_tokens=40, cache_write=1500, cache_creation=split(1000, 500)),
            ],
            Usage(input_tokens=17, output_tokens=40, cache_creation_input_tokens=1500,
                  cache_creation_5m_input_tokens=1000, cache_creation_1h_input_tokens=500),
            id="stream-message-delta-split-overrides",
        ),
        pytest.param(
            [
                {"input_tokens": 598, "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0,
                 "cache_creation": split(0, 0), "output_tokens": 8},
                {"input_tokens": 598, "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0,
                 "output_tokens": 92, "output_tokens_details": {"thinking_tokens": 53}},
            ],
            Usage(input_tokens=598, output_tokens=92, reasoning_tokens=53),
            id="stream-thinking-tokens-are-reasoning",
        ),
        pytest.param(
            [{"output_tokens": 40}],
            Usage(output_tokens=40),
            id="partial-report",
        ),
    ],
)
def test_anthropic_usage_is_read_with_every_billed_kind(reports: list[Any], expected: Usage) -> None:
    assert merged(*reports) == expected


def test_a_later_report_without_a_field_keeps_the_earlier_value() -> None:
    usage = merged(anthropic_usage(input_tokens=250, output_tokens=1, cache_read=7, cache_write=30,
                                   cache_creation=split(10, 20)),
                   {"output_tokens": 12})
    assert usage == Usage(input_tokens=250, output_tokens=12, cache_read_input_tokens=7,
                          cache_creation_input_tokens=30, cache_creation_5m_input_tokens=10,
                          cache_creation_1h_input_tokens=20)


@pytest.mark.parametrize(
    "reported",
    [
        pytest.param(anthropic_usage(cache_write=100, cache_creation=split(80, 40)), id="split-above-total"),
        pytest.param(anthropic_usage(cache_creation=split(0, 5)), id="split-without-total"),
    ],
)
def test_a_split_that_does_not_fit_the_total_is_dropped_not_sent(reported: dict[str, Any]) -> None:
    usage = merged(reported)
    assert (usage.cache_creation_5m_input_tokens, usage.cache_creation_1h_input_tokens) == (0, 0)
    assert usage.cache_creation_input_tokens == reported["cache_creation_input_tokens"]


@pytest.mark.parametrize(
    "reported",
    [
        pytest.param(None, id="none"),
        pytest.param([], id="list"),
        pytest.param({"input_tokens": True, "output_tokens": "9", "cache_read_input_tokens": -1,
                      "cache_creation_input_tokens": 1.5}, id="bad-counts"),
        pytest.param({"cache_creation": [1, 2]}, id="cache-creation-not-an-object"),
        pytest.param({"cache_creation": {"ephemeral_5m_input_tokens": None, "ephemeral_1h_input_tokens": False}},
                     id="bad-split"),
        pytest.param({"output_tokens_details": {"thinking_tokens": "many"}}, id="bad-thinking"),
    ],
)
def test_anthropic_values_that_are_not_counts_leave_usage_as_it_was(reported: Any) -> None:
    before = Usage(input_tokens=5, output_tokens=6, cache_read_input_tokens=7, cache_creation_input_tokens=8,
                   reasoning_tokens=2, cache_creation_5m_input_tokens=3, cache_creation_1h_input_tokens=4)
    usage = Usage(**{name: getattr(before, name) for name in Usage.__slots__})
    merge_anthropic(usage, reported)
    assert usage == before


@pytest.mark.parametrize(
    ("reported", "expected"),
    [
        pytest.param(
            {"prompt_tokens": 2006, "completion_tokens": 300, "total_tokens": 2306,
             "prompt_tokens_details": {"cached_tokens": 1920, "audio_tokens": 0},
             "completion_tokens_details": {"reasoning_tokens": 192, "audio_tokens": 0,
                                           "accepted_prediction_tokens": 0, "rejected_prediction_tokens": 0}},
            Usage(input_tokens=86, output_tokens=300, cache_read_input_tokens=1920, reasoning_tokens=192),
            id="cached-and-reasoning",
        ),
        pytest.param(
            {"prompt_tokens": 20, "completion_tokens": 5, "total_tokens": 25},
            Usage(input_tokens=20, output_tokens=5),
            id="no-details",
        ),
        pytest.param(
            {"prompt_tokens": 20, "completion_tokens": 5, "prompt_tokens_details": None,
             "completion_tokens_details": None},
            Usage(input_tokens=20, output_tokens=5),
            id="null-details",
        ),
        pytest.param(None, Usage(), id="no-usage"),
    ],
)
def test_openai_usage_splits_cached_prompt_tokens_out_of_the_input(reported: Any, expected: Usage) -> None:
    usage = from_openai(reported)
    assert usage == expected
    assert (usage.cache_creation_input_tokens, usage.cache_creation_5m_input_tokens,
            usage.cache_creation_1h_input_tokens) == (0, 0, 0)  # OpenAI bills no cache writes


def test_usage_with_only_cache_writes_is_not_empty() -> None:
    assert Usage().is_empty()
    assert not Usage(cache_creation_input_tokens=10, cache_creation_1h_input_tokens=10).is_empty()


def test_metric_children_are_the_metrics_own_and_found_once() -> None:
    registry = CollectorRegistry()
    counter = Counter("children_probe_total", "probe", ["route", "status"], registry=registry)
    children = Children(counter)
    children("/a", "200").inc()
    children("/a", "200").inc(2)
    children("/b", "500").inc()
    assert children("/a", "200") is counter.labels("/a", "200")
    assert registry.get_sample_value("children_probe_total", {"route": "/a", "status": "200"}) == 3
    assert registry.get_sample_value("children_probe_total", {"route": "/b", "status": "500"}) == 1
