"""Which fault, if any, a request suffers: the spec grammar, and the choice between header, key and global.

A fault spec is ``NAME[:ARG][@RATE]``:

======================  ==============================================================================
``NNN`` (400-599)       answer with that HTTP status and the vendor's matching error body; for ``429``
                        ARG is the ``retry-after`` in seconds (default 1)
``rate_limit[:S]``      same as ``429[:S]``
``server_error``        same as ``500``
``overloaded``          the vendor's overloaded answer: Anthropic 529 ``overloaded_error``, OpenAI 503,
                        Azure 503 ``ServiceUnavailable``, Bedrock 503 ``ServiceUnavailableException``
``disconnect[:N]``      close the connection after N SSE events (default 5); a non-stream request gets
                        its headers and half its body, then the connection closes
``stream_error[:N]``    a stream sends N text deltas (default 3), then the vendor's in-stream error
                        event (Bedrock: a ``modelStreamErrorException`` frame); a non-stream request
                        gets the ``overloaded`` answer
``hang``                never answer (for client timeout tests); ends only when the client goes away
``slow[:MS]``           wait MS milliseconds (default 5000) before the first byte, then answer normally
======================  ==============================================================================

RATE (0..1, default 1) is the probability the fault fires on a given request.

Precedence: the ``x-simulator-fault`` request header (when enabled), then the fault configured for the
request's API key (or Bedrock access key id), then the global faults in order. The first spec that
fires wins. The Anthropic OAuth token endpoint draws from ``anthropic.oauth_token_fault`` instead of
the key and global faults.
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Literal

FaultKind = Literal["status", "overloaded", "disconnect", "stream_error", "hang", "slow"]

FAULT_HEADER = "x-simulator-fault"

_ALIASES: dict[str, tuple[FaultKind, int | None]] = {
    "rate_limit": ("status", 429),
    "server_error": ("status", 500),
    "overloaded": ("overloaded", None),
    "disconnect": ("disconnect", None),
    "stream_error": ("stream_error", None),
    "hang": ("hang", None),
    "slow": ("slow", None),
}
_DEFAULT_ARG: dict[FaultKind, float] = {"disconnect": 5, "stream_error": 3, "slow": 5000}


class FaultSpecError(ValueError):
    """A fault spec that does not follow ``NAME[:ARG][@RATE]``."""


@dataclass(frozen=True, slots=True)
class Fault:
    """One parsed fault spec. `status` is set only for kind ``status``; `arg` holds the kind's number."""

    spec: str
    kind: FaultKind
    status: int | None = None
    arg: float | None = None
    rate: float = 1.0

    def fires(self) -> bool:
        return self.rate >= 1.0 or random.random() < self.rate

    @property
    def retry_after(self) -> int:
        """Seconds for ``retry-after`` on a 429 (ARG, default 1)."""
        return int(self.arg) if self.arg is not None else 1

    def answers_early(self, stream: bool) -> bool:
        """True when the fault replaces the answer with an error status (before any validation)."""
        return self.kind in ("status", "overloaded") or (self.kind == "stream_error" and not stream)


def count(fault: Fault | None, kind: FaultKind) -> int | None:
    """The ARG of `fault` as a count when it is of `kind` (events before a cut or an error), else None."""
    if fault is None or fault.kind != kind:
        return None
    return int(fault.arg or 0)


def extra_delay(fault: Fault | None) -> float:
    """Seconds a ``slow`` fault adds before the first byte."""
    if fault is None or fault.kind != "slow":
        return 0.0
    return (fault.arg or 0.0) / 1000.0


@lru_cache(maxsize=256)
def parse(spec: str) -> Fault:
    """Parses ``NAME[:ARG][@RATE]``; raises FaultSpecError on anything else."""
    text = spec.strip()
    body, _, rate_text = text.partition("@")
    name, _, arg_text = body.partition(":")
    name = name.strip().lower()
    try:
        rate = float(rate_text) if rate_text else 1.0
        arg = float(arg_text) if arg_text else None
    except ValueError as exc:
        raise FaultSpecError(f"fault {spec!r}: ARG and RATE must be numbers") from exc
    if not 0.0 <= rate <= 1.0:
        raise FaultSpecError(f"fault {spec!r}: RATE must be between 0 and 1")
    if arg is not None and arg < 0:
        raise FaultSpecError(f"fault {spec!r}: ARG must not be negative")
    status: int | None
    if name.isdigit():
        status = int(name)
        if not 400 <= status <= 599:
            raise FaultSpecError(f"fault {spec!r}: status must be 400-599")
        return Fault(text, "status", status, arg, rate)
    if name not in _ALIASES:
        raise FaultSpecError(f"fault {spec!r}: unknown fault {name!r}")
    kind, status = _ALIASES[name]
    if arg is None:
        arg = _DEFAULT_ARG.get(kind)
    return Fault(text, kind, status, arg, rate)


def choose(
    header: str | None,
    key: str,
    key_faults: Mapping[str, Fault],
    global_faults: Sequence[Fault],
) -> Fault | None:
    """The fault this request suffers, or None. A bad header spec raises FaultSpecError."""
    if header:
        from_header = parse(header)
        if from_header.fires():
            return from_header
    for_key = key_faults.get(key)
    if for_key is not None and for_key.fires():
        return for_key
    for fault in global_faults:
        if fault.fires():
            return fault
    return None
