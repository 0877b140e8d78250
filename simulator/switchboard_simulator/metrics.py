"""The simulator's own Prometheus counter, ``switchboard_simulator_requests_total{api,status_code}``.

Kept by hand (one dict increment per request) and rendered in the text exposition format at
``GET /metrics``, so benchmarks can read what the upstream answered without a client library.
"""

from __future__ import annotations

from collections import Counter


class RequestCounter:
    """Counts answered requests by API and HTTP status."""

    def __init__(self) -> None:
        self._counts: Counter[tuple[str, int]] = Counter()

    def add(self, api: str, status: int) -> None:
        self._counts[(api, status)] += 1

    def render(self) -> str:
        lines = [
            "# HELP switchboard_simulator_requests_total Requests answered by the upstream simulator.",
            "# TYPE switchboard_simulator_requests_total counter",
        ]
        for (api, status), count in sorted(self._counts.items()):
            labels = f'api="{api}",status_code="{status}"'
            lines.append(f"switchboard_simulator_requests_total{{{labels}}} {count}")
        return "\n".join(lines) + "\n"
