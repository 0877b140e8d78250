"""`make bench`'s router section, run with tiny counts: every scenario is measured and behaves as it says.

Timings are only checked to be there (positive); what is asserted is behaviour: the plain and sticky requests
are served (the sticky ones by the account their conversation is bound to) and the held model takes the 503
path (no account)."""

import subprocess
import sys

import pytest

from switchboard.router.v1 import router_pb2
from switchboard_stack import router_bench

EXPECTED = {"plain": "ok", "sticky": "ok, bound account", "none free": "no account"}


async def test_every_scenario_at_every_size_reports_a_cost_and_its_outcome(capsys: pytest.CaptureFixture[str]) -> None:
    report = await router_bench.measure(calls=40, rpc_calls=20, budget=5.0)

    measured = {(c.scenario, c.accounts, c.layer): c for c in report.choices}
    assert set(measured) == {(scenario, size, layer) for scenario in EXPECTED for size in router_bench.SIZES
                             for layer in ("selector", "Pick")}
    for (scenario, _, _), choice in measured.items():
        assert choice.calls == 40
        assert choice.cpu_us > 0 and 0 < choice.p50_us <= choice.p99_us
        assert choice.outcome == EXPECTED[scenario], choice
    trip = report.round_trip
    assert trip.calls == 20 and trip.cpu_us > 0 and 0 < trip.p50_us <= trip.p99_us and trip.in_process_p50_us > 0
    assert trip.stream_cpu_us > 0 and 0 < trip.stream_p50_us <= trip.stream_p99_us

    router_bench.print_report(report)
    router_bench.compare(trip, {"claude non-stream, 1 concurrent": 0.002})
    printed = capsys.readouterr().out
    assert printed.count("no account") == 2 * len(router_bench.SIZES)
    assert "127.0.0.1, sequential" in printed and "127.0.0.1, PickBatches" in printed
    assert "one Pick round trip is" in printed


async def test_the_held_model_is_refused_as_no_account_with_when_to_retry() -> None:
    servicer = await router_bench.build_router(1000)
    response = await servicer.Pick(router_bench.pick_request("none free"), None)
    assert response.status == router_pb2.PICK_STATUS_NO_ACCOUNT
    assert "no available account" in response.message and response.retry_after.seconds > 0
    served = await servicer.Pick(router_bench.pick_request("plain"), None)
    assert served.status == router_pb2.PICK_STATUS_OK and served.lease_id


def test_runs_alone_as_a_module() -> None:
    done = subprocess.run([sys.executable, "-m", "switchboard_stack.router_bench", "--calls", "32", "--rpc-calls",
                           "10"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.count("no account") == 2 * len(router_bench.SIZES)
    assert "router Pick over gRPC" in done.stdout
