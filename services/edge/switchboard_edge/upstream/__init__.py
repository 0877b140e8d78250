"""One module per upstream platform (URL, headers, body rules, signing, stream framing, usage), found
through `registry.PLATFORMS`. Platforms are sans-I/O; `switchboard_edge.relay` does the HTTP."""
