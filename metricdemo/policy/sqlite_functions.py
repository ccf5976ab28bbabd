"""Find the Python functions SQLite runs for a lookup; refuse the unbounded ones.

Django's SQLite backend registers Python functions that SQLite calls once per
row; a lookup that reaches one whose cost has no bound (REGEXP) could hold the
process for minutes, beyond any timeout, so it is refused on SQLite.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

from django.db import connections
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.models import Model
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from metricdemo import lookups, measures, routing, validators

#: The Python functions that Django's SQLite backend registers on every
#: connection (django/db/backends/sqlite3/_functions.py), which SQLite calls
#: inside a query, once per row, holding the interpreter lock. SQLite's progress
#: handler runs only between calls, so a call cannot be interrupted: these cost
#: a small amount per row that depends on the row alone (parse a date, hash a
#: value), so the progress handler stops the query between rows in time.
SQLITE_BOUNDED_FUNCTIONS = frozenset(
    {
        "django_date_extract",
        "django_date_trunc",
        "django_datetime_cast_date",
        "django_datetime_cast_time",
        "django_datetime_extract",
        "django_datetime_trunc",
        "django_time_extract",
        "django_time_trunc",
        "django_time_diff",
        "django_timestamp_diff",
        "django_format_dtdelta",
        "bitxor",
        "cot",
        "md5",
        "reverse",
        "sha1",
        "sha224",
        "sha256",
        "sha384",
        "sha512",
        "sign",
        "rand",
        "stddev_pop",
        "stddev_samp",
        "var_pop",
        "var_samp",
        # Django 6.0 and 6.1: aggregates folding one value per row, new UUIDs.
        "any_value",
        "bit_and",
        "bit_or",
        "bit_xor",
        "uuidv4",
        "uuidv7",
        # Registered only where SQLite lacks its own maths functions.
        *"acos asin atan atan2 ceiling cos degrees exp floor ln log mod pi power "
        "radians sin sqrt tan".split(),
    }
)
#: The ones whose cost for one row has no bound, with why: one call can hold
#: the whole process for minutes.
SQLITE_UNBOUNDED_FUNCTIONS = {
    "regexp": gettext_lazy(
        "SQLite runs it with Python's re module on every row, inside the query and "
        "holding the interpreter lock: a pattern such as ^(a+)+$ can backtrack for "
        "minutes, and neither the definition's timeout nor SQLite's progress "
        "handler can interrupt it, so every request of the process would wait"
    ),
    "repeat": gettext_lazy(
        "SQLite runs it with Python's REPEAT() on every row, whose cost grows with "
        "an argument and cannot be interrupted"
    ),
    "lpad": gettext_lazy(
        "SQLite runs it with Python's LPAD() on every row, whose cost grows with an "
        "argument and cannot be interrupted"
    ),
    "rpad": gettext_lazy(
        "SQLite runs it with Python's RPAD() on every row, whose cost grows with an "
        "argument and cannot be interrupted"
    ),
}
SQLITE_PYTHON_FUNCTIONS = SQLITE_BOUNDED_FUNCTIONS | SQLITE_UNBOUNDED_FUNCTIONS.keys()

# Quoted names and string literals, which may spell a function's name harmlessly.
_QUOTED_RE = re.compile(r'"(?:[^"]|"")*"|\'(?:[^\']|\'\')*\'|`(?:[^`]|``)*`')
_WORD_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
# Compiled lookups, by (vendor, model, lookup or path, value): a scrape checks
# every row count, and compiling its query each time would cost more than the
# rest of the check.
_CALLS: dict[tuple, frozenset[str]] = {}
_CALLS_MAX = 4096


def unbounded_lookup_refusals(
    model: type[Model],
    filters: Any,
    group_by: str,
    *,
    field: str = "",
    connection: BaseDatabaseWrapper | None = None,
) -> dict[str, str]:
    """Return {field: why} for lookups whose cost the database cannot bound.

    The database is the one the row count reads (see
    routing.model_database()) unless `connection` is given. Only SQLite runs
    lookups in Python (`__regex` and `__iregex` through REGEXP, date parts
    through Django's functions); PostgreSQL and MariaDB run them in the server,
    where the statement timeout cuts them. Each lookup is compiled for the database, so
    a custom lookup or transform that calls one of these functions is caught
    as well as the built-in ones.
    """
    if connection is None:
        connection = connections[routing.model_database(model)]
    if connection.vendor != "sqlite":
        return {}
    refusals: dict[str, str] = {}
    for lookup, value in filters.items() if isinstance(filters, Mapping) else ():
        refusal = _unbounded_refusal(connection, model, str(lookup), value)
        if refusal:
            refusals["filters"] = refusal
            break
    for path in validators.group_by_paths(group_by):
        refusal = _unbounded_refusal(connection, model, path, None, grouped=True)
        if refusal:
            refusals["group_by"] = refusal
            break
    for path in measures.paths_of(field):
        refusal = _unbounded_refusal(connection, model, path, None, grouped=True)
        if refusal:
            refusals["field"] = refusal
            break
    return refusals


def python_functions(sql: str) -> set[str]:
    """Return the Python functions of Django's SQLite backend that `sql` calls."""
    words = _WORD_RE.findall(_QUOTED_RE.sub(" ", sql))
    return {word.lower() for word in words} & SQLITE_PYTHON_FUNCTIONS


def _unbounded_refusal(
    connection: BaseDatabaseWrapper,
    model: type[Model],
    lookup: str,
    value: Any,
    *,
    grouped: bool = False,
) -> str | None:
    unbounded = sorted(
        _calls(connection, model, lookup, value, grouped)
        & SQLITE_UNBOUNDED_FUNCTIONS.keys()
    )
    if not unbounded:
        return None
    what = repr(lookup) if grouped else f"{lookup!r}: {value!r}"
    return _(
        "%(what)s cannot be bounded on SQLite (database %(alias)r): %(why)s. "
        "It is refused there; use contains, startswith, endswith, in or exact "
        "instead, or a case-insensitive form such as icontains, for example "
        '{"name__startswith": "shop."}.'
    ) % {
        "what": what,
        "alias": connection.alias,
        "why": SQLITE_UNBOUNDED_FUNCTIONS[unbounded[0]],
    }


def _calls(
    connection: BaseDatabaseWrapper,
    model: type[Model],
    lookup: str,
    value: Any,
    grouped: bool,
) -> frozenset[str]:
    try:
        frozen = json.dumps(value, sort_keys=True, default=repr)
    except (TypeError, ValueError):
        frozen = repr(value)
    key = (connection.vendor, model._meta.label, lookup, frozen, grouped)
    found = _CALLS.get(key)
    if found is None:
        manager = model._default_manager
        try:
            query = (
                manager.values(lookup)
                if grouped
                else manager.filter(lookups.parse(model, lookup).q(value))
            )
            sql, _params = query.query.get_compiler(connection=connection).as_sql()
        except Exception:  # noqa: BLE001 - an unusable lookup is refused elsewhere
            # Validation names its error, and a scrape's query fails to compile
            # the same way, so it never runs.
            return frozenset()
        found = frozenset(python_functions(sql))
        if len(_CALLS) >= _CALLS_MAX:
            _CALLS.clear()
        _CALLS[key] = found
    return found
