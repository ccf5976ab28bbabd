"""System checks: a bad METRICDEMO value is an error; stale definitions warn."""

import io

import pytest
from django.contrib.auth.models import Permission
from django.core import checks
from django.core.management import call_command
from django.core.management.base import SystemCheckError
from django.test import override_settings

from metricdemo import unregister_callback
from metricdemo.models import MetricDefinition
from tests.processes import run_django

#: No database for the checks tagged `database`: from Django 6.1 run_checks()
#: without `databases` runs them against every database, as
#: `manage.py check --tag metricdemo` does.
NO_DATABASES: list[str] = []


def metricdemo_ids(**metricdemo) -> list[str]:
    """Return the ids that the metricdemo checks report for this METRICDEMO."""
    with override_settings(METRICDEMO=metricdemo):
        return [
            message.id
            for message in checks.run_checks(
                tags=["metricdemo"], databases=NO_DATABASES
            )
        ]


@pytest.mark.parametrize(
    ("metricdemo", "check_id"),
    [
        ({"COLOUR": "red"}, "metricdemo.E002"),
        ({"ROW_COUNT_MODELS": "everything"}, "metricdemo.E010"),
        ({"ROW_COUNT_MODELS": ["shop.Order", 3]}, "metricdemo.E010"),
        ({"ROW_COUNT_MODELS": ["shop.Nope"]}, "metricdemo.E011"),
        ({"ROW_COUNT_MODELS": ["nosuchapp"]}, "metricdemo.E011"),
        ({"ROW_COUNT_EXCLUDED_MODELS": "sessions.Session"}, "metricdemo.E012"),
        ({"ROW_COUNT_EXCLUDED_MODELS": ["not a label"]}, "metricdemo.E012"),
        ({"SENSITIVE_FIELDS": "password"}, "metricdemo.E013"),
        ({"SENSITIVE_FIELDS": [""]}, "metricdemo.E013"),
        ({"ALLOWED_SETTINGS": "DEBUG"}, "metricdemo.E014"),
        ({"ALLOWED_SETTINGS": ["debug"]}, "metricdemo.E014"),
        ({"ADMIN_EVALUATION_TIMEOUT": 0}, "metricdemo.E015"),
        ({"ADMIN_EVALUATION_TIMEOUT": "2"}, "metricdemo.E015"),
        ({"ADMIN_EVALUATION_TIMEOUT": True}, "metricdemo.E015"),
        ({"ADMIN_EVALUATION_TIMEOUT": float("inf")}, "metricdemo.E015"),
        ({"OTLP_ENDPOINT": "collector:4318"}, "metricdemo.E016"),
        ({"OTLP_ENDPOINT": "grpc://collector:4317"}, "metricdemo.E016"),
        ({"OTLP_ENDPOINT": ""}, "metricdemo.E016"),
        ({"OTLP_INTERVAL": 0}, "metricdemo.E017"),
        ({"OTLP_INTERVAL": "60"}, "metricdemo.E017"),
        ({"OTLP_INTERVAL": float("nan")}, "metricdemo.E017"),
        ({"PERSONAL_FIELDS": "email"}, "metricdemo.E019"),
        ({"PERSONAL_FIELDS": ["email", ""]}, "metricdemo.E019"),
        ({"HISTORY_INTERVAL": -1}, "metricdemo.E037"),
        ({"HISTORY_INTERVAL": 1.5}, "metricdemo.E037"),
        ({"HISTORY_INTERVAL": "60"}, "metricdemo.E037"),
        ({"HISTORY_INTERVAL": True}, "metricdemo.E037"),
        ({"HISTORY_INTERVAL": 86401}, "metricdemo.E037"),
        ({"HISTORY_POINTS": 0}, "metricdemo.E038"),
        ({"HISTORY_POINTS": None}, "metricdemo.E038"),
        ({"HISTORY_POINTS": 100_001}, "metricdemo.E038"),
        ({"HISTORY_POINTS": 60.0}, "metricdemo.E038"),
    ],
)
def test_a_bad_value_is_an_error(metricdemo, check_id):
    assert metricdemo_ids(**metricdemo) == [check_id]


