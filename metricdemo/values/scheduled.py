"""Share scheduled definitions' values between processes, and lease their refreshes.

Every process serves the values here (`serve`); the one process whose
conditional UPDATE takes a definition's lease evaluates it and writes the
value back. The database's own row locking makes the UPDATE atomic
(PostgreSQL and MariaDB lock the row and check the condition again on its
latest version; SQLite runs one writer at a time), so no server besides the
database is needed.
"""

from __future__ import annotations

import datetime as dt
import json
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

from django.core.exceptions import ValidationError
from django.db import DatabaseError, router
from django.db.models import Case, DateTimeField, F, Q, TextField, Value, When
from django.utils import timezone
from django.utils.translation import gettext as _

from metricdemo import outages, validators
from metricdemo.distributions import Distribution
from metricdemo.models import MetricDefinition, ScheduledValue
from metricdemo.observations import Observations, describe, shape_problem
from metricdemo.values.fingerprint import fingerprint

#: Seconds a lease outlives its definition's timeout: a process that dies
#: while it evaluates is replaced once this has passed after the timeout.
LEASE_MARGIN = 2.0

#: Fields that change what is exported but not the value: editing them keeps
#: the stored value.
NOT_IN_FINGERPRINT = frozenset(
    {
        "name",
        "description",
        "unit",
        "kind",
        "enabled",
        "timeout",
        "cache_seconds",
        "refresh_interval",
    }
)


@dataclass(frozen=True)
class Stored:
    """What the table holds for one definition in its current version."""

    observations: Observations | None
    computed_at: float | None
    seconds: float | None
    outcome: str
    error: str


#: What a scrape serves for a scheduled definition, by the outcome names it is
#: exported under: the value a background refresh computed, none yet, one
#: refreshed too long ago, none because the table cannot be read, or the value
#: this process read last because the table cannot be read now.
STORED = "stored"
PENDING = "pending"
STALE = "stale"
ERROR = "error"
KEPT = "kept"


@dataclass(frozen=True)
class Served:
    """What a scrape serves for one scheduled definition, and why."""

    outcome: str
    observations: Observations = field(default_factory=list)
    error: str = ""
    seconds: float = 0.0
    computed_at: float | None = None


def serve(
    definitions: Sequence[MetricDefinition], deadline: float | None = None
) -> dict[int, Served]:
    """Return {index: Served} for the scheduled definitions; one query.

    A scrape never evaluates them: it serves what the last background refresh
    stored, unless that is older than STALE_INTERVALS intervals. The table is
    not waited on past `deadline` (a time.monotonic() value), nor at all while
    an earlier read of its database is left unanswered.
    """
    scheduled = [i for i, d in enumerate(definitions) if _interval(d)]
    if not scheduled:
        return {}
    alias = router.db_for_read(ScheduledValue)
    try:
        found = outages.read_database(
            alias,
            lambda: read([definitions[i] for i in scheduled], using=alias),
            deadline,
        )
    except (DatabaseError, outages.Unanswered) as exc:
        error = _("The stored values cannot be read: %(error)s") % {
            "error": exc if isinstance(exc, outages.Unanswered) else describe(exc)
        }
        return {i: _last_read(definitions[i], error) for i in scheduled}
    now = time.time()
    for n, i in enumerate(scheduled):
        stored = found.get(n)
        if stored is not None and stored.observations is not None:
            _read_last[definitions[i].pk] = (definitions[i], stored)
    return {
        i: _served(definitions[i], found.get(n), now) for n, i in enumerate(scheduled)
    }


#: {definition id: (the definition as read, what was stored for it)}: the
#: value this process read last, served while the table cannot be read.
_read_last: dict[int, tuple[MetricDefinition, Stored]] = {}


def _last_read(definition: MetricDefinition, error: str) -> Served:
    """Serve the value read last while the table cannot be read, unless it is stale."""
    found = _read_last.get(definition.pk)
    # Compared only here, so that a scrape that reads the table hashes nothing.
    if found is None or fingerprint(
        found[0], leave_out=NOT_IN_FINGERPRINT
    ) != fingerprint(definition, leave_out=NOT_IN_FINGERPRINT):
        return Served(ERROR, error=error)
    served = _served(definition, found[1], time.time())
    if served.outcome != STORED:
        return Served(ERROR, error=error)
    return Served(
        KEPT,
        served.observations,
        error=error + " " + _("The value read last is served."),
        seconds=served.seconds,
        computed_at=served.computed_at,
    )


