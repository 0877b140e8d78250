"""`make bench`'s auth section with tiny counts: every scenario is measured and every call is allowed (the
limited key's limits are far away and its admissions are returned). Timings are only checked to be there."""

from switchboard_stack import auth_bench


async def test_every_scenario_reports_a_cost_and_is_allowed() -> None:
    results = await auth_bench.measure(calls=30)
    names = [m.scenario for m in results]
    assert names[:3] == ["plain", "policies", "limited (memory)"]
    assert set(names) <= {"plain", "policies", "limited (memory)", "limited (redis)"}
    for measured in results:
        assert measured.allowed, measured
        assert measured.calls == 30 and measured.cpu_us > 0 and 0 < measured.p50_us <= measured.p99_us
