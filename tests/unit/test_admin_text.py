"""Unit tests for metricdemo.admin_text: where names and units may wrap."""

from __future__ import annotations

import html
import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from metricdemo.admin_text import (
    LONGEST_UNBROKEN,
    name_html,
    name_segments,
    unit_html,
)


@pytest.mark.parametrize(
    ("name", "segments"),
    [
        ("metricdemo.demo.definitions", ["metricdemo.", "demo.", "definitions"]),
        ("shop_orders_total", ["shop_", "orders_", "total"]),
        ("a__b.", ["a_", "_", "b."]),
        (".x", [".", "x"]),
        ("jobs/queue-depth", ["jobs/queue-depth"]),
        ("", []),
    ],
)
def test_name_segments__after_each_dot_and_underscore(name, segments):
    assert name_segments(name) == segments


def test_name_html__a_span_per_segment_and_wbr_between():
    assert name_html("shop.orders_total") == (
        '<span class="metricdemo-name"><span>shop.</span><wbr>'
        "<span>orders_</span><wbr><span>total</span></span>"
    )


def test_name_html__escapes_the_name():
    assert name_html("<b>&\"x'.y") == (
        '<span class="metricdemo-name"><span>&lt;b&gt;&amp;&quot;x&#x27;.</span>'
        "<wbr><span>y</span></span>"
    )


def test_name_html__a_long_segment_may_wrap_anywhere():
    fits = "x" * (LONGEST_UNBROKEN - 1) + "."
    too_long = "x" * LONGEST_UNBROKEN + "_"
    assert name_html(fits + too_long + "y") == (
        f'<span class="metricdemo-name"><span>{fits}</span><wbr>'
        f'<span class="metricdemo-long">{too_long}</span><wbr><span>y</span></span>'
    )
    assert name_html("y" * 200) == (
        f'<span class="metricdemo-name"><span class="metricdemo-long">{"y" * 200}'
        "</span></span>"
    )


def shown_parts(markup: str) -> list[str]:
    """Return the text between one <wbr> and the next, tags dropped, unescaped."""
    return [
        html.unescape(re.sub(r"<[^>]*>", "", part)) for part in markup.split("<wbr>")
    ]


@given(st.text(min_size=1, max_size=60))
def test_name_html__wbr_only_after_a_dot_or_underscore(name):
    parts = shown_parts(name_html(name))
    assert "".join(parts) == name
    assert all(part.endswith((".", "_")) for part in parts[:-1])
    assert all(part for part in parts)


def test_unit_html__one_span_whole_in_its_title():
    assert unit_html("{EUR}") == (
        '<span class="metricdemo-unit" title="{EUR}">{EUR}</span>'
    )
    assert unit_html('{a"<b>}') == (
        '<span class="metricdemo-unit" title="{a&quot;&lt;b&gt;}">'
        "{a&quot;&lt;b&gt;}</span>"
    )
