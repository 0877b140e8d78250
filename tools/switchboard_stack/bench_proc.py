"""What a server process costs during a bench run, read from /proc: CPU time (utime + stime) and resident memory.

A process counts with its descendants (a server with worker processes is measured whole). Off Linux, or for
a process that is gone, the readings are NaN: printed as n/a, never guessed.
"""

import os
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

PROC = Path("/proc")
TICKS_PER_SECOND = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def stat_cpu_seconds(stat: str, ticks_per_second: int = TICKS_PER_SECOND) -> float:
    """utime + stime of one /proc/<pid>/stat line, in seconds. The command name (field 2) may hold spaces and
    parentheses, so fields are counted after its last ")": utime and stime are fields 14 and 15."""
    fields = stat.rsplit(")", 1)[1].split()
    # fields[0] is field 3 (state): field n is fields[n - 3].
    return (int(fields[11]) + int(fields[12])) / ticks_per_second


def status_rss_bytes(status: str) -> int:
    """VmRSS of one /proc/<pid>/status text, in bytes (0 for a kernel thread or a zombie, which have none)."""
    for line in status.splitlines():
        if line.startswith("VmRSS:"):
            value, unit = line.split()[1:3]
            assert unit == "kB", unit
            return int(value) * 1024
    return 0


def descendants(pid: int, proc: Path = PROC) -> list[int]:
    """`pid` and every live process below it (through /proc/<pid>/task/<tid>/children)."""
    found = [pid]
    for current in found:
        try:
            for task in (proc / str(current) / "task").iterdir():
                found.extend(int(child) for child in (task / "children").read_text().split())
        except OSError:
            continue
    return found


def _read(pids: Iterable[int], name: str, proc: Path) -> list[str]:
    texts = []
    for pid in pids:
        try:
            texts.append((proc / str(pid) / name).read_text())
        except OSError:
            continue  # exited meanwhile
    return texts


def cpu_seconds(pid: int, proc: Path = PROC) -> float:
    """CPU seconds used so far by `pid` and its descendants; NaN when /proc does not know it."""
    texts = _read(descendants(pid, proc), "stat", proc)
    return sum(stat_cpu_seconds(text) for text in texts) if texts else float("nan")


def rss_bytes(pid: int, proc: Path = PROC) -> float:
    """Resident memory of `pid` and its descendants, in bytes; NaN when /proc does not know it."""
    texts = _read(descendants(pid, proc), "status", proc)
    return float(sum(status_rss_bytes(text) for text in texts)) if texts else float("nan")


@dataclass(frozen=True)
class CpuReading:
    """CPU seconds of named processes at one moment; the load generator (this process) as "client"."""

    seconds: dict[str, float]

    @classmethod
    def take(cls, pids: dict[str, int]) -> "CpuReading":
        readings = {name: cpu_seconds(pid) for name, pid in pids.items()}
        readings["client"] = time.process_time()  # all threads, finer than /proc's ticks
        return cls(readings)


def cpu_ms_per_request(before: CpuReading, after: CpuReading, requests: int) -> dict[str, float]:
    """Each process's CPU milliseconds per request between two readings (NaN when nothing was served)."""
    return {name: (after.seconds[name] - start) * 1000 / requests if requests else float("nan")
            for name, start in before.seconds.items() if name in after.seconds}
