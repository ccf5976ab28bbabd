"""The admin in headless Chromium: create, preview, save, scrape; refuse an editor.

And the overview of a hundred definitions, in a laptop's window and on a phone.
"""

import datetime as dt
import itertools
import json
import os
import re
import struct
from contextlib import contextmanager
from pathlib import Path
from urllib.request import urlopen

import pytest
from django.contrib.auth.models import Permission
from django.core.management import call_command

from metricdemo import distributions, naming
from metricdemo.models import MetricDefinition
from tests.processes import ROOT
from tests.scraping import parse, series

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
PASSWORD = "a-long-test-password"
LIST = "/admin/metricdemo/metricdefinition/"
ADD = f"{LIST}add/"
#: A laptop's browser window: the admin must fit it without scrolling sideways.
WINDOW = {"width": 1280, "height": 800}
#: A phone's: the change list must fit it too.
PHONE = {"width": 390, "height": 844}

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.backend_neutral,
    pytest.mark.skipif(
        not os.access(CHROMIUM, os.X_OK),
        reason=f"needs Debian's chromium at {CHROMIUM} (make test installs it)",
    ),
]


def test_create_preview_save_and_scrape(
    live_server, django_user_model, orders, tmp_path
):
    django_user_model.objects.create_superuser("admin", "admin@example.com", PASSWORD)
    # The demo's definitions fill the change list that the docs show.
    call_command("load_demo_metrics", verbosity=0)
    pictures = screenshot_folder(tmp_path)
    # The ORM stays out of the browser block: Playwright's sync API runs an
    # event loop in this thread, and Django refuses queries from one.
    histogram = drive_the_admin(live_server.url, pictures)

    for name in SCREENSHOTS:
        width, height = png_size(pictures / name)
        assert width >= 600 and height >= 100, (name, width, height)

    families = parse(urlopen(f"{live_server.url}/metrics").read().decode())
    assert series(families, "shop_orders_by_status") == {
        frozenset({("status", "pending")}): 3.0,
        frozenset({("status", "paid")}): 2.0,
    }
    stored = MetricDefinition.objects.get(name="shop.orders.by_status")
    # The constant's value, typed before the source changed, was not posted.
    assert (stored.source, stored.value, stored.group_by) == (
        "row_count",
        None,
        "status",
    )

    # In the same window (a browser of its own would double the cost): a
    # bucket preset fills the buckets, and the preview draws a bar for each.
    bounds = list(distributions.PRESETS["one_two_five"][1])
    assert histogram == {
        "preset once typed over": "custom",
        "filled": json.dumps(bounds),
        "bounds drawn": [str(bound) for bound in bounds] + ["+Inf"],
        # The orders' totals are all 0: every one is in the first bucket.
        "counts drawn": ["6"] + ["0"] * len(bounds),
    }
    assert not MetricDefinition.objects.filter(name="shop.order.totals").exists()


#: The pictures of the admin in the docs (docs/img), taken by drive_the_admin().
SCREENSHOTS = ("add-form.png", "preview.png", "change-list.png")


def screenshot_folder(tmp_path: Path) -> Path:
    """Return docs/img under `make screenshots`, a temporary folder otherwise."""
    folder = os.environ.get("METRICDEMO_SCREENSHOTS")
    return ROOT / folder if folder else tmp_path


def png_size(path: Path) -> tuple[int, int]:
    """Return the width and height that a PNG file's header gives."""
    header = path.read_bytes()[:24]
    assert header[:8] == b"\x89PNG\r\n\x1a\n", path
    return struct.unpack(">II", header[16:24])


@contextmanager
def add_form(base_url: str, username: str, page_path: str = ADD, window: dict = WINDOW):
    """Yield a Chromium page in `window`, logged in as `username`, on `page_path`."""
    from playwright.sync_api import expect, sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, args=CHROMIUM_ARGS
        )
        try:
            page = browser.new_page(viewport=window)
            page.goto(f"{base_url}/admin/login/?next={page_path}")
            page.fill("#id_username", username)
            page.fill("#id_password", PASSWORD)
            page.click("input[type=submit]")
            expect(page).to_have_url(re.compile(re.escape(page_path) + "$"))
            yield page
        finally:
            browser.close()


