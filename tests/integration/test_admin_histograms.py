"""Histograms in the admin: bucket presets, the preview's bars, the change list."""

from __future__ import annotations

import datetime as dt
import html
import json
import re
from decimal import Decimal

import pytest
from django.contrib.auth.models import Permission

from metricdemo import distributions
from metricdemo.display import format_number
from metricdemo.distributions import PRESETS, Distribution
from metricdemo.formatting import short_number
from metricdemo.models import MetricDefinition
from tests.admin_pages import (
    ADD_URL,
    LIST_URL,
    PREVIEW_URL,
    cells,
    change_url,
    filter_choices,
)
from tests.refusals import form_data

pytestmark = pytest.mark.django_db

#: The first order's creation; the others follow a minute apart.
START = dt.datetime(2026, 3, 1, 12, 0, tzinfo=dt.UTC)
#: Order totals by status, spread over BOUNDS (one above the highest).
TOTALS = {
    "paid": [3, 7, 10, 12, 40, 250, 999, 5000],
    "pending": [1, 90, 100, 100.5],
    "shipped": [0.5],
}
BOUNDS = [10, 100, 1000]


def histogram(**fields) -> dict[str, str]:
    """Return the add form's submission of a histogram of shop.Order."""
    data = form_data(
        **{
            "name": "shop.order.totals",
            "kind": "histogram",
            "source": "row_count",
            "model": "shop.Order",
            "field": "total",
            **fields,
        }
    )
    data.setdefault("buckets", "[]")
    data.setdefault("bucket_preset", "custom")
    return data


def errors_on(response, field: str = "buckets") -> list[str]:
    """Return the errors a re-rendered form shows on `field` (beside its label)."""
    assert response.status_code == 200, response
    page = response.content.decode()
    if f'id="id_{field}_error"' not in page:
        return []
    items = page.split(f'id="id_{field}_error">', 1)[1].split("</ul>", 1)[0]
    return [
        html.unescape(item.split("</li>", 1)[0]) for item in items.split("<li>")[1:]
    ]


@pytest.fixture
def totals(db):
    """Create orders with the TOTALS, paid 2**i minutes after their creation."""
    from tests.shop.models import Order

    index = 0
    for status, amounts in TOTALS.items():
        for amount in amounts:
            created = START + dt.timedelta(minutes=index)
            Order.objects.create(
                status=status,
                total=Decimal(str(amount)),
                created=created,
                paid=created + dt.timedelta(minutes=2**index),
            )
            index += 1


def bucket_counts(values: list[float], bounds: list[float]) -> list[int]:
    """Count the values of each bucket alone, +Inf last, without the app's code."""
    counts, lower = [], float("-inf")
    for upper in [*bounds, float("inf")]:
        counts.append(sum(1 for v in values if lower < v <= upper))
        lower = upper
    return counts


def charts(page: str) -> list[dict[str, list[str]]]:
    """Return each previewed series' cells: its le labels, counts and totals."""
    parts = page.split('class="metricdemo-series"')[1:]
    return [cells(part, "metricdemo-") for part in parts]


# Presets


def test_a_preset_fills_the_buckets_when_saving(admin_client):
    response = admin_client.post(ADD_URL, histogram(bucket_preset="one_two_five"))
    assert response.status_code == 302, response.context["adminform"].form.errors
    stored = MetricDefinition.objects.get()
    assert stored.buckets == list(PRESETS["one_two_five"][1])

    # The change form shows the preset, beside the buckets it filled.
    page = admin_client.get(change_url(stored)).content.decode()
    assert '<option value="one_two_five" selected>' in page
    # One row holds both (Django 6.1 adds flex classes to a row of several).
    assert re.search(r'class="form-row[^"]* field-bucket_preset field-buckets"', page)


def test_the_presets_offered_are_the_distributions_presets(admin_client):
    form = admin_client.get(ADD_URL).context["adminform"].form
    field = form.fields["bucket_preset"]
    assert [key for key, _label in field.choices] == ["custom", *PRESETS]
    assert form["bucket_preset"].value() == "custom"  # a new form: nothing chosen
    assert json.loads(field.widget.attrs["data-presets"]) == {
        key: list(bounds) for key, (_label, bounds) in PRESETS.items()
    }


