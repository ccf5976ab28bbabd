"""`manage.py metrics`: list, check, export and import."""

import io
import json
import subprocess
import sys

import pytest
from django.contrib.auth.models import Permission
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection

from metricdemo.models import ChangeStamp, MetricDefinition
from tests.commands import metrics, table, write
from tests.processes import ROOT, django_env
from tests.refusals import EXISTING, REFUSALS, Refusal

pytestmark = pytest.mark.django_db


def demo_definitions(define, callback) -> None:
    """Store one definition of each source."""
    callback("test.queues", lambda: [(3, {"queue": "mail"})])
    define(
        name="shop.orders",
        description="Orders by status",
        unit="{order}",
        source="row_count",
        model="shop.Order",
        filters={"created__year": 2026},
        group_by="status",
        attributes={"shop": "main"},
    )
    define(name="shop.target", kind="counter", source="constant", value=500)
    define(
        name="django.cookie_age",
        unit="s",
        source="setting",
        setting="SESSION_COOKIE_AGE",
    )
    define(name="jobs.queued", source="callback", callback="test.queues", enabled=False)


# list


def test_list_shows_the_exported_names(define, callback):
    demo_definitions(define, callback)
    rows = table(metrics("list"))
    assert rows[0] == ["NAME", "EXPORTED AS", "KIND", "SOURCE", "ENABLED"]
    assert rows[1:] == [
        ["django.cookie_age", "django_cookie_age_seconds", "gauge", "setting", "yes"],
        ["jobs.queued", "jobs_queued", "gauge", "callback", "no"],
        ["shop.orders", "shop_orders", "gauge", "row_count", "yes"],
        ["shop.target", "shop_target_total", "counter", "constant", "yes"],
    ]
    assert "jobs.queued" not in metrics("list", "--enabled")


# check


@pytest.mark.django_db(transaction=True)
def test_check_prints_a_table_and_passes(define, callback, orders):
    demo_definitions(define, callback)
    rows = table(metrics("check"))
    assert rows[0] == ["NAME", "RESULT", "TIME", "ERROR"]
    results = {row[0]: row[1:] for row in rows[1:-1]}
    assert set(results) == {"django.cookie_age", "shop.orders", "shop.target"}
    assert results["shop.orders"][0] == "3 series"
    assert results["shop.target"][0] == "500"
    assert results["django.cookie_age"][0] == "1209600"
    assert all(row[1].endswith(" ms") and len(row) == 2 for row in results.values())
    assert rows[-1] == ["All 3 enabled definitions evaluated."]


