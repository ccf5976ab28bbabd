"""Read the METRICDEMO settings dict over the app's defaults."""

from typing import Any

from django.conf import settings
from django.core.signals import setting_changed

SETTING_NAME = "METRICDEMO"

DEFAULTS: dict[str, Any] = {
    # Install the app's MeterProvider as OpenTelemetry's global one, so that
    # instruments made with opentelemetry.metrics.get_meter() are exported too.
    "SET_GLOBAL_METER_PROVIDER": True,
    # The instrumentation scope of database-defined instruments.
    "METER_NAME": "metricdemo",
    # How OpenTelemetry names become Prometheus names on /metrics: one of
    # OpenTelemetry's translation strategies. The default keeps the classic
    # names (escaped to underscores, with unit and _total suffixes);
    # NoUTF8EscapingWithSuffixes and NoTranslation serve the OpenTelemetry
    # names as they are to a scraper that asks for escaping=allow-utf-8.
    "NAME_TRANSLATION": "UnderscoreEscapingWithSuffixes",
    # Seconds a definition's evaluation may take when it sets no timeout.
    "TIMEOUT": 5.0,
    # Seconds a whole scrape (or OTLP push) may wait for its evaluations, under
    # Prometheus's default scrape timeout of 10 s: what has not finished by
    # then is left out and counted as a timeout. No definition's timeout may
    # exceed it.
    "SCRAPE_TIMEOUT": 8.0,
    # Seconds after which an evaluation is slow: from then on this process
    # serves its last good value and refreshes it in the background. None is
    # a quarter of SCRAPE_TIMEOUT (2 s by default).
    "SLOW_EVALUATION": None,
    # Threads that evaluate row counts and callbacks, so a slow one cannot
    # hold up the scrape past its timeout.
    "EVALUATION_THREADS": 4,
    # The Django cache (an alias of CACHES) that keeps values of definitions
    # with cache_seconds > 0; a shared cache shares them between processes.
    "CACHE": "default",
    # Series one observable instrument may export per collection (a grouped
    # row count's groups, a self-metric's definitions); more are folded into
    # one otel_metric_overflow="true" series.
    "CARDINALITY_LIMIT": 20000,
    # When set, /metrics requires "Authorization: Bearer <AUTH_TOKEN>".
    "AUTH_TOKEN": None,
    # When non-empty, only these addresses or networks may read /metrics.
    "ALLOWED_IPS": [],
    # Serve the alert rules (`metrics rules`) at /metrics/rules, protected as
    # /metrics is (AUTH_TOKEN, ALLOWED_IPS), for a sidecar or config reloader.
    "SERVE_RULES": False,
    # Prometheus's base URL (http://prometheus:9090), for the admin to show
    # which alerts are pending or firing now; None leaves the admin without.
    "PROMETHEUS_URL": None,
    # Seconds between two samples of each definition's value kept in the
    # ValueSample table (its recent history): one per interval across all
    # processes, written after a collection; None or 0 keeps no history.
    "HISTORY_INTERVAL": 60,
    # Samples kept per definition; older ones are deleted as new ones come
    # (1440 at 60 s is 24 hours).
    "HISTORY_POINTS": 1440,
    # Models that row_count definitions may count: "__all__" (every installed
    # model) or a list of "app_label" and "app_label.ModelName" entries.
    "ROW_COUNT_MODELS": "__all__",
    # Models never counted, nor reached through a lookup, even under "__all__":
    # they hold sessions, credentials or the admin's record of other users' work.
    "ROW_COUNT_EXCLUDED_MODELS": (
        "sessions.Session",
        "admin.LogEntry",
        "authtoken.Token",
        "authtoken.TokenProxy",
        "knox.AuthToken",
        "oauth2_provider.AccessToken",
        "oauth2_provider.RefreshToken",
        "oauth2_provider.Grant",
        "oauth2_provider.IDToken",
        "socialaccount.SocialToken",
        "otp_static.StaticToken",
    ),
    # More field-name patterns that filters and group_by may not touch, added to
    # SENSITIVE_NAMES below (which always apply).
    "SENSITIVE_FIELDS": (),
    # Field-name patterns of identity fields (besides every EmailField,
    # GenericIPAddressField and UUIDField): never grouped by, and filtered only
    # to test for an empty value. Setting it replaces this list.
    "PERSONAL_FIELDS": (
        "*email*",
        "*phone*",
        "*address*",
        "ip",
        "*_ip",
        "first_name",
        "last_name",
        "username",
    ),
    # Settings that setting definitions may read: "__all__" or a list of setting
    # paths (an entry also allows the keys below it).
    "ALLOWED_SETTINGS": "__all__",
    # Seconds the admin's preview and values column, and `manage.py metrics
    # check`, give each definition's evaluation.
    "ADMIN_EVALUATION_TIMEOUT": 2.0,
    # The base URL of an OTLP/HTTP receiver (a Collector) to push the metrics
    # to, for example "http://collector:4318"; None reads OTEL_EXPORTER_OTLP_ENDPOINT.
    "OTLP_ENDPOINT": None,
    # Seconds between pushes; None reads OTEL_METRIC_EXPORT_INTERVAL (ms), 60 s.
    "OTLP_INTERVAL": None,
    # Refresh scheduled definitions (refresh_interval > 0) in a background
    # thread of this process. False leaves the refreshing to other processes;
    # the environment variable METRICDEMO_REFRESH=0 or =1 overrides it.
    "REFRESH": True,
    # Seconds one refresh of a scheduled definition may take when it sets no
    # timeout of its own; no scrape waits for it, so it may be minutes.
    "REFRESH_TIMEOUT": 60.0,
    # The database alias that row counts read, for example a replica; None
    # reads where the router sends reads of the counted model.
    "DATABASE": None,
}

#: Shell-style patterns, compared case-insensitively with every field name along
#: a row count's lookup paths and with every part of a setting path. A match is
#: refused: these names hold passwords, tokens, secrets, keys and session data.
SENSITIVE_NAMES: tuple[str, ...] = (
    "*password*",
    "*passwd*",
    "*secret*",
    "*token*",
    "*credential*",
    "*apikey*",
    "key",
    "key_*",
    "*_key",
    "*_key_*",
    "session_data",
)

#: The value of ROW_COUNT_MODELS and ALLOWED_SETTINGS that means "no list".
ALL = "__all__"


class AppSettings:
    """Give attribute access to METRICDEMO, falling back to DEFAULTS."""

    def __init__(self, defaults: dict[str, Any]) -> None:
        self.defaults = defaults
        self._cached: set[str] = set()

    @property
    def user_settings(self) -> dict[str, Any]:
        """Return the project's METRICDEMO dict (never mutated)."""
        value = getattr(settings, SETTING_NAME, {})
        return value if isinstance(value, dict) else {}

    def __getattr__(self, attr: str) -> Any:
        if attr not in self.defaults:
            raise AttributeError(f"Invalid {SETTING_NAME} setting: {attr!r}")
        value = self.user_settings.get(attr, self.defaults[attr])
        self._cached.add(attr)
        setattr(self, attr, value)
        return value

    def reload(self) -> None:
        """Forget cached values so the next access reads settings again."""
        for attr in self._cached:
            delattr(self, attr)
        self._cached.clear()


app_settings = AppSettings(DEFAULTS)


def _reload_app_settings(*, setting: str, **kwargs: Any) -> None:
    if setting == SETTING_NAME:
        app_settings.reload()


setting_changed.connect(_reload_app_settings, dispatch_uid="metricdemo.conf.reload")
