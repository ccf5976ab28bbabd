"""Send every query to the database the benchmark is measuring at the moment."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

_active = "default"


@contextmanager
def using(alias: str) -> Iterator[None]:
    """Route every model's reads and writes to `alias` inside the block."""
    global _active
    previous, _active = _active, alias
    try:
        yield
    finally:
        _active = previous


class ActiveDatabaseRouter:
    """Route reads and writes of every model to the active alias."""

    def db_for_read(self, model, **hints) -> str:
        """Return the active alias."""
        return _active

    def db_for_write(self, model, **hints) -> str:
        """Return the active alias."""
        return _active

    def allow_relation(self, obj1, obj2, **hints) -> bool:
        """Allow relations: both ends always live in the same database."""
        return True

    def allow_migrate(self, db, app_label, **hints) -> bool:
        """Create every table in every database."""
        return True
