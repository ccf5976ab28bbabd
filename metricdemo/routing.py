"""Say which model a label names and which database its rows are read from."""

from __future__ import annotations

from django.apps import apps
from django.db import router
from django.db.models import Model
from django.utils.translation import gettext as _

from metricdemo.conf import app_settings


def resolve_model(label: str) -> type[Model]:
    """Return the installed model named `app_label.ModelName`.

    Raises:
        LookupError: with a message naming the label and what to use instead.
    """
    try:
        return apps.get_model(label)
    except (LookupError, ValueError):
        raise LookupError(
            _(
                "No installed model is called %(label)r; use app_label.ModelName of "
                "an installed app, for example auth.User."
            )
            % {"label": label}
        ) from None


def model_database(model: type[Model]) -> str:
    """Return the database alias that row-based definitions of `model` read.

    METRICDEMO['DATABASE'] (for example a replica) when set, else where the
    router sends reads of `model`.
    """
    return app_settings.DATABASE or router.db_for_read(model)
