"""The admin's overview page: a card per definition, as a user may see it.

Real rows and real users through Django's test client: values formatted
for their units, every state a definition can be in, filters and sorts,
pages, sparklines from the value history, alerts from a server that
answers as Prometheus does, and who may open the page.
"""

from __future__ import annotations

import datetime as dt
import shutil
import time

import pytest
from django.urls import reverse
from django.utils import timezone

from metricdemo.models import MetricDefinition, ScheduledValue, ValueSample
from metricdemo.values import history
from tests.admin_pages import (
    LIST_URL,
    OVERVIEW_URL,
    Card,
    Element,
    change_url,
    overview_cards,
    parse_page,
)
from tests.processes import wait_until

PROMETHEUS = shutil.which("prometheus")
PROMETHEUS_MISSING = "prometheus is not installed: apt-get install prometheus"

# Row counts and callbacks are evaluated on worker threads, which see only
# committed rows.
pytestmark = pytest.mark.django_db(transaction=True)

#: The history's own reading of HISTORY_INTERVAL, which conftest.py turns off.
READ_INTERVAL = history.interval


@pytest.fixture
def history_on(settings, monkeypatch):
    """Keep a value history: one sample a minute, for half an hour.

    Half an hour is fewer samples than a sparkline's points: each is drawn.
    """
    monkeypatch.setattr(history, "interval", READ_INTERVAL)
    settings.METRICDEMO = {
        **settings.METRICDEMO,
        "HISTORY_INTERVAL": 60,
        "HISTORY_POINTS": 30,
    }


def shown(client, **query) -> dict[str, Card]:
    """Return the overview's cards by name, fetched with `query`."""
    response = client.get(OVERVIEW_URL, query)
    assert response.status_code == 200, response
    return {card.name: card for card in overview_cards(response.content)}


def names(client, **query) -> list[str]:
    """Return the names of the overview's cards, in page order."""
    response = client.get(OVERVIEW_URL, query)
    assert response.status_code == 200, response
    return [card.name for card in overview_cards(response.content)]


def card_of(page: bytes, definition: MetricDefinition) -> Element:
    """Return the card of `definition` in a parsed page."""
    (card,) = [
        element
        for element in parse_page(page).find_all("metricdemo-card")
        if element.attrs["id"] == f"definition-{definition.pk}"
    ]
    return card


def add_samples(definition: MetricDefinition, values: list[float | None]) -> None:
    """Store one sample a minute for the definition, the last one a minute ago."""
    start = timezone.now().replace(second=0, microsecond=0)
    start -= dt.timedelta(minutes=len(values))
    ValueSample.objects.bulk_create(
        ValueSample(
            definition_id=definition.pk,
            time=start + dt.timedelta(minutes=i),
            value=value,
            series=1,
            outcome="success",
        )
        for i, value in enumerate(values)
    )


def prometheus_url(settings, url: str) -> None:
    """Point METRICDEMO["PROMETHEUS_URL"] at `url` (pytest-django's settings)."""
    settings.METRICDEMO = {**settings.METRICDEMO, "PROMETHEUS_URL": url}


def test_the_url_is_the_apps_own():
    assert OVERVIEW_URL == "/admin/metricdemo/overview/"


def test_values_are_formatted_for_their_units(admin_client, define, shop):
    define(name="shop.revenue.target", source="constant", value=12579.07, unit="{EUR}")
    define(
        name="shop.orders.total",
        source="row_count",
        model="shop.Order",
        aggregate="sum",
        field="total",
        unit="{EUR}",
    )
    define(
        name="shop.orders.by_status",
        source="row_count",
        model="shop.Order",
        group_by="status",
        unit="{order}",
    )
    define(
        name="shop.orders.by_quantity",
        source="row_count",
        model="shop.Order",
        group_by="quantity",
    )
    cards = shown(admin_client)
    assert list(cards) == [
        "shop.orders.by_quantity",
        "shop.orders.by_status",
        "shop.orders.total",
        "shop.revenue.target",
    ]
    target = cards["shop.revenue.target"]
    assert (target.state, target.value, target.full) == (
        "ok",
        "12,579.07 EUR",
        "12,579.07 EUR",
    )
    assert "1 series" in target.meta and "evaluated now in" in target.meta
    assert target.breaks == 2  # after each dot, nowhere else
    assert cards["shop.orders.total"].value == "178.85 EUR"

    by_status = cards["shop.orders.by_status"]
    assert by_status.value == "3 series"
    assert by_status.top == [
        ("status=pending", "3"),
        ("status=paid", "2"),
        ("status=shipped", "2"),
    ]
    # Six quantities: the largest three, and a link to all of them.
    by_quantity = cards["shop.orders.by_quantity"]
    assert by_quantity.value == "6 series"
    assert len(by_quantity.top) == 3 and by_quantity.top[0] == ("quantity=", "2")
    definition = MetricDefinition.objects.get(name="shop.orders.by_quantity")
    card = card_of(admin_client.get(OVERVIEW_URL).content, definition)
    more = card.find("metricdemo-top-more")
    assert more.text == "and 3 more series"
    assert more.find(tag="a").attrs["href"] == change_url(definition)


