"""A definition's history in the admin: its versions, what each changed, Restore."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from django.contrib import messages
from django.contrib.admin.options import IS_POPUP_VAR
from django.contrib.admin.utils import unquote
from django.contrib.admin.views.main import PAGE_VAR
from django.contrib.auth import get_permission_codename
from django.core.exceptions import (
    NON_FIELD_ERRORS,
    FieldDoesNotExist,
    PermissionDenied,
    ValidationError,
)
from django.db import router, transaction
from django.http import (
    Http404,
    HttpRequest,
    HttpResponseNotAllowed,
    HttpResponseRedirect,
)
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html
from django.utils.text import capfirst
from django.utils.translation import gettext

from metricdemo import display, validators
from metricdemo.models import (
    ALERT_RULE_FIELDS,
    EDITABLE_FIELDS,
    SNAPSHOT_RULES_KEY,
    AlertRule,
    Change,
    DefinitionVersion,
    MetricDefinition,
    definition_snapshot,
    rule_snapshot,
)
from metricdemo.signals import one_version_each

#: Versions per page of the history.
VERSIONS_PER_PAGE = 50


@dataclass(frozen=True)
class FieldChange:
    """One field a version changed, with its old and new value as text."""

    label: str
    old: str
    new: str


@dataclass(frozen=True)
class VersionRow:
    """One version as the history page shows it."""

    version: DefinitionVersion
    user: str
    description: str
    changes: tuple[FieldChange, ...]
    #: Whether the definition stands as this version has it now.
    is_current: bool
    restore_url: str


def shown(value: Any, empty: str = "-") -> str:
    """Return a snapshot's value as the page shows it: JSON fields as compact JSON."""
    if value is None or value == "":
        return empty
    if isinstance(value, bool):
        return gettext("yes") if value else gettext("no")
    if isinstance(value, dict | list):
        # Sorted: PostgreSQL keeps no key order, and every database should read alike.
        return json.dumps(
            value,
            cls=validators.EscapingJSONEncoder,
            ensure_ascii=False,
            sort_keys=True,
        )
    if isinstance(value, float):
        return display.format_number(value)
    return validators.escape_unencodable(str(value))


def _new_definition() -> dict[str, Any]:
    # What a version that creates a definition is compared with: the defaults.
    fields = {
        name: MetricDefinition._meta.get_field(name).get_default()
        for name in EDITABLE_FIELDS
    }
    return {**fields, SNAPSHOT_RULES_KEY: []}


def _rule_text(rule: dict[str, Any]) -> str:
    # A rule's name, operator and the fields it does not leave at their defaults.
    kept = {
        name: value
        for name, value in rule.items()
        if name in ("name", "operator")
        or value != AlertRule._meta.get_field(name).get_default()
    }
    return shown(kept)


def changes_between(
    old: dict[str, Any] | None, new: dict[str, Any], empty: str = "-"
) -> list[FieldChange]:
    """Return the fields and rules `new` changed from `old`, in form order.

    With `old` None (a definition's first version), the fields it sets other
    than to their defaults. A rule shows the fields that changed, or all it
    sets when it was added or removed.
    """
    old = _new_definition() if old is None else old
    found = [
        FieldChange(
            str(MetricDefinition._meta.get_field(name).verbose_name),
            shown(old.get(name), empty),
            shown(new.get(name), empty),
        )
        for name in EDITABLE_FIELDS
        if old.get(name) != new.get(name)
    ]
    old_rules = {rule.get("name"): rule for rule in old.get(SNAPSHOT_RULES_KEY) or []}
    new_rules = {rule.get("name"): rule for rule in new.get(SNAPSHOT_RULES_KEY) or []}
    for name in sorted(old_rules.keys() | new_rules.keys(), key=str):
        before, after = old_rules.get(name), new_rules.get(name)
        if before == after:
            continue
        label = gettext("alert rule %(name)s") % {"name": name}
        if before is None or after is None:
            found.append(
                FieldChange(
                    label,
                    _rule_text(before) if before else empty,
                    _rule_text(after) if after else empty,
                )
            )
            continue
        keys = [key for key in ALERT_RULE_FIELDS if before.get(key) != after.get(key)]
        found.append(
            FieldChange(
                label,
                shown({key: before.get(key) for key in keys}),
                shown({key: after.get(key) for key in keys}),
            )
        )
    return found


