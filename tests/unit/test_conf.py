"""Unit tests for metricdemo.conf: METRICDEMO read lazily over DEFAULTS."""

import copy
import fnmatch
from types import MappingProxyType

import pytest
from django.conf import settings
from django.core.signals import setting_changed
from django.test import override_settings

from metricdemo.checks import check_settings
from metricdemo.conf import (
    ALL,
    DEFAULTS,
    SENSITIVE_NAMES,
    SETTING_NAME,
    AppSettings,
    app_settings,
)


@pytest.fixture(autouse=True)
def _fresh_app_settings():
    """Start and end each test with nothing cached, whatever the test changed."""
    app_settings.reload()
    yield
    app_settings.reload()


# Reading values


@pytest.mark.parametrize("key", sorted(DEFAULTS))
def test_app_settings__default_when_the_project_leaves_the_key_out(key):
    with override_settings(METRICDEMO={}):
        assert getattr(app_settings, key) == DEFAULTS[key]


@override_settings(METRICDEMO={"TIMEOUT": 1.5, "AUTH_TOKEN": "s3cr3t"})
def test_app_settings__project_value_wins_over_the_default():
    assert app_settings.TIMEOUT == 1.5
    assert app_settings.AUTH_TOKEN == "s3cr3t"
    assert app_settings.METER_NAME == DEFAULTS["METER_NAME"]


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("SET_GLOBAL_METER_PROVIDER", False),
        ("EVALUATION_THREADS", 0),
        ("CACHE", ""),
        ("ROW_COUNT_EXCLUDED_MODELS", ()),
    ],
)
def test_app_settings__falsy_project_value_is_kept(key, value):
    assert DEFAULTS[key] != value
    with override_settings(METRICDEMO={key: value}):
        assert getattr(app_settings, key) == value


@pytest.mark.parametrize("key", ["NOPE", "timeout", "Timeout", "METRICDEMO"])
def test_app_settings__unknown_key_raises_attribute_error_naming_it(key):
    with pytest.raises(AttributeError) as exc:
        getattr(app_settings, key)
    assert str(exc.value) == f"Invalid METRICDEMO setting: {key!r}"


@override_settings(METRICDEMO={"COLOUR": "red"})
def test_app_settings__key_only_in_the_project_dict_is_unknown():
    """Only DEFAULTS' keys are settings; the system checks report the others."""
    with pytest.raises(AttributeError, match="'COLOUR'"):
        app_settings.COLOUR  # noqa: B018


def test_app_settings__hasattr_and_getattr_default_see_unknown_keys():
    assert not hasattr(app_settings, "NOPE")
    assert getattr(app_settings, "NOPE", "fallback") == "fallback"
    assert hasattr(app_settings, "TIMEOUT")


def test_app_settings__reads_its_own_defaults():
    colours = AppSettings({"COLOUR": "red", "SIZE": 3})
    with override_settings(METRICDEMO={"COLOUR": "blue"}):
        assert (colours.COLOUR, colours.SIZE) == ("blue", 3)
    with pytest.raises(AttributeError, match="'TIMEOUT'"):
        colours.TIMEOUT  # noqa: B018


# The project's dict


def test_user_settings__is_the_projects_dict():
    project = {"TIMEOUT": 1.5}
    with override_settings(METRICDEMO=project):
        assert app_settings.user_settings is project


def test_user_settings__never_mutated_by_reading():
    project = {"TIMEOUT": 1.5, "ALLOWED_IPS": ["10.0.0.0/8"]}
    before_project, before_defaults = copy.deepcopy(project), copy.deepcopy(DEFAULTS)
    with override_settings(METRICDEMO=project):
        for _ in range(2):
            values = {key: getattr(app_settings, key) for key in DEFAULTS}
            app_settings.reload()
        assert settings.METRICDEMO is project
    assert project == before_project
    assert DEFAULTS == before_defaults
    assert values["TIMEOUT"] == 1.5 and values["METER_NAME"] == "metricdemo"


