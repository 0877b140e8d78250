"""The bounded in-memory log of requests the simulator received, served at ``/_simulator/requests``.

Gateway tests read it to assert exactly what the gateway sent upstream. Each entry is a plain dict:
``seq``, ``time`` (epoch seconds), ``api`` (``anthropic``, ``anthropic_oauth``, ``openai_chat``,
``openai_responses``, ``codex_responses``, ``codex_oauth``, ``azure_openai``, ``bedrock``, ``gemini``),
``method``, ``path``,
``query_string``, ``query`` (last value per name), ``headers`` (lower-cased names, repeated headers
joined with ``", "``), ``body`` (the parsed JSON, or null), ``body_text`` (the raw text, only when the
body was not JSON), then once answered ``status`` and ``fault`` (the fault spec applied, or null).
The body is the object the handler parsed anyway, so recording costs a dict and a deque append.
"""

from __future__ import annotations

import time
from collections import deque
from typing import Any

from aiohttp import web

#: Where a vendor handler notes the fault spec it applied, for the log entry's ``fault``.
APPLIED_FAULT = web.RequestKey("applied_fault", str)


class RequestLog:
    """Keeps the last `limit` requests; does nothing when disabled."""

    def __init__(self, limit: int, *, enabled: bool = True) -> None:
        self.enabled = enabled and limit > 0
        self._entries: deque[dict[str, Any]] = deque(maxlen=max(1, limit))
        self._seq = 0

    def add(
        self, api: str, request: web.Request, body: Any, raw: bytes, parsed: bool
    ) -> dict[str, Any] | None:
        if not self.enabled:
            return None
        self._seq += 1
        headers: dict[str, str] = {}
        for name, value in request.headers.items():
            lower = name.lower()
            headers[lower] = f"{headers[lower]}, {value}" if lower in headers else value
        entry: dict[str, Any] = {
            "seq": self._seq,
            "time": time.time(),
            "api": api,
            "method": request.method,
            "path": request.path,
            "query_string": request.query_string,
            "query": dict(request.query),
            "headers": headers,
            "body": body if parsed else None,
            "status": None,
            "fault": None,
        }
        if not parsed:
            entry["body_text"] = raw.decode("utf-8", "replace")
        self._entries.append(entry)
        return entry

    def entries(self, limit: int | None = None) -> list[dict[str, Any]]:
        """Oldest first; with `limit`, only the newest `limit` entries."""
        items = list(self._entries)
        return items[-limit:] if limit else items

    def clear(self) -> int:
        count = len(self._entries)
        self._entries.clear()
        return count
