"""Expose the demo as an ASGI application, for example for uvicorn."""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "metricsite.settings")
# Under ASGI each request runs its synchronous code on a thread of its own, so
# a kept connection would stay open with that thread gone; Django's
# documentation asks for persistent connections to be off under ASGI.
os.environ.setdefault("DATABASE_CONN_MAX_AGE", "0")

application = get_asgi_application()