def test_custom_buckets_are_saved_as_typed_and_show_as_custom(admin_client):
    response = admin_client.post(ADD_URL, histogram(buckets="[5, 50, 500]"))
    assert response.status_code == 302
    stored = MetricDefinition.objects.get()
    assert stored.buckets == [5, 50, 500]
    form = admin_client.get(change_url(stored)).context["adminform"].form
    assert form["bucket_preset"].value() == "custom"


def test_buckets_typed_as_a_presets_show_that_preset(admin_client, define):
    stored = define(
        name="shop.order.totals",
        kind="histogram",
        source="row_count",
        model="shop.Order",
        field="total",
        buckets=[float(b) for b in PRESETS["powers_of_ten"][1]],
    )
    form = admin_client.get(change_url(stored)).context["adminform"].form
    assert form["bucket_preset"].value() == "powers_of_ten"


def test_a_preset_chosen_over_other_typed_buckets_asks_which(admin_client):
    response = admin_client.post(
        ADD_URL, histogram(bucket_preset="latency", buckets="[5, 50, 500]")
    )
    (error,) = errors_on(response, "bucket_preset")
    assert "Short durations" in error and "Choose Custom" in error
    assert errors_on(response) == []
    assert not MetricDefinition.objects.exists()
    # The same bounds as the preset's are no conflict.
    bounds = json.dumps(list(PRESETS["latency"][1]))
    response = admin_client.post(
        ADD_URL, histogram(bucket_preset="latency", buckets=bounds)
    )
    assert response.status_code == 302


def test_a_changed_preset_replaces_stored_buckets_left_as_they_were(
    admin_client, define
):
    stored = define(
        name="shop.order.totals",
        kind="histogram",
        source="row_count",
        model="shop.Order",
        field="total",
        buckets=[5, 50, 500],
    )
    response = admin_client.post(
        change_url(stored), histogram(bucket_preset="days", buckets="[5, 50, 500]")
    )
    assert response.status_code == 302
    stored.refresh_from_db()
    assert stored.buckets == list(PRESETS["days"][1])


def test_a_preset_is_ignored_by_other_kinds(admin_client):
    data = form_data(name="shop.orders", value="1", bucket_preset="days", buckets="")
    response = admin_client.post(ADD_URL, data)
    assert response.status_code == 302
    assert MetricDefinition.objects.get().buckets == []


@pytest.mark.parametrize(
    "typed",
    [
        [],
        [10, 5],
        [1, 1, 2],
        ["a", 10],
        [1, "Infinity"],
        list(range(distributions.MAX_BUCKETS + 1)),
        {"le": 10},
    ],
    ids=["empty", "decreasing", "repeated", "text", "infinite", "too many", "object"],
)
def test_bad_buckets_get_the_models_message(admin_client, typed):
    response = admin_client.post(ADD_URL, histogram(buckets=json.dumps(typed)))
    expected = distributions.bucket_problem(typed)
    assert expected and errors_on(response) == [expected]
    assert any(hint in expected for hint in ("such as", "give at most", "sort"))
    assert not MetricDefinition.objects.exists()


def test_buckets_that_are_not_json_are_named(admin_client):
    response = admin_client.post(ADD_URL, histogram(buckets="[10, 50"))
    (error,) = errors_on(response)
    assert "[10, 50 is not valid JSON" in error and "pick a preset" in error


def test_buckets_on_another_kind_are_refused(admin_client):
    data = form_data(name="shop.orders", value="1", buckets="[1, 2]")
    (error,) = errors_on(admin_client.post(ADD_URL, data))
    assert "buckets belongs to the row_count source" in error and "clear it" in error


def test_an_empty_buckets_box_means_no_buckets(admin_client):
    # The script blanks the buckets of a kind that has none.
    response = admin_client.post(ADD_URL, form_data(name="x", value="1", buckets=""))
    assert response.status_code == 302
    assert MetricDefinition.objects.get().buckets == []


