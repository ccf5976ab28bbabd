"""A value at a glance: states, formatted values, top series and sparklines."""

from __future__ import annotations

import datetime as dt
import re
import xml.etree.ElementTree as ET

import pytest

from metricdemo import presentation
from metricdemo.distributions import Distribution
from metricdemo.evaluation import Evaluation, Outcome
from metricdemo.models import MetricDefinition
from metricdemo.presentation import State

SVG = "{http://www.w3.org/2000/svg}"
T0 = dt.datetime(2026, 12, 1, 12, 0, tzinfo=dt.UTC)


def definition(**fields) -> MetricDefinition:
    fields.setdefault("name", "shop.orders")
    fields.setdefault("kind", "gauge")
    return MetricDefinition(**fields)


@pytest.mark.parametrize(
    ("outcome", "state"),
    [
        (Outcome.SUCCESS, State.OK),
        (Outcome.CACHED, State.OK),
        (Outcome.STORED, State.OK),
        (Outcome.KEPT, State.STALE),
        (Outcome.STALE, State.STALE),
        (Outcome.PENDING, State.PENDING),
        (Outcome.ERROR, State.ERROR),
        (Outcome.TIMEOUT, State.TIMEOUT),
    ],
)
def test_each_outcome_has_a_state(outcome, state):
    shown = presentation.shown(definition(), Evaluation("shop.orders", outcome))
    assert shown.state == state


def test_hidden_and_disabled_and_unknown_are_states_too():
    assert presentation.shown(definition(), None, hidden="no rows").state == "hidden"
    assert presentation.shown(definition(enabled=False), None).state == "disabled"
    assert presentation.shown(definition(), None).state == "unknown"


def test_an_error_keeps_its_message_and_shows_no_value():
    shown = presentation.shown(
        definition(), Evaluation("x", Outcome.ERROR, error="no such table", seconds=0.5)
    )
    assert (shown.value, shown.message, shown.seconds) == (None, "no such table", 0.5)


def test_a_single_value_is_formatted_for_its_unit():
    shown = presentation.shown(
        definition(unit="{EUR}"),
        Evaluation("x", Outcome.SUCCESS, [(12579.07, {})], seconds=0.002),
    )
    assert (shown.value.short, shown.value.full) == ("12,579.07 EUR", "12,579.07 EUR")
    assert (shown.series_count, shown.top, shown.seconds) == (1, [], 0.002)


def test_a_value_computed_earlier_has_no_cost_now():
    shown = presentation.shown(
        definition(),
        Evaluation("x", Outcome.STORED, [(1, {})], seconds=0.2, computed_at=1e9),
    )
    assert (shown.seconds, shown.computed_at) == (None, 1e9)


def test_a_grouped_value_shows_its_count_and_its_three_largest_series():
    observations = [(float(n), {"country": f"C{n:02d}"}) for n in range(33)]
    shown = presentation.shown(
        definition(unit="By"), Evaluation("x", Outcome.SUCCESS, observations)
    )
    assert shown.value is None
    assert shown.series_count == 33
    assert shown.more == 30
    assert [(s.labels, s.value.short) for s in shown.top] == [
        ("country=C32", "32 B"),
        ("country=C31", "31 B"),
        ("country=C30", "30 B"),
    ]


def test_a_histogram_shows_its_count_and_median_and_the_rest_on_hover():
    value = Distribution((1.0, 10.0), (2, 3), 4, 30.0)
    shown = presentation.shown(
        definition(kind="histogram", unit="s"),
        Evaluation("x", Outcome.SUCCESS, [(value, {})]),
    )
    assert shown.value.short.startswith("count 4, sum 30 s, p50 ")
    assert "sum 30 s" in shown.value.full
    assert "p99" in shown.value.full


def points(*values):
    return [(T0 + dt.timedelta(minutes=i), v) for i, v in enumerate(values)]


def parse_svg(markup: str) -> ET.Element:
    return ET.fromstring(str(markup).replace("<svg ", f'<svg xmlns="{SVG[1:-1]}" ', 1))


def coordinates(polyline: ET.Element) -> list[tuple[float, float]]:
    pairs = polyline.get("points").split()
    return [tuple(float(n) for n in pair.split(",")) for pair in pairs]


def test_a_sparkline_spans_its_box_from_the_lowest_to_the_highest_value():
    svg = parse_svg(presentation.sparkline(points(1, 3, 2)))
    (line,) = svg.iter(f"{SVG}polyline")
    xs, ys = zip(*coordinates(line), strict=True)
    assert xs == (0.0, 60.0, 120.0)
    # SVG's y grows downwards: the highest value is at the top.
    assert ys[1] == 2.0 and ys[0] == presentation.HEIGHT - 2.0
    assert svg.get("viewBox") == f"0 0 {presentation.WIDTH} {presentation.HEIGHT}"
    assert svg.find(f"{SVG}title").text == "2 min: low 1, high 3, last 2"


def test_a_missing_value_breaks_the_line_and_a_lone_point_is_a_dot():
    svg = parse_svg(presentation.sparkline(points(1, 2, None, 5)))
    assert len(list(svg.iter(f"{SVG}polyline"))) == 1
    (dot,) = svg.iter(f"{SVG}circle")
    assert float(dot.get("cx")) == presentation.WIDTH


def test_a_flat_line_is_drawn_in_the_middle():
    svg = parse_svg(presentation.sparkline(points(4, 4)))
    (line,) = svg.iter(f"{SVG}polyline")
    assert {y for _, y in coordinates(line)} == {presentation.HEIGHT / 2}


def test_no_values_draw_nothing():
    assert presentation.sparkline([]) == ""
    assert presentation.sparkline(points(None, float("nan"))) == ""


def test_the_sparkline_title_is_escaped_and_the_svg_has_no_inline_style():
    markup = str(presentation.sparkline(points(1, 2), label='<b>"x"</b>'))
    assert "<b>" not in markup and "&lt;b&gt;" in markup
    assert not re.search(r"\sstyle=", markup)


def test_a_list_cell_shows_one_labelled_series_as_its_value_and_labels():
    shown = presentation.shown(
        definition(unit="{EUR}"),
        Evaluation("x", Outcome.SUCCESS, [(80.5, {"country": "AT"})]),
    )
    markup = str(presentation.value_html(shown))
    assert re.sub(r"<[^>]+>", " ", markup).split() == ["80.50", "EUR", "country=AT"]
    assert "series" not in markup


def test_a_list_cell_shows_several_series_as_their_count_and_the_largest():
    observations = [(float(n), {"status": f"s{n}"}) for n in range(5)]
    shown = presentation.shown(
        definition(), Evaluation("x", Outcome.SUCCESS, observations)
    )
    text = re.sub(r"<[^>]+>", " ", str(presentation.value_html(shown))).split()
    assert text == [
        "5", "series", "status=s4", "4", "status=s3", "3", "status=s2", "2",
        "and", "2", "more",
    ]  # fmt: skip


def test_a_list_cell_shows_an_error_as_a_note():
    shown = presentation.shown(
        definition(), Evaluation("x", Outcome.TIMEOUT, error="over 1 s")
    )
    markup = str(presentation.value_html(shown, outcome="timeout"))
    assert markup == '<span class="errornote">timeout: over 1 s</span>'
