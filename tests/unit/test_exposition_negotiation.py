"""Accept and Accept-Encoding headers as Prometheus 2, 3 and anything else send them."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from metricdemo.exposition import negotiation
from metricdemo.exposition.negotiation import (
    OPENMETRICS_1_0_0,
    TEXT_0_0_4,
    TEXT_1_0_0,
    Negotiated,
    negotiate,
)

PROMETHEUS_3 = (
    "application/openmetrics-text;version=1.0.0;escaping=allow-utf-8;q=0.5,"
    "application/openmetrics-text;version=0.0.1;q=0.4,"
    "text/plain;version=1.0.0;escaping=allow-utf-8;q=0.3,"
    "text/plain;version=0.0.4;q=0.2,*/*;q=0.1"
)
PROMETHEUS_2 = (
    "application/openmetrics-text;version=1.0.0,application/openmetrics-text;"
    "version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1"
)


@pytest.mark.parametrize(
    ("accept", "expected"),
    [
        (None, Negotiated(TEXT_0_0_4, "underscores")),
        ("", Negotiated(TEXT_0_0_4, "underscores")),
        (PROMETHEUS_3, Negotiated(OPENMETRICS_1_0_0, "allow-utf-8")),
        (PROMETHEUS_2, Negotiated(OPENMETRICS_1_0_0, "underscores")),
        # Prometheus 3 told to scrape the classic text format first.
        (
            "text/plain;version=1.0.0;escaping=allow-utf-8;q=0.6,"
            "application/openmetrics-text;version=1.0.0;q=0.5",
            Negotiated(TEXT_1_0_0, "allow-utf-8"),
        ),
        ("text/plain;version=1.0.0;escaping=dots", Negotiated(TEXT_1_0_0, "dots")),
        ("text/plain;version=1.0.0;escaping=values", Negotiated(TEXT_1_0_0, "values")),
        ("text/plain;version=1.0.0", Negotiated(TEXT_1_0_0, "underscores")),
        ("text/plain;version=0.0.4", Negotiated(TEXT_0_0_4, "underscores")),
        # The classic format cannot quote a name: UTF-8 is escaped anyway.
        (
            "text/plain;version=0.0.4;escaping=allow-utf-8",
            Negotiated(TEXT_0_0_4, "underscores"),
        ),
        ("text/plain;version=0.0.4;escaping=dots", Negotiated(TEXT_0_0_4, "dots")),
        ("application/openmetrics-text", Negotiated(OPENMETRICS_1_0_0, "underscores")),
        (
            "application/openmetrics-text;version=0.0.1",
            Negotiated(OPENMETRICS_1_0_0, "underscores"),
        ),
        (
            "Application/OpenMetrics-Text; Version=1.0.0; Escaping=values",
            Negotiated(OPENMETRICS_1_0_0, "values"),
        ),
        # Quality decides, not the order; q=0 refuses.
        (
            "text/plain;version=0.0.4;q=0.2,application/openmetrics-text;q=0.9",
            Negotiated(OPENMETRICS_1_0_0, "underscores"),
        ),
        (
            "application/openmetrics-text;q=0,text/plain;version=1.0.0",
            Negotiated(TEXT_1_0_0, "underscores"),
        ),
        # Unknown versions, types and escapings are passed over.
        (
            "application/openmetrics-text;version=2.0.0,text/plain;version=1.0.0",
            Negotiated(TEXT_1_0_0, "underscores"),
        ),
        ("text/plain;version=9.9.9", Negotiated(TEXT_0_0_4, "underscores")),
        ("application/json", Negotiated(TEXT_0_0_4, "underscores")),
        (
            "text/plain;version=1.0.0;escaping=bogus",
            Negotiated(TEXT_1_0_0, "underscores"),
        ),
        ("*/*", Negotiated(TEXT_0_0_4, "underscores")),
        (
            "text/html,application/xhtml+xml,*/*;q=0.8",
            Negotiated(TEXT_0_0_4, "underscores"),
        ),
        # Malformed: never an error.
        (";;;,,,", Negotiated(TEXT_0_0_4, "underscores")),
        ("application/openmetrics-text;q=abc", Negotiated(TEXT_0_0_4, "underscores")),
        ("application/openmetrics-text;q=7", Negotiated(TEXT_0_0_4, "underscores")),
        ("application/openmetrics-text;q=nan", Negotiated(TEXT_0_0_4, "underscores")),
        ("=,=;=", Negotiated(TEXT_0_0_4, "underscores")),
    ],
)
def test_negotiation(accept, expected):
    assert negotiate(accept) == expected


@pytest.mark.parametrize(
    ("negotiated", "content_type"),
    [
        (
            Negotiated(TEXT_0_0_4, "underscores"),
            "text/plain; version=0.0.4; charset=utf-8; escaping=underscores",
        ),
        (
            Negotiated(TEXT_1_0_0, "allow-utf-8"),
            "text/plain; version=1.0.0; charset=utf-8; escaping=allow-utf-8",
        ),
        (
            Negotiated(OPENMETRICS_1_0_0, "dots"),
            "application/openmetrics-text; version=1.0.0; charset=utf-8; escaping=dots",
        ),
    ],
)
def test_the_content_type_states_format_and_escaping(negotiated, content_type):
    assert negotiated.content_type == content_type


@given(st.text(max_size=200))
def test_any_header_gets_an_answer(accept):
    result = negotiate(accept)
    assert result.format in (TEXT_0_0_4, TEXT_1_0_0, OPENMETRICS_1_0_0)
    assert result.escaping in ("allow-utf-8", "underscores", "dots", "values")


@pytest.mark.parametrize(
    ("header", "accepted"),
    [
        ("gzip", True),
        ("gzip, deflate, br", True),
        ("deflate, GZIP;q=0.5", True),
        ("gzip;q=0", False),
        ("identity", False),
        ("", False),
        (None, False),
        ("gzipx", False),
    ],
)
def test_gzip_accepted(header, accepted):
    assert negotiation.gzip_accepted(header) is accepted
