"""Least privilege: an editor publishes only what Django's permissions let them see.

Three real users go through the admin's real views: a superuser, an editor who
holds only the metric-definition permissions, and an editor who also holds
auth.view_user. A count of users grouped by is_staff is theirs to define only
if they may view users; nobody may group by email or filter on its prefix.
"""

import json
from collections import Counter

import pytest
from django.contrib.auth.models import Permission, User
from django.core.exceptions import ValidationError
from django.test import Client
from django.urls import reverse
from django.utils.html import strip_tags

from metricdemo.models import MetricDefinition
from tests.admin_pages import ADD_URL, LIST_URL, PREVIEW_URL, act, change_url
from tests.refusals import form_data

pytestmark = pytest.mark.django_db(transaction=True)

EDITOR_PERMISSIONS = (
    "metricdemo.add_metricdefinition",
    "metricdemo.change_metricdefinition",
    "metricdemo.view_metricdefinition",
)
#: The definition only those who may view users may publish.
USERS_BY_STAFF = {
    "name": "users.by_staff",
    "source": "row_count",
    "model": "auth.User",
    "group_by": "is_staff",
}
PERMISSION_ERROR = (
    "You need the view permission on auth.User (auth.view_user) to count its rows."
)


def grant(user, *permissions: str) -> None:
    """Give `user` the permissions named `app_label.codename`."""
    for permission in permissions:
        app_label, codename = permission.split(".")
        user.user_permissions.add(
            Permission.objects.get(content_type__app_label=app_label, codename=codename)
        )


def revoke(user, *permissions: str) -> None:
    """Take the permissions named `app_label.codename` away from `user`."""
    for permission in permissions:
        app_label, codename = permission.split(".")
        user.user_permissions.remove(
            Permission.objects.get(content_type__app_label=app_label, codename=codename)
        )


@pytest.fixture
def people(django_user_model):
    """Return logged-in clients and users: superuser, editor, user_viewer.

    Three of the five accounts are staff: a count by is_staff is 2 and 3.
    """
    superuser = django_user_model.objects.create_superuser(
        "root-admin", "root-admin@example.com", "pw"
    )
    editor = django_user_model.objects.create_user(
        "editor", "editor@example.com", "pw", is_staff=True
    )
    grant(editor, *EDITOR_PERMISSIONS)
    viewer = django_user_model.objects.create_user("viewer", "viewer@example.com")
    viewer.is_staff = True
    viewer.save()
    grant(viewer, *EDITOR_PERMISSIONS, "auth.view_user")
    django_user_model.objects.create_user("customer1", "c1@example.com")
    django_user_model.objects.create_user("customer2", "c2@example.com")
    people = {}
    for key, user in (
        ("superuser", superuser),
        ("editor", editor),
        ("user_viewer", viewer),
    ):
        client = Client()
        client.force_login(user)
        people[key] = (client, django_user_model.objects.get(pk=user.pk))
    return people


def listed_values(client) -> dict[str, str]:
    """Return the change list's current-value cell of each definition, by name."""
    response = client.get(LIST_URL)
    assert response.status_code == 200
    admin = response.context["cl"].model_admin
    return {
        d.name: strip_tags(admin.current_value(d))
        for d in response.context["cl"].result_list
    }


def assert_reveals_no_count(text: str) -> None:
    """Fail if `text` holds a count of users or a number of series."""
    assert "series" not in text
    for digit in "0123456789":
        assert digit not in text, text


# Add


@pytest.mark.parametrize("who", ["superuser", "user_viewer"])
def test_add__users_who_may_view_users_can_count_them(people, who):
    client, user = people[who]
    response = client.post(ADD_URL, form_data(**USERS_BY_STAFF))
    assert response.status_code == 302, response.context["adminform"].form.errors
    definition = MetricDefinition.objects.get(name="users.by_staff")
    assert definition.last_editor == user


