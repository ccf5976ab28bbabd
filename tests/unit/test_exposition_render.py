"""The renderer: the exporter's text by default, parseable under every negotiation."""

from __future__ import annotations

import math

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from opentelemetry.exporter.prometheus import PrometheusMetricReader
from opentelemetry.metrics import Observation
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.resources import Resource
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    InfoMetricFamily,
)
from prometheus_client.openmetrics import exposition as om_exposition
from prometheus_client.openmetrics.parser import (
    text_string_to_metric_families as openmetrics_families,
)
from prometheus_client.parser import text_string_to_metric_families as text_families

from metricdemo.exposition import names
from metricdemo.exposition.negotiation import (
    DEFAULT,
    OPENMETRICS_1_0_0,
    TEXT_0_0_4,
    TEXT_1_0_0,
    Negotiated,
)
from metricdemo.exposition.render import Collected, Renderer, format_value
from metricdemo.telemetry.reader import ExpositionReader

NEGOTIATIONS = [
    Negotiated(fmt, escaping)
    for fmt in (TEXT_0_0_4, TEXT_1_0_0, OPENMETRICS_1_0_0)
    for escaping in names.ESCAPINGS
    if not (fmt == TEXT_0_0_4 and escaping == names.ALLOW_UTF8)
]


# Made once: Resource.create() starts a thread pool for its detectors.
RESOURCE = Resource.create()


class Pair:
    """One MeterProvider read by the app's reader and by the exporter it replaced."""

    def __init__(self) -> None:
        self.ours = ExpositionReader()
        self.registry = CollectorRegistry(auto_describe=False)
        self.exporter = PrometheusMetricReader(registry=self.registry)
        self.provider = MeterProvider(
            metric_readers=[self.ours, self.exporter],
            resource=RESOURCE,
            shutdown_on_exit=False,
        )

    def render(
        self, negotiated=DEFAULT, strategy=names.DEFAULT_STRATEGY, renderer=None
    ):
        data = self.ours.collect_now()
        collected = Collected((data,), data.resource_metrics[0].resource)
        return (
            (renderer or Renderer()).render([collected], negotiated, strategy).decode()
        )

    def exported(self) -> str:
        return generate_latest(self.registry).decode()

    def close(self) -> None:
        self.provider.shutdown()


@pytest.fixture
def pair():
    made = Pair()
    yield made
    made.close()


def record_examples(meter) -> None:
    counter = meter.create_counter("shop.orders", unit="{order}", description="Orders")
    counter.add(3, {"channel": "web", "country": "DE"})
    counter.add(1, {"channel": "shop"})
    meter.create_up_down_counter("queue.size", unit="By").add(-5, {"q": "a"})
    meter.create_gauge("room.temp", unit="Cel", description='Say "hi" \\ bye\n').set(
        21.5, {"room": 'the "big"\\one\nü', "floor": 2, "open": True, "ratio": 0.5}
    )
    histogram = meter.create_histogram(
        "http.latency", unit="ms", explicit_bucket_boundaries_advisory=[1, 10, 100]
    )
    for value in (0.5, 5, 50, 500, 7):
        histogram.record(value, {"route": "/a"})
    meter.create_observable_gauge(
        "jobs.waiting_total",
        callbacks=[lambda options: [Observation(4, {"queue": "x"}), Observation(2)]],
    )
    meter.create_observable_counter(
        "jobs.done", unit="s", callbacks=[lambda options: [Observation(1e21)]]
    )


def test_default_text_is_byte_for_byte_the_exporters(pair):
    record_examples(pair.provider.get_meter("shop", "1.0", schema_url="https://x/s"))
    record_examples(pair.provider.get_meter("other.scope"))
    assert pair.render() == pair.exported()


def test_a_kept_label_set_renders_the_same_on_the_next_scrape(pair):
    record_examples(pair.provider.get_meter("shop"))
    renderer = Renderer()
    first = pair.render(renderer=renderer)
    assert pair.render(renderer=renderer) == first == pair.exported()


def test_a_kept_series_line_follows_its_value(pair):
    """A one-series metric's kept line is written again only when its value moves."""
    attributes = {"region": "eu"}
    observed = [Observation(1.5, attributes)]
    pair.provider.get_meter("shop").create_observable_gauge(
        "shop.open", callbacks=[lambda options: list(observed)]
    )
    renderer = Renderer()
    assert pair.render(renderer=renderer) == pair.exported()
    observed[:] = [Observation(2.5, attributes)]
    second = pair.render(renderer=renderer)
    assert second == pair.exported()
    family = families_of(second, DEFAULT)["shop_open"]
    assert [(s.labels["region"], s.value) for s in family.samples] == [("eu", 2.5)]


