"""Model fields that read back text SQLite holds as bytes that are not UTF-8.

SQLite stores whatever bytes a raw `UPDATE` casts to TEXT, and Python's sqlite3
refuses the whole query when one value does not decode, so one such row would
fail every read of the table: the scrape's reload, the admin's list and every
command. These fields select the column as a BLOB on SQLite and decode it
here, so the row reads back as `UndecodableText` (the text with U+FFFD where
the bytes were wrong), which validation and the scrape refuse for that row
alone. Other databases refuse such bytes on write, so nothing changes there.
"""

from __future__ import annotations

from typing import Any

from django.db import models


class UndecodableText(str):
    """Text read back from bytes that are not UTF-8, with U+FFFD for each bad one."""


def decoded(value: Any) -> Any:
    """Return `value` as text if it is bytes; UndecodableText if they are not UTF-8."""
    if not isinstance(value, bytes | memoryview):
        return value
    raw = bytes(value)
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return UndecodableText(raw.decode("utf-8", "replace"))


class _ReadsBytesOnSQLite:
    """Select the column as a BLOB on SQLite and decode it in Python."""

    def select_format(self, compiler: Any, sql: str, params: Any) -> tuple[str, Any]:
        sql, params = super().select_format(compiler, sql, params)  # type: ignore[misc]
        if compiler.connection.vendor == "sqlite":
            return f"CAST({sql} AS BLOB)", params
        return sql, params

    def deconstruct(self) -> tuple[Any, str, Any, Any]:
        # No schema change: migrations see the plain Django field.
        name, path, args, kwargs = super().deconstruct()  # type: ignore[misc]
        base = type(self).__mro__[2]
        return name, f"django.db.models.{base.__name__}", args, kwargs


class TextField(_ReadsBytesOnSQLite, models.TextField):
    """A TextField whose undecodable value costs its row, not the query."""

    def from_db_value(self, value: Any, expression: Any, connection: Any) -> Any:
        return decoded(value)


class CharField(_ReadsBytesOnSQLite, models.CharField):
    """A CharField whose undecodable value costs its row, not the query."""

    def from_db_value(self, value: Any, expression: Any, connection: Any) -> Any:
        return decoded(value)


class JSONField(_ReadsBytesOnSQLite, models.JSONField):
    """A JSONField whose undecodable text costs its row, not the query."""

    def from_db_value(self, value: Any, expression: Any, connection: Any) -> Any:
        text = decoded(value)
        if isinstance(text, UndecodableText):
            # Not parsed: what was stored is not the JSON anyone wrote.
            return text
        return super().from_db_value(text, expression, connection)
