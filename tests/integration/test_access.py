"""Who may read /metrics: the bearer token and the allowed addresses."""

import pytest
from django.conf import settings
from django.test import override_settings

from tests.scraping import parse

pytestmark = pytest.mark.django_db


def test_open_by_default(client):
    assert client.get("/metrics").status_code == 200


@override_settings(METRICDEMO={"AUTH_TOKEN": "s3cret-token"})
def test_token_required_when_set(client):
    response = client.get("/metrics")
    assert response.status_code == 401
    assert response["WWW-Authenticate"].startswith("Bearer")

    for header in ("Bearer wrong", "Basic s3cret-token", "s3cret-token", "Bearer "):
        response = client.get("/metrics", HTTP_AUTHORIZATION=header)
        assert response.status_code == 401, header

    response = client.get("/metrics", HTTP_AUTHORIZATION="Bearer s3cret-token")
    assert response.status_code == 200
    assert "target_info" in parse(response.content.decode())


@override_settings(METRICDEMO={"ALLOWED_IPS": ["10.0.0.0/8", "2001:db8::/32"]})
def test_only_allowed_addresses(client):
    assert client.get("/metrics").status_code == 403  # 127.0.0.1
    assert client.get("/metrics", REMOTE_ADDR="10.20.30.40").status_code == 200
    assert client.get("/metrics", REMOTE_ADDR="11.0.0.1").status_code == 403
    assert client.get("/metrics", REMOTE_ADDR="2001:db8::7").status_code == 200
    assert client.get("/metrics", REMOTE_ADDR="::ffff:10.0.0.9").status_code == 200
    assert client.get("/metrics", REMOTE_ADDR="not-an-ip").status_code == 403


@override_settings(METRICDEMO={"ALLOWED_IPS": ["127.0.0.1"], "AUTH_TOKEN": "t0ken"})
def test_address_and_token_together(client):
    assert client.get("/metrics", REMOTE_ADDR="10.0.0.1").status_code == 403
    assert client.get("/metrics").status_code == 401
    ok = client.get("/metrics", HTTP_AUTHORIZATION="Bearer t0ken")
    assert ok.status_code == 200


def test_login_required_middleware_does_not_block_the_endpoint(client):
    middleware = [
        *settings.MIDDLEWARE,
        "django.contrib.auth.middleware.LoginRequiredMiddleware",
    ]
    with override_settings(MIDDLEWARE=middleware):
        assert client.get("/metrics").status_code == 200
        # The middleware is active: the admin index still wants a login.
        assert client.get("/admin/").status_code == 302


@pytest.mark.parametrize(
    ("key", "bad"),
    [
        ("TIMEOUT", 0),
        ("TIMEOUT", "5"),
        ("EVALUATION_THREADS", 0),
        ("CACHE", "nope"),
        ("AUTH_TOKEN", ""),
        ("ALLOWED_IPS", "10.0.0.0/8"),
        ("ALLOWED_IPS", ["10.0.0.300"]),
        ("SET_GLOBAL_METER_PROVIDER", "yes"),
        ("METER_NAME", ""),
        ("CARDINALITY_LIMIT", 0),
    ],
)
def test_bad_settings_are_system_check_errors(key, bad):
    from metricdemo.checks import check_settings

    with override_settings(METRICDEMO={key: bad}):
        errors = check_settings()
    assert len(errors) == 1
    assert key in errors[0].msg and repr(bad) in errors[0].msg
    assert errors[0].id.startswith("metricdemo.E")


def test_unknown_key_and_non_dict_are_errors():
    from metricdemo.checks import check_settings

    with override_settings(METRICDEMO={"TIMEOUTS": 3}):
        (error,) = check_settings()
    assert error.id == "metricdemo.E002" and "TIMEOUTS" in error.msg
    with override_settings(METRICDEMO=["TIMEOUT"]):
        (error,) = check_settings()
    assert error.id == "metricdemo.E001"