@pytest.mark.parametrize(
    ("change", "expected_help", "expected_name"),
    [
        ({"description": "Open orders now"}, "Open orders now", "shop_open"),
        ({"unit": "s"}, "Open orders", "shop_open_seconds"),
    ],
)
def test_a_kept_series_line_follows_its_description_and_unit(
    change, expected_help, expected_name
):
    """A new provider's metric of the same name, re-described or re-united."""
    value, attributes = 3.0, {"region": "eu"}
    renderer = Renderer()
    texts = []
    for fields in ({"description": "Open orders", "unit": ""}, change):
        made = Pair()
        try:
            made.provider.get_meter("shop").create_observable_gauge(
                "shop.open",
                callbacks=[lambda options: [Observation(value, attributes)]],
                **{"description": "Open orders", "unit": "", **fields},
            )
            texts.append(made.render(renderer=renderer))
            assert texts[-1] == made.exported()
        finally:
            made.close()
    family = families_of(texts[-1], DEFAULT)[expected_name]
    assert family.documentation == expected_help
    assert [sample.value for sample in family.samples] == [3.0]


def families_of(text: str, negotiated: Negotiated) -> dict:
    parse = openmetrics_families if negotiated.openmetrics else text_families
    found = {}
    for family in parse(text):
        assert family.name not in found, family.name
        found[family.name] = family
    return found


@pytest.mark.parametrize("strategy", names.STRATEGIES)
@pytest.mark.parametrize("negotiated", NEGOTIATIONS, ids=str)
def test_every_negotiation_parses(pair, negotiated, strategy):
    record_examples(pair.provider.get_meter("shop", "1.0"))
    text = pair.render(negotiated, strategy)
    found = families_of(text, negotiated)
    samples = {s.name: s for f in found.values() for s in f.samples}
    utf8 = negotiated.escaping == names.ALLOW_UTF8 and not names.escapes_to_underscores(
        strategy
    )
    suffixes = names.adds_suffixes(strategy)
    gauge = {
        (True, True): "room.temp_celsius",
        (True, False): "room.temp",
        (False, True): names.escape_metric_name(
            "room.temp_celsius", negotiated.escaping
        ),
        (False, False): names.escape_metric_name("room.temp", negotiated.escaping),
    }[(utf8, suffixes)]
    if names.escapes_to_underscores(strategy):
        gauge = names.escape_metric_name(
            "room_temp_celsius" if suffixes else "room_temp", negotiated.escaping
        )
    assert samples[gauge].value == 21.5
    assert (
        samples[gauge].labels[
            names.escape_label_name("room", negotiated.escaping) if not utf8 else "room"
        ]
        == 'the "big"\\one\nü'
    )
    if negotiated.openmetrics:
        assert text.endswith("# EOF\n")


def test_utf8_names_are_quoted_inside_the_braces(pair):
    pair.provider.get_meter("shop").create_gauge("shop.orders.open").set(
        5, {"status": "paid", "pay.method": "card"}
    )
    text = pair.render(
        Negotiated(TEXT_1_0_0, "allow-utf-8"), names.NO_UTF8_ESCAPING_WITH_SUFFIXES
    )
    assert '# TYPE "shop.orders.open" gauge\n' in text
    assert '{"shop.orders.open",otel_scope_name="shop",' in text
    assert ',"pay.method"="card",status="paid"} 5.0\n' in text
    (sample,) = families_of(text, Negotiated(TEXT_1_0_0, "allow-utf-8"))[
        "shop.orders.open"
    ].samples
    assert sample.labels["pay.method"] == "card" and sample.value == 5


def test_a_counter_without_suffixes(pair):
    pair.provider.get_meter("s").create_counter("jobs").add(2)
    text = pair.render(DEFAULT, names.NO_TRANSLATION)
    assert "# TYPE jobs counter\njobs{" in text
    om = pair.render(Negotiated(OPENMETRICS_1_0_0, "underscores"), names.NO_TRANSLATION)
    assert "# TYPE jobs counter\njobs_total{" in om
    families_of(om, Negotiated(OPENMETRICS_1_0_0, "underscores"))