def drive_the_admin(base_url: str, pictures: Path) -> dict:
    """Log in, fill the add form for a row count, preview it and save it.

    Along the way, save the docs' pictures of the form, the preview and the list.
    Then preview a histogram on a new add form; return what preview_a_histogram()
    saw.
    """
    from playwright.sync_api import expect

    with add_form(base_url, "admin") as page:
        # Only the chosen source's fields show.
        expect(page.locator(".form-row.field-value")).to_be_visible()
        expect(page.locator(".form-row.field-model")).to_be_hidden()
        page.fill("#id_name", "shop.orders.by_status")
        page.fill("#id_description", "Orders by status")
        page.fill("#id_unit", "{order}")
        page.fill("#id_value", "5")
        page.select_option("#id_source", "row_count")
        expect(page.locator(".form-row.field-value")).to_be_hidden()
        expect(page.locator(".form-row.field-model")).to_be_visible()
        page.fill("#id_model", "shop.Order")
        page.fill("#id_filters", '{"status__in": ["pending", "paid"]}')
        page.fill("#id_group_by", "status")

        page.click("input[name=_preview]")
        result = page.locator("#metricdemo-preview-result")
        expect(result).to_contain_text("It would export 2 series")
        rows = result.locator("tr.metricdemo-series")
        expect(rows).to_have_count(2)
        expect(rows.nth(0)).to_contain_text('shop_orders_by_status{status="paid"}')
        expect(rows.nth(0).locator(".metricdemo-value")).to_have_text("2")
        expect(rows.nth(1).locator(".metricdemo-value")).to_have_text("3")
        # The result, down to its last line (the cost), comes into sight in
        # the 1280x800 window: Preview sits below the save buttons, near the
        # window's lower edge, and the result below it. Not ratio=1: the
        # scroll stops on a whole pixel, the line's edge may fall between two.
        cost = result.locator(".metricdemo-cost")
        expect(cost).to_contain_text("no index serves the filters")
        expect(cost).to_be_in_viewport(ratio=0.9)
        expect(page).to_have_url(re.compile(re.escape(ADD) + "$"))  # not saved
        page.locator("#content").screenshot(path=pictures / "add-form.png")
        result.screenshot(path=pictures / "preview.png")

        page.click("input[name=_save]")
        expect(page.locator(".messagelist")).to_contain_text("added successfully")
        expect(page.locator("td.field-current_value").first).to_be_visible()
        mine = page.locator("tr", has_text="shop.orders.by_status")
        expect(mine.locator("td.field-current_value")).to_contain_text("2 series")
        page.screenshot(path=pictures / "change-list.png")

        page.goto(f"{base_url}{ADD}")
        return preview_a_histogram(page)


def test_a_restricted_editor_sees_the_permission_error(live_server, django_user_model):
    editor = django_user_model.objects.create_user(
        "editor", "editor@example.com", PASSWORD, is_staff=True
    )
    editor.user_permissions.set(
        Permission.objects.filter(
            content_type__app_label="metricdemo",
            codename__in=["add_metricdefinition", "view_metricdefinition"],
        )
    )
    errors = try_to_count_users(live_server.url, "editor")
    assert errors == {
        "model": "You need the view permission on auth.User (auth.view_user) to "
        "count its rows.",
        "preview": "",
    }
    assert not MetricDefinition.objects.exists()


def try_to_count_users(base_url: str, username: str) -> dict[str, str]:
    """Log in, try to preview and save a count of users; return the errors shown."""
    from playwright.sync_api import expect

    with add_form(base_url, username) as page:
        page.fill("#id_name", "users.by_staff")
        page.select_option("#id_source", "row_count")
        page.fill("#id_model", "auth.User")
        page.fill("#id_group_by", "is_staff")

        page.click("input[name=_preview]")
        result = page.locator("#metricdemo-preview-result")
        expect(result).to_contain_text("auth.view_user")
        preview = result.locator("tr.metricdemo-series")
        expect(preview).to_have_count(0)

        page.click("input[name=_save]")
        error = page.locator(".form-row.field-model .errorlist")
        expect(error).to_be_visible()
        return {
            "model": error.inner_text().strip(),
            "preview": " ".join(preview.all_inner_texts()),
        }