@pytest.mark.django_db(transaction=True)
def test_check_fails_when_a_definition_fails(define):
    define(name="fine", source="constant", value=1)
    MetricDefinition.objects.create(name="gone", source="setting", setting="NOT_THERE")
    result = subprocess.run(
        [sys.executable, "manage.py", "metrics", "check"],
        cwd=ROOT,
        env=django_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 1
    rows = {row[0]: row[1:] for row in table(result.stdout)[1:]}
    assert rows["fine"][0] == "1"
    assert rows["gone"][0] == "error" and "NOT_THERE" in rows["gone"][2]
    assert "1 of 2 enabled definitions failed" in result.stderr


# export and import


def test_export_is_stable_sorted_json_without_ids(define, callback, tmp_path):
    demo_definitions(define, callback)
    text = metrics("export")
    assert text.endswith("}\n")
    document = json.loads(text)
    assert text == json.dumps(document, indent=2, sort_keys=True) + "\n"
    assert document["version"] == 1
    names = [entry["name"] for entry in document["definitions"]]
    assert names == sorted(names)
    by_name = {entry["name"]: entry for entry in document["definitions"]}
    assert by_name["shop.orders"] == {
        "name": "shop.orders",
        "description": "Orders by status",
        "unit": "{order}",
        "kind": "gauge",
        "enabled": True,
        "attributes": {"shop": "main"},
        "source": "row_count",
        "model": "shop.Order",
        "filters": {"created__year": 2026},
        "group_by": "status",
    }
    assert by_name["shop.target"]["value"] == 500.0

    output = tmp_path / "out.json"
    metrics("export", "--output", str(output))
    assert output.read_text() == text


def test_round_trip_into_an_empty_database_is_identical(define, callback, tmp_path):
    demo_definitions(define, callback)
    first = metrics("export")
    MetricDefinition.objects.all().delete()
    report = metrics("import", write(tmp_path, first))
    assert report.splitlines()[-1].endswith(
        "4 created, 0 changed, 0 unchanged, 0 deleted."
    )
    assert metrics("export") == first


def test_timeout_and_cache_seconds_travel_when_set(define, tmp_path):
    define(name="slow", source="constant", value=1, timeout=2.5, cache_seconds=60)
    define(name="plain", source="constant", value=1)
    first = metrics("export")
    entries = {e["name"]: e for e in json.loads(first)["definitions"]}
    assert (entries["slow"]["timeout"], entries["slow"]["cache_seconds"]) == (2.5, 60)
    assert "timeout" not in entries["plain"] and "cache_seconds" not in entries["plain"]
    MetricDefinition.objects.all().delete()
    metrics("import", write(tmp_path, first))
    slow = MetricDefinition.objects.get(name="slow")
    assert (slow.timeout, slow.cache_seconds) == (2.5, 60)
    assert metrics("export") == first


def test_import_reports_created_changed_unchanged_and_deleted(define, tmp_path):
    define(name="keep", source="constant", value=1)
    define(name="edit", source="constant", value=1, description="old")
    define(name="stale", source="constant", value=1)
    document = json.loads(metrics("export"))
    entries = {entry["name"]: entry for entry in document["definitions"]}
    entries["edit"].update(value=2, description="new")
    del entries["stale"]
    entries["new"] = {"name": "new", "source": "constant", "value": 3}
    path = write(tmp_path, {"definitions": list(entries.values()), "version": 1})

    out = io.StringIO()
    call_command("metrics", "import", path, "--prune", verbosity=2, stdout=out)
    assert out.getvalue().splitlines() == [
        "created new",
        "changed edit (description, value)",
        "deleted stale",
        "unchanged keep",
        f"Imported {path}: 1 created, 1 changed, 1 unchanged, 1 deleted.",
    ]
    stored = dict(MetricDefinition.objects.values_list("name", "value"))
    assert stored == {"keep": 1.0, "edit": 2.0, "new": 3.0}


def test_import_without_prune_keeps_what_the_file_does_not_name(define, tmp_path):
    define(name="other", source="constant", value=1)
    path = write(tmp_path, {"definitions": [{"name": "new", "value": 3}]})
    assert "0 deleted" in metrics("import", path)
    assert set(MetricDefinition.objects.values_list("name", flat=True)) == {
        "other",
        "new",
    }


def test_prune_deletes_first_so_a_rename_does_not_collide(define, tmp_path):
    define(name="shop.orders", source="constant", value=1)
    path = write(tmp_path, {"definitions": [{"name": "shop-orders", "value": 1}]})
    metrics("import", path, "--prune")
    assert list(MetricDefinition.objects.values_list("name", flat=True)) == [
        "shop-orders"
    ]


def test_dry_run_reports_but_saves_nothing(define, tmp_path):
    define(name="edit", source="constant", value=1)
    token = ChangeStamp.current()
    path = write(
        tmp_path,
        {"definitions": [{"name": "edit", "value": 2}, {"name": "new", "value": 3}]},
    )
    output = metrics("import", path, "--dry-run", "--prune")
    assert output.splitlines() == [
        "created new",
        "changed edit (value)",
        "Dry run, nothing was saved: 1 created, 1 changed, 0 unchanged, 0 deleted.",
    ]
    assert list(MetricDefinition.objects.values_list("name", "value")) == [
        ("edit", 1.0)
    ]
    assert ChangeStamp.current() == token


def test_import_is_all_or_nothing_and_names_each_error(define, tmp_path):
    define(name="edit", source="constant", value=1)
    path = write(
        tmp_path,
        {
            "definitions": [
                {"name": "good", "value": 1},
                {"name": "edit", "value": 2},
                {"name": "bad.unit", "value": 1, "unit": "per second"},
                {"name": "bad.setting", "source": "setting", "setting": "SECRET_KEY"},
            ]
        },
    )
    with pytest.raises(CommandError) as info:
        metrics("import", path)
    lines = str(info.value).splitlines()
    assert lines[0] == f"Nothing was imported from {path}:"
    assert lines[1].startswith("  bad.unit: unit: ") and "per second" in lines[1]
    assert lines[2].startswith("  bad.setting: setting: ") and "SECRET_KEY" in lines[2]
    assert list(MetricDefinition.objects.values_list("name", "value")) == [
        ("edit", 1.0)
    ]


@pytest.mark.parametrize(
    ("document", "fragment"),
    [
        ("{not json", "not valid JSON"),
        ([], '"definitions" list'),
        ({"definitions": [], "version": 2}, "format version 2"),
        (
            {"definitions": [{"value": 1}]},
            'definitions[0]: expected an object with a non-empty "name"',
        ),
        ({"definitions": [{"name": "x", "colour": "red"}]}, "x: unknown keys colour"),
        (
            {"definitions": [{"name": "x"}, {"name": "x"}]},
            "x: the name appears more than once",
        ),
    ],
)
def test_a_malformed_file_is_refused(tmp_path, document, fragment):
    with pytest.raises(CommandError, match="Nothing was imported") as info:
        metrics("import", write(tmp_path, document))
    assert fragment in str(info.value)
    assert not MetricDefinition.objects.exists()


def test_import_reads_stdin(monkeypatch):
    monkeypatch.setattr(
        sys, "stdin", io.StringIO('{"definitions": [{"name": "x", "value": 1}]}')
    )
    assert "1 created" in metrics("import", "-")


IMPORT_REFUSALS = {
    # An existing name is an update when importing, not a refusal.
    key: refusal
    for key, refusal in REFUSALS.items()
    if key != "taken name"
}


@pytest.mark.parametrize(
    "refusal", list(IMPORT_REFUSALS.values()), ids=list(IMPORT_REFUSALS)
)
def test_every_refusal__through_import(define, tmp_path, refusal: Refusal):
    define(**EXISTING)
    path = write(tmp_path, {"definitions": [refusal.definition]})
    with pytest.raises(CommandError) as info:
        metrics("import", path)
    name = refusal.definition["name"]
    errors = [line.strip() for line in str(info.value).splitlines()[1:]]
    assert any(
        line.startswith(f"{name}: {refusal.field}: ") and refusal.fragment in line
        for line in errors
    ), errors
    assert list(MetricDefinition.objects.values_list("name", flat=True)) == [
        "shop.orders"
    ]


# import --as-user

USERS_BY_STAFF = {
    "name": "users.by_staff",
    "source": "row_count",
    "model": "auth.User",
    "group_by": "is_staff",
}


@pytest.fixture
def pipeline_user(django_user_model):
    """Return a user and a function that grants them `app_label.codename`s."""
    user = django_user_model.objects.create_user("pipeline", is_staff=True)

    def grant(*permissions: str):
        for permission in permissions:
            app_label, codename = permission.split(".")
            user.user_permissions.add(
                Permission.objects.get(
                    content_type__app_label=app_label, codename=codename
                )
            )
        return django_user_model.objects.get(pk=user.pk)

    return grant


EDITOR = ("metricdemo.add_metricdefinition", "metricdemo.change_metricdefinition")


def test_import_as_user__refuses_what_the_user_could_not_save(tmp_path, pipeline_user):
    pipeline_user(*EDITOR)
    path = write(tmp_path, {"definitions": [USERS_BY_STAFF]})
    with pytest.raises(CommandError) as info:
        metrics("import", path, "--as-user", "pipeline")
    errors = str(info.value).splitlines()[1:]
    assert errors == [
        "  users.by_staff: model: You need the view permission on auth.User "
        "(auth.view_user) to count its rows."
    ]
    assert not MetricDefinition.objects.exists()


def test_import_as_user__imports_for_a_user_who_could(tmp_path, pipeline_user):
    user = pipeline_user(*EDITOR, "auth.view_user")
    path = write(tmp_path, {"definitions": [USERS_BY_STAFF]})
    assert "created users.by_staff" in metrics("import", path, "--as-user", "pipeline")
    assert MetricDefinition.objects.get().last_editor == user
    # Without --as-user the settings-based rules alone apply, as before, and
    # the change is no longer the user's.
    path = write(tmp_path, {"definitions": [{**USERS_BY_STAFF, "description": "x"}]})
    assert "changed users.by_staff (description)" in metrics("import", path)
    assert MetricDefinition.objects.get().last_editor is None


def test_import_as_user__needs_the_definition_permissions(
    define, tmp_path, pipeline_user
):
    pipeline_user("auth.view_user")
    define(name="old", source="constant", value=1)
    path = write(tmp_path, {"definitions": [USERS_BY_STAFF]})
    with pytest.raises(CommandError) as info:
        metrics("import", path, "--as-user", "pipeline", "--prune")
    message = str(info.value)
    assert "metricdemo.add_metricdefinition" in message
    assert "metricdemo.delete_metricdefinition" in message
    assert list(MetricDefinition.objects.values_list("name", flat=True)) == ["old"]


def test_import_as_user__an_unknown_user_is_an_error(tmp_path):
    path = write(tmp_path, {"definitions": [USERS_BY_STAFF]})
    with pytest.raises(CommandError, match="'nobody'"):
        metrics("import", path, "--as-user", "nobody")
    assert not MetricDefinition.objects.exists()


def test_metrics_needs_a_subcommand():
    with pytest.raises(CommandError, match="subcommand"):
        call_command("metrics")


# odd input and unencodable rows


def import_errors(tmp_path, text: str) -> list[str]:
    """Import a file that must be refused; return its error lines."""
    path = tmp_path / "odd.json"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(CommandError) as info:
        metrics("import", str(path))
    assert not MetricDefinition.objects.exists()
    return [line.strip() for line in str(info.value).splitlines()[1:]]


def entry_text(**fields: str) -> str:
    """Return an export file with one definition whose fields are raw JSON text."""
    body = ", ".join(f'"{key}": {value}' for key, value in fields.items())
    return '{"definitions": [{"name": "odd", "value": 1, ' + body + "}]}"


@pytest.mark.parametrize(
    ("field", "value", "fragment"),
    [
        ("description", "null", "null is not allowed"),
        ("unit", "null", "null is not allowed"),
        ("attributes", "null", "null is not allowed"),
        ("enabled", "null", "null is not allowed"),
        ("model", "null", "null is not allowed"),
        ("description", "5", "expected a string, got 5"),
        ("enabled", '"yes"', "expected true or false"),
        ("cache_seconds", "1.5", "expected a whole number"),
        ("value", "1" + "0" * 400, "too large for a number"),
        ("value", "9" * 5001, "an integer of 5001 digits"),
        ("attributes", '{"n": ' + "9" * 5001 + "}", "an integer of 5001 digits"),
        ("attributes", "[" * 100 + "]" * 100, "nested more than 16 levels"),
        ("description", '"\\ud800"', "U+D800"),
        ("description", '"a\\u0000"', "U+0000"),
        ("attributes", '{"s": "\\udc00"}', "U+DC00"),
    ],
)
def test_import__odd_values_are_errors_on_their_field(tmp_path, field, value, fragment):
    errors = import_errors(tmp_path, entry_text(**{field: value}))
    assert any(
        line.startswith(f"odd: {field}: ") and fragment in line for line in errors
    ), errors


def test_import__json_nested_too_deep_to_read_names_definition_and_field(tmp_path):
    deep = "[" * 200_000 + "]" * 200_000
    text = (
        '{"definitions": [{"name": "fine", "value": 1}, '
        '{"attributes": ' + deep + ', "name": "deep", "value": 1}]}'
    )
    (error,) = import_errors(tmp_path, text)
    assert error.startswith("deep: attributes: the value is nested too deeply")


def test_import__a_surrogate_name_is_refused_and_printed_escaped(tmp_path):
    errors = import_errors(
        tmp_path, '{"definitions": [{"name": "a\\ud800", "value": 1}]}'
    )
    assert any(line.startswith("a\\ud800: name: ") for line in errors), errors


# Only SQLite stores a lone surrogate in a JSON field: PostgreSQL's jsonb and
# MariaDB's JSON_VALID check refuse it, so no such row can exist there.
if connection.vendor == "sqlite":

    def test_export__a_stored_surrogate_is_written_escaped_and_reads_back(tmp_path):
        """A row stored without validation still exports, and the file round-trips."""
        MetricDefinition.objects.bulk_create(
            [MetricDefinition(name="s.bad", value=1, attributes={"s": "a\ud800"})]
        )
        text = metrics("export")
        text.encode("utf-8")
        assert '"a\\ud800"' in text
        (entry,) = json.loads(text)["definitions"]
        assert entry["attributes"] == {"s": "a\ud800"}

    def test_check__fails_on_a_stored_surrogate_naming_definition_and_field():
        MetricDefinition.objects.bulk_create(
            [
                MetricDefinition(name="fine", value=1),
                MetricDefinition(name="s.bad", value=1, attributes={"s": "a\ud800"}),
            ]
        )
        out = io.StringIO()
        with pytest.raises(CommandError, match="1 of 2 enabled definitions failed"):
            call_command("metrics", "check", stdout=out)
        rows = {row[0]: row[1:] for row in table(out.getvalue())[1:]}
        assert rows["fine"][0] == "1"
        assert rows["s.bad"][0] == "error"
        assert "attribute 's'" in rows["s.bad"][2] and "\\ud800" in rows["s.bad"][2]
