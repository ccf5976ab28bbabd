"""A definition's history: a version per change, the History page, and Restore."""

from __future__ import annotations

import importlib
import math
import re
from types import SimpleNamespace

import pytest
from django.apps import apps
from django.contrib.admin.models import CHANGE, LogEntry
from django.contrib.auth.models import Permission
from django.db import connection
from django.test import Client
from django.urls import reverse

from metricdemo.admin_history import changes_between
from metricdemo.models import (
    AlertRule,
    Change,
    DefinitionVersion,
    MetricDefinition,
    definition_snapshot,
)
from metricdemo.serialization import import_definitions
from tests.admin_pages import ADD_URL, LIST_URL, act, cells, change_url
from tests.commands import metrics, write
from tests.integration.test_admin_alerts import definition_data, rule_fields, with_rules
from tests.refusals import form_data

pytestmark = pytest.mark.django_db

#: What an editor of definitions and their rules holds, in the admin.
EDITOR = (
    "view_metricdefinition",
    "add_metricdefinition",
    "change_metricdefinition",
    "delete_metricdefinition",
    "view_alertrule",
    "add_alertrule",
    "change_alertrule",
    "delete_alertrule",
)


@pytest.fixture
def login(client, django_user_model):
    """Log a staff user in with these metricdemo permissions; return the client."""

    def log_in(username: str, *codenames: str, client=client):
        user = django_user_model.objects.create_user(
            username, password="pw", is_staff=True
        )
        user.user_permissions.set(
            Permission.objects.filter(
                content_type__app_label="metricdemo", codename__in=codenames
            )
        )
        client.force_login(user)
        client.user = user
        return client

    return log_in


def versions_of(definition_id: int) -> list[DefinitionVersion]:
    """Return a definition's versions, newest first."""
    return list(DefinitionVersion.objects.filter(definition_id=definition_id))


def history_url(definition_id: int) -> str:
    return reverse("admin:metricdemo_metricdefinition_history", args=[definition_id])


def restore_url(version: DefinitionVersion) -> str:
    return reverse(
        "admin:metricdemo_metricdefinition_restore",
        args=[version.definition_id, version.pk],
    )


def history_rows(page: str) -> list[dict]:
    """Return the History page's versions: number, user, change, fields, restore.

    `fields` maps each changed field's label to its (old, new) text.
    """
    rows = []
    for chunk in page.split('<tr id="version-')[1:]:
        chunk = chunk.split("</tbody>\n</table>")[0]
        row = {key: values[0] for key, values in cells(chunk, "version-").items()}
        changes = cells(chunk, "change-")
        row["fields"] = {
            label: (old, new)
            for label, old, new in zip(
                changes.get("field", []),
                changes.get("old", []),
                changes.get("new", []),
                strict=True,
            )
        }
        row["may_restore"] = "Restore this version" in chunk
        rows.append(row)
    return rows


def form_of(definition: MetricDefinition, **changes) -> dict[str, str]:
    """Return the definition's change form as stored, with `changes`."""
    return definition_data(definition, max_series=definition.max_series, **changes)


def messages_of(response) -> list[str]:
    return [str(message) for message in response.context["messages"]]


def save(definition: MetricDefinition, **changes) -> MetricDefinition:
    """Change a definition through the ORM, validated, and save it."""
    for key, value in changes.items():
        setattr(definition, key, value)
    definition.full_clean()
    definition.save()
    return definition


# Versions: what records one, and what it holds


def test_admin_saves__one_version_per_save_with_rules_and_user(login):
    client = login("alice", *EDITOR)
    data = form_data(name="shop.orders", value="3", attributes={"region": "eu"})
    response = client.post(ADD_URL, with_rules(data, rule_fields(threshold="50")))
    assert response.status_code == 302, response.context["adminform"].form.errors
    definition = MetricDefinition.objects.get()
    (created,) = versions_of(definition.pk)
    assert (created.change, created.user) == (Change.CREATED, client.user)
    assert created.snapshot["attributes"] == {"region": "eu"}
    assert [rule["threshold"] for rule in created.rules] == [50.0]

    rule = AlertRule.objects.get()
    data = form_of(definition, value="4")
    data = with_rules(data, rule_fields(threshold="80"), saved=[rule])
    response = client.post(change_url(definition), data)
    assert response.status_code == 302, response.context["adminform"].form.errors

    changed, _created = versions_of(definition.pk)
    assert (changed.change, changed.user) == (Change.CHANGED, client.user)
    assert changed.snapshot["value"] == 4.0
    assert [rule["threshold"] for rule in changed.rules] == [80.0]