def test_the_change_list_fits_a_laptop_window(live_server, django_user_model, define):
    """Several definitions, long names, units and errors: no sideways scrolling."""
    django_user_model.objects.create_superuser("admin", "admin@example.com", PASSWORD)
    call_command("load_demo_metrics", verbosity=0)
    define(name="shop." + "orders_waiting_for_payment." * 8 + "x", value=3)
    define(name="y" * 200, kind="counter", unit="{" + "z" * 61 + "}", value=1)
    define(name="shop.queue", kind="updowncounter", unit="By/s", value=2)
    gone = define(name="shop.gone", source="setting", setting="SESSION_COOKIE_AGE")
    MetricDefinition.objects.filter(pk=gone.pk).update(setting="NOT_THERE_" * 20)
    widths = change_list_widths(live_server.url)
    assert widths["rows"] == MetricDefinition.objects.count()
    assert widths["page"] <= widths["window"], widths
    assert widths["table"] <= widths["container"], widths


def change_list_widths(base_url: str) -> dict[str, int]:
    """Open the change list in a 1280 px window; return what is wider than what."""
    with add_form(base_url, "admin", LIST) as page:
        page.wait_for_selector("#result_list")
        return page.evaluate(
            """() => {
                const root = document.documentElement;
                const results = document.querySelector('#changelist .results');
                return {
                    rows: document.querySelectorAll('#result_list tbody tr').length,
                    page: root.scrollWidth,
                    window: root.clientWidth,
                    table: results.scrollWidth,
                    container: results.clientWidth,
                };
            }"""
        )


@pytest.mark.parametrize("window", [WINDOW, PHONE], ids=["laptop", "phone"])
def test_the_change_list_wraps_names_only_after_dots_and_underscores(
    live_server, django_user_model, define, window
):
    """No word of a name is cut, no unit wraps, and the page never scrolls sideways."""
    django_user_model.objects.create_superuser("admin", "admin@example.com", PASSWORD)
    call_command("load_demo_metrics", verbosity=0)
    define(name="shop." + "orders_waiting_for_payment." * 8 + "x", value=3)
    define(name="jobs/queue-depth.and-some-more/really", unit="By/s", value=2)
    define(name="y" * 200, kind="counter", unit="{" + "z" * 61 + "}", value=1)
    shown = change_list_lines(live_server.url, window)
    assert shown["page"] <= shown["window"], shown
    rows = {"".join(row["Name"]): row for row in shown["rows"]}
    assert len(rows) == MetricDefinition.objects.count()
    laptop = window == WINDOW

    # The demo's names wrap at the places allowed, and only there.
    assert rows["metricdemo.demo.definitions"]["Name"] in (
        ["metricdemo.demo.definitions"],
        ["metricdemo.demo.", "definitions"],
        ["metricdemo.", "demo.definitions"],
        ["metricdemo.", "demo.", "definitions"],
    )
    if laptop:
        assert rows["metricdemo.demo.shop.revenue_24h"]["Unit"] == ["{EUR}"]
    unbroken = rows.pop("y" * 200)
    for name, row in rows.items():
        assert wrapped_inside_a_word(row["Name"]) == [], name
        if laptop:
            assert wrapped_inside_a_word(row["Exported as"]) == [], name
    assert any(len(row["Name"]) > 1 for row in rows.values())
    if laptop:
        assert all(len(row["Unit"]) == 1 for row in shown["rows"]), shown["rows"]
    # A 200-letter run has no `.` or `_` to wrap at: it wraps anywhere.
    assert len(unbroken["Name"]) > 1

    if laptop:
        assert shown["columns"] == COLUMNS
    else:
        # Each row keeps the name, the value and the switch; the rest is on
        # the definition's page.
        assert shown["columns"] == ["Name", "Current value", "Enabled"]


