"""Compute row-based definitions in few statements: one pass per table and grouping.

Definitions on the same model with the same group-by share one pass over the
table, each as a conditional aggregate (`COUNT(*) FILTER (WHERE ...)`, or
`CASE WHEN` where the backend lacks FILTER), and the passes of one database
go out as one UNION ALL statement. The statements are compiled once per set
of definitions and kept; each evaluation only binds its relative times
(`now-1h`) again.

The stages live in submodules, as Django's `db/models/sql/` splits its own,
each importing only those above it here:

- `types`: the members, passes, column layouts, statements and plans they share.
- `sql`: the SQL of one pass, its measures, columns and relative-time slots.
- `plan`: which definitions share a pass and a statement; plans kept once built.
- `fetch`: runs the statements, binds their times and reads values back.

This module names the functions other modules use.
"""

from metricdemo.rowquery.fetch import compute_rows
from metricdemo.rowquery.plan import clear_plans, plan_for

__all__ = ["clear_plans", "compute_rows", "plan_for"]
