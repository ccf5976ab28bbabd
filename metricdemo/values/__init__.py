"""The places a definition's value lives, named apart.

- `kept`: the last good value, in this process, served while a batch that
  overran is examined;
- `shared_cache`: the Django cache of the definitions with cache_seconds;
- `scheduled`: the table of scheduled definitions' values, shared by every
  process, and the lease on their refreshes;
- `history`: a sample of each definition's value per interval, written once
  across processes, for the recent history.

`fingerprint` ties a stored or cached value to the version of its definition.
"""
