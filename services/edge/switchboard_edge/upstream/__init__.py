"""One adapter per upstream wire format: URL, auth headers, body rules and stream reading.

Adapters are sans-I/O; `switchboard_edge.forward` does the HTTP.
"""