def test_admin_save_that_changes_nothing_records_nothing(login, define):
    definition = define(name="shop.orders", source="constant", value=1)
    client = login("alice", *EDITOR)
    response = client.post(change_url(definition), form_of(definition))
    assert response.status_code == 302
    assert [v.change for v in versions_of(definition.pk)] == [Change.CREATED]


def test_admin_refused_save_records_nothing(login, define):
    definition = define(name="shop.orders", source="constant", value=1)
    client = login("alice", *EDITOR)
    data = form_of(definition, name="9 lives")
    response = client.post(change_url(definition), data)
    assert response.status_code == 200
    assert len(versions_of(definition.pk)) == 1


def test_admin_rule_page_and_delete_record_versions_with_the_user(login, define):
    definition = define(name="shop.orders", source="constant", value=1)
    rule = AlertRule.objects.create(definition=definition, name="Orders")
    client = login("alice", *EDITOR)
    rule_url = reverse("admin:metricdemo_alertrule_change", args=[rule.pk])
    data = {"definition": definition.pk, **rule_fields(name="Orders", threshold="5")}
    assert client.post(rule_url, data).status_code == 302
    changed = versions_of(definition.pk)[0]
    assert (changed.change, changed.user) == (Change.CHANGED, client.user)
    assert changed.rules[0]["threshold"] == 5.0

    delete_url = reverse(
        "admin:metricdemo_metricdefinition_delete", args=[definition.pk]
    )
    response = client.post(delete_url, {"post": "yes"}, follow=True)
    assert any("Its history is kept" in message for message in messages_of(response))
    deleted = versions_of(definition.pk)[0]
    assert (deleted.change, deleted.user) == (Change.DELETED, client.user)
    assert deleted.rules[0]["name"] == "Orders"
    # The cascade to the rules records nothing more.
    assert [v.change for v in versions_of(definition.pk)][:2] == [
        Change.DELETED,
        Change.CHANGED,
    ]


def test_orm_save_rule_and_delete__versions_without_a_user(define, admin_user):
    definition = define(name="shop.orders", source="constant", value=1)
    definition.last_editor = admin_user  # a stored last editor is not the ORM's
    save(definition, description="Orders")
    rule = AlertRule.objects.create(definition=definition, name="Orders")
    rule.delete()
    definition_id = definition.pk
    definition.delete()
    versions = versions_of(definition_id)
    assert [(v.change, v.user) for v in versions] == [
        (Change.DELETED, None),
        (Change.CHANGED, None),  # the rule deleted
        (Change.CHANGED, None),  # the rule added
        (Change.CHANGED, None),  # the description
        (Change.CREATED, None),
    ]
    assert versions[3].snapshot["description"] == "Orders"
    assert [r["name"] for r in versions[2].rules] == ["Orders"]
    assert versions[1].rules == []


def test_rule_moved_to_another_definition__a_version_of_both(define):
    one = define(name="one", source="constant", value=1)
    two = define(name="two", source="constant", value=2)
    rule = AlertRule.objects.create(definition=one, name="Moving")
    rule.definition = two
    rule.save()
    assert versions_of(one.pk)[0].rules == []
    assert [r["name"] for r in versions_of(two.pk)[0].rules] == ["Moving"]


def test_duplicate_records_a_created_version_by_its_user(define, admin_user):
    original = define(name="shop.orders", source="constant", value=1)
    copy = original.duplicate(acting_user=admin_user)
    (created,) = versions_of(copy.pk)
    assert (created.change, created.user) == (Change.CREATED, admin_user)
    assert (created.snapshot["name"], created.snapshot["enabled"]) == (
        "shop.orders.copy",
        False,
    )


