"""The arithmetic of `make bench` and `make bench-peers`, without servers: percentiles and ratios, CPU and memory
from /proc texts, the gaps and bunched events that show a relay holding events back, where each target's
requests go, the issue's summary table, and LiteLLM's config."""

import json
import math
from pathlib import Path

import pytest
import yaml

from switchboard_stack import bench, bench_peers
from switchboard_stack.bench_load import Result, bursts, gaps, percentile, ratio
from switchboard_stack.bench_proc import (
    TICKS_PER_SECOND,
    CpuReading,
    cpu_ms_per_request,
    cpu_seconds,
    descendants,
    rss_bytes,
    stat_cpu_seconds,
    status_rss_bytes,
)
from switchboard_stack.launcher import SIMULATOR_ANTHROPIC_KEY, SIMULATOR_OPENAI_KEY


def test_percentile_is_the_nearest_rank_below_and_nan_without_values() -> None:
    values = [float(v) for v in range(100, 0, -1)]  # unsorted on purpose
    assert percentile(values, 0.5) == 51.0
    assert percentile(values, 0.99) == 100.0
    assert percentile(values, 0.0) == 1.0
    assert percentile([7.0], 0.99) == 7.0
    assert math.isnan(percentile([], 0.5))


def test_ratio_is_nan_when_the_denominator_measured_nothing() -> None:
    assert ratio(3.0, 4.0) == 0.75
    assert math.isnan(ratio(1.0, 0.0))
    assert math.isnan(ratio(1.0, -0.2))  # a forwarder "adding" negative time: noise, no ratio
    assert math.isnan(ratio(float("nan"), 1.0))


# A real /proc/<pid>/stat line whose command name holds a space and a parenthesis, utime 250 and stime 150 ticks.
STAT = ("4242 (python (edge) x) S 1 4242 4242 0 -1 4194560 12000 0 0 0 250 150 3 1 20 0 5 0 12345 "
        "300000000 20000 18446744073709551615 1 1 0 0 0 0 0 16781312 17922 0 0 0 17 1 0 0 0 0 0")


def test_cpu_seconds_are_utime_plus_stime_counted_after_the_command_name() -> None:
    assert stat_cpu_seconds(STAT, ticks_per_second=100) == 4.0
    assert stat_cpu_seconds(STAT, ticks_per_second=1000) == 0.4


def test_rss_is_vmrss_in_bytes_and_zero_without_it() -> None:
    assert status_rss_bytes("Name:\tpython\nVmPeak:\t  900 kB\nVmRSS:\t   81234 kB\nThreads:\t5\n") == 81234 * 1024
    assert status_rss_bytes("Name:\tkthreadd\nThreads:\t1\n") == 0


def _fake_proc(root: Path, pid: int, children: list[int], utime: int, rss_kb: int) -> None:
    task = root / str(pid) / "task" / str(pid)
    task.mkdir(parents=True)
    (task / "children").write_text(" ".join(map(str, children)) + (" " if children else ""))
    (root / str(pid) / "stat").write_text(STAT.replace(" 250 150 ", f" {utime} 0 "))
    (root / str(pid) / "status").write_text(f"Name:\tx\nVmRSS:\t{rss_kb} kB\n")


def test_a_process_is_measured_with_its_workers(tmp_path: Path) -> None:
    _fake_proc(tmp_path, 10, [11, 12], utime=100, rss_kb=1000)
    _fake_proc(tmp_path, 11, [], utime=200, rss_kb=2000)
    _fake_proc(tmp_path, 12, [13], utime=300, rss_kb=3000)
    _fake_proc(tmp_path, 13, [], utime=400, rss_kb=4000)
    _fake_proc(tmp_path, 20, [], utime=9999, rss_kb=9999)  # not below 10
    assert sorted(descendants(10, tmp_path)) == [10, 11, 12, 13]
    assert cpu_seconds(10, tmp_path) == pytest.approx(1000 / TICKS_PER_SECOND)
    assert rss_bytes(10, tmp_path) == 10_000 * 1024
    assert math.isnan(cpu_seconds(99, tmp_path)) and math.isnan(rss_bytes(99, tmp_path))


