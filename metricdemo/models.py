"""Store metric definitions and the stamp that tells processes they changed."""

from __future__ import annotations

import copy
import re
import uuid

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import connections, models, router, transaction
from django.utils.translation import gettext_lazy as _

from metricdemo import sources, validators
from metricdemo.reserved import SELF_METRICS

#: The fields an operator edits, in form order: what export writes and import reads.
EDITABLE_FIELDS = (
    "name",
    "description",
    "unit",
    "kind",
    "enabled",
    "attributes",
    "source",
    "value",
    "model",
    "filters",
    "group_by",
    "setting",
    "callback",
    "timeout",
    "cache_seconds",
    "max_series",
)
COPY_SUFFIX_RE = re.compile(r"\.copy\d*$")
MAX_COPIES = 100


class Kind(models.TextChoices):
    """The OpenTelemetry observable instrument a definition becomes."""

    COUNTER = "counter", _("Counter (a total that only goes up)")
    UPDOWNCOUNTER = "updowncounter", _("Up-down counter (a total that can go down)")
    GAUGE = "gauge", _("Gauge (a value measured now)")


#: The kinds with short labels, for the admin's change list and filter; the
#: form keeps the long ones, which explain each kind.
KIND_SHORT_CHOICES = [
    (Kind.COUNTER.value, _("Counter")),
    (Kind.UPDOWNCOUNTER.value, _("Up-down counter")),
    (Kind.GAUGE.value, _("Gauge")),
]


class ChangeStamp(models.Model):
    """Hold one row whose token changes with every change to any definition.

    Each process compares the token with the one its instruments were built
    from, with one small query per scrape, and reloads when it differs. The
    token is random rather than a counter so that a rolled-back change can
    never make two different sets of definitions look alike.
    """

    SINGLETON_ID = 1

    token = models.CharField(_("token"), max_length=32)
    changed_at = models.DateTimeField(_("changed at"), auto_now=True)

    class Meta:
        verbose_name = _("change stamp")
        verbose_name_plural = _("change stamps")

    def __str__(self) -> str:
        return self.token

    @classmethod
    def bump(cls, using: str | None = None) -> str:
        """Give the stamp a new token, inside the caller's transaction if any."""
        token = uuid.uuid4().hex
        manager = cls.objects.using(using) if using else cls.objects
        if not manager.filter(pk=cls.SINGLETON_ID).update(token=token):
            manager.update_or_create(pk=cls.SINGLETON_ID, defaults={"token": token})
        return token

    @classmethod
    def current(cls, using: str | None = None) -> str:
        """Return the current token ("" while the row is missing); never write."""
        # Every scrape runs this: plain SQL costs a sixth of the ORM query.
        connection = connections[using or router.db_for_read(cls)]
        quote = connection.ops.quote_name
        sql = "SELECT {} FROM {} WHERE {} = %s".format(
            quote("token"), quote(cls._meta.db_table), quote("id")
        )
        with connection.cursor() as cursor:
            cursor.execute(sql, [cls.SINGLETON_ID])
            row = cursor.fetchone()
        # Scrapes only read; the next change creates the row.
        return row[0] if row else ""


class MetricDefinitionQuerySet(models.QuerySet):
    """Bump the change stamp for bulk writes, which send no signals."""

    def update(self, **kwargs):
        with transaction.atomic(using=self.db):
            rows = super().update(**kwargs)
            if rows:
                ChangeStamp.bump(self.db)
        return rows

    update.alters_data = True

    def bulk_create(self, objs, *args, **kwargs):
        with transaction.atomic(using=self.db):
            created = super().bulk_create(objs, *args, **kwargs)
            if created:
                ChangeStamp.bump(self.db)
        return created

    def bulk_update(self, objs, fields, *args, **kwargs):
        with transaction.atomic(using=self.db):
            rows = super().bulk_update(objs, fields, *args, **kwargs)
            if rows:
                ChangeStamp.bump(self.db)
        return rows