#: The change list's column headers on a laptop: every column shows.
COLUMNS = [
    "Name",
    "Exported as",
    "Kind",
    "Source",
    "Unit",
    "Current value",
    "Enabled",
    "Updated at",
]


def wrapped_inside_a_word(lines: list[str]) -> list[str]:
    """Return the lines of a name that end elsewhere than after a `.` or `_`."""
    return [line for line in lines[:-1] if not line.endswith((".", "_"))]


#: A script's function that returns the text of each line an element renders
#: on, told apart by where each character is drawn.
TEXT_LINES = """(element) => {
    const texts = document.createTreeWalker(element, NodeFilter.SHOW_TEXT);
    const found = [];
    let bottom = null;
    for (let node; (node = texts.nextNode());) {
        for (let i = 0; i < node.length; i++) {
            const range = document.createRange();
            range.setStart(node, i);
            range.setEnd(node, i + 1);
            const box = range.getBoundingClientRect();
            if (!box.width && !box.height) continue;
            if (bottom === null || box.top >= bottom - 1) {
                found.push('');
            }
            bottom = box.bottom;
            found[found.length - 1] += node.data[i];
        }
    }
    return found;
}"""


def change_list_lines(base_url: str, window: dict) -> dict:
    """Open the change list in `window`; return its widths and its cells' lines.

    Each row maps a shown column's header to the text of each line its cell
    renders on, told apart by where each character is drawn.
    """
    with add_form(base_url, "admin", LIST, window) as page:
        page.wait_for_selector("#result_list")
        return page.evaluate(
            """() => {
                const lines = """
            + TEXT_LINES
            + """;
                const shows = (element) => element.getClientRects().length > 0;
                const headers = [...document.querySelectorAll(
                    '#result_list thead th')].map((th) => (
                        shows(th) ? th.textContent.trim() : ''));
                const rows = [...document.querySelectorAll(
                    '#result_list tbody tr')].map((tr) => {
                        const row = {};
                        [...tr.children].forEach((cell, index) => {
                            if (headers[index]) row[headers[index]] = lines(cell);
                        });
                        return row;
                    });
                const root = document.documentElement;
                return {
                    page: root.scrollWidth,
                    window: root.clientWidth,
                    columns: headers.filter((text) => text),
                    rows: rows,
                };
            }"""
        )


@pytest.mark.parametrize(
    ("name", "kind", "unit"),
    [
        ("shop.Wait-Time", "counter", "s"),
        ("jobs/queue.depth", "updowncounter", "{job}"),
        ("disk.io", "gauge", "By/s"),
    ],
)
def test_the_add_form_shows_the_exported_name_as_it_is_typed(
    live_server, django_user_model, name, kind, unit
):
    django_user_model.objects.create_superuser("admin", "admin@example.com", PASSWORD)
    shown = type_a_name(live_server.url, name, kind, unit)
    assert shown == {
        "before": "-",
        "typed": naming.exported_names(name, kind, unit)[1],
        "history sections": 0,
    }


def type_a_name(base_url: str, name: str, kind: str, unit: str) -> dict:
    """Type a name, kind and unit on the add form; return what it shows."""
    from playwright.sync_api import expect

    expected = naming.exported_names(name, kind, unit)[1]
    with add_form(base_url, "admin") as page:
        exported = page.locator(".form-row.field-exported_name .readonly")
        before = exported.inner_text().strip()
        page.fill("#id_name", name)
        page.select_option("#id_kind", kind)
        page.fill("#id_unit", unit)
        expect(exported).to_have_text(expected)
        return {
            "before": before,
            "typed": exported.inner_text().strip(),
            "history sections": page.locator("fieldset h2", has_text="History").count(),
        }


