"""Tests of the shared package (switchboard_common)."""
