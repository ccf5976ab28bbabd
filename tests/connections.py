"""Database connections of a test's own, apart from the ones the suite runs on."""

from __future__ import annotations

from django.db import connections
from django.db.backends.sqlite3.base import DatabaseWrapper as SQLiteWrapper


def sqlite_connection() -> SQLiteWrapper:
    """Return a new in-memory SQLite connection, whatever DATABASE_URL says.

    It connects on first use; the caller closes it.
    """
    settings_dict = connections.configure_settings(
        {"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"}}
    )["default"]
    return SQLiteWrapper(settings_dict, alias="sqlite")
