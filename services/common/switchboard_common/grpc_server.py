"""Boot and shut down a grpc.aio server the same way in every service.

Every server gets the standard health service, reflection, the metrics
interceptor and a Prometheus endpoint. On SIGTERM/SIGINT health flips to
NOT_SERVING first so load balancers drain, then the server stops with grace.
"""

import asyncio
import logging
import signal
from collections.abc import Awaitable, Callable, Sequence

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection
from prometheus_client import start_http_server

from switchboard_common.grpc_metrics import MetricsInterceptor

Registrar = Callable[[grpc.aio.Server], None]

log = logging.getLogger(__name__)


async def serve(
    *,
    registrars: Sequence[Registrar],
    service_names: Sequence[str],
    address: str,
    metrics_port: int,
    grace_seconds: float = 5.0,
    on_stop: Callable[[], Awaitable[None]] | None = None,
) -> None:
    """Runs until SIGTERM/SIGINT. `service_names` are the full proto service names."""
    server = grpc.aio.server(interceptors=[MetricsInterceptor()])
    for register in registrars:
        register(server)
    health_servicer = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    reflection.enable_server_reflection(
        (*service_names, health.SERVICE_NAME, reflection.SERVICE_NAME), server
    )
    port = server.add_insecure_port(address)
    if port == 0:
        raise RuntimeError(f"cannot bind gRPC address {address}")
    if metrics_port >= 0:
        start_http_server(metrics_port, addr="127.0.0.1" if address.startswith("127.") else "0.0.0.0")
    await server.start()
    for name in (*service_names, ""):
        await health_servicer.set(name, health_pb2.HealthCheckResponse.SERVING)
    log.info("serving gRPC on %s, metrics on :%d", address, metrics_port)

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()

    await health_servicer.enter_graceful_shutdown()
    await server.stop(grace_seconds)
    if on_stop is not None:
        await on_stop()
    log.info("stopped")
