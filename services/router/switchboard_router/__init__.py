"""Switchboard router: decides which upstream account serves each request.

Reads top to bottom: `__main__` (boot) → `server` (gRPC wiring) → `selection`,
`leases`, `pool` (the domain) → `store`, `file_source`, `accounts_yaml` (where
accounts come from).
"""