def restore(
    definition: MetricDefinition, version: DefinitionVersion, user: Any
) -> list[FieldChange]:
    """Give `definition` the version's fields and rules and save it, as `user`.

    The definition is validated with the user's permissions, as the change
    form validates it, and each rule against it; adding, changing or deleting
    rules needs the user to hold those rule permissions. Returns what changed:
    nothing (and nothing is saved) when the definition stands as the version
    has it.

    Raises:
        ValidationError: the result does not validate, or the user may not
            make it; nothing is saved.
    """
    stored = {}
    if not definition._state.adding:
        stored = {rule.name: rule for rule in definition.alert_rules.all()}
    before = definition_snapshot(definition, stored.values())
    for name in EDITABLE_FIELDS:
        default = MetricDefinition._meta.get_field(name).get_default()
        setattr(definition, name, version.snapshot.get(name, default))
    definition.acting_user = definition.last_editor = user
    definition.restored_from = version.pk
    rules, saving, actions = _restored_rules(definition, version, stored)
    deleting = list(stored.values())
    actions["delete"] = [rule.name for rule in deleting]
    changed = changes_between(before, definition_snapshot(definition, rules))
    if not changed:
        return []
    errors: dict[str, list] = {}
    try:
        definition.full_clean()
    except ValidationError as exc:
        errors = exc.update_error_dict(errors)
    for rule in rules:
        try:
            # Names are unique in a version: its rules were stored.
            rule.full_clean(exclude=["definition"], validate_unique=False)
        except ValidationError as exc:
            errors.setdefault(SNAPSHOT_RULES_KEY, []).extend(
                f"{rule.name}: {message}" for message in exc.messages
            )
    for action, names in actions.items():
        codename = get_permission_codename(action, AlertRule._meta)
        permission = f"{AlertRule._meta.app_label}.{codename}"
        if names and not user.has_perm(permission):
            errors.setdefault(SNAPSHOT_RULES_KEY, []).append(
                gettext(
                    "You do not hold %(permission)s, which restoring needs for the "
                    "alert rules %(names)s."
                )
                % {"permission": permission, "names": ", ".join(sorted(names))}
            )
    if errors:
        raise ValidationError(errors)
    definition.save(force_insert=definition._state.adding)
    for rule in deleting:
        rule.delete()
    for rule in saving:
        rule.save()
    definition.restored_from = None
    return changed


def _restored_rules(
    definition: MetricDefinition,
    version: DefinitionVersion,
    stored: dict[str, AlertRule],
) -> tuple[list[AlertRule], list[AlertRule], dict[str, list[str]]]:
    """Return the version's rules, those to save, and the names to add and change.

    The stored rules the version keeps are taken out of `stored`; those left
    are the ones to delete.
    """
    rules, saving = [], []
    actions: dict[str, list[str]] = {"add": [], "change": []}
    for data in version.rules:
        rule = stored.pop(data.get("name"), None) or AlertRule()
        old = rule_snapshot(rule)
        for name in ALERT_RULE_FIELDS:
            default = AlertRule._meta.get_field(name).get_default()
            setattr(rule, name, data.get(name, default))
        rule.definition = definition
        rules.append(rule)
        if rule.pk is None:
            actions["add"].append(rule.name)
            saving.append(rule)
        elif old != rule_snapshot(rule):
            actions["change"].append(rule.name)
            saving.append(rule)
    return rules, saving, actions


def error_text(exc: ValidationError) -> str:
    """Return a validation error's messages, each after its field's label."""
    parts = []
    for field, texts in exc.message_dict.items():
        if field == NON_FIELD_ERRORS:
            label = ""
        elif field == SNAPSHOT_RULES_KEY:
            label = gettext("alert rules")
        else:
            try:
                label = str(MetricDefinition._meta.get_field(field).verbose_name)
            except FieldDoesNotExist:
                label = field
        parts.extend(f"{label}: {text}" if label else text for text in texts)
    return " ".join(parts)