def test_histograms_render_buckets_count_sum_and_openmetrics_created(pair):
    histogram = pair.provider.get_meter("s").create_histogram(
        "wait", unit="s", explicit_bucket_boundaries_advisory=[1.0, 60.0]
    )
    for value in (0.5, 30, 30, 600):
        histogram.record(value, {"kind": "a"})
    negotiated = Negotiated(OPENMETRICS_1_0_0, "underscores")
    family = families_of(pair.render(negotiated), negotiated)["wait_seconds"]
    assert family.type == "histogram" and family.unit == "seconds"
    by_name = {(s.name, s.labels.get("le")): s.value for s in family.samples}
    assert by_name[("wait_seconds_bucket", "1.0")] == 1
    assert by_name[("wait_seconds_bucket", "60.0")] == 3
    assert by_name[("wait_seconds_bucket", "+Inf")] == 4
    assert by_name[("wait_seconds_count", None)] == 4
    assert by_name[("wait_seconds_sum", None)] == 660.5
    created = by_name[("wait_seconds_created", None)]
    assert 1.7e9 < created < 4e9


def client_families():
    counter = CounterMetricFamily(
        "django_http_requests", "Requests.", labels=["method"]
    )
    counter.add_metric(["GET"], 3, created=1700000000.5)
    gauge = GaugeMetricFamily("process_open_fds", 'Open "fds"\\\n', labels=["a.b"])
    gauge.add_metric(['x"\\\ny'], 12)
    info = InfoMetricFamily(
        "python", "Python platform information", value={"version": "3.11"}
    )
    return [counter, gauge, info]


class _Registry:
    def __init__(self, families):
        self._families = families

    def collect(self):
        return iter(self._families)


@pytest.mark.parametrize("escaping", ["underscores", "allow-utf-8"])
def test_client_families_render_as_prometheus_client_writes_them(escaping):
    families = client_families()
    ours = Renderer().render(families, Negotiated(TEXT_0_0_4, "underscores")).decode()
    assert ours == generate_latest(_Registry(families)).decode()
    ours = Renderer().render(families, Negotiated(OPENMETRICS_1_0_0, escaping)).decode()
    theirs = om_exposition.generate_latest(_Registry(families), escaping=escaping)
    assert ours == theirs.decode()


@pytest.mark.parametrize("fmt", [TEXT_0_0_4, OPENMETRICS_1_0_0])
@pytest.mark.parametrize("escaping", ["dots", "values"])
def test_client_families_keep_their_samples_under_dots_and_values(fmt, escaping):
    # prometheus_client escapes each whole sample name (a__b__total), which
    # its own parsers then read as a family of its own; the family's escaped
    # name plus the suffix (a__b_total) keeps the family together.
    negotiated = Negotiated(fmt, escaping)
    text = Renderer().render(client_families(), negotiated).decode()
    found = families_of(text, negotiated)
    requests = (
        "django__http__requests" if escaping == "dots" else "django_http_requests"
    )
    assert found[requests].type == "counter"
    assert {s.name: s.value for s in found[requests].samples}[f"{requests}_total"] == 3
    assert all(family.type != "unknown" for family in found.values())


def test_a_family_name_is_written_once(pair, caplog):
    pair.provider.get_meter("s").create_gauge("python_info").set(1)
    data = pair.ours.collect_now()
    info = InfoMetricFamily(
        "python", "Python platform information", value={"version": "3"}
    )
    text = Renderer().render([info, Collected((data,))], DEFAULT).decode()
    assert text.count("# TYPE python_info") == 1
    assert "python_info" in caplog.text


@pytest.mark.parametrize(
    "value",
    [0, 1, -1, 0.1, 1e21, 1e-7, 123456789.0, 1234567.0, -1234567.0, math.inf],
)
def test_values_format_as_prometheus_client_does(value):
    from prometheus_client.utils import floatToGoString

    assert format_value(value) == floatToGoString(value)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (math.inf, "+Inf"),
        (-math.inf, "-Inf"),
        (math.nan, "NaN"),
        (5, "5.0"),
        (2**53 + 1, "9.007199254740992e+15"),  # as Go writes it
        (12345678901.0, "1.2345678901e+10"),
        (-1e-06, "-1e-06"),
    ],
)
def test_values_format_as_go_does(value, expected):
    # prometheus_client before 0.26 wrote a three-digit exponent (e+015).
    assert format_value(value) == expected


# Fuzz: random names, units, descriptions, attribute keys and values.

