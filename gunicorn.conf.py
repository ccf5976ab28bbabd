"""gunicorn settings for the metricsite demo: `make serve` runs three workers."""

import os

bind = os.environ.get("GUNICORN_BIND", "127.0.0.1:8000")
workers = int(os.environ.get("GUNICORN_WORKERS", "3"))
wsgi_app = "metricsite.wsgi:application"
# OpenTelemetry's SDK starts threads and holds locks that do not survive
# fork(); its documentation for forking servers asks that the MeterProvider
# be created in each worker after the fork. Not preloading the app does that:
# every worker imports Django and runs metricdemo's AppConfig.ready() itself.
preload_app = False
accesslog = "-" if os.environ.get("GUNICORN_ACCESS_LOG") else None


def post_fork(server, worker):
    """Log which worker serves, as each process exports its own code counters."""
    server.log.info("worker %s started; it sets up its own MeterProvider", worker.pid)