def preview_a_histogram(page) -> dict:
    """On the add form, make a histogram of order totals with a preset; preview it.

    Return the buckets the preset filled and the bars the preview drew.
    """
    from playwright.sync_api import expect

    buckets = page.locator(".form-row.field-buckets")
    expect(buckets).to_be_hidden()  # a gauge has none
    page.fill("#id_name", "shop.order.totals")
    page.select_option("#id_kind", "histogram")
    page.select_option("#id_source", "row_count")
    expect(buckets).to_be_visible()
    expect(page.locator(".form-row.field-aggregate")).to_be_hidden()
    page.fill("#id_model", "shop.Order")
    page.fill("#id_field", "total")
    page.fill("#id_buckets", "[1, 2]")
    typed_over = page.input_value("#id_bucket_preset")
    page.select_option("#id_bucket_preset", "one_two_five")
    filled = page.input_value("#id_buckets")

    page.click("input[name=_preview]")
    bars = page.locator("#metricdemo-preview-result .metricdemo-bucket")
    expect(bars.first).to_be_visible()
    return {
        "preset once typed over": typed_over,
        "filled": filled,
        "bounds drawn": bars.locator(".metricdemo-le").all_inner_texts(),
        "counts drawn": bars.locator(".metricdemo-bucket-count").all_inner_texts(),
    }


OVERVIEW = "/admin/metricdemo/overview/"


def test_the_overview_fits_a_laptop_and_a_phone(
    live_server,
    django_user_model,
    orders,
    gate,
    settings,
    monkeypatch,
    tmp_path,
):
    """A hundred definitions of every kind and state, with their history."""
    from metricdemo.values import history

    django_user_model.objects.create_superuser("admin", "admin@example.com", PASSWORD)
    # A sample a minute, for half an hour (conftest.py turns the history off).
    monkeypatch.setattr(history, "interval", lambda: 60)
    settings.METRICDEMO = {
        **settings.METRICDEMO,
        "HISTORY_POINTS": 30,
        "ADMIN_EVALUATION_TIMEOUT": 0.3,
    }
    definitions = a_hundred_definitions(gate.name)
    assert len(definitions) == 100
    add_history(definitions)
    pictures = screenshot_folder(tmp_path)

    seen = look_at_the_overview(live_server.url, pictures)

    for size in ("laptop", "phone"):
        found = seen[size]
        assert found["cards"] == 100, size
        assert found["page"] <= found["window"], (size, found)
        names = {"".join(lines): lines for lines in found["names"]}
        assert len(names) == 100, size
        for name, lines in names.items():
            assert wrapped_inside_a_word(lines) == [], (size, name)
        assert found["without state"] == [] and found["without value"] == [], size
        assert found["sparklines"] >= 60, size
        assert {"ok", "error", "timeout", "pending", "disabled"} <= found["states"]
    for name in ("overview.png", "overview-phone.png"):
        width, height = png_size(pictures / name)
        assert width >= 390 and height >= 700, (name, width, height)


#: The areas of a shop the overview's definitions are named after.
AREAS = ("billing", "checkout", "inventory", "shipping", "support")