def test_good_values_pass():
    assert (
        metricdemo_ids(
            ROW_COUNT_MODELS=["shop", "auth.User"],
            ROW_COUNT_EXCLUDED_MODELS=["shop.Voucher", "thirdparty.NotInstalled"],
            SENSITIVE_FIELDS=["iban", "*_pin"],
            ALLOWED_SETTINGS=["SESSION_COOKIE_AGE", "CACHES.default"],
            ADMIN_EVALUATION_TIMEOUT=0.5,
            OTLP_ENDPOINT="https://collector.example:4318",
            OTLP_INTERVAL=15,
            PERSONAL_FIELDS=["*email*", "national_id"],
            HISTORY_INTERVAL=300,
            HISTORY_POINTS=288,
        )
        == []
    )


@pytest.mark.parametrize("off", [None, 0])
def test_check_settings__history_may_be_off(off):
    assert metricdemo_ids(HISTORY_INTERVAL=off) == []


def test_an_error_names_the_value_and_what_is_allowed():
    with override_settings(METRICDEMO={"ROW_COUNT_MODELS": ["shop.Nope"]}):
        (error,) = checks.run_checks(tags=["metricdemo"], databases=NO_DATABASES)
    assert error.level == checks.ERROR
    assert "'shop.Nope'" in error.msg and "auth.User" in error.hint


# From Django 6.1 `manage.py check` runs the database checks too.
@pytest.mark.django_db
@override_settings(METRICDEMO={"SENSITIVE_FIELDS": "password"})
def test_manage_py_check_fails_on_a_bad_setting():
    with pytest.raises(SystemCheckError, match="metricdemo.E013"):
        call_command("check", stdout=io.StringIO(), stderr=io.StringIO())


@pytest.mark.django_db
def test_stored_definitions_that_no_longer_validate_warn(define, callback):
    callback("test.retired", lambda: 1)
    define(name="fine", source="constant", value=1)
    define(name="stale.callback", source="callback", callback="test.retired")
    define(name="stale.customers", source="row_count", model="shop.Customer")
    # A model that was removed since the definition was saved.
    MetricDefinition.objects.create(
        name="stale.model", source="row_count", model="shop.Removed"
    )
    unregister_callback("test.retired")

    # No queries without --database (Django before 6.1 runs none either).
    assert checks.run_checks(tags=["metricdemo"], databases=NO_DATABASES) == []
    with override_settings(METRICDEMO={"ROW_COUNT_MODELS": ["shop.Order"]}):
        warnings = checks.run_checks(tags=["metricdemo"], databases=["default"])
    assert {w.id for w in warnings} == {"metricdemo.W010"}
    assert all(w.level == checks.WARNING for w in warnings)
    by_name = {w.obj.name: w.msg for w in warnings}
    assert set(by_name) == {"stale.callback", "stale.customers", "stale.model"}
    assert "test.retired" in by_name["stale.callback"]
    assert "shop.Customer" in by_name["stale.customers"]
    assert "shop.Removed" in by_name["stale.model"]


@pytest.mark.django_db
def test_the_database_check_runs_with_manage_py_check_database(define):
    MetricDefinition.objects.create(name="stale", source="setting", setting="GONE")
    out, err = io.StringIO(), io.StringIO()
    call_command("check", "--database", "default", stdout=out, stderr=err)
    assert "metricdemo.W010" in out.getvalue() + err.getvalue()
    assert "GONE" in out.getvalue() + err.getvalue()


def test_the_database_check_tolerates_missing_tables(tmp_path):
    result = run_django(
        "from django.core.management import call_command\n"
        "call_command('check', '--database', 'default')\n",
        db_url=f"sqlite:///{tmp_path / 'empty.sqlite3'}",
    )
    assert "no issues" in result.stdout


