"""Hold what the row query's stages share: members, passes, layouts and statements.

The plan stage builds these and the fetch stage reads them; only a
statement's `bounded` flag changes after planning.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from metricdemo.measures import Measure

if TYPE_CHECKING:
    from django.db.models import Model

    from metricdemo.observations import EvaluationError


@dataclass(frozen=True)
class Member:
    """One definition's part in a pass: its aggregate, filters and group bound."""

    index: int
    definition: Any
    aggregate: str
    kind: str | None
    filters: dict[str, Any]
    keys: tuple[str, ...]
    booleans: tuple[bool, ...]
    bound: int
    filtered: bool = False
    #: Every row has a value of the aggregated field (no NULL on the way).
    never_null: bool = False
    #: What the field measures: a path, or a duration between two.
    measure: Measure = Measure("")
    #: The model the rows are read from.
    model: Any = None
    #: A histogram's bucket bounds; () for the other aggregates.
    bounds: tuple[float, ...] = ()
    #: The decimal places a sum, minimum or maximum of a DecimalField is
    #: rounded to; None for the other aggregates and fields.
    places: int | None = None

    @property
    def width(self) -> int:
        """Return how many value columns the member's value takes."""
        return 4 + len(self.bounds) if self.bounds else 1


@dataclass(frozen=True)
class Layout:
    """Where each member of a pass finds its columns among the pass's values.

    Columns count from the first value column of a row, in the order of the
    pass's members.
    """

    #: The column of each member's value (its first, for a histogram: count,
    #: sum, minimum, maximum, then the cumulative count of each bucket).
    columns: tuple[int, ...]
    #: The column saying whether any row of a group matched each member's
    #: filters, or None where the member's value tells.
    presence: tuple[int | None, ...]
    #: How many value columns the pass uses.
    width: int = 0


@dataclass(frozen=True)
class Pass:
    """Definitions computed in one scan of one table with one grouping."""

    number: int
    alias: str
    model: type[Model]
    paths: tuple[str, ...]
    members: tuple[Member, ...]
    layout: Layout

    @property
    def grouped(self) -> bool:
        return bool(self.paths)

    @property
    def limit(self) -> int:
        # Without a member over its bound, the groups number at most the sum
        # of the bounds; one row more says some member is over.
        return sum(member.bound for member in self.members) + 1


@dataclass
class Statement:
    """One compiled UNION ALL statement and where its relative times go.

    `sql` bounds the rows of the whole statement with one LIMIT, the sum of
    its passes' bounds, which leaves PostgreSQL free to run the passes in
    parallel; a LIMIT inside each part would not. `bounded_sql` bounds each
    grouped pass by its own LIMIT instead. When `sql` reads as many rows as its
    LIMIT, some pass may have been cut short, so the statement runs again as
    `bounded_sql`, and keeps doing so until no pass reaches its bound.
    """

    alias: str
    sql: str
    params: list[Any]
    #: (parameter position, relative time, DATE or DATETIME) to bind each time.
    slots: list[tuple[int, str, str]]
    passes: dict[int, Pass]
    #: Where the passes' values start in a row: after the pass number and the
    #: group columns.
    offset: int = 1
    #: Each grouped pass bounded by its own LIMIT; the parameters are the same.
    bounded_sql: str = ""
    #: The LIMIT of `sql`, or None when `sql` is already `bounded_sql`.
    limit: int | None = None
    #: Whether the last rows needed `bounded_sql`: the next run starts with it.
    #: The fetch stage writes it; a kept plan remembers it between evaluations.
    bounded: bool = False


@dataclass(frozen=True)
class Plan:
    """What to run for a set of definitions, and the errors known beforehand."""

    errors: dict[int, EvaluationError] = field(default_factory=dict)
    statements: tuple[Statement, ...] = ()
    #: Passes whose filters match nothing (`status__in=[]`): no rows to read.
    empty: tuple[Pass, ...] = ()
