"""Switchboard upstream simulator: a standalone program that speaks the vendor APIs faithfully, offline.

Run it with ``python -m switchboard_simulator``; the gateway services never import it. One module per
vendor API (`anthropic`, `openai_chat`), with `faults`, `textgen`, `sse`, `delivery`, `ratelimit`,
`ids`, `recorder` and `metrics` shared between them, `app` for the wiring and `config` for the knobs.
"""
