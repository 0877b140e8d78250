"""Edge settings, from SWITCHBOARD_EDGE_* environment variables."""

from dataclasses import dataclass, field

from switchboard_common.settings import from_env


@dataclass(frozen=True)
class EdgeSettings:
    host: str = "127.0.0.1"
    port: int = 8080
    # Prometheus endpoint on its own port; -1 disables it.
    metrics_port: int = 9100
    auth_target: str = "127.0.0.1:50051"
    router_target: str = "127.0.0.1:50052"
    # Deadline for each gRPC call to auth or router.
    rpc_timeout_seconds: float = 2.0
    # While auth cannot be reached, a key's last ALLOW for the same platforms and model admits its requests
    # for this long after it was given (limits uncounted meanwhile); then 503. 0: 503 at once.
    auth_outage_grace_seconds: float = 300.0
    # While the router cannot be reached, accounts it chose for the same platforms and model within this long
    # serve the requests (round robin, no leases); then 503. 0: 503 at once.
    router_outage_grace_seconds: float = 300.0
    # Largest request body accepted (Claude Code sends 50-90 KB; images make more).
    max_body_bytes: int = 32 * 1024 * 1024
    upstream_connect_timeout_seconds: float = 10.0
    # Whole upstream call, unless the account sets its own.
    upstream_timeout_seconds: float = 600.0
    # Attempts per request across accounts when an upstream fails before the first byte.
    max_attempts: int = 3
    # ... and no new attempt starts once this long has passed since the request's first one began (the client
    # then gets what it gets with no account left).
    failover_budget_seconds: float = 60.0
    usage_flush_seconds: float = 1.0
    usage_batch_size: int = 200
    # Request body bytes held in memory at once across all requests; a body that would pass it is refused
    # with 503 (retry-after) instead of being read.
    max_buffered_body_bytes: int = 256 * 1024 * 1024
    # On SIGTERM: how long open requests may run on; then streams end with an error event in their protocol
    # and every request is settled before the process exits.
    drain_seconds: float = 60.0
    # Usage records are appended here as they settle and deleted once auth has them; replayed on start.
    spool_dir: str = "./edge-spool"
    # Proxies in front of the edge (the ingress, a load balancer), comma-separated CIDRs: from a request they
    # pass on, the client's address is read from X-Forwarded-For (key IP allowlists); empty: the TCP peer's.
    trusted_proxies: str = ""
    # This edge's name as a lease holder at the router; empty means "<hostname>:<port>".
    instance_id: str = ""
    # Distinct model names used as metric label values; past it (and for refused requests) "other".
    max_model_labels: int = 200
    # claude-official (OAuth) accounts: where access tokens are refreshed, as which client, how early.
    oauth_token_url: str = "https://console.anthropic.com/v1/oauth/token"
    oauth_client_id: str = "9d1c250a-e61b-44d9-88ed-5944d1962f5e"
    oauth_refresh_margin_seconds: float = 300.0
    # openai-responses accounts signed in with ChatGPT (the Codex backend): where their access tokens are
    # refreshed and as which client (Codex CLI's public one); the margin above applies to them too.
    codex_oauth_token_url: str = "https://auth.openai.com/oauth/token"
    codex_oauth_client_id: str = "app_EMoamEEZ73f0CkXaXp7hrann"
    # The Codex backend refuses a request without `instructions`; this is sent when the client gave none.
    codex_default_instructions: str = "You are a helpful assistant."
    # Serve the Responses API over WebSocket too (Codex's first transport); off, Codex falls back to HTTP
    # after its WebSocket attempts fail.
    responses_websocket: bool = True
    # How old the edge's copy of the pool's model patterns may get (it resolves bare model names to platforms).
    catalog_refresh_seconds: float = 2.0
    # The admin API's bearer token (/admin/v1, see switchboard_edge.admin_routes); empty: the API is off (404).
    admin_token: str = field(default="", repr=False)
    # Failed admin authentications a client address may make: a bucket this big, refilled at this rate a minute;
    # once it is spent, every admin request from that address is a 429 until it refills. 0: unbounded.
    admin_failures_per_minute: int = 30
    # -- client connections (see switchboard_edge.http_limits) --
    # Request header block: total bytes, number of headers, bytes of one header line.
    max_header_bytes: int = 32 * 1024
    max_headers: int = 100
    max_header_line_bytes: int = 8 * 1024
    # From a connection's first byte (or its opening) to the end of the request headers.
    header_timeout_seconds: float = 10.0
    # From the end of the headers to the end of the body.
    body_timeout_seconds: float = 120.0
    # A kept-alive connection with no request in flight is closed after this long.
    idle_timeout_seconds: float = 75.0


def load() -> EdgeSettings:
    return from_env(EdgeSettings, "SWITCHBOARD_EDGE_")