def test_the_page_has_no_inline_script_or_style(admin_client, define, history_on):
    """A Content-Security-Policy without 'unsafe-inline' allows all of it."""
    constant = define(name="shop.orders", source="constant", value=3)
    add_samples(constant, [1, 2, 3])
    page = parse_page(admin_client.get(OVERVIEW_URL).content)
    assert page.find("metricdemo-sparkline", "svg") is not None
    elements = list(page.iter())
    assert [e.tag for e in elements if "style" in e.attrs] == []
    assert [e for e in elements if e.tag == "style"] == []
    assert [e for e in elements if e.tag == "script" and "src" not in e.attrs] == []
    assert not [e for e in elements for a in e.attrs if a.startswith("on")]


# States


def test_every_state_a_definition_can_be_in(
    admin_client, define, callback, gate, settings, orders
):
    settings.METRICDEMO = {**settings.METRICDEMO, "ADMIN_EVALUATION_TIMEOUT": 0.3}
    calls: list[int] = []
    callback("test.counted", lambda: calls.append(1) or 5)
    define(name="a.fine", source="constant", value=3)
    setting = define(name="b.setting", source="setting", setting="SESSION_COOKIE_AGE")
    MetricDefinition.objects.filter(pk=setting.pk).update(setting="NOT_A_SETTING")
    model = define(name="c.model", source="row_count", model="shop.Order")
    MetricDefinition.objects.filter(pk=model.pk).update(model="shop.Gone")
    define(name="d.slow", source="callback", callback=gate.name)
    define(name="e.off", source="callback", callback="test.counted", enabled=False)
    define(
        name="f.scheduled", source="row_count", model="shop.Order", refresh_interval=60
    )
    cards = shown(admin_client)
    assert {name: card.state for name, card in cards.items()} == {
        "a.fine": "ok",
        "b.setting": "error",
        "c.model": "error",
        "d.slow": "timeout",
        "e.off": "disabled",
        "f.scheduled": "pending",
    }
    assert "NOT_A_SETTING" in cards["b.setting"].message
    assert "shop.Gone" in cards["c.model"].message
    assert "0.3 s" in cards["d.slow"].message
    assert "Not refreshed yet" in cards["f.scheduled"].message
    for name in ("b.setting", "c.model", "d.slow", "e.off", "f.scheduled"):
        assert cards[name].value == "\u2014", name  # no value, and no series
    assert calls == []  # a disabled definition is not evaluated


def test_scheduled_values_are_served_with_when_they_were_computed(
    admin_client, define, callback
):
    from metricdemo.scheduler import Refresher

    def broken() -> float:
        raise RuntimeError("the queue is down")

    callback("test.seven", lambda: 7)
    callback("test.broken", broken)
    define(
        name="a.fresh", source="callback", callback="test.seven", refresh_interval=60
    )
    old = define(
        name="b.old", source="callback", callback="test.seven", refresh_interval=60
    )
    define(
        name="c.failed", source="callback", callback="test.broken", refresh_interval=60
    )
    refresher = Refresher()
    try:
        assert sorted(refresher.tick()) == ["a.fresh", "b.old", "c.failed"]
        refresher.wait_idle(30)
    finally:
        refresher.stop()
    ScheduledValue.objects.filter(definition_id=old.pk).update(
        computed_at=timezone.now() - dt.timedelta(hours=1)
    )
    cards = shown(admin_client)
    assert (cards["a.fresh"].state, cards["a.fresh"].value) == ("ok", "7")
    assert "computed now in" in cards["a.fresh"].meta
    assert cards["b.old"].state == "stale"
    assert "computed 1 h ago" in cards["b.old"].meta
    assert "Its last refresh was" in cards["b.old"].message
    failed = cards["c.failed"]
    assert (failed.state, failed.value) == ("error", "\u2014")
    assert "the queue is down" in failed.message
    assert "computed" not in failed.meta and "evaluated" not in failed.meta


USERS_BY_STAFF = {
    "name": "users.by_staff",
    "source": "row_count",
    "model": "auth.User",
    "group_by": "is_staff",
}


def test_values_the_user_may_not_read_are_hidden(staff, define, history_on):
    users = define(**USERS_BY_STAFF)
    constant = define(name="constant", source="constant", value=7)
    add_samples(users, [1, 2, 3])
    add_samples(constant, [7, 7, 7])
    client = staff("metricdemo.view_metricdefinition")
    cards = shown(client)
    assert list(cards) == ["constant", "users.by_staff"]
    hidden = cards["users.by_staff"]
    assert hidden.state == "hidden"
    assert "auth.view_user" in hidden.message
    assert (hidden.value, hidden.top, hidden.sparkline) == ("\u2014", [], False)
    assert "series" not in hidden.meta and "evaluated" not in hidden.meta
    assert (cards["constant"].value, cards["constant"].sparkline) == ("7", True)


