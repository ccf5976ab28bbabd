"""Write text that is not UTF-8 into a row, where the database lets raw SQL."""

from __future__ import annotations

from django.db import DatabaseError, connection, transaction

#: b"help\xff" as each backend's SQL writes bytes into a text column.
WRITE_BYTES = {
    "sqlite": "CAST(X'68656C70FF' AS TEXT)",
    "postgresql": "convert_from(decode('68656c70ff', 'hex'), 'UTF8')",
    "mysql": "UNHEX('68656C70FF')",
}


def write_undecodable_description(pk: int) -> bool:
    """Set a definition's description to b"help\\xff"; return whether it was stored.

    SQLite stores the bytes as they are; PostgreSQL refuses them, and MariaDB
    in its default strict mode too, so there the case cannot arise.
    """
    try:
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(
                "UPDATE metricdemo_metricdefinition SET description = "
                f"{WRITE_BYTES[connection.vendor]} WHERE id = %s",
                [pk],
            )
    except DatabaseError:
        return False
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT CAST(description AS BLOB) FROM metricdemo_metricdefinition "
            "WHERE id = %s"
            if connection.vendor == "sqlite"
            else "SELECT description FROM metricdemo_metricdefinition WHERE id = %s",
            [pk],
        )
        (stored,) = cursor.fetchone()
    return isinstance(stored, bytes | memoryview) and bytes(stored) == b"help\xff"