def test_bulk_writes_record_versions(define, login):
    one = define(name="one", source="constant", value=1)
    two = define(name="two", source="constant", value=2)
    MetricDefinition.objects.filter(value__lt=5).update(value=7)
    assert [v.snapshot["value"] for v in versions_of(one.pk)] == [7.0, 1.0]
    assert [v.snapshot["value"] for v in versions_of(two.pk)] == [7.0, 2.0]
    two.value = 9
    MetricDefinition.objects.bulk_update([two], ["value"])
    assert [v.snapshot["value"] for v in versions_of(two.pk)] == [9.0, 7.0, 2.0]
    (three,) = MetricDefinition.objects.bulk_create(
        [MetricDefinition(name="three", value=3)]
    )
    if three.pk is not None:  # databases that return the ids of a bulk insert
        assert [v.change for v in versions_of(three.pk)] == [Change.CREATED]

    # The admin's Disable action updates in bulk, as the user.
    client = login("alice", *EDITOR)
    act(client, "disable_definitions", one)
    disabled = versions_of(one.pk)[0]
    assert (disabled.snapshot["enabled"], disabled.user) == (False, client.user)


def test_import_records_one_version_per_definition_by_the_user(
    tmp_path, define, django_user_model
):
    stored = define(name="shop.orders", source="constant", value=1)
    user = django_user_model.objects.create_superuser("pipeline")
    rule = {"name": "Orders", "threshold": 5}
    document = {
        "definitions": [
            {"name": "shop.orders", "value": 2, "alert_rules": [rule]},
            {"name": "shop.new", "value": 3},
        ]
    }
    path = write(tmp_path, document)
    metrics("import", path, "--dry-run")
    assert len(versions_of(stored.pk)) == 1

    metrics("import", path, "--as-user", "pipeline")
    changed = versions_of(stored.pk)[0]
    assert (changed.change, changed.user) == (Change.CHANGED, user)
    assert (changed.snapshot["value"], changed.rules[0]["threshold"]) == (2.0, 5.0)
    assert len(versions_of(stored.pk)) == 2  # the rules are in the same version
    new = MetricDefinition.objects.get(name="shop.new")
    assert [(v.change, v.user) for v in versions_of(new.pk)] == [(Change.CREATED, user)]

    import_definitions([{"name": "shop.new", "value": 3}], prune=True)
    assert versions_of(stored.pk)[0].change == Change.DELETED


def test_values_json_cannot_hold_are_kept_as_text(define):
    """A NaN saved without validation is recorded as text, not a failed save."""
    definition = MetricDefinition(name="x", value=math.nan, attributes={"a": math.inf})
    snapshot = definition_snapshot(definition, [])
    assert (snapshot["value"], snapshot["attributes"]) == ("nan", {"a": "inf"})
    if connection.vendor != "mysql":  # MariaDB refuses NaN in a float column
        definition = define(name="shop.orders", source="constant", value=1)
        definition.value = math.nan
        definition.save()
        assert versions_of(definition.pk)[0].snapshot["value"] == "nan"


def test_migration_records_the_definitions_found(define, admin_user):
    definition = define(name="shop.orders", source="constant", value=1)
    AlertRule.objects.create(definition=definition, name="Orders")
    MetricDefinition.objects.filter(pk=definition.pk).update(last_editor=admin_user)
    DefinitionVersion.objects.all().delete()
    migration = importlib.import_module("metricdemo.migrations.0011_definition_history")
    migration.record_existing(apps, SimpleNamespace(connection=connection))
    (found,) = versions_of(definition.pk)
    definition.refresh_from_db()
    assert (found.change, found.user, found.recorded_at) == (
        Change.RECORDED,
        admin_user,
        definition.updated_at,
    )
    assert found.snapshot == definition_snapshot(definition, [AlertRule.objects.get()])


# The History page


def test_history_page__changed_fields_old_and_new_by_user(login, define):
    definition = define(name="shop.orders", source="constant", value=1)
    client = login("alice", *EDITOR)
    data = form_of(definition, value="2", attributes={"region": "eu", "tier": 2})
    data = with_rules(data, rule_fields(name="Orders", threshold="50"))
    assert client.post(change_url(definition), data).status_code == 302

    page = client.get(history_url(definition.pk)).content.decode()
    newest, oldest = history_rows(page)
    assert newest["user"] == "alice"
    assert newest["change"] == "changed"
    assert newest["fields"] == {
        "constant value": ("1", "2"),
        "constant attributes": ("{}", '{"region": "eu", "tier": 2}'),
        "alert rule Orders": (
            "-",
            '{"name": "Orders", "operator": ">", "threshold": 50.0}',
        ),
    }
    assert not newest["may_restore"]  # the definition stands as it has it
    assert oldest["user"] == "-"
    assert oldest["change"] == "created"
    assert oldest["fields"] == {
        "name": ("-", "shop.orders"),
        "constant value": ("-", "1"),
    }
    assert oldest["may_restore"]