NAMES = st.from_regex(r"[A-Za-z][A-Za-z0-9_./-]{0,20}", fullmatch=True)
TEXT = st.text(st.characters(exclude_categories=("Cs",)), max_size=20)
VALUES = st.one_of(
    TEXT,
    st.integers(-(10**6), 10**6),
    st.booleans(),
    st.floats(allow_nan=False, allow_infinity=False, width=32),
)
# Keys start with a letter: a key such as "." becomes the label "_", which the
# dots escaping writes "__", a prefix prometheus_client's parser reserves.
ATTRIBUTES = st.dictionaries(
    st.from_regex(r"[A-Za-z][A-Za-z0-9_. -]{0,10}", fullmatch=True), VALUES, max_size=3
)
UNITS = st.sampled_from(["", "1", "s", "ms", "By", "%", "{x}", "m/s", "{a}/min"])
INSTRUMENTS = st.lists(
    st.tuples(
        st.sampled_from(["counter", "updown", "gauge", "histogram"]),
        NAMES,
        UNITS,
        TEXT,
        st.lists(
            st.tuples(st.floats(0, 1e9, allow_nan=False), ATTRIBUTES),
            min_size=1,
            max_size=3,
        ),
    ),
    min_size=1,
    max_size=4,
    unique_by=lambda i: i[1].lower(),
)


def record(meter, instruments) -> None:
    for kind, name, unit, description, points in instruments:
        if kind == "counter":
            instrument = meter.create_counter(name, unit=unit, description=description)
            for value, attributes in points:
                instrument.add(value, attributes)
        elif kind == "updown":
            instrument = meter.create_up_down_counter(
                name, unit=unit, description=description
            )
            for value, attributes in points:
                instrument.add(value, attributes)
        elif kind == "gauge":
            instrument = meter.create_gauge(name, unit=unit, description=description)
            for value, attributes in points:
                instrument.set(value, attributes)
        else:
            instrument = meter.create_histogram(
                name, unit=unit, description=description
            )
            for value, attributes in points:
                instrument.record(value, attributes)


def distinct_families(instruments) -> bool:
    """Return whether no two instruments meet on an exported name in any strategy."""
    seen = set()
    for kind, name, unit, _description, _points in instruments:
        for strategy in names.STRATEGIES:
            for escaping in names.ESCAPINGS:
                family, _unit = names.family_name(
                    name.lower(), unit, kind == "counter", strategy
                )
                base = family[:-6] if family.endswith("_total") else family
                for taken in {
                    family,
                    base,
                    base + "_total",
                    family + "_bucket",
                    family + "_count",
                    family + "_sum",
                    family + "_created",
                }:
                    key = (
                        strategy,
                        escaping,
                        names.escape_metric_name(taken, escaping),
                    )
                    if key in seen:
                        return False
                    seen.add(key)
    return True


FUZZ = settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)


@FUZZ
@given(INSTRUMENTS)
def test_fuzz_default_text_is_the_exporters(instruments):
    pair = Pair()
    try:
        record(pair.provider.get_meter("fuzz"), instruments)
        assert pair.render() == pair.exported()
    finally:
        pair.close()


@FUZZ
@given(INSTRUMENTS, st.sampled_from(NEGOTIATIONS), st.sampled_from(names.STRATEGIES))
def test_fuzz_every_negotiation_parses_to_the_recorded_values(
    instruments, negotiated, strategy
):
    assume(distinct_families(instruments))
    pair = Pair()
    try:
        expected = []
        for kind, _name, _unit, _description, points in instruments:
            last, labels = {}, {}
            for value, attributes in points:
                key = frozenset(attributes.items())
                last[key] = (
                    (last.get(key, 0) + value)
                    if kind in ("counter", "updown")
                    else value
                )
                # The label set this point is written with: an empty value is
                # no label, and keys may meet once translated.
                written = {
                    names.label_name(k, strategy): str(v) for k, v in attributes.items()
                }
                labels[key] = frozenset((k, v) for k, v in written.items() if v)
            assume(len(set(labels.values())) == len(labels))
            if kind != "histogram":
                expected.extend(last.values())
        record(pair.provider.get_meter("fuzz"), instruments)
        text = pair.render(negotiated, strategy)
        found = families_of(text, negotiated)
        info = {"target", "target_info"} | {
            names.escape_metric_name(n, negotiated.escaping)
            for n in ("target", "target_info")
        }
        values = sorted(
            s.value
            for f in found.values()
            for s in f.samples
            if f.name not in info
            and not s.name.endswith(("_bucket", "_count", "_sum", "_created"))
        )
        assert len(values) == len(expected)
        for got, want in zip(values, sorted(expected), strict=True):
            assert got == pytest.approx(want, rel=1e-6, abs=1e-6)
    finally:
        pair.close()
