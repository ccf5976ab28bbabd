"""Database connections of a test's own, apart from the ones the suite runs on."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

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


def on_a_thread(work: Callable[[], Any], timeout: float = 60) -> Any:
    """Return work() run on a new thread with its own connections, then closed.

    What work() raises is raised here.
    """
    found = {}

    def run() -> None:
        try:
            found["result"] = work()
        except BaseException as exc:  # noqa: BLE001 - re-raised below
            found["error"] = exc
        finally:
            connections.close_all()

    thread = threading.Thread(target=run)
    thread.start()
    thread.join(timeout)
    assert not thread.is_alive(), f"work() still runs after {timeout} s"
    if "error" in found:
        raise found["error"]
    return found["result"]
