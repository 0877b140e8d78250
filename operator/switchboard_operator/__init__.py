"""Kubernetes operator reconciling UpstreamAccount resources (switchboard.dev) into the router.

Placeholder until the Kubernetes issue; see operator/README.md.
"""
