"""Unit tests for metricdemo.values: the last good value kept in this process."""

from __future__ import annotations

from metricdemo.values.kept import KeptValues


def test_kept_values__serve_the_version_they_were_computed_for():
    kept = KeptValues()
    assert kept.get("a", 1) is None
    kept.remember("a", 1, [(2.0, {"q": "x"})])
    observations, computed_at = kept.get("a", 1)
    assert observations == [(2.0, {"q": "x"})]
    assert computed_at > 0


def test_kept_values__an_edited_definition_has_no_kept_value():
    kept = KeptValues()
    kept.remember("a", 1, [(2.0, {})])
    assert kept.get("a", 2) is None
    assert kept.get("b", 1) is None
