"""Tests of the auth service (switchboard_auth)."""
