"""How much the benchmark measures: the full run and the quick one the tests use."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Config:
    """How much to measure; the defaults are the full run."""

    sizes: tuple[int, ...] = (100, 1000, 10000)
    rounds: tuple[int, ...] = (30, 20, 12)
    warmup: int = 3
    row_counts: int = 100
    rows_per_model: int = 1000
    row_count_rounds: int = 20
    change_size: int = 1000
    change_rounds: int = 20
    memory_sizes: tuple[int, ...] = (1000, 10000)
    aggregate_definitions: int = 100
    big_table_rows: int = 1_000_000
    big_rounds: int = 5
    profile_size: int = 1000
    # A process after soak_edits edits of soak_size definitions, scraped
    # soak_rounds times beside a fresh one.
    soak_size: int = 100
    soak_edits: int = 2000
    soak_rounds: int = 30
    profile_scrapes: int = 10
    top_functions: int = 12
    import_sizes: tuple[int, ...] = (1000, 10000)
    import_rounds: int = 3
    # Section 6: rows of the one large table the scheduled counts scan.
    schedule_rows: int = 1_000_000
    schedule_rounds: int = 5
    # Section 9: row counts on SQLite until every one is served, runs of it,
    # and the scrapes each run may take.
    served_definitions: int = 10000
    served_rounds: int = 3
    served_limit: int = 10
    # Section 10: definitions stored for the admin's pages, runs of each page,
    # and the history samples of each definition that is not a constant (a
    # day, one a minute).
    admin_definitions: int = 1000
    admin_rounds: int = 10
    admin_samples: int = 1440
    # --profile: rank the top functions by cumulative time as well as self time.
    long_profile: bool = False


#: A run small enough for the test suite: it proves the harness still works.
QUICK = Config(
    sizes=(5, 50),
    rounds=(2, 2),
    warmup=1,
    row_counts=20,
    rows_per_model=20,
    row_count_rounds=2,
    change_size=5,
    change_rounds=2,
    memory_sizes=(5,),
    aggregate_definitions=20,
    big_table_rows=2000,
    big_rounds=1,
    profile_size=5,
    soak_size=5,
    soak_edits=20,
    soak_rounds=2,
    profile_scrapes=1,
    top_functions=5,
    import_sizes=(20, 200),
    import_rounds=1,
    schedule_rows=2000,
    schedule_rounds=2,
    served_definitions=300,
    served_rounds=1,
    served_limit=5,
    admin_definitions=50,
    admin_rounds=2,
    admin_samples=5,
)