@pytest.mark.django_db
def test_definitions_whose_last_editor_lost_a_permission_warn(django_user_model):
    editor = django_user_model.objects.create_user("editor", is_staff=True)
    view_user = Permission.objects.get(
        content_type__app_label="auth", codename="view_user"
    )
    editor.user_permissions.add(view_user)
    root = django_user_model.objects.create_superuser("root")
    for name, last_editor, enabled in [
        ("users.by_editor", editor, True),
        ("users.by_editor.off", editor, False),
        ("users.by_root", root, True),
        ("users.by_a_pipeline", None, True),
    ]:
        MetricDefinition.objects.create(
            name=name,
            source="row_count",
            model="auth.User",
            group_by="is_staff",
            enabled=enabled,
            last_editor=last_editor,
        )
    assert checks.run_checks(tags=["metricdemo"], databases=["default"]) == []

    editor.user_permissions.remove(view_user)
    (warning,) = checks.run_checks(tags=["metricdemo"], databases=["default"])
    assert (warning.id, warning.obj.name) == ("metricdemo.W011", "users.by_editor")
    assert "'editor'" in warning.msg and "auth.view_user" in warning.msg
    assert warning.hint


def deploy_ids(**overrides) -> list[str]:
    """Return the ids of the metricdemo deployment checks under these settings."""
    with override_settings(**overrides):
        return [
            message.id
            for message in checks.run_checks(
                tags=["metricdemo"],
                include_deployment_checks=True,
                databases=NO_DATABASES,
            )
        ]


def test_deploy_check_warns_when_metrics_are_open_to_anyone():
    (warning_id,) = deploy_ids(DEBUG=False, METRICDEMO={})
    assert warning_id == "metricdemo.W012"
    with override_settings(DEBUG=False, METRICDEMO={}):
        (warning,) = checks.run_checks(
            tags=["metricdemo"],
            include_deployment_checks=True,
            databases=NO_DATABASES,
        )
    assert "AUTH_TOKEN" in warning.msg and "docs/security.md" in warning.hint
    assert deploy_ids(DEBUG=False, METRICDEMO={"AUTH_TOKEN": "s3cret-token"}) == []
    assert deploy_ids(DEBUG=False, METRICDEMO={"ALLOWED_IPS": ["10.0.0.0/8"]}) == []
    assert deploy_ids(DEBUG=True, METRICDEMO={}) == []
    # Without --deploy nothing is said.
    with override_settings(DEBUG=False, METRICDEMO={}):
        assert checks.run_checks(tags=["metricdemo"], databases=NO_DATABASES) == []


# Django 6.1 runs the database checks of `check --tag metricdemo` too.
@pytest.mark.django_db
def test_deploy_check_runs_with_manage_py_check_deploy():
    with override_settings(DEBUG=False, METRICDEMO={}):
        out, err = io.StringIO(), io.StringIO()
        call_command("check", "--deploy", "--tag", "metricdemo", stdout=out, stderr=err)
    assert "metricdemo.W012" in out.getvalue() + err.getvalue()


@pytest.mark.parametrize("bad", ["underscores", "noTranslation", None, 1, ""])
def test_check_settings__name_translation_must_be_a_strategy(bad):
    from metricdemo.checks import check_settings

    with override_settings(METRICDEMO={"NAME_TRANSLATION": bad}):
        (error,) = check_settings()
    assert error.id == "metricdemo.E034"
    assert "NoUTF8EscapingWithSuffixes" in error.msg


@pytest.mark.parametrize(
    "strategy",
    [
        "UnderscoreEscapingWithSuffixes",
        "UnderscoreEscapingWithoutSuffixes",
        "NoUTF8EscapingWithSuffixes",
        "NoTranslation",
    ],
)
def test_check_settings__name_translation_strategies_pass(strategy):
    from metricdemo.checks import check_settings

    with override_settings(METRICDEMO={"NAME_TRANSLATION": strategy}):
        assert check_settings() == []