def test_history_page__needs_the_view_permission(login, define):
    definition = define(name="shop.orders", source="constant", value=1)
    client = login("bob")
    assert client.get(history_url(definition.pk)).status_code == 403


def test_history_page__view_only_shows_no_restore(login, define):
    definition = define(name="shop.orders", source="constant", value=1)
    save(definition, value=2)
    client = login("bob", "view_metricdefinition")
    rows = history_rows(client.get(history_url(definition.pk)).content.decode())
    assert [row["may_restore"] for row in rows] == [False, False]


def test_history_page__of_a_deleted_definition(admin_client, define):
    definition = define(name="shop.orders", source="constant", value=1)
    definition_id = definition.pk
    definition.delete()
    response = admin_client.get(history_url(definition_id))
    assert response.context["title"] == "History: shop.orders (deleted)"
    rows = history_rows(response.content.decode())
    assert [row["change"] for row in rows] == ["deleted", "created"]


def test_changes_between__rule_fields_changed_only():
    old = {"name": "a", "alert_rules": [{"name": "R", "threshold": 5, "severity": "x"}]}
    new = {"name": "a", "alert_rules": [{"name": "R", "threshold": 8, "severity": "x"}]}
    (change,) = changes_between(old, new)
    assert (change.label, change.old, change.new) == (
        "alert rule R",
        '{"threshold": 5}',
        '{"threshold": 8}',
    )


# Restore


def test_restore__as_a_user_with_change_permission(login, define):
    definition = define(
        name="shop.orders", source="constant", value=1, filters={}, description="a"
    )
    AlertRule.objects.create(definition=definition, name="Orders", threshold=5)
    first = versions_of(definition.pk)[0]
    save(definition, value=2, description="b")
    AlertRule.objects.filter(name="Orders").get().delete()
    AlertRule.objects.create(definition=definition, name="Other")
    client = login("alice", *EDITOR)

    response = client.post(restore_url(first), follow=True)
    assert response.redirect_chain[-1][0] == history_url(definition.pk)
    (message,) = messages_of(response)
    assert message.startswith(f"Version {first.pk} was restored")
    definition.refresh_from_db()
    assert (definition.value, definition.description) == (1.0, "a")
    assert definition.last_editor == client.user
    assert [(r.name, r.threshold) for r in definition.alert_rules.all()] == [
        ("Orders", 5.0)
    ]
    restored = versions_of(definition.pk)[0]
    assert (restored.change, restored.user, restored.restored_from) == (
        Change.CHANGED,
        client.user,
        first.pk,
    )
    assert restored.snapshot == first.snapshot
    log = LogEntry.objects.get(object_id=str(definition.pk))
    assert (log.action_flag, log.user) == (CHANGE, client.user)
    assert log.change_message.startswith(f"Restored version {first.pk}: ")
    (newest, *_rest) = history_rows(response.content.decode())
    assert newest["change"] == f"changed: restored from version {first.pk}"


def test_restore__the_current_version_changes_nothing(login, define):
    definition = define(name="shop.orders", source="constant", value=1)
    (current,) = versions_of(definition.pk)
    client = login("alice", *EDITOR)
    response = client.post(restore_url(current), follow=True)
    assert "nothing was changed" in messages_of(response)[0]
    assert len(versions_of(definition.pk)) == 1
    assert not LogEntry.objects.exists()


def test_restore__refused_without_change_permission(login, define):
    definition = define(name="shop.orders", source="constant", value=1)
    first = versions_of(definition.pk)[0]
    save(definition, value=2)
    client = login("bob", "view_metricdefinition")
    assert client.post(restore_url(first)).status_code == 403
    definition.refresh_from_db()
    assert definition.value == 2.0


