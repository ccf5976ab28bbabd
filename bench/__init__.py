"""Benchmarks of the /metrics scrape against a bare OpenTelemetry exporter."""
