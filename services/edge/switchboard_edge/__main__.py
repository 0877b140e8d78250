"""Run the edge: `python -m switchboard_edge` (settings from SWITCHBOARD_EDGE_*)."""

import uvicorn
from prometheus_client import start_http_server

from switchboard_common import logs
from switchboard_edge import settings as edge_settings
from switchboard_edge.app import create_app


def main() -> None:
    log = logs.setup("edge")
    settings = edge_settings.load()
    if settings.metrics_port >= 0:
        start_http_server(settings.metrics_port, addr=settings.host)
    log.info("edge listening on http://%s:%d", settings.host, settings.port)
    uvicorn.run(
        create_app(settings),
        host=settings.host,
        port=settings.port,
        loop="uvloop",
        http="httptools",
        access_log=False,
        log_config=None,
        timeout_graceful_shutdown=10,
    )


if __name__ == "__main__":
    main()