def test_the_field_suggestions_for_a_histogram_all_validate(admin_client):
    form = admin_client.get(ADD_URL).context["adminform"].form
    suggested = json.loads(form.fields["field"].widget.attrs["data-field-suggestions"])
    fields = suggested["shop.Order"]["histogram"]
    assert "total" in fields and "now - created" in fields
    assert "status" not in fields
    for field in fields:
        MetricDefinition(
            name="x",
            kind="histogram",
            source="row_count",
            model="shop.Order",
            field=field,
            buckets=[1, 2],
        ).full_clean()


def test_a_view_only_user_sees_the_preset(client, django_user_model, define):
    stored = define(
        name="shop.order.totals",
        kind="histogram",
        source="row_count",
        model="shop.Order",
        field="total",
        buckets=list(PRESETS["days"][1]),
    )
    user = django_user_model.objects.create_user("viewer", is_staff=True)
    user.user_permissions.set(
        Permission.objects.filter(codename="view_metricdefinition")
    )
    client.force_login(user)
    response = client.get(change_url(stored))
    assert response.status_code == 200
    shown = cells(response.content.decode())
    assert any(str(PRESETS["days"][0]) in text for text in shown["bucket_preset"])


# Preview


@pytest.mark.django_db(transaction=True)
def test_preview_draws_a_bar_per_bucket_with_its_count(admin_client, totals):
    response = admin_client.post(
        PREVIEW_URL,
        histogram(buckets=json.dumps(BOUNDS), group_by="status"),
        HTTP_X_REQUESTED_WITH="XMLHttpRequest",
    )
    assert response.status_code == 200
    assert not MetricDefinition.objects.exists()
    shown = charts(response.content.decode())
    assert len(shown) == len(TOTALS)
    for chart, (status, values) in zip(shown, sorted(TOTALS.items()), strict=True):
        assert chart["le"] == ["10", "100", "1000", "+Inf"]
        assert chart["bucket-count"] == [
            str(n) for n in bucket_counts(values, BOUNDS)
        ], status
        assert len(chart["bar"]) == len(BOUNDS) + 1
        expected = Distribution.of(BOUNDS, values)
        assert chart["count"] == [f"count {len(values)}"]
        assert chart["sum"] == [f"sum {format_number(sum(values))}"]
        median = expected.quantile(0.5)
        assert f"p50 {format_number(median)}" in chart["quantile"], status


@pytest.mark.django_db(transaction=True)
def test_preview_bars_are_as_long_as_their_counts(admin_client, totals):
    response = admin_client.post(
        PREVIEW_URL,
        histogram(buckets=json.dumps(BOUNDS), filters={"status": "paid"}),
        HTTP_X_REQUESTED_WITH="XMLHttpRequest",
    )
    page = response.content.decode()
    # paid: 3 in le=10, 2 in le=100, 2 in le=1000, 1 above: 100%, 2/3, 2/3, 1/3.
    lengths = [part.split('"', 1)[0] for part in page.split('<rect width="')[1:]]
    assert lengths == ["100.0", "66.7", "66.7", "33.3"]
    # p90 and p99 (ranks 7.2 and 7.92 of 8) lie above 1000, the highest bound.
    assert "p50 55" in page and "p90 &gt; 1000" in page and "p99 &gt; 1000" in page
    assert "p90, p99 fall in the +Inf bucket: above 1000" in page


@pytest.mark.django_db(transaction=True)
def test_preview_of_durations_with_a_preset(admin_client, totals):
    response = admin_client.post(
        PREVIEW_URL,
        histogram(field="paid - created", bucket_preset="seconds"),
        HTTP_X_REQUESTED_WITH="XMLHttpRequest",
    )
    (chart,) = charts(response.content.decode())
    bounds = list(PRESETS["seconds"][1])
    waits = [60.0 * 2**index for index in range(sum(map(len, TOTALS.values())))]
    assert chart["le"] == [format_number(b) for b in bounds] + ["+Inf"]
    assert chart["bucket-count"] == [str(n) for n in bucket_counts(waits, bounds)]
    assert chart["count"] == [f"count {len(waits)}"]