def _served(definition: MetricDefinition, stored: Stored | None, now: float) -> Served:
    interval = _interval(definition)
    if stored is None or stored.observations is None:
        if stored is not None and stored.error:
            return Served(ERROR, error=stored.error, seconds=stored.seconds or 0)
        return Served(
            PENDING,
            error=_("Not refreshed yet: its first refresh is under way or due."),
        )
    age = now - stored.computed_at
    if age > validators.STALE_INTERVALS * interval:
        return Served(
            STALE,
            error=_(
                "Its last refresh was %(age)d s ago, more than %(count)d intervals "
                "of %(interval)d s: is any process refreshing (METRICDEMO['REFRESH'])?"
            )
            % {"age": age, "count": validators.STALE_INTERVALS, "interval": interval},
            computed_at=stored.computed_at,
        )
    return Served(
        STORED,
        stored.observations,
        seconds=stored.seconds or 0.0,
        computed_at=stored.computed_at,
    )


def _interval(definition: MetricDefinition) -> int:
    return getattr(definition, "refresh_interval", None) or 0


def read(
    definitions: Sequence[MetricDefinition], using: str | None = None
) -> dict[int, Stored]:
    """Return {index: Stored} for the saved definitions that have a stored row.

    A value stored for another version of the definition (before an edit) is
    not its value: such a row reads as having no observations.
    """
    ids = {d.pk: i for i, d in enumerate(definitions) if d.pk is not None}
    if not ids:
        return {}
    rows = (
        ScheduledValue.objects.using(using or router.db_for_read(ScheduledValue))
        .filter(definition_id__in=list(ids))
        .values_list(
            "definition_id",
            "fingerprint",
            "observations",
            "computed_at",
            "seconds",
            "outcome",
            "error",
        )
    )
    found = {}
    for pk, stored_print, text, computed_at, seconds, outcome, error in rows:
        index = ids[pk]
        if stored_print != fingerprint(
            definitions[index], leave_out=NOT_IN_FINGERPRINT
        ):
            found[index] = Stored(None, None, None, "", "")
            continue
        observations = None
        if text and computed_at:
            try:
                observations = _loads(text)
                shape = shape_problem(definitions[index].kind, observations)
                if shape:
                    raise ValueError(shape)
            except ValueError as exc:
                # A row written by hand or by a broken writer costs only its
                # own definition: an error until its next refresh replaces it.
                outcome = ERROR
                error = _(
                    "Its stored value cannot be read back (%(problem)s); the next "
                    "refresh replaces it."
                ) % {"problem": exc}
        found[index] = Stored(
            observations,
            computed_at.timestamp() if computed_at else None,
            seconds,
            outcome,
            error,
        )
    return found


def due(
    definitions: Sequence[MetricDefinition], now: dt.datetime | None = None
) -> list[MetricDefinition]:
    """Return the definitions whose refresh is due and whose lease is free.

    Creates the missing rows. Only a hint: take_lease() decides, atomically.
    """
    now = now or timezone.now()
    by_id = {d.pk: d for d in definitions if d.pk is not None}
    alias = router.db_for_write(ScheduledValue)
    rows = dict(
        (pk, rest)
        for pk, *rest in ScheduledValue.objects.using(alias)
        .filter(definition_id__in=list(by_id))
        .values_list("definition_id", "attempted_at", "expires_at", "fingerprint")
    )
    missing = [ScheduledValue(definition_id=pk) for pk in by_id.keys() - rows.keys()]
    if missing:
        ScheduledValue.objects.using(alias).bulk_create(missing, ignore_conflicts=True)
    found = []
    for pk, definition in by_id.items():
        attempted_at, expires_at, stored_print = rows.get(pk, (None, None, ""))
        if expires_at is not None and expires_at >= now:
            continue
        interval = dt.timedelta(seconds=definition.refresh_interval)
        if (
            attempted_at is None
            or attempted_at <= now - interval
            or stored_print != fingerprint(definition, leave_out=NOT_IN_FINGERPRINT)
        ):
            found.append(definition)
    return found


def take_lease(
    definition: MetricDefinition,
    holder: str,
    seconds: float,
    now: dt.datetime | None = None,
) -> bool:
    """Take the lease on refreshing `definition` now, if it is due and free.

    One UPDATE whose condition the database checks on the row's latest
    version: of several processes trying at once, exactly one changes the
    row, and only that one may evaluate. The lease lasts `seconds` (the
    definition's timeout) plus LEASE_MARGIN.
    """
    now = now or timezone.now()
    interval = dt.timedelta(seconds=definition.refresh_interval)
    free = Q(expires_at__isnull=True) | Q(expires_at__lt=now)
    due_now = (
        Q(attempted_at__isnull=True)
        | Q(attempted_at__lte=now - interval)
        | ~Q(fingerprint=fingerprint(definition, leave_out=NOT_IN_FINGERPRINT))
    )
    taken = (
        ScheduledValue.objects.using(router.db_for_write(ScheduledValue))
        .filter(free & due_now, definition_id=definition.pk)
        .update(
            holder=holder,
            expires_at=now + dt.timedelta(seconds=seconds + LEASE_MARGIN),
        )
    )
    return taken == 1


