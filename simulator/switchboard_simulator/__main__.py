"""``python -m switchboard_simulator``: boot, announce readiness, stop cleanly on SIGINT/SIGTERM.

Once listening it prints one line to stdout, ``SIMULATOR_READY http://HOST:PORT``, which launchers read to
learn the port (use ``--port 0`` for a free one). Flags and YAML keys are listed in `config`.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import sys
from collections.abc import Callable, Sequence

from .app import serve
from .config import ConfigError, SimulatorConfig, load


def _loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    try:
        import uvloop
    except ImportError:
        return None
    return uvloop.new_event_loop


async def _run(config: SimulatorConfig) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    async with serve(config) as url:
        print(f"SIMULATOR_READY {url}", flush=True)
        await stop.wait()


def main(argv: Sequence[str] | None = None) -> int:
    try:
        config = load(argv)
    except (ConfigError, OSError) as exc:
        print(f"switchboard_simulator: {exc}", file=sys.stderr)
        return 2
    log_format = "%(asctime)s simulator %(levelname)s %(name)s: %(message)s"
    logging.basicConfig(level=logging.WARNING, format=log_format)
    with asyncio.Runner(loop_factory=_loop_factory()) as runner:
        runner.run(_run(config))
    return 0


if __name__ == "__main__":
    sys.exit(main())
