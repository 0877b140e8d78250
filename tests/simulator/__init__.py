"""Tests of the upstream simulator (switchboard_simulator)."""