def test_restore__refused_when_the_version_no_longer_validates(login, define):
    definition = define(name="shop.orders", source="constant", value=1)
    first = versions_of(definition.pk)[0]
    save(definition, name="shop.renamed")
    define(name="shop.orders", source="constant", value=5)  # takes the old name
    client = login("alice", *EDITOR)
    response = client.post(restore_url(first), follow=True)
    (message,) = messages_of(response)
    assert message.startswith(f"Version {first.pk} was not restored: name: ")
    assert "'shop.orders' already exists" in message
    definition.refresh_from_db()
    assert definition.name == "shop.renamed"
    assert versions_of(definition.pk)[0].change == Change.CHANGED
    assert len(versions_of(definition.pk)) == 2
    assert not LogEntry.objects.exists()


def test_restore__refused_without_the_source_permission(login, define):
    """A version that reads a setting needs metricdemo.read_settings to restore."""
    definition = define(
        name="session.age", source="setting", value=None, setting="SESSION_COOKIE_AGE"
    )
    first = versions_of(definition.pk)[0]
    save(definition, source="constant", setting="", value=1)
    client = login("alice", *EDITOR)
    response = client.post(restore_url(first), follow=True)
    (message,) = messages_of(response)
    assert message.startswith(f"Version {first.pk} was not restored: setting: ")
    assert "metricdemo.read_settings" in message
    definition.refresh_from_db()
    assert (definition.source, definition.setting) == ("constant", "")

    client = login("carol", *EDITOR, "read_settings")
    response = client.post(restore_url(first), follow=True)
    assert "was restored" in messages_of(response)[0]
    definition.refresh_from_db()
    assert definition.setting == "SESSION_COOKIE_AGE"


def test_restore__rules_need_the_rule_permissions(login, define):
    definition = define(name="shop.orders", source="constant", value=1)
    AlertRule.objects.create(definition=definition, name="Orders", threshold=5)
    with_rule = versions_of(definition.pk)[0]
    AlertRule.objects.get().delete()
    client = login("alice", "view_metricdefinition", "change_metricdefinition")
    response = client.post(restore_url(with_rule), follow=True)
    (message,) = messages_of(response)
    assert "alert rules: " in message and "metricdemo.add_alertrule" in message
    assert not AlertRule.objects.exists()


def test_restore__a_deleted_definition_needs_the_add_permission(login, define):
    definition = define(name="shop.orders", source="constant", value=1)
    AlertRule.objects.create(definition=definition, name="Orders", threshold=5)
    definition_id = definition.pk
    definition.delete()
    deleted = versions_of(definition_id)[0]

    client = login("bob", "view_metricdefinition", "change_metricdefinition")
    assert client.post(restore_url(deleted)).status_code == 403

    client = login("alice", *EDITOR)
    response = client.post(restore_url(deleted), follow=True)
    assert "was restored" in messages_of(response)[0]
    restored = MetricDefinition.objects.get(pk=definition_id)
    assert (restored.name, restored.last_editor) == ("shop.orders", client.user)
    assert [r.name for r in restored.alert_rules.all()] == ["Orders"]
    newest = versions_of(definition_id)[0]
    assert (newest.change, newest.restored_from) == (Change.CREATED, deleted.pk)


def test_restore__post_only_and_csrf_protected(login, define):
    definition = define(name="shop.orders", source="constant", value=1)
    first = versions_of(definition.pk)[0]
    save(definition, value=2)
    client = login("alice", *EDITOR, client=Client(enforce_csrf_checks=True))
    assert client.get(restore_url(first)).status_code == 405
    assert client.post(restore_url(first)).status_code == 403
    definition.refresh_from_db()
    assert definition.value == 2.0

    # The page's own form carries the token.
    page = client.get(history_url(definition.pk)).content.decode()
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page).group(1)
    response = client.post(restore_url(first), {"csrfmiddlewaretoken": token})
    assert response.status_code == 302
    definition.refresh_from_db()
    assert definition.value == 1.0


def test_restore__of_another_definitions_version_is_not_found(login, define):
    one = define(name="one", source="constant", value=1)
    two = define(name="two", source="constant", value=2)
    (version_of_two,) = versions_of(two.pk)
    client = login("alice", *EDITOR)
    url = reverse(
        "admin:metricdemo_metricdefinition_restore", args=[one.pk, version_of_two.pk]
    )
    assert client.post(url).status_code == 404


def test_change_list_still_lists(login, define):
    define(name="shop.orders", source="constant", value=1)
    client = login("alice", *EDITOR)
    assert client.get(LIST_URL).status_code == 200