def a_hundred_definitions(slow_callback: str) -> list[MetricDefinition]:
    """Store a hundred definitions: constants, row counts, settings, and trouble.

    Made in turns, one of each sort after the other, so that every area (and
    so every screenful of the page, in name order) holds some of each.
    """
    units = ("{EUR}", "By", "s", "{order}", "1", "%", "ms", "KiBy")
    values = (12579.07, 3 * 1024**3, 4512.5, 42, 0.25, 42.5, 180, 2048)
    groups = ("", "status", "customer__country", "status, customer__country")
    settings = (("SESSION_COOKIE_AGE", "s"), ("DATA_UPLOAD_MAX_MEMORY_SIZE", "By"))
    sorts = [
        [
            (
                "target",
                {
                    "description": f"What we aim at, figure {i}",
                    "kind": "counter" if i % 5 == 0 else "gauge",
                    "unit": units[i % len(units)],
                    "source": "constant",
                    "value": values[i % len(values)] * (1 + i % 4 / 10),
                },
            )
            for i in range(40)
        ],
        [
            (
                f"orders_by_{groups[i % 4].split(',')[0] or 'all'}",
                {
                    "description": "Orders, now",
                    "unit": "{order}",
                    "source": "row_count",
                    "model": "shop.Order",
                    "group_by": groups[i % 4],
                },
            )
            for i in range(25)
        ],
        [
            (
                settings[i % 2][0].lower(),
                {
                    "source": "setting",
                    "setting": settings[i % 2][0],
                    "unit": settings[i % 2][1],
                },
            )
            for i in range(10)
        ],
        [("retired", {"source": "constant", "value": 1, "enabled": False})] * 10,
        [
            (
                "orders_scheduled",
                {"source": "row_count", "model": "shop.Order", "refresh_interval": 300},
            )
        ]
        * 5,
        [("queue_slow", {"source": "callback", "callback": slow_callback})] * 3,
        # Valid once; the setting is gone since.
        [("legacy_setting", {"source": "setting", "setting": "GONE"})] * 5,
    ]
    made = []
    turns = itertools.zip_longest(*sorts)
    for number, (stem, fields) in enumerate(
        item for turn in turns for item in turn if item
    ):
        definition = MetricDefinition(
            name=f"{AREAS[number % len(AREAS)]}.{stem}_{number:02d}", **fields
        )
        if fields.get("setting") != "GONE":
            definition.full_clean()
        made.append(definition)
    made += [
        MetricDefinition(
            name="checkout.a_very_long_name_without_dots_for_a_phone",
            source="constant",
            value=1,
        ),
        MetricDefinition(
            name="shipping.orders_waiting_for_payment.by_customer_country.eu_west",
            description="A long name that breaks at its dots and underscores only",
            unit="{order}",
            source="constant",
            value=1234567,
        ),
    ]
    return MetricDefinition.objects.bulk_create(made)


def add_history(definitions: list[MetricDefinition]) -> None:
    """Give most definitions thirty minutes of samples, one a minute."""
    import math

    from django.utils import timezone

    from metricdemo.models import ValueSample

    start = timezone.now().replace(second=0, microsecond=0) - dt.timedelta(minutes=30)
    ValueSample.objects.bulk_create(
        ValueSample(
            definition_id=definition.pk,
            time=start + dt.timedelta(minutes=minute),
            value=100 + 40 * math.sin((minute + n) / 4) + minute * (n % 5),
            series=1,
        )
        for n, definition in enumerate(definitions)
        if n % 9 != 4
        for minute in range(30)
    )


def look_at_the_overview(base_url: str, pictures: Path) -> dict[str, dict]:
    """Open the overview at 1280 px, then 390 px; return what each showed.

    Saves overview.png and overview-phone.png on the way.
    """
    measure = (
        """() => {
        const lines = """
        + TEXT_LINES
        + """;
        const root = document.documentElement;
        const cards = [...document.querySelectorAll('.metricdemo-card')];
        const text = (card, selector) =>
            (card.querySelector(selector)?.textContent || '').trim();
        const without = (selector) =>
            cards.filter(card => !text(card, selector)).map(card => card.id);
        const names = [...document.querySelectorAll('.metricdemo-card-name')];
        return {
            cards: cards.length,
            page: root.scrollWidth,
            window: root.clientWidth,
            states: [...new Set(cards.map(card => text(card, '.metricdemo-state')))],
            'without state': without('.metricdemo-state'),
            'without value': without('.metricdemo-card-value'),
            names: names.map(lines),
            sparklines: document.querySelectorAll('svg.metricdemo-sparkline').length,
        };
    }"""
    )
    seen = {}
    with add_form(base_url, "admin", OVERVIEW) as page:
        page.wait_for_selector(".metricdemo-cards")
        seen["laptop"] = page.evaluate(measure)
        page.screenshot(path=pictures / "overview.png")
        page.set_viewport_size(PHONE)
        page.reload()
        page.wait_for_selector(".metricdemo-cards")
        seen["phone"] = page.evaluate(measure)
        page.screenshot(path=pictures / "overview-phone.png")
    for found in seen.values():
        found["states"] = set(found["states"])
    return seen
