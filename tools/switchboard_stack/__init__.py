"""Runs the whole Switchboard stack as local processes: `make run`, the end-to-end tests and `make bench`."""
