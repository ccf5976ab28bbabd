"""Scenarios through the real entry points: /metrics, the admin, commands, servers."""
