"""Run the edge: `python -m switchboard_edge` (settings from SWITCHBOARD_EDGE_*)."""

import logging
import resource

import uvicorn
from prometheus_client import start_http_server

from switchboard_common import logs
from switchboard_edge import settings as edge_settings
from switchboard_edge.app import create_app
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


def main() -> None:
    log = logs.setup("edge")
    settings = edge_settings.load()
    open_files = raise_open_files_limit(log)
    if settings.metrics_port >= 0:
        start_http_server(settings.metrics_port, addr=settings.host)
    log.info("edge listening on http://%s:%d (open-file limit %d)", settings.host, settings.port, open_files)
    config = uvicorn.Config(
        create_app(settings),
        host=settings.host,
        port=settings.port,
        loop="uvloop",
        # httptools, with the header limits and the header, body and keep-alive (idle) deadlines.
        http=protocol_for(HttpLimits.from_settings(settings)),
        access_log=False,
        log_config=None,
        timeout_graceful_shutdown=10,
    )
    server = uvicorn.Server(config)
    server.run()


if __name__ == "__main__":
    main()