def test_add__an_editor_without_view_user_gets_a_field_error(people):
    client, _ = people["editor"]
    response = client.post(ADD_URL, form_data(**USERS_BY_STAFF))
    assert response.status_code == 200
    errors = response.context["adminform"].form.errors
    assert errors["model"] == [PERMISSION_ERROR]
    assert not MetricDefinition.objects.exists()


@pytest.mark.parametrize("who", ["superuser", "editor", "user_viewer"])
@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"group_by": "email"}, "group_by"),
        (
            {"filters": {"email__startswith": "root-admin", "is_superuser": True}},
            "filters",
        ),
        ({"group_by": "username"}, "group_by"),
        ({"model": "auth.Permission", "group_by": "user__email"}, "group_by"),
    ],
)
def test_add__nobody_groups_by_or_probes_an_identity_field(people, who, fields, field):
    client, _ = people[who]
    data = form_data(**{**USERS_BY_STAFF, "group_by": "", **fields})
    response = client.post(ADD_URL, data)
    assert response.status_code == 200
    assert "identifies a person" in " ".join(
        response.context["adminform"].form.errors[field]
    )
    preview = client.post(PREVIEW_URL, data)
    assert preview.context["evaluation"] is None
    assert not MetricDefinition.objects.exists()


def test_add__a_filter_for_users_without_an_email_still_works(people):
    client, _ = people["user_viewer"]
    for number, filters in enumerate(
        [{"email": ""}, {"email__exact": ""}, {"email__isnull": True}]
    ):
        data = form_data(
            name=f"users.no_email{number}",
            source="row_count",
            model="auth.User",
            filters=filters,
        )
        response = client.post(ADD_URL, data)
        assert response.status_code == 302, response.context["adminform"].form.errors


def test_add__every_model_along_the_path_needs_the_permission(people):
    client, user = people["user_viewer"]
    # Permission is counted: the editor may view users but not permissions.
    data = form_data(
        name="x", source="row_count", model="auth.Permission", group_by="user__is_staff"
    )
    errors = client.post(ADD_URL, data).context["adminform"].form.errors
    assert "auth.Permission (auth.view_permission)" in errors["model"][0]
    # Groups may be viewed, and their users are reached through a filter.
    grant(user, "auth.view_group")
    revoke(user, "auth.view_user")
    data = form_data(
        name="x", source="row_count", model="auth.Group", filters={"user__is_staff": 1}
    )
    errors = client.post(ADD_URL, data).context["adminform"].form.errors
    assert set(errors) == {"filters"}
    assert "auth.User (auth.view_user)" in errors["filters"][0]
    data = form_data(name="x", source="row_count", model="auth.Group", group_by="user")
    errors = client.post(ADD_URL, data).context["adminform"].form.errors
    assert "auth.User (auth.view_user)" in errors["group_by"][0]
    # change implies view.
    grant(user, "auth.change_user")
    assert client.post(ADD_URL, data).status_code == 302


# Change


def test_change__only_those_who_may_view_users_can_save(people, define):
    definition = define(**USERS_BY_STAFF)
    editor, _ = people["editor"]
    data = form_data(**{**USERS_BY_STAFF, "description": "edited"})
    response = editor.post(change_url(definition), data)
    assert response.context["adminform"].form.errors["model"] == [PERMISSION_ERROR]
    definition.refresh_from_db()
    assert (definition.description, definition.last_editor) == ("", None)
    for who in ("user_viewer", "superuser"):
        client, user = people[who]
        assert client.post(change_url(definition), data).status_code == 302
        definition.refresh_from_db()
        assert (definition.description, definition.last_editor) == ("edited", user)


def test_change__the_form_shows_the_last_editor(people):
    client, user = people["user_viewer"]
    client.post(ADD_URL, form_data(**USERS_BY_STAFF))
    definition = MetricDefinition.objects.get()
    page = client.get(change_url(definition)).content.decode()
    assert "field-last_editor" in page and "viewer" in page


