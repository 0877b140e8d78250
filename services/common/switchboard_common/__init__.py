"""Pieces every Switchboard service shares: settings, logging, gRPC serving and metrics."""