def test_cpu_per_request_is_the_difference_over_the_requests_served() -> None:
    before = CpuReading({"edge": 10.0, "auth": 1.0, "client": 2.0})
    after = CpuReading({"edge": 12.5, "auth": 1.5, "client": 2.25})
    per_request = cpu_ms_per_request(before, after, 1000)
    assert per_request == pytest.approx({"edge": 2.5, "auth": 0.5, "client": 0.25})
    assert all(math.isnan(ms) for ms in cpu_ms_per_request(before, after, 0).values())


def test_a_reading_includes_this_process_as_the_client() -> None:
    reading = CpuReading.take({})
    assert set(reading.seconds) == {"client"} and reading.seconds["client"] > 0


def test_gaps_and_events_arriving_together() -> None:
    paced = [0.0, 0.0, 0.0, 0.010, 0.020, 0.030, 0.040, 0.041]  # three opening events at once, then paced
    assert gaps(paced) == pytest.approx([0.0, 0.0, 0.010, 0.010, 0.010, 0.010, 0.001])
    assert bursts(paced, 0.0025) == 3
    assert gaps([]) == [] and gaps([1.0]) == [] and bursts([1.0], 0.0025) == 0


def test_a_relay_that_sends_events_on_in_fours_shows_as_bunched() -> None:
    straight = [i * 0.010 for i in range(40)]
    held = [(i // 4) * 0.040 + 0.039 for i in range(40)]  # each event waits for the next three
    assert bursts(straight, 0.0025) == 0
    assert bursts(held, 0.0025) == 30
    assert max(gaps(held)) == pytest.approx(0.040) and max(gaps(straight)) == pytest.approx(0.010)


def test_result_numbers() -> None:
    result = Result(latencies=[0.001, 0.002, 0.003, 0.004], first_bytes=[0.0005] * 4,
                    events=[[0.0] * 10, [0.0] * 12, [0.0] * 11], seconds=2.0, errors=1)
    assert result.throughput == 2.0
    assert result.events_per_stream() == 11
    summary = result.summary()
    assert summary["requests"] == 4 and summary["errors"] == 1
    assert summary["p50_ms"] == pytest.approx(3.0) and summary["ttfb_p50_ms"] == pytest.approx(0.5)


def test_each_target_gets_its_own_path_and_signature() -> None:
    direct = bench.Endpoint("direct", "http://sim", SIMULATOR_ANTHROPIC_KEY, SIMULATOR_OPENAI_KEY)
    gateway = bench.Endpoint("gateway", "http://edge", "sk-client", "sk-client", prefixed=True)
    litellm = bench.Endpoint("litellm", "http://peer", "sk-master", "sk-master", bearer=True)
    target = direct.target("claude", bench.CLAUDE_BODY)
    assert target.url == "http://sim/v1/messages"
    assert target.headers["x-api-key"] == SIMULATOR_ANTHROPIC_KEY and "authorization" not in target.headers
    assert direct.target("openai", bench.OPENAI_BODY).headers["authorization"] == f"Bearer {SIMULATOR_OPENAI_KEY}"
    assert gateway.target("claude", bench.CLAUDE_BODY).url == "http://edge/claude/v1/messages"
    assert gateway.target("openai", bench.OPENAI_BODY).url == "http://edge/openai/v1/chat/completions"
    peer = litellm.target("claude", bench.CLAUDE_BODY)
    assert peer.url == "http://peer/v1/messages" and peer.headers["authorization"] == "Bearer sk-master"
    assert peer.headers["anthropic-version"] == "2023-06-01"


def test_request_bodies_ask_for_the_reply_lengths_of_the_scenarios() -> None:
    assert json.loads(bench.CLAUDE_BODY)["max_tokens"] == bench.REPLY_TOKENS
    assert json.loads(bench.OPENAI_STREAM_BODY) == {"model": "gpt-4o-mini", "max_tokens": bench.REPLY_TOKENS,
                                                     "stream": True,
                                                     "messages": [{"role": "user", "content": "Hello!"}]}
    assert json.loads(bench.LONG_STREAM_BODY)["max_tokens"] == 200
    assert json.loads(bench.PACED_STREAM_BODY)["model"] == bench.PACED_MODEL
    assert json.loads(bench.OPENAI_TO_CLAUDE_BODY)["model"] == bench.CLAUDE_MODEL


def test_gateway_ratios_set_the_gateway_against_every_other_target_but_direct() -> None:
    numbers = {"direct": {"req_per_s": 2000.0}, "gateway": {"req_per_s": 800.0, "added_p50_ms": 3.0},
               "forwarder": {"req_per_s": 1000.0, "added_p50_ms": 1.5}, "litellm": {"req_per_s": 40.0}}
    ratios = bench.gateway_ratios(numbers, ("req_per_s", "added_p50_ms"))
    assert ratios == {"forwarder": {"req_per_s": 0.8, "added_p50_ms": 2.0}, "litellm": {"req_per_s": 20.0}}


def test_added_latency_is_the_target_minus_direct() -> None:
    direct = Result(latencies=[0.001] * 10, first_bytes=[0.0005] * 10)
    relayed = Result(latencies=[0.003] * 10, first_bytes=[0.002] * 10)
    numbers = bench.added(direct, relayed)
    assert numbers["added_p50_ms"] == pytest.approx(2.0) and numbers["added_ttfb_p50_ms"] == pytest.approx(1.5)


def test_the_headline_row_of_each_target() -> None:
    record = {
        "A_overhead": {"targets": {"gateway": {"added_p50_ms": 2.0, "added_p99_ms": 4.0}}},
        "B_throughput_non_stream": {"targets": {"direct": {"req_per_s": 3000.0, "server_cpu_ms": float("nan")},
                                                "gateway": {"req_per_s": 900.0, "server_cpu_ms": 1.2},
                                                "forwarder": {"req_per_s": 1000.0, "server_cpu_ms": 0.9}}},
        "B_throughput_stream": {"targets": {"gateway": {"req_per_s": 700.0}}},
        "E_memory": {"gateway": {"peak_mib": 99.0}},
    }
    rows = bench.headline(record)
    assert [r["target"] for r in rows] == ["gateway", "forwarder"]
    gateway = rows[0]
    assert (gateway["req_per_s"], gateway["stream_req_per_s"], gateway["added_p99_ms"]) == (900.0, 700.0, 4.0)
    assert gateway["server_cpu_ms"] == 1.2 and gateway["rss_open_streams_mib"] == 99.0
    assert math.isnan(rows[1]["added_p50_ms"]) and math.isnan(rows[1]["stream_req_per_s"])
    bench.print_headline(rows)  # NaNs print as n/a, not an error


def test_litellm_is_configured_for_the_same_simulators() -> None:
    config = bench_peers.litellm_config("http://127.0.0.1:1001", "http://127.0.0.1:1002")
    config = yaml.safe_load(yaml.safe_dump(config))  # what the proxy reads
    models = {entry["model_name"]: entry["litellm_params"] for entry in config["model_list"]}
    assert models["gpt-4o-mini"] == {"model": "openai/gpt-4o-mini", "api_base": "http://127.0.0.1:1001/v1",
                                     "api_key": SIMULATOR_OPENAI_KEY}
    assert models[bench.CLAUDE_MODEL] == {"model": f"anthropic/{bench.CLAUDE_MODEL}",
                                          "api_base": "http://127.0.0.1:1001", "api_key": SIMULATOR_ANTHROPIC_KEY}
    assert models[bench.PACED_MODEL]["api_base"] == "http://127.0.0.1:1002"
    assert config["general_settings"]["master_key"] == bench_peers.MASTER_KEY
    assert bench_peers.LITELLM == "litellm[proxy]==1.106.2"


def test_json_has_no_nan() -> None:
    assert bench._plain({"a": float("nan"), "b": [1.0, float("inf")], "c": Result(seconds=1.0)}) == {
        "a": None, "b": [1.0, None],
        "c": {"latencies": [], "first_bytes": [], "events": [], "seconds": 1.0, "errors": 0, "error_kinds": {}}}


def test_targets_are_checked_against_the_issues_bounds() -> None:
    record = {
        "B_throughput_non_stream": {"gateway_ratios": {"forwarder": {"req_per_s": 0.79, "server_cpu_ms": 1.5},
                                                       "litellm": {"req_per_s": 25.0}}},
        "A_overhead": {"gateway_ratios": {"forwarder": {"added_p50_ms": 1.4, "added_p99_ms": float("nan")}}},
        "C_streaming": {"paced": {"forwarder": {"together_per_stream": 5.0}, "gateway": {"together_per_stream": 9.0}}},
        "E_memory": {"gateway": {"peak_mib": 120.0}},
    }
    checks = {what: (value, met) for what, value, _, met in bench.targets(record)}
    assert checks["B non_stream req/s, gateway/forwarder"] == (0.79, False)
    assert checks["B non_stream req/s, gateway/litellm"] == (25.0, True)
    assert checks["A added p50, gateway/forwarder"] == (1.4, True)
    assert "A added p99, gateway/forwarder" not in checks  # not measurable: left out, not passed
    assert checks["C paced: events together per stream, gateway minus forwarder"] == (4.0, False)
    assert checks["B edge CPU per request, gateway/forwarder"] == (1.5, True)
    assert checks["E edge RSS MiB, 1,000 open streams"] == (120.0, True)
    assert not any(what.startswith("B stream") for what in checks)


def test_rounds_add_up_to_one_result() -> None:
    total = Result()
    total.add(Result(latencies=[0.001, 0.002], first_bytes=[0.0005], events=[[0.0]], seconds=1.0, errors=1))
    total.add(Result(latencies=[0.003], seconds=0.5))
    assert total.latencies == [0.001, 0.002, 0.003] and total.first_bytes == [0.0005] and total.events == [[0.0]]
    assert total.seconds == 1.5 and total.errors == 1 and total.throughput == 2.0


def test_errors_are_counted_by_kind_across_rounds() -> None:
    first, second = Result(), Result()
    first.error("status 502")
    first.error("ServerDisconnectedError")
    second.error("status 502")
    first.add(second)
    assert first.errors == 3 and first.error_kinds == {"status 502": 2, "ServerDisconnectedError": 1}
    assert first.summary()["error_kinds"] == {"status 502": 2, "ServerDisconnectedError": 1}
    assert "error_kinds" not in Result(latencies=[0.001]).summary()


def test_the_decision_targets_read_the_router_and_auth_numbers() -> None:
    from switchboard_stack import auth_bench, router_bench

    router = router_bench.Report([
        router_bench.Choice("plain", 1000, "selector", 10, 40.0, 1.0, 1.0, "ok"),
        router_bench.Choice("plain", 1000, "Pick", 10, 90.0, 1.0, 1.0, "ok"),
        router_bench.Choice("plain", 100, "Pick", 10, 5.0, 1.0, 1.0, "ok")],
        router_bench.RoundTrip(1, 1.0, 1.0, 1.0, 1.0))
    auth = [auth_bench.Measured("plain", 10, 20.0, 1.0, 1.0, True),
            auth_bench.Measured("100k keys, random, cached", 10, 45.0, 1.0, 1.0, True)]
    checks = {what: (value, met) for what, value, _, met in bench.targets({"F_router": router, "F_auth": auth})}
    assert checks == {
        "F account choice at 1,000 accounts, the selector alone: CPU µs": (40.0, True),
        "F account choice at 1,000 accounts, the whole Pick servicer call: CPU µs": (90.0, False),
        "F Authorize (100k keys, random, cached) CPU µs": (45.0, True)}
