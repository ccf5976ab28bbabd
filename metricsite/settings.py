"""Settings of the metricsite demo, read from the environment with dev defaults."""

import os
import re
import warnings
from pathlib import Path

import dj_database_url

BASE_DIR = Path(__file__).resolve().parent.parent


def env_bool(name: str, default: bool) -> bool:
    """Read a true/false environment variable."""
    value = os.environ.get(name)
    if value is None:
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


DEBUG = env_bool("DEBUG", True)
# The fallback key is for local development only; set SECRET_KEY anywhere else.
SECRET_KEY = os.environ.get(
    "SECRET_KEY", "django-insecure-metricsite-development-only-key-0123456789"
)
ALLOWED_HOSTS = [
    host.strip()
    for host in os.environ.get("ALLOWED_HOSTS", "127.0.0.1,localhost,[::1]").split(",")
    if host.strip()
]

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django_prometheus",
    "metricdemo",
    "metricsite.apps.MetricSiteConfig",
    "metricsite.demoshop.apps.DemoShopConfig",
]

MIDDLEWARE = [
    "django_prometheus.middleware.PrometheusBeforeMiddleware",
    "django.middleware.security.SecurityMiddleware",
    # Serves /static/ under any server (runserver does only with DEBUG on).
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_prometheus.middleware.PrometheusAfterMiddleware",
]

ROOT_URLCONF = "metricsite.urls"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

WSGI_APPLICATION = "metricsite.wsgi.application"


def database_settings(url: str | None) -> dict:
    """Return the default database for a DATABASE_URL, SQLite when it is unset."""
    database = dj_database_url.parse(
        url or f"sqlite:///{BASE_DIR / 'db.sqlite3'}",
        conn_max_age=int(os.environ.get("DATABASE_CONN_MAX_AGE", "60")),
    )
    # django-prometheus wraps each of Django's backends to count connections,
    # queries and errors on /metrics; swap the plain backend for its wrapper.
    vendor = database["ENGINE"].removeprefix("django.db.backends.")
    if vendor in {"sqlite3", "postgresql", "mysql"}:
        database["ENGINE"] = f"django_prometheus.db.backends.{vendor}"
    if vendor == "sqlite3":
        # Write-ahead logging lets several processes (gunicorn workers,
        # management commands, metric evaluations) read while one writes.
        database.setdefault("OPTIONS", {})["init_command"] = "PRAGMA journal_mode=WAL;"
    return database


def cache_settings(url: str | None) -> dict:
    """Return the default cache: Redis at REDIS_URL if set, else local memory."""
    if not url:
        return {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}
    return {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": url}


DATABASES = {"default": database_settings(os.environ.get("DATABASE_URL"))}
CACHES = {"default": cache_settings(os.environ.get("REDIS_URL"))}

_VALIDATORS = "django.contrib.auth.password_validation"
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": f"{_VALIDATORS}.UserAttributeSimilarityValidator"},
    {"NAME": f"{_VALIDATORS}.MinimumLengthValidator"},
    {"NAME": f"{_VALIDATORS}.CommonPasswordValidator"},
    {"NAME": f"{_VALIDATORS}.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
# Where `collectstatic` gathers the files; WhiteNoise serves them from here too.
STATIC_ROOT = BASE_DIR / "staticfiles"
# WhiteNoise also serves the apps' own static directories (the admin's,
# metricdemo's form script), so the demo needs no collectstatic step, with
# DEBUG on or off.
WHITENOISE_USE_FINDERS = True
# With DEBUG off, WhiteNoise warns in every process that STATIC_ROOT does not
# exist until collectstatic has run; the finders serve the files without it.
warnings.filterwarnings(
    "ignore", message=re.escape(f"No directory at: {STATIC_ROOT}"), category=UserWarning
)
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

METRICDEMO = {
    # Set METRICSITE_METRICS_TOKEN to require "Authorization: Bearer <token>".
    "AUTH_TOKEN": os.environ.get("METRICSITE_METRICS_TOKEN") or None,
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "loggers": {"metricdemo": {"handlers": ["console"], "level": "INFO"}},
}