class MetricDefinition(models.Model):
    """Describe one metric: its instrument, its constant attributes and its source."""

    name = models.CharField(
        _("name"),
        max_length=255,
        unique=True,
        validators=[validators.validate_metric_name],
        help_text=_(
            "OpenTelemetry instrument name: a letter, then letters, digits, '_', "
            "'.', '/' or '-'. Example: shop.orders.pending (exported as "
            "shop_orders_pending)."
        ),
    )
    description = models.TextField(
        _("description"),
        blank=True,
        help_text=_(
            "Shown as the Prometheus HELP text. Example: Orders waiting for payment."
        ),
    )
    unit = models.CharField(
        _("unit"),
        max_length=validators.UNIT_MAX_LENGTH,
        blank=True,
        validators=[validators.validate_unit],
        help_text=_(
            "UCUM-style unit, added to the exported name as a suffix. Examples: s "
            "(seconds), By (bytes), 1 (a ratio, no suffix), {order} (a count of "
            "orders, no suffix)."
        ),
    )
    kind = models.CharField(
        _("kind"),
        max_length=16,
        choices=Kind.choices,
        default=Kind.GAUGE,
        help_text=_(
            "Counter for totals that only grow (exported with _total), up-down "
            "counter for totals that can shrink, gauge for a current reading."
        ),
    )
    attributes = models.JSONField(
        _("constant attributes"),
        default=dict,
        blank=True,
        validators=[validators.validate_attributes],
        help_text=_(
            'A JSON object of labels added to every series. Example: {"region": '
            '"eu", "tier": 2}.'
        ),
    )
    source = models.CharField(
        _("source"),
        max_length=16,
        choices=sources.CHOICES,
        default=sources.ConstantSource.key,
        help_text=_("Where the value comes from; each source uses its own fields."),
    )
    value = models.FloatField(
        _("constant value"),
        null=True,
        blank=True,
        validators=[validators.validate_finite],
        help_text=_("For a constant source: the number to export. Example: 10."),
    )
    model = models.CharField(
        _("model"),
        max_length=200,
        blank=True,
        validators=[validators.validate_model_label],
        help_text=_(
            "For a row count: the model to count, as app_label.ModelName. "
            "Example: auth.User."
        ),
    )
    filters = models.JSONField(
        _("filters"),
        default=dict,
        blank=True,
        help_text=_(
            "For a row count: a JSON object of ORM lookups that rows must match. "
            'Example: {"status": "pending", "created__year": 2026}.'
        ),
    )
    group_by = models.CharField(
        _("group by"),
        max_length=200,
        blank=True,
        help_text=_(
            "For a row count: a field path; one series per distinct value, with the "
            "value as an attribute named after the field. Example: status."
        ),
    )
    setting = models.CharField(
        _("setting"),
        max_length=200,
        blank=True,
        validators=[validators.validate_setting_path],
        help_text=_(
            "For a setting source: a Django setting, dotted to walk into "
            "dictionaries; only numbers and booleans export. Example: "
            "SESSION_COOKIE_AGE or CACHES.default.TIMEOUT."
        ),
    )
    callback = models.CharField(
        _("callback"),
        max_length=100,
        blank=True,
        help_text=_(
            "For a callback source: the name of a function registered in code with "
            "metricdemo.register_callback(). Example: process.cpu_time."
        ),
    )
    timeout = models.FloatField(
        _("timeout"),
        null=True,
        blank=True,
        validators=[validators.validate_timeout],
        help_text=_(
            "Seconds one evaluation may take before it is left out of the scrape "
            "and counted as a timeout; empty uses METRICDEMO['TIMEOUT']. Example: 2."
        ),
    )
    cache_seconds = models.PositiveIntegerField(
        _("cache seconds"),
        default=0,
        help_text=_(
            "Serve the last good value for this many seconds without evaluating "
            "again; 0 evaluates on every scrape. Example: 60 for a slow count."
        ),
    )
    max_series = models.PositiveIntegerField(
        _("max series"),
        null=True,
        blank=True,
        default=validators.default_max_series,
        validators=[validators.validate_max_series],
        help_text=_(
            "The most series this definition may export, from 1 to METRICDEMO"
            "['CARDINALITY_LIMIT']; with more (a row count's groups, a callback's "
            "series) it is left out of the scrape with an error. Empty means 1000. "
            "Example: 50 for a count grouped by country."
        ),
    )
    enabled = models.BooleanField(
        _("enabled"),
        default=True,
        help_text=_("Untick to stop exporting this metric without deleting it."),
    )
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)
    last_editor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("last editor"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        editable=False,
        help_text=_(
            "Who last saved this definition in the admin or with `metrics import "
            "--as-user`; empty when it was saved without a user. Example: alice."
        ),
    )

    objects = MetricDefinitionQuerySet.as_manager()

    #: The user whose permissions clean() applies, set by the admin and by
    #: `metrics import --as-user` before validating; None (the ORM, a shell,
    #: a plain import) keeps only the settings-based rules. Never stored.
    acting_user = None

    class Meta:
        ordering = ["name"]
        verbose_name = _("metric definition")
        verbose_name_plural = _("metric definitions")
        permissions = [
            ("read_settings", _("Can define metrics that export Django settings")),
            ("use_callbacks", _("Can define metrics that run registered callbacks")),
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def exported_name(self) -> str:
        """Return the sample name Prometheus sees, for example shop_orders_total."""
        return validators.exported_names(self.name, self.kind, self.unit)[1]

    def unique_error_message(self, model_class, unique_check):
        """Name the taken name in the message, rather than only the field."""
        if tuple(unique_check) == ("name",):
            return ValidationError(
                _("A definition named %(value)r already exists; choose another name."),
                code="unique",
                params={"value": self.name},
            )
        return super().unique_error_message(model_class, unique_check)

    def duplicate(self, acting_user=None) -> MetricDefinition:
        """Save and return a disabled copy named `<name>.copy`, `.copy2`, ...

        The copy starts disabled so that it exports nothing (no second set of
        the same series) until an operator has edited and enabled it. With
        `acting_user`, the copy is validated with their permissions and records
        them as its last editor.

        Raises:
            ValidationError: the copy is invalid for another reason than its name
                (for example its callback is no longer registered), or no free
                name was found.
        """
        duplicate = MetricDefinition(
            **{field: copy.deepcopy(getattr(self, field)) for field in EDITABLE_FIELDS}
        )
        duplicate.enabled = False
        duplicate.acting_user = duplicate.last_editor = acting_user
        base = COPY_SUFFIX_RE.sub("", self.name)
        for number in range(1, MAX_COPIES + 1):
            suffix = ".copy" if number == 1 else f".copy{number}"
            duplicate.name = base[: 255 - len(suffix)] + suffix
            try:
                duplicate.full_clean()
            except ValidationError as exc:
                if set(exc.message_dict) == {"name"}:
                    continue
                raise
            duplicate.save()
            return duplicate
        raise ValidationError(
            {
                "name": _("%(name)s already has %(count)d copies; rename some of them.")
                % {"name": self.name, "count": MAX_COPIES}
            }
        )

    def clean(self) -> None:
        """Check the source's parameters and that the exported name is free."""
        errors: dict[str, list] = {}
        source = sources.SOURCES.get(self.source)
        if source is not None:
            for other_key, other in sources.SOURCES.items():
                if other_key == self.source:
                    continue
                for field in other.fields:
                    if field not in source.fields and _is_set(getattr(self, field)):
                        errors.setdefault(field, []).append(
                            ValidationError(
                                _(
                                    "%(field)s belongs to the %(other)s source, not "
                                    "%(source)s; clear it (it is %(value)r)."
                                ),
                                code="wrong_source",
                                params={
                                    "field": field,
                                    "other": other_key,
                                    "source": self.source,
                                    "value": getattr(self, field),
                                },
                            )
                        )
            try:
                sources.validate_source(self)
            except ValidationError as exc:
                for field, messages in exc.update_error_dict({}).items():
                    errors.setdefault(field, []).extend(messages)
        if self.name and self.kind:
            collision = self._exported_name_collision()
            if collision:
                errors.setdefault("name", []).append(collision)
        for field, message in self.permission_refusals(self.acting_user).items():
            errors.setdefault(field, []).append(
                ValidationError(message, code="permission")
            )
        if errors:
            raise ValidationError(errors)

    def permission_refusals(self, user) -> dict[str, str]:
        """Return {field: why} for what this definition reads that `user` may not.

        The admin's values column and actions ask before they evaluate or enable
        a definition, and `manage.py check --database` asks for its last editor.
        """
        return sources.permission_refusals(self, user)

    def _exported_name_collision(self) -> ValidationError | None:
        mine = set(validators.exported_names(self.name, self.kind, self.unit))
        for name, kind, unit in SELF_METRICS.values():
            if mine & set(validators.exported_names(name, kind, unit)):
                return ValidationError(
                    _(
                        "%(name)r would be exported as %(exported)r, which metricdemo "
                        "uses for its own metric %(other)r; choose another name."
                    ),
                    code="reserved_name",
                    params={
                        "name": self.name,
                        "exported": validators.exported_names(name, kind, unit)[1],
                        "other": name,
                    },
                )
        others = MetricDefinition.objects.exclude(pk=self.pk).exclude(name=self.name)
        for name, kind, unit in others.values_list("name", "kind", "unit"):
            theirs = validators.exported_names(name, kind, unit)
            if mine & set(theirs):
                return ValidationError(
                    _(
                        "%(name)r would be exported as %(exported)r, which the "
                        "definition %(other)r (%(kind)s) already exports as; choose "
                        "another name or unit."
                    ),
                    code="exported_name_collision",
                    params={
                        "name": self.name,
                        "exported": sorted(mine & set(theirs))[0],
                        "other": name,
                        "kind": kind,
                    },
                )
        return None


def _is_set(value) -> bool:
    return value not in (None, "", {}, [])
