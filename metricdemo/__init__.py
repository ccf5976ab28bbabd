"""Metrics defined in the database, served through OpenTelemetry to Prometheus."""

from metricdemo.callbacks import register_callback, unregister_callback

__version__ = "0.1.0"
__all__ = ["register_callback", "unregister_callback", "__version__"]
