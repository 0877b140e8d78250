"""Switchboard upstream simulator: a standalone program that speaks the vendor APIs faithfully, offline.

Run it with ``python -m switchboard_simulator``; the gateway services never import it. One module per
vendor under `vendors` (Anthropic Messages with OAuth, OpenAI chat, Azure OpenAI, Bedrock), each
plugged into the one request `pipeline` and listed in the `vendors.VENDORS` registry, from which
`config` builds its sections and flags and `app` its routes. Shared pieces: `faults`, `textgen`, `sse`,
`eventstream`, `sigv4`, `delivery`, `ratelimit`, `ids`, `recorder`, `metrics`; `defaults` holds the
credentials accepted out of the box (launchers import them).
"""