# Preview


@pytest.mark.parametrize("who", ["superuser", "user_viewer"])
def test_preview__shows_the_count_to_those_who_may_view_users(people, who):
    client, _ = people[who]
    response = client.post(PREVIEW_URL, form_data(**USERS_BY_STAFF))
    assert [(s.labels, s.value) for s in response.context["series"]] == [
        ((("is_staff", "false"),), 2.0),
        ((("is_staff", "true"),), 3.0),
    ]


def test_preview__evaluates_nothing_for_an_editor_without_view_user(people, define):
    definition = define(**USERS_BY_STAFF)
    client, _ = people["editor"]
    for url in (
        PREVIEW_URL,
        reverse("admin:metricdemo_metricdefinition_preview", args=[definition.pk]),
    ):
        response = client.post(url, form_data(**USERS_BY_STAFF))
        assert response.status_code == 200
        assert response.context["evaluation"] is None
        assert response.context["form"].errors["model"] == [PERMISSION_ERROR]
        assert "metricdemo-series" not in response.content.decode()


# The values column


def test_values_column__hides_what_the_viewer_may_not_see(people, define):
    define(**USERS_BY_STAFF)
    define(name="constant", source="constant", value=7)
    client, _ = people["editor"]
    shown = listed_values(client)
    assert shown["constant"] == "7"
    assert "auth.view_user" in shown["users.by_staff"]
    assert_reveals_no_count(shown["users.by_staff"])
    response = client.get(LIST_URL)
    (hidden,) = [
        d for d in response.context["cl"].result_list if d.name == "users.by_staff"
    ]
    assert not hasattr(hidden, "_metricdemo_evaluation")  # nothing was evaluated


@pytest.mark.parametrize("who", ["superuser", "user_viewer"])
def test_values_column__shows_the_count_to_those_who_may_view_users(
    people, who, define
):
    define(**USERS_BY_STAFF)
    client, _ = people[who]
    # The count, then the series from the largest.
    counts = Counter(User.objects.values_list("is_staff", flat=True))
    largest = sorted(counts.items(), key=lambda item: -item[1])
    assert listed_values(client)["users.by_staff"] == "2 series " + " ".join(
        f"is_staff={str(staff).lower()} {n}" for staff, n in largest
    )


# Actions


def test_actions__an_editor_cannot_enable_or_duplicate_what_they_could_not_save(
    people, define
):
    definition = define(**USERS_BY_STAFF, enabled=False)
    client, _ = people["editor"]
    shown = act(client, "enable_definitions", definition)
    assert any("users.by_staff was not enabled" in m for m in shown), shown
    assert any("auth.view_user" in m for m in shown)
    for message in shown:
        assert "series" not in message
    definition.refresh_from_db()
    assert not definition.enabled
    shown = act(client, "duplicate_definitions", definition)
    assert any("users.by_staff was not duplicated" in m for m in shown), shown
    assert MetricDefinition.objects.count() == 1
    # Disabling never publishes anything, so it stays open to every editor.
    MetricDefinition.objects.filter(pk=definition.pk).update(enabled=True)
    act(client, "disable_definitions", definition)
    definition.refresh_from_db()
    assert not definition.enabled


@pytest.mark.parametrize("who", ["superuser", "user_viewer"])
def test_actions__enable_and_duplicate_for_those_who_may_view_users(
    people, who, define
):
    definition = define(**USERS_BY_STAFF, enabled=False)
    client, user = people[who]
    act(client, "enable_definitions", definition)
    definition.refresh_from_db()
    assert definition.enabled and definition.last_editor == user
    act(client, "duplicate_definitions", definition)
    copy = MetricDefinition.objects.get(name="users.by_staff.copy")
    assert copy.last_editor == user and not copy.enabled


# Settings and callbacks


