"""Run the edge: `python -m switchboard_edge` (settings from SWITCHBOARD_EDGE_*)."""

import logging
import resource
import sys
from types import FrameType

import uvicorn
from fastapi import FastAPI
from prometheus_client import start_http_server

from switchboard_common import logs
from switchboard_edge import settings as edge_settings
from switchboard_edge.app import create_app
from switchboard_edge.callers import trusted_networks
from switchboard_edge.http_limits import HttpLimits, protocol_for

# Where the hard limit is "unlimited", the soft limit is raised this far (Linux refuses more than nr_open).
_UNLIMITED_FILES = 1 << 20


def raise_open_files_limit(log: logging.Logger) -> int:
    """Raise this process's open-file soft limit to its hard limit; the soft limit in force after.

    Every client connection holds a descriptor; the usual soft limit (1,024) would let a few idle
    connections deny service to real requests long before the header deadline closes them.
    """
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = _UNLIMITED_FILES if hard == resource.RLIM_INFINITY else hard
    if soft != resource.RLIM_INFINITY and soft < target:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            soft = target
        except (ValueError, OSError) as exc:
            log.warning("could not raise the open-file limit from %d to %d: %s", soft, target, exc)
    return soft


# Past the drain: time for the streams just ended to settle and the last reports to leave.
_SETTLE_SECONDS = 10.0


class EdgeServer(uvicorn.Server):
    """uvicorn's server that starts the relay's drain the moment SIGTERM (or SIGINT) arrives.

    uvicorn itself only waits for connections and then cancels what is left, which would cut streams
    without an error event and before they settle; the relay ends them properly when the drain is over,
    well inside uvicorn's own graceful timeout.
    """

    def __init__(self, config: uvicorn.Config, app: FastAPI) -> None:
        super().__init__(config)
        self._app = app

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        begin_drain = getattr(self._app.state, "begin_drain", None)
        if begin_drain is not None and not self.should_exit:
            begin_drain()
        super().handle_exit(sig, frame)


def main() -> None:
    log = logs.setup("edge")
    settings = edge_settings.load()
    try:
        trusted_networks(settings.trusted_proxies)
    except ValueError as exc:
        log.error("SWITCHBOARD_EDGE_TRUSTED_PROXIES: %s", exc)
        sys.exit(2)
    open_files = raise_open_files_limit(log)
    if settings.metrics_port >= 0:
        start_http_server(settings.metrics_port, addr=settings.host)
    log.info("edge listening on http://%s:%d (open-file limit %d)", settings.host, settings.port, open_files)
    app = create_app(settings)
    config = uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        loop="uvloop",
        # httptools, with the header limits and the header, body and keep-alive (idle) deadlines.
        http=protocol_for(HttpLimits.from_settings(settings)),
        # The Responses WebSocket carries whole request bodies as messages.
        ws="websockets-sansio",
        ws_max_size=settings.max_body_bytes,
        access_log=False,
        # The client's address behind a proxy is the edge's own business (SWITCHBOARD_EDGE_TRUSTED_PROXIES,
        # `callers`): uvicorn's rewriting it from X-Forwarded-For first would be a second, different rule.
        proxy_headers=False,
        log_config=None,
        timeout_graceful_shutdown=round(settings.drain_seconds + _SETTLE_SECONDS),
    )
    server = EdgeServer(config, app)
    server.run()


if __name__ == "__main__":
    main()
