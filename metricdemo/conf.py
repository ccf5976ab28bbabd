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
    # Seconds a definition's evaluation may take when it sets no timeout.
    "TIMEOUT": 5.0,
    # Threads that evaluate row counts and callbacks, so a slow one cannot
    # hold up the scrape past its timeout.
    "EVALUATION_THREADS": 4,
    # The Django cache (an alias of CACHES) that keeps values of definitions
    # with cache_seconds > 0; a shared cache shares them between processes.
    "CACHE": "default",
    # When set, /metrics requires "Authorization: Bearer <AUTH_TOKEN>".
    "AUTH_TOKEN": None,
    # When non-empty, only these addresses or networks may read /metrics.
    "ALLOWED_IPS": [],
}


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