class VersionsPerRequest:
    """Admin mixin: each POST writes one version per definition it changed.

    The versions name the requesting user and are written in the request's
    transaction.
    """

    @contextmanager
    def recording_versions(self, request: HttpRequest) -> Iterator[None]:
        """Group the versions a POST records, as one_version_each() does."""
        if request.method != "POST":
            yield
            return
        using = router.db_for_write(self.model)
        with transaction.atomic(using=using), one_version_each(request.user):
            yield

    def changeform_view(self, request, object_id=None, form_url="", extra_context=None):
        with self.recording_versions(request):
            return super().changeform_view(request, object_id, form_url, extra_context)

    def delete_view(self, request, object_id, extra_context=None):
        with self.recording_versions(request):
            return super().delete_view(request, object_id, extra_context)

    def changelist_view(self, request, extra_context=None):
        with self.recording_versions(request):
            return super().changelist_view(request, extra_context)


class DefinitionHistory(VersionsPerRequest):
    """MetricDefinitionAdmin's History page: versions, what each changed, Restore."""

    history_template = "admin/metricdemo/metricdefinition/history.html"

    @property
    def restore_url_name(self) -> str:
        """Return the URL name of the restore view (without the admin: namespace)."""
        return f"{self.opts.app_label}_{self.opts.model_name}_restore"

    def get_urls(self):
        """Add the restore view, before the change view's catch-all."""
        return [
            path(
                "<path:object_id>/history/<int:version_id>/restore/",
                self.admin_site.admin_view(self.restore_view),
                name=self.restore_url_name,
            ),
            *super().get_urls(),
        ]

    def _history_url(self, definition_id: int) -> str:
        return reverse(
            f"{self.admin_site.name}:{self.opts.app_label}_{self.opts.model_name}"
            "_history",
            args=[definition_id],
        )

    def _deleted_id(self, object_id: str) -> int | None:
        """Return the id of a deleted definition, or None if it is stored.

        A stored one the admin's queryset leaves out is no deleted one.
        """
        try:
            pk = self.opts.pk.to_python(unquote(object_id))
        except ValidationError:
            raise Http404 from None
        return None if self.model._default_manager.filter(pk=pk).exists() else pk

    def history_view(self, request: HttpRequest, object_id: str, extra_context=None):
        """Show the definition's versions, newest first, with what each changed.

        A deleted definition's history is shown too, to those who may view
        definitions; Restore then needs the add permission.
        """
        obj = self.get_object(request, unquote(object_id))
        definition_id = obj.pk if obj is not None else self._deleted_id(object_id)
        versions = DefinitionVersion.objects.filter(definition_id=definition_id)
        if obj is None:
            latest = versions.first() if definition_id is not None else None
            if latest is None:
                return self._get_obj_does_not_exist_redirect(
                    request, self.opts, object_id
                )
            if not self.has_view_or_change_permission(request):
                raise PermissionDenied
            may_restore = self.has_add_permission(request)
            name = latest.snapshot.get("name") or str(definition_id)
            title = gettext("History: %(name)s (deleted)") % {"name": name}
            current = None
        else:
            if not self.has_view_or_change_permission(request, obj):
                raise PermissionDenied
            may_restore = self.has_change_permission(request, obj)
            name = str(obj)
            title = gettext("History: %(name)s") % {"name": name}
            current = definition_snapshot(obj, obj.alert_rules.all())
        paginator = self.get_paginator(
            request, versions.select_related("user"), VERSIONS_PER_PAGE
        )
        page = paginator.get_page(request.GET.get(PAGE_VAR, 1))
        context = {
            **self.admin_site.each_context(request),
            "title": title,
            "subtitle": None,
            "opts": self.opts,
            "module_name": str(capfirst(self.opts.verbose_name_plural)),
            "object": obj,
            "name": name,
            "rows": self._rows(list(page), current, may_restore, definition_id),
            "page": page,
            "page_range": paginator.get_elided_page_range(page.number),
            "page_var": PAGE_VAR,
            **(extra_context or {}),
        }
        request.current_app = self.admin_site.name
        return TemplateResponse(request, self.history_template, context)

    def _rows(
        self,
        versions: list[DefinitionVersion],
        current: dict | None,
        may_restore: bool,
        definition_id: int,
    ) -> list[VersionRow]:
        if not versions:
            return []
        # The version before the page's oldest, to say what that one changed.
        before = (
            DefinitionVersion.objects.filter(
                definition_id=definition_id, pk__lt=versions[-1].pk
            )
            .values_list("snapshot", flat=True)
            .first()
        )
        snapshots = [v.snapshot for v in versions[1:]] + [before]
        empty = self.get_empty_value_display()
        rows = []
        for version, previous in zip(versions, snapshots, strict=True):
            description = version.get_change_display()
            if version.restored_from:
                description = gettext(
                    "%(change)s: restored from version %(number)s"
                ) % {
                    "change": description,
                    "number": version.restored_from,
                }
            is_current = current is not None and version.snapshot == current
            rows.append(
                VersionRow(
                    version,
                    version.user.get_username() if version.user else empty,
                    description,
                    tuple(
                        changes_between(previous, version.snapshot, empty)
                        if version.change != Change.DELETED
                        else ()
                    ),
                    is_current,
                    reverse(
                        f"{self.admin_site.name}:{self.restore_url_name}",
                        args=[definition_id, version.pk],
                    )
                    if may_restore and not is_current
                    else "",
                )
            )
        return rows

    def restore_view(self, request: HttpRequest, object_id: str, version_id: int):
        """Restore a version (POST only), checked as the change form checks a save.

        A version that no longer validates, or that the user may not publish,
        is refused with the errors as a message, and nothing changes.
        """
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        obj = self.get_object(request, unquote(object_id))
        definition_id = obj.pk if obj is not None else self._deleted_id(object_id)
        version = DefinitionVersion.objects.filter(
            pk=version_id, definition_id=definition_id
        ).first()
        if definition_id is None or version is None:
            raise Http404
        if obj is None:
            if not self.has_add_permission(request):
                raise PermissionDenied
            obj = self.model(pk=definition_id)
        elif not self.has_change_permission(request, obj):
            raise PermissionDenied
        adding = obj._state.adding
        try:
            using = router.db_for_write(self.model)
            with transaction.atomic(using=using), one_version_each(request.user):
                changed = restore(obj, version, request.user)
                if changed:
                    labels = ", ".join(change.label for change in changed)
                    message = gettext("Restored version %(number)s: %(fields)s.") % {
                        "number": version.pk,
                        "fields": labels,
                    }
                    log = self.log_addition if adding else self.log_change
                    log(request, obj, message)
        except ValidationError as exc:
            self.message_user(
                request,
                gettext("Version %(number)s was not restored: %(errors)s")
                % {"number": version.pk, "errors": error_text(exc)},
                messages.ERROR,
            )
        else:
            if changed:
                self.message_user(
                    request,
                    gettext("Version %(number)s was restored; changed: %(fields)s.")
                    % {"number": version.pk, "fields": labels},
                    messages.SUCCESS,
                )
            else:
                self.message_user(
                    request,
                    gettext(
                        "The definition already stands as version %(number)s has "
                        "it; nothing was changed."
                    )
                    % {"number": version.pk},
                    messages.INFO,
                )
        return HttpResponseRedirect(self._history_url(definition_id))

    def response_delete(self, request: HttpRequest, obj_display: str, obj_id: Any):
        """Say where the deleted definition's history is kept."""
        response = super().response_delete(request, obj_display, obj_id)
        if IS_POPUP_VAR not in request.POST and self.has_view_or_change_permission(
            request
        ):
            self.message_user(
                request,
                format_html(
                    '{} <a href="{}">{}</a>',
                    gettext("Its history is kept:"),
                    self._history_url(obj_id),
                    gettext("History"),
                ),
                messages.INFO,
            )
        return response
