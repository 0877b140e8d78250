"""The edge: terminates client HTTP/SSE, asks auth and router, relays to the upstream vendor."""
