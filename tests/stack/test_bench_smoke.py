"""`make bench` at a tiny scale, scenarios A, C and E only (about half a minute): every target answers every
request, the streams carry their 200 events, the open streams are all held, and the JSON has the numbers."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

if not Path("/proc/self/stat").exists():
    pytest.skip("reads /proc (Linux)", allow_module_level=True)


def test_a_tiny_bench_run(tmp_path: Path) -> None:
    out = tmp_path / "bench.json"
    finished = subprocess.run([sys.executable, "-m", "switchboard_stack.bench", "--scale", "0.01", "--sections",
                               "ACE", "--json", str(out)], capture_output=True, text=True, timeout=240)
    assert finished.returncode == 0, finished.stdout[-3000:] + finished.stderr[-3000:]
    assert "A. overhead" in finished.stdout and "| gateway |" in finished.stdout
    record = json.loads(out.read_text())
    for section in ("A_overhead", "C_streaming"):
        targets = record[section]["targets"]
        assert set(targets) == {"direct", "gateway", "forwarder"}
        for name, numbers in targets.items():
            assert numbers["requests"] >= 20 and numbers["errors"] == 0, (section, name, numbers)
            assert numbers["cpu_ms_per_request"]["client"] > 0
        assert targets["gateway"]["cpu_ms_per_request"]["edge"] > 0
        assert targets["gateway"]["auth_router_cpu_ms_per_request"] > 0
        assert targets["forwarder"]["server_cpu_ms"] >= 0  # /proc counts in 10 ms ticks: maybe none yet
    for name, numbers in record["C_streaming"]["targets"].items():
        assert numbers["events_per_stream"] >= 200, name
    paced = record["C_streaming"]["paced"]
    for name in ("direct", "gateway", "forwarder"):
        assert paced[name]["errors"] == 0 and paced[name]["events_per_stream"] >= 200, paced[name]
        assert 5 <= paced[name]["gap_p50_ms"] < 50, paced[name]  # paced at 10 ms
    memory = record["E_memory"]
    for name in ("gateway", "forwarder"):
        assert memory[name]["opened"] == memory["streams"] and memory[name]["errors"] == 0, memory
        assert memory[name]["peak_mib"] >= memory[name]["baseline_mib"] > 10
    rows = record["headline"]
    assert [row["target"] for row in rows] == ["gateway", "forwarder"]
    assert rows[0]["req_per_s"] is None and rows[0]["rss_open_streams_mib"] > 10  # B not run: no req/s