def save(
    definition: MetricDefinition,
    holder: str,
    *,
    started: dt.datetime,
    outcome: str,
    observations: Observations | None,
    seconds: float,
    error: str = "",
) -> bool:
    """Store the outcome of a refresh that `holder` leased, and free the lease.

    With observations (a success) the value is replaced; otherwise the last
    good value stays, unless it belongs to an older version of the definition.
    The next refresh is due one interval after `started`.
    """
    mine = fingerprint(definition, leave_out=NOT_IN_FINGERPRINT)
    fields = {
        "fingerprint": mine,
        "attempted_at": started,
        "outcome": outcome,
        "error": error,
        "seconds": seconds,
        "holder": "",
        "expires_at": None,
    }
    if observations is not None:
        fields["observations"] = _dumps(observations)
        fields["computed_at"] = timezone.now()
    else:
        # The last good value stays, unless an older version computed it.
        fields["observations"] = Case(
            When(fingerprint=mine, then=F("observations")),
            default=Value(""),
            output_field=TextField(),
        )
        fields["computed_at"] = Case(
            When(fingerprint=mine, then=F("computed_at")),
            default=None,
            output_field=DateTimeField(),
        )
    return bool(_held(definition, holder).update(**fields))


def release(definition: MetricDefinition, holder: str) -> bool:
    """Free the lease without recording an attempt: the refresh is due again."""
    return bool(_held(definition, holder).update(holder="", expires_at=None))


def forget_others(definition_ids: Sequence[int]) -> int:
    """Delete the rows of definitions that are no longer scheduled."""
    rows = ScheduledValue.objects.using(router.db_for_write(ScheduledValue))
    deleted, _ = rows.exclude(definition_id__in=list(definition_ids)).delete()
    return deleted


def holder_of(definition_id: int) -> str:
    """Return who holds the lease on refreshing a definition ("" if nobody)."""
    row = (
        ScheduledValue.objects.using(router.db_for_read(ScheduledValue))
        .filter(definition_id=definition_id)
        .values_list("holder", flat=True)
        .first()
    )
    return row or ""


def _held(definition: MetricDefinition, holder: str):
    return ScheduledValue.objects.using(router.db_for_write(ScheduledValue)).filter(
        definition_id=definition.pk, holder=holder
    )


def _dumps(observations: Observations) -> str:
    # Not a JSONField: a callback may observe an infinity or NaN, which
    # PostgreSQL's jsonb refuses and Python's json writes and reads back.
    return json.dumps(
        [
            [value.as_json() if isinstance(value, Distribution) else value, attributes]
            for value, attributes in observations
        ]
    )


def _loads(text: str) -> Observations:
    """Read back what _dumps() wrote, checking every part of it.

    Raises:
        ValueError: the text is not a list of [number, attributes] pairs that
            the exposition can carry; the message says which part.
    """
    try:
        data = json.loads(text)
    except (ValueError, RecursionError) as exc:
        raise ValueError(_("not JSON: %(error)s") % {"error": exc}) from None
    if not isinstance(data, list):
        raise ValueError(_("%(data)r is not a list of pairs") % {"data": data})
    observations: Observations = []
    for item in data:
        if not (isinstance(item, list) and len(item) == 2):
            raise ValueError(
                _("%(item)r is not a [value, attributes] pair") % {"item": item}
            )
        value, attributes = item
        if isinstance(value, dict):
            value = Distribution.from_json(value)
        elif isinstance(value, bool) or not isinstance(value, int | float):
            raise ValueError(_("the value %(value)r is no number") % {"value": value})
        try:
            validators.validate_attributes(attributes)
        except ValidationError as exc:
            raise ValueError("; ".join(exc.messages)) from None
        bad = validators.unencodable_text(attributes)
        if bad is not None:
            raise ValueError(
                _("the attribute text %(text)s is not UTF-8 text")
                % {"text": ascii(bad)}
            )
        if not isinstance(value, Distribution):
            value = float(value)
        observations.append((value, dict(attributes)))
    return observations