@pytest.mark.parametrize(
    ("fields", "field", "permission"),
    [
        (
            {"source": "setting", "setting": "SESSION_COOKIE_AGE"},
            "setting",
            "metricdemo.read_settings",
        ),
        (
            {"source": "callback", "callback": "process.cpu_time"},
            "callback",
            "metricdemo.use_callbacks",
        ),
    ],
)
def test_settings_and_callbacks_need_their_own_permission(
    people, fields, field, permission
):
    data = form_data(name="x", **fields)
    editor, user = people["user_viewer"]
    response = editor.post(ADD_URL, data)
    assert permission in response.context["adminform"].form.errors[field][0]
    assert editor.post(PREVIEW_URL, data).context["evaluation"] is None
    grant(user, permission)
    assert editor.post(ADD_URL, data).status_code == 302
    MetricDefinition.objects.all().delete()
    superuser, _ = people["superuser"]
    assert superuser.post(ADD_URL, data).status_code == 302


# Suggestions


def suggestions(client) -> dict:
    """Return what the add form suggests: models, settings, callbacks, fields."""
    response = client.get(ADD_URL)
    assert response.status_code == 200
    form = response.context["adminform"].form
    return {
        "models": list(form.fields["model"].widget.suggestions()),
        "settings": list(form.fields["setting"].widget.suggestions()),
        "callbacks": [c for c, _ in form.fields["callback"].widget.choices if c],
        "fields": json.loads(
            form.fields["field"].widget.attrs["data-field-suggestions"]
        ),
    }


def test_suggestions__name_only_what_the_user_may_use(people):
    editor, user = people["editor"]
    found = suggestions(editor)
    # The editor may view no model but the definitions themselves.
    assert found["models"] == ["metricdemo.MetricDefinition"]
    assert list(found["fields"]) == ["metricdemo.MetricDefinition"]
    assert found["settings"] == []
    assert found["callbacks"] == []
    grant(user, "shop.view_order", "metricdemo.read_settings")
    found = suggestions(editor)
    assert "shop.Order" in found["models"] and "auth.User" not in found["models"]
    # Distinct customers would lead to shop.Customer, which they may not view.
    assert "customer" not in found["fields"]["shop.Order"]["count_distinct"]
    assert "status" in found["fields"]["shop.Order"]["count_distinct"]
    assert "SESSION_COOKIE_AGE" in found["settings"]
    grant(user, "shop.view_customer", "metricdemo.use_callbacks")
    found = suggestions(editor)
    assert "customer" in found["fields"]["shop.Order"]["count_distinct"]
    assert "process.cpu_time" in found["callbacks"]


def test_suggestions__the_user_viewer_sees_users_and_the_superuser_all(people):
    viewer, _ = people["user_viewer"]
    assert "auth.User" in suggestions(viewer)["models"]
    superuser, _ = people["superuser"]
    found = suggestions(superuser)
    assert {"auth.User", "shop.Order", "shop.Customer"} <= set(found["models"])
    assert "SESSION_COOKIE_AGE" in found["settings"]
    assert "process.cpu_time" in found["callbacks"]


def test_suggestions__a_stored_callback_stays_shown_to_an_editor_without_the_permission(
    people, define
):
    definition = define(name="cpu", source="callback", callback="process.cpu_time")
    editor, _ = people["user_viewer"]
    response = editor.get(change_url(definition))
    choices = dict(response.context["adminform"].form.fields["callback"].widget.choices)
    assert list(choices) == ["", "process.cpu_time"]
    assert "not registered" not in str(choices["process.cpu_time"])


# Saves without a user


def test_saves_without_a_user_keep_the_settings_based_rules(define):
    """The ORM, full_clean() in a shell and plain imports know no user."""
    define(**USERS_BY_STAFF)
    define(name="age", source="setting", setting="SESSION_COOKIE_AGE")
    with pytest.raises(ValidationError) as info:
        define(**{**USERS_BY_STAFF, "name": "by_email", "group_by": "email"})
    assert "identifies a person" in info.value.message_dict["group_by"][0]