# Filters, sorts and pages


@pytest.fixture
def assorted(define, callback):
    """Definitions of every kind and source, one of them broken, one disabled."""
    callback("test.slow", lambda: time.sleep(0.05) or 1)
    callback("test.slower", lambda: time.sleep(0.1) or 1)
    made = [
        define(name="a.counter", kind="counter", source="constant", value=1),
        define(name="b.gauge", source="constant", value=2),
        define(name="c.slow", source="callback", callback="test.slow"),
        define(name="d.slower", source="callback", callback="test.slower"),
        define(name="e.setting", source="setting", setting="SESSION_COOKIE_AGE"),
        define(name="f.off", source="constant", value=3, enabled=False),
        define(name="g.updown", kind="updowncounter", source="constant", value=4),
    ]
    broken = define(name="h.broken", source="setting", setting="SESSION_COOKIE_AGE")
    MetricDefinition.objects.filter(pk=broken.pk).update(setting="NOT_A_SETTING")
    return [*made, broken]


def test_filters_by_state_kind_and_source(admin_client, assorted):
    assert names(admin_client, state="error") == ["h.broken"]
    assert names(admin_client, state="disabled") == ["f.off"]
    assert names(admin_client, state="ok") == [
        "a.counter",
        "b.gauge",
        "c.slow",
        "d.slower",
        "e.setting",
        "g.updown",
    ]
    assert names(admin_client, kind="counter") == ["a.counter"]
    assert names(admin_client, kind="updowncounter") == ["g.updown"]
    assert names(admin_client, source="callback") == ["c.slow", "d.slower"]
    assert names(admin_client, source="setting", state="ok") == ["e.setting"]
    assert names(admin_client, source="constant", state="error") == []


def test_an_unknown_filter_is_left_out_and_said(admin_client, assorted):
    response = admin_client.get(OVERVIEW_URL, {"state": "bogus", "kind": "counter"})
    assert [card.name for card in overview_cards(response.content)] == ["a.counter"]
    assert parse_page(response.content).find("errornote") is not None


def test_sorts_by_name_cost_and_last_change(admin_client, assorted):
    everything = [definition.name for definition in assorted]
    assert names(admin_client) == sorted(everything)
    by_cost = names(admin_client, sort="cost")
    assert by_cost[:2] == ["d.slower", "c.slow"]
    assert by_cost[-1] == "f.off"  # not evaluated: no cost, last
    now = timezone.now()
    for minutes, definition in enumerate(reversed(assorted)):
        MetricDefinition.objects.filter(pk=definition.pk).update(
            updated_at=now - dt.timedelta(minutes=minutes)
        )
    assert names(admin_client, sort="changed") == list(reversed(everything))


def test_a_hundred_cards_a_page_and_links_that_keep_the_filters(admin_client):
    MetricDefinition.objects.bulk_create(
        MetricDefinition(name=f"n.{i:03d}", source="constant", value=i)
        for i in range(105)
    )
    first = admin_client.get(OVERVIEW_URL, {"state": "ok"})
    assert len(overview_cards(first.content)) == 100
    links = [
        a.attrs["href"]
        for a in parse_page(first.content).find("paginator").find_all(tag="a")
    ]
    assert links == ["?state=ok&p=2"]
    assert names(admin_client, state="ok", p=2) == [f"n.{i}" for i in range(100, 105)]
    assert len(names(admin_client, p=2)) == 5


# Sparklines


def test_a_sparkline_shows_the_samples_kept(admin_client, define, history_on, orders):
    counted = define(name="orders.count", source="row_count", model="shop.Order")
    define(name="orders.target", source="constant", value=10)
    add_samples(counted, [4, 5, 6, 6])
    response = admin_client.get(OVERVIEW_URL)
    cards = {card.name: card for card in overview_cards(response.content)}
    assert cards["orders.count"].sparkline
    assert not cards["orders.target"].sparkline
    svg = card_of(response.content, counted).find("metricdemo-sparkline", "svg")
    (line,) = svg.find_all(tag="polyline")
    assert len(line.attrs["points"].split()) == 4
    about = parse_page(response.content).find("metricdemo-overview-about").text
    assert "from the app's own samples" in about


