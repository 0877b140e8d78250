"""Switchboard auth: who is calling, may they do this, and what did it cost.

Reads top to bottom: `__main__` (boot) → `service` (gRPC wiring) → `policy`,
`cache`, `keys`, `usage` (the rules) → `store` (interfaces) → `sqlite_store`
(the one backend today). `cli` administers keys from a shell.
"""
