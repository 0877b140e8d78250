"""Switchboard."""
