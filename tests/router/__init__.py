"""Tests of the router service (switchboard_router)."""