def test_a_prometheus_too_slow_for_the_page_leaves_the_local_samples(
    admin_client, define, history_on, settings
):
    from metricdemo import prometheus_history
    from tests.integration.test_value_history import SlowPrometheus

    counted = define(name="orders.count", source="constant", value=3)
    add_samples(counted, [1, 2, 3])
    with SlowPrometheus(delay=prometheus_history.TIMEOUT + 1) as slow:
        prometheus_url(settings, slow.url)
        started = time.monotonic()
        response = admin_client.get(OVERVIEW_URL)
        took = time.monotonic() - started
    (card,) = overview_cards(response.content)
    assert card.sparkline
    about = parse_page(response.content).find("metricdemo-overview-about").text
    assert "from the app's own samples" in about
    assert len(slow.queries) == 1
    assert took < prometheus_history.TIMEOUT + 1


@pytest.mark.long
@pytest.mark.slow
@pytest.mark.backend_neutral
@pytest.mark.skipif(PROMETHEUS is None, reason=PROMETHEUS_MISSING)
def test_sparklines_from_a_real_prometheus(
    admin_client, define, tmp_path, django_user_model, settings
):
    from metricdemo import prometheus_history
    from tests.integration.test_prometheus import demo_server, prometheus

    constant = define(name="p.constant", source="constant", value=7)
    users = define(
        name="p.users", source="row_count", model="auth.User", group_by="is_staff"
    )
    django_user_model.objects.create_user("ann")
    started = timezone.now()
    with demo_server(tmp_path) as target, prometheus(tmp_path, target) as api:
        wait_until(
            lambda: (
                lambda found: found if found and len(found[constant.pk]) >= 3 else None
            )(
                prometheus_history.history_together(
                    [constant, users], since=started, base_url=api
                )
            ),
            timeout=60,
            what="Prometheus to scrape three times",
        )
        prometheus_url(settings, api)
        response = admin_client.get(OVERVIEW_URL)
    cards = {card.name: card for card in overview_cards(response.content)}
    assert cards["p.constant"].sparkline and cards["p.users"].sparkline
    about = parse_page(response.content).find("metricdemo-overview-about").text
    assert "from Prometheus" in about
    svg = card_of(response.content, users).find("metricdemo-sparkline", "svg")
    # Two users (the admin and ann) every time: a flat line.
    assert "low 2, high 2" in svg.find(tag="title").text


# Alerts


def test_alerts_in_prometheus_show_on_their_cards(
    admin_client, staff, define, settings
):
    from tests.integration.test_admin_alerts import StubPrometheus, stub_alert

    define(name="jobs.queued", source="constant", value=3)
    define(name="jobs.done", source="constant", value=4)
    alerts = [
        stub_alert("QueueLong", "jobs.queued", "firing", "3"),
        stub_alert("QueueLong", "jobs.queued", "pending", "3", queue="b"),
    ]
    with StubPrometheus(alerts) as stub:
        prometheus_url(settings, stub.url)
        cards = shown(admin_client)
        asked = [path for path in stub.requests if path.startswith("/api/v1/alerts")]
        page = admin_client.get(OVERVIEW_URL).content
        # Alerts are the rules': who may not view rules sees none, asks for none.
        stub.requests.clear()
        viewer = shown(staff("metricdemo.view_metricdefinition"))
    assert "1 firing, 1 pending" in cards["jobs.queued"].meta
    assert "firing" not in cards["jobs.done"].meta
    assert asked == ["/api/v1/alerts"]  # one request for the page
    link = parse_page(page).find("metricdemo-firing")
    assert link.attrs["href"] == f"{stub.url}/alerts"
    assert "firing" not in viewer["jobs.queued"].meta
    assert not [path for path in stub.requests if path.startswith("/api/v1/alerts")]


# Who may see it, and where it is linked from


def test_anonymous_users_are_sent_to_log_in(client):
    response = client.get(OVERVIEW_URL)
    assert response.status_code == 302
    assert response.url.startswith(reverse("admin:login"))


def test_staff_without_the_view_permission_is_refused(staff, define):
    define(name="x", source="constant", value=1)
    client = staff("metricdemo.view_alertrule")
    assert client.get(OVERVIEW_URL).status_code == 403
    assert OVERVIEW_URL not in client.get(reverse("admin:index")).content.decode()


@pytest.mark.parametrize(
    "permission",
    ["metricdemo.view_metricdefinition", "metricdemo.change_metricdefinition"],
)
def test_the_app_index_and_the_change_list_link_to_it(staff, permission):
    client = staff(permission)
    assert client.get(OVERVIEW_URL).status_code == 200
    for url in (
        reverse("admin:index"),
        reverse("admin:app_list", args=["metricdemo"]),
        LIST_URL,
    ):
        page = parse_page(client.get(url).content)
        links = [a.attrs.get("href") for a in page.find_all(tag="a")]
        assert OVERVIEW_URL in links, url
    tools = parse_page(client.get(LIST_URL).content).find("object-tools")
    assert tools.find("metricdemo-overview-link").attrs["href"] == OVERVIEW_URL