@pytest.mark.parametrize(
    "value",
    [
        None,
        "TIMEOUT=1.5",
        ["TIMEOUT"],
        (("TIMEOUT", 1.5),),
        1.5,
        MappingProxyType({"TIMEOUT": 1.5}),
    ],
    ids=repr,
)
def test_user_settings__not_a_dict_falls_back_to_the_defaults(value):
    with override_settings(METRICDEMO=value):
        assert app_settings.user_settings == {}
        assert app_settings.TIMEOUT == DEFAULTS["TIMEOUT"]
        assert check_settings()[0].id == "metricdemo.E001"


def test_user_settings__missing_setting_falls_back_to_the_defaults():
    with override_settings():
        del settings.METRICDEMO
        app_settings.reload()  # deleting a setting sends no setting_changed
        assert app_settings.user_settings == {}
        assert app_settings.AUTH_TOKEN is None


# Caching and reloading


def test_app_settings__reloads_on_override_settings():
    assert app_settings.TIMEOUT == DEFAULTS["TIMEOUT"]
    with override_settings(METRICDEMO={"TIMEOUT": 1.5}):
        assert app_settings.TIMEOUT == 1.5
        with override_settings(METRICDEMO={"TIMEOUT": 2.5}):
            assert app_settings.TIMEOUT == 2.5
        assert app_settings.TIMEOUT == 1.5
    assert app_settings.TIMEOUT == DEFAULTS["TIMEOUT"]


def test_app_settings__caches_a_value_until_reload():
    project = {"TIMEOUT": 1.5}
    with override_settings(METRICDEMO=project):
        assert app_settings.TIMEOUT == 1.5
        project["TIMEOUT"] = 2.5  # the test's own dict, changed behind Django
        assert app_settings.TIMEOUT == 1.5
        app_settings.reload()
        assert app_settings.TIMEOUT == 2.5


@pytest.mark.parametrize(
    ("setting", "reloaded"),
    [(SETTING_NAME, True), ("METRICDEMO_EXTRA", False), ("metricdemo", False)],
)
def test_setting_changed__reloads_only_for_metricdemo(setting, reloaded):
    project = {"TIMEOUT": 1.5}
    with override_settings(METRICDEMO=project):
        assert app_settings.TIMEOUT == 1.5
        project["TIMEOUT"] = 2.5
        setting_changed.send(sender=None, setting=setting, value=None, enter=True)
        assert app_settings.TIMEOUT == (2.5 if reloaded else 1.5)


def test_reload__twice_or_with_nothing_cached_is_harmless():
    fresh = AppSettings(DEFAULTS)
    fresh.reload()
    assert fresh.TIMEOUT == DEFAULTS["TIMEOUT"]
    fresh.reload()
    fresh.reload()
    assert fresh.TIMEOUT == DEFAULTS["TIMEOUT"]


# The defaults and constants


def test_defaults__pass_the_system_checks_when_written_out():
    with override_settings(METRICDEMO=copy.deepcopy(DEFAULTS)):
        assert check_settings() == []


def test_all__is_the_default_of_both_list_settings():
    assert ALL == "__all__"
    assert DEFAULTS["ROW_COUNT_MODELS"] == ALL
    assert DEFAULTS["ALLOWED_SETTINGS"] == ALL


def test_sensitive_names__fixed_and_extended_only_through_sensitive_fields():
    """A tuple: projects add patterns with SENSITIVE_FIELDS, empty by default."""
    assert isinstance(SENSITIVE_NAMES, tuple)
    assert len(set(SENSITIVE_NAMES)) == len(SENSITIVE_NAMES)
    assert DEFAULTS["SENSITIVE_FIELDS"] == ()


@pytest.mark.parametrize(
    "name",
    ["SECRET_KEY", "SECRET_KEY_FALLBACKS", "EMAIL_HOST_PASSWORD", "PASSWORD"],
)
def test_sensitive_names__cover_djangos_secret_settings(name):
    """Setting names, and DATABASES' PASSWORD key, match case-insensitively."""
    matches = [
        pattern
        for pattern in SENSITIVE_NAMES
        if fnmatch.fnmatchcase(name.lower(), pattern.lower())
    ]
    assert matches