@pytest.mark.django_db(transaction=True)
def test_preview_of_a_histogram_over_no_rows(admin_client, totals):
    response = admin_client.post(
        PREVIEW_URL,
        histogram(buckets="[1, 2]", filters={"status": "cancelled"}),
        HTTP_X_REQUESTED_WITH="XMLHttpRequest",
    )
    page = response.content.decode()
    (chart,) = charts(page)
    assert chart["bucket-count"] == ["0", "0", "0"]
    assert chart["count"] == ["count 0"] and "quantile" not in chart
    assert "every bucket is empty" in page


@pytest.mark.django_db(transaction=True)
def test_preview_page_without_the_script_has_the_charts_styles(admin_client, totals):
    response = admin_client.post(PREVIEW_URL, histogram(buckets=json.dumps(BOUNDS)))
    page = response.content.decode()
    assert "<html" in page and "metricdemo/admin.css" in page
    (chart,) = charts(page)
    all_totals = [v for values in TOTALS.values() for v in values]
    assert chart["bucket-count"] == [str(n) for n in bucket_counts(all_totals, BOUNDS)]


def test_preview_of_bad_buckets_names_them(admin_client):
    response = admin_client.post(
        PREVIEW_URL,
        histogram(buckets="[10, 5]"),
        HTTP_X_REQUESTED_WITH="XMLHttpRequest",
    )
    assert response.context["evaluation"] is None
    assert "follows 10" in response.content.decode()


# The change list


@pytest.mark.django_db(transaction=True)
def test_change_list_shows_count_and_median(admin_client, define, totals):
    from tests.shop.models import Order

    Order.objects.create(status="<i>x</i>", total=Decimal(7), created=START)
    define(
        name="a.totals",
        kind="histogram",
        source="row_count",
        model="shop.Order",
        field="total",
        buckets=BOUNDS,
    )
    define(
        name="b.totals_by_status",
        kind="histogram",
        source="row_count",
        model="shop.Order",
        field="total",
        buckets=BOUNDS,
        group_by="status",
    )
    define(name="c.constant", source="constant", value=2.5)
    response = admin_client.get(LIST_URL)
    page = response.content.decode()
    shown = cells(page)
    everything = [v for values in TOTALS.values() for v in values] + [7]
    expected = Distribution.of(BOUNDS, everything)
    assert shown["current_value"][0] == (
        f"count {len(everything)}, sum {short_number(sum(everything))}, "
        f"p50 {short_number(expected.quantile(0.5))}"
    )
    # The three series of the most values (of equal counts, in the order of
    # their labels), then how many more.
    groups = {"<i>x</i>": [7], **TOTALS}
    largest = sorted(sorted(groups.items()), key=lambda item: -len(item[1]))[:3]
    shown_groups = [
        f"status={status} count {len(values)}, "
        f"sum {short_number(sum(values))}, "
        f"p50 {short_number(Distribution.of(BOUNDS, values).quantile(0.5))}"
        for status, values in largest
    ]
    assert shown["current_value"][1] == (
        f"4 series {' '.join(shown_groups)} and 1 more"
    )
    assert "<i>x</i>" not in page and "&lt;i&gt;x&lt;/i&gt;" in page
    assert shown["current_value"][2] == "2.5"
    assert shown["kind_label"] == ["Histogram", "Histogram", "Gauge"]


def test_the_kind_filter_offers_and_filters_histograms(admin_client, define):
    define(
        name="a.totals",
        kind="histogram",
        source="row_count",
        model="shop.Order",
        field="total",
        buckets=BOUNDS,
    )
    define(name="b.constant", source="constant", value=1)
    page = admin_client.get(LIST_URL).content.decode()
    assert "Histogram" in filter_choices(page, "kind")
    response = admin_client.get(LIST_URL, {"kind__exact": "histogram"})
    assert [d.name for d in response.context["cl"].result_list] == ["a.totals"]
