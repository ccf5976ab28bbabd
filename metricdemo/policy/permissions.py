"""Decide what an editor may publish: the permissions each source and model needs.

These rules apply when a user is known (the admin, `metrics import
--as-user`): an editor publishes only what Django lets them see.
"""

from __future__ import annotations

from typing import Any

from django.apps import apps
from django.conf import settings
from django.contrib.auth import get_permission_codename
from django.db.models import Model
from django.utils.translation import gettext as _

from metricdemo import measures
from metricdemo.policy.paths import lookup_fields, path_refusals
from metricdemo.policy.rows import model_refusal
from metricdemo.policy.sensitive import setting_refusal

#: The permission a user needs to define a setting source (superusers hold it).
READ_SETTINGS = "metricdemo.read_settings"
#: The permission a user needs to define a callback source.
USE_CALLBACKS = "metricdemo.use_callbacks"


def may_view(user: Any, model: type[Model]) -> bool:
    """Return whether `user` holds the view or the change permission on `model`."""
    return any(
        user.has_perm(_permission(action, model)) for action in ("view", "change")
    )


def model_permission_refusal(user: Any, model: type[Model]) -> str | None:
    """Return why `user` may not count the rows of `model`; None for no user."""
    if user is None or may_view(user, model):
        return None
    return _(
        "You need the view permission on %(model)s (%(permission)s) to count its rows."
    ) % {"model": model._meta.label, "permission": _permission("view", model)}


def path_permission_refusal(user: Any, model: type[Model], path: str) -> str | None:
    """Return why `user` may not follow `path` from `model`; None for no user."""
    if user is None:
        return None
    for field in lookup_fields(model, path)[0]:
        related = field.related_model if field.is_relation else None
        if isinstance(related, type) and not may_view(user, related):
            return _(
                "%(path)r goes through %(model)s: you need the view permission on "
                "%(model)s (%(permission)s) to read it."
            ) % {
                "path": path,
                "model": related._meta.label,
                "permission": _permission("view", related),
            }
    return None


def row_count_permission_refusals(
    user: Any, model: type[Model], filters: Any, group_by: str, field: str = ""
) -> dict[str, str]:
    """Return {field: why} for the models of a row count that `user` may not view.

    The counted model and every model that a filter, a group-by path or the
    aggregated field passes through need the view (or change) permission. No
    user (None) passes.
    """
    refusal = model_permission_refusal(user, model)
    if refusal:
        return {"model": refusal}
    refusals = path_refusals(
        filters,
        group_by,
        lambda path, value, grouped: path_permission_refusal(user, model, path),
    )
    for path in measures.paths_of(field):
        refusal = path_permission_refusal(user, model, path)
        if refusal:
            refusals["field"] = refusal
            break
    return refusals


def source_permission_refusal(
    user: Any, permission: str | None, source: Any
) -> str | None:
    """Return why `user` may not use `source`, which needs `permission` (if any).

    No user (None) and no permission pass.
    """
    if user is None or permission is None or user.has_perm(permission):
        return None
    return _(
        "You need the %(permission)s permission to use the source %(source)r; a "
        "superuser can grant it to you or to your group."
    ) % {"permission": permission, "source": str(source)}


def allowed_models(user: Any = None) -> list[str]:
    """Return the labels of the installed models that row counts may read.

    With a `user`, only those they may view (or change) as well.
    """
    return sorted(
        m._meta.label
        for m in apps.get_models()
        if not model_refusal(m) and (user is None or may_view(user, m))
    )


def suggested_models(user: Any = None) -> list[str]:
    """Return the labels of the models the admin suggests for row counts.

    Those of allowed_models() without the app's own bookkeeping (the change
    stamp, stored values, alert rules): no business metric counts them. They
    may still be typed in; the definitions themselves stay suggested.
    """
    return [label for label in allowed_models(user) if not _bookkeeping(label)]


def _bookkeeping(label: str) -> bool:
    app_label, _dot, name = label.partition(".")
    return app_label == "metricdemo" and name != "MetricDefinition"


def suggested_settings(user: Any = None) -> list[str]:
    """Return the top-level settings a setting source may export, by name.

    A `user` without the read_settings permission gets none.
    """
    if user is not None and not user.has_perm(READ_SETTINGS):
        return []
    # The values are read past LazySettings, which warns on every read of a
    # deprecated setting (Django 6.1's EMAIL_*): looking at them for a list
    # of suggestions is not using them.
    holder = settings._wrapped if settings.configured else settings
    names = []
    for name in dir(settings):
        if not name.isupper() or setting_refusal(name):
            continue
        value = getattr(holder, name, None)
        if isinstance(value, bool | int | float):
            names.append(name)
    return sorted(names)


def _permission(action: str, model: type[Model]) -> str:
    meta = model._meta
    return f"{meta.app_label}.{get_permission_codename(action, meta)}"
