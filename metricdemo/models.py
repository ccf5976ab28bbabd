"""Store metric definitions and the stamp that tells processes they changed."""

from __future__ import annotations

import copy
import json
import math
import re
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import connections, models, router, transaction
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from metricdemo import aggregates, alerting, fields, naming, sources, validators
from metricdemo.naming import ExportedNameIndex

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
    "aggregate",
    "field",
    "filters",
    "group_by",
    "buckets",
    "setting",
    "callback",
    "timeout",
    "cache_seconds",
    "refresh_interval",
    "max_series",
)
#: Fields holding text (JSON included) that must encode as UTF-8 to be stored.
TEXT_FIELDS = (
    "name",
    "description",
    "unit",
    "attributes",
    "model",
    "filters",
    "group_by",
    "setting",
    "callback",
)
COPY_SUFFIX_RE = re.compile(r"\.copy\d*$")
MAX_COPIES = 100


class Kind(models.TextChoices):
    """The OpenTelemetry observable instrument a definition becomes."""

    COUNTER = "counter", _("Counter (a total that only goes up)")
    UPDOWNCOUNTER = "updowncounter", _("Up-down counter (a total that can go down)")
    GAUGE = "gauge", _("Gauge (a value measured now)")
    HISTOGRAM = (
        "histogram",
        _("Histogram (how a field's values spread over buckets, for rows of a model)"),
    )


#: The kinds with short labels, for the admin's change list and filter; the
#: form keeps the long ones, which explain each kind.
KIND_SHORT_CHOICES = [
    (Kind.COUNTER.value, _("Counter")),
    (Kind.UPDOWNCOUNTER.value, _("Up-down counter")),
    (Kind.GAUGE.value, _("Gauge")),
    (Kind.HISTOGRAM.value, _("Histogram")),
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


class ScheduledValue(models.Model):
    """Hold a scheduled definition's last value and the lease on its next refresh.

    One row per scheduled definition, shared by every process and host: the
    process whose conditional UPDATE takes the lease evaluates and stores the
    value, and every process serves what is stored. The definition is named by
    its id, not a foreign key, so the router may put this table elsewhere.
    """

    definition_id = models.BigIntegerField(_("definition id"), primary_key=True)
    fingerprint = models.CharField(
        _("fingerprint"),
        max_length=64,
        blank=True,
        help_text=_("A hash of what the value was computed from; edits change it."),
    )
    observations = models.TextField(
        _("observations"),
        blank=True,
        help_text=_('The last good series as JSON, for example [[3.0, {"a": "b"}]].'),
    )
    computed_at = models.DateTimeField(_("computed at"), null=True, blank=True)
    seconds = models.FloatField(_("seconds"), null=True, blank=True)
    attempted_at = models.DateTimeField(_("attempted at"), null=True, blank=True)
    outcome = models.CharField(_("outcome"), max_length=16, blank=True)
    error = models.TextField(_("error"), blank=True)
    holder = models.CharField(_("lease holder"), max_length=200, blank=True)
    expires_at = models.DateTimeField(_("lease expires at"), null=True, blank=True)

    class Meta:
        verbose_name = _("scheduled value")
        verbose_name_plural = _("scheduled values")

    def __str__(self) -> str:
        return f"definition {self.definition_id}"


class ValueSample(models.Model):
    """Hold one sample of a definition's value: at most one per definition and interval.

    `time` is the start of the interval (METRICDEMO['HISTORY_INTERVAL']) the
    sample falls in, and the unique constraint on (definition, time) makes
    the first process to insert it the only one: the others' inserts of the
    same interval are ignored. Rows older than HISTORY_POINTS intervals are
    deleted as new ones are written. The definition is named by its id, not
    a foreign key, so the router may put this table elsewhere.
    """

    definition_id = models.BigIntegerField(_("definition id"))
    time = models.DateTimeField(_("time"))
    value = models.FloatField(
        _("value"),
        null=True,
        blank=True,
        help_text=_(
            "The single series' value, the sum of the series of a count or sum "
            "(a histogram's count of observations); empty for an error, for "
            "several series of another aggregate, and for NaN or infinity."
        ),
    )
    series = models.PositiveIntegerField(_("series"), default=0)
    outcome = models.CharField(_("outcome"), max_length=16, blank=True)

    class Meta:
        verbose_name = _("value sample")
        verbose_name_plural = _("value samples")
        constraints = [
            models.UniqueConstraint(
                fields=["definition_id", "time"],
                name="metricdemo_value_sample_once",
            )
        ]
        indexes = [models.Index(fields=["time"], name="metricdemo_value_sample_time")]

    def __str__(self) -> str:
        return f"definition {self.definition_id} at {self.time:%Y-%m-%d %H:%M:%S}"


class MetricDefinitionQuerySet(models.QuerySet):
    """For bulk writes, which send no signals: bump the stamp, record versions."""

    def update(self, **kwargs):
        with transaction.atomic(using=self.db):
            # Taken first: the update may change which rows the filter selects.
            pks = list(self.values_list("pk", flat=True))
            rows = super().update(**kwargs)
            if rows:
                ChangeStamp.bump(self.db)
                DefinitionVersion.record(
                    self.model.objects.using(self.db).filter(pk__in=pks),
                    Change.CHANGED,
                    user=kwargs.get("last_editor"),
                    using=self.db,
                )
        return rows

    update.alters_data = True

    def bulk_create(self, objs, *args, **kwargs):
        with transaction.atomic(using=self.db):
            created = super().bulk_create(objs, *args, **kwargs)
            if created:
                ChangeStamp.bump(self.db)
                # Databases that return no ids from a bulk insert leave pk unset.
                DefinitionVersion.record(created, Change.CREATED, using=self.db)
        return created

    def bulk_update(self, objs, fields, *args, **kwargs):
        objs = list(objs)  # read twice: to update, then to record
        with transaction.atomic(using=self.db):
            rows = super().bulk_update(objs, fields, *args, **kwargs)
            if rows:
                ChangeStamp.bump(self.db)
                DefinitionVersion.record(
                    self.model.objects.using(self.db).filter(
                        pk__in=[obj.pk for obj in objs]
                    ),
                    Change.CHANGED,
                    using=self.db,
                )
        return rows


class MetricDefinition(models.Model):
    """Describe one metric: its instrument, its constant attributes and its source."""

    name = fields.CharField(
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
    description = fields.TextField(
        _("description"),
        blank=True,
        help_text=_(
            "Shown as the Prometheus HELP text. Example: Orders waiting for payment."
        ),
    )
    unit = fields.CharField(
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
    kind = fields.CharField(
        _("kind"),
        max_length=16,
        choices=Kind.choices,
        default=Kind.GAUGE,
        help_text=_(
            "Counter for totals that only grow (exported with _total), up-down "
            "counter for totals that can shrink, gauge for a current reading, "
            "histogram for how a field of rows spreads (with buckets)."
        ),
    )
    attributes = fields.JSONField(
        _("constant attributes"),
        default=dict,
        blank=True,
        encoder=validators.EscapingJSONEncoder,
        validators=[validators.validate_attributes],
        help_text=_(
            'A JSON object of labels added to every series. Example: {"region": '
            '"eu", "tier": 2}.'
        ),
    )
    source = fields.CharField(
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
    model = fields.CharField(
        _("model"),
        max_length=200,
        blank=True,
        validators=[validators.validate_model_label],
        help_text=_(
            "For a row count: the model to count, as app_label.ModelName. "
            "Example: auth.User."
        ),
    )
    aggregate = fields.CharField(
        _("aggregate"),
        max_length=16,
        choices=list(aggregates.AGGREGATES.items()),
        default=aggregates.COUNT,
        blank=True,
        help_text=_(
            "For a row-based source: what to compute over the selected rows. count "
            "counts them; count_distinct counts the distinct values of the field; "
            "sum and avg need a numeric field; min and max also take a date or "
            "datetime field, exported as Unix time in seconds. Example: sum."
        ),
    )
    field = fields.CharField(
        _("field"),
        max_length=200,
        blank=True,
        help_text=_(
            "For every aggregate but count, and for a histogram: the field path "
            "to aggregate, across relations like filters, or the seconds between "
            "two dates or datetimes, written later - earlier, with now for an "
            "age. Examples: total, customer for distinct customers, paid_at - "
            "created_at, now - created_at."
        ),
    )
    filters = fields.JSONField(
        _("filters"),
        default=dict,
        blank=True,
        encoder=validators.EscapingJSONEncoder,
        help_text=_(
            "For a row count: a JSON object of ORM lookups that rows must match. "
            "On date and datetime fields a value may be a relative time: now, "
            "now-15m, now-1h, now-7d, now/d (start of today in TIME_ZONE), now/w, "
            "now/M, now-1d/d. "
            'Example: {"status": "pending", "created__gte": "now-1h"}.'
        ),
    )
    group_by = fields.CharField(
        _("group by"),
        max_length=200,
        blank=True,
        help_text=_(
            "For a row count: one or more field paths separated by commas; one "
            "series per distinct combination, each value under a label named after "
            "its field. Example: status, customer__country."
        ),
    )
    buckets = fields.JSONField(
        _("buckets"),
        default=list,
        blank=True,
        help_text=_(
            "For a histogram: a JSON list of increasing upper bounds, in the "
            "field's unit (seconds for durations); +Inf is added. Example: [10, "
            "50, 100, 500, 1000]."
        ),
    )
    setting = fields.CharField(
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
    callback = fields.CharField(
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
        validators=[validators.validate_timeout_range],
        help_text=_(
            "Seconds one evaluation may take before it is left out of the scrape "
            "and counted as a timeout; empty uses METRICDEMO['TIMEOUT'] (or "
            "REFRESH_TIMEOUT when refreshed on a schedule). At most the scrape "
            "budget, unless refreshed on a schedule: then up to 300. Example: 2."
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
    refresh_interval = models.PositiveIntegerField(
        _("refresh interval"),
        null=True,
        blank=True,
        validators=[validators.validate_refresh_interval],
        help_text=_(
            "Refresh the value in the background every this many seconds, once "
            "across all processes, and serve the last refreshed value on every "
            "scrape; empty or 0 evaluates on every scrape. Example: 300 for a "
            "count over a large table."
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
    #: The number of the version a restore applies, set by the admin's Restore
    #: before saving, so that the version the save records says so. Never stored.
    restored_from = None

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
        return naming.exported_names(self.name, self.kind, self.unit)[1]

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
                    if field not in source.fields and self._is_set(field):
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
            index = _active_index.get() or load_exported_name_index(self._state.db)
            clash = naming.clash(self.name, self.kind, self.unit, index, pk=self.pk)
            if clash is not None:
                errors.setdefault("name", []).append(clash.error())
        timeout_error = self._timeout_error()
        if timeout_error is not None:
            errors.setdefault("timeout", []).append(timeout_error)
        for field, message in self.permission_refusals(self.acting_user).items():
            errors.setdefault(field, []).append(
                ValidationError(message, code="permission")
            )
        if errors:
            raise ValidationError(errors)

    @property
    def is_scheduled(self) -> bool:
        """Return whether the value is refreshed in the background, not per scrape."""
        return bool(self.refresh_interval)

    def _timeout_error(self) -> ValidationError | None:
        if not isinstance(self.timeout, int | float):
            return None
        if not (0 < self.timeout <= validators.TIMEOUT_MAX):
            return None  # the field's own validator reports it
        try:
            validators.validate_definition_timeout(self.timeout, self.refresh_interval)
        except ValidationError as exc:
            return exc
        return None

    def permission_refusals(self, user) -> dict[str, str]:
        """Return {field: why} for what this definition reads that `user` may not.

        The admin's values column and actions ask before they evaluate or enable
        a definition, and `manage.py check --database` asks for its last editor.
        """
        return sources.permission_refusals(self, user)

    def clean_fields(self, exclude=None) -> None:
        """Check each field, then that every text can be stored and served as UTF-8."""
        exclude = set(exclude or ())
        errors: dict[str, list] = {}
        try:
            super().clean_fields(exclude)
        except ValidationError as exc:
            errors = exc.update_error_dict(errors)
        for field in TEXT_FIELDS:
            if field in exclude or field in errors:
                continue
            try:
                validators.validate_encodable(getattr(self, field))
            except ValidationError as exc:
                errors.setdefault(field, []).extend(exc.error_list)
        if errors:
            raise ValidationError(errors)

    def _is_set(self, field: str) -> bool:
        # A field left at its default (an aggregate of count) is not set.
        value = getattr(self, field)
        default = self._meta.get_field(field).get_default()
        return value not in (None, "", {}, []) and value != default


def load_exported_name_index(using: str | None = None) -> ExportedNameIndex:
    """Return the index of every stored definition and of the served families."""
    manager = (
        MetricDefinition.objects.using(using) if using else MetricDefinition.objects
    )
    return ExportedNameIndex(
        manager.values_list("pk", "name", "kind", "unit").iterator(),
        served=naming.served_names(naming.registry_families()),
    )


_active_index: ContextVar[ExportedNameIndex | None] = ContextVar(
    "metricdemo_exported_name_index", default=None
)


@contextmanager
def exported_name_index(using: str | None = None) -> Iterator[ExportedNameIndex]:
    """Make clean() consult one index, built now, until the block ends.

    The caller keeps it in step: add() after each save, discard() after each
    delete.
    """
    index = load_exported_name_index(using)
    token = _active_index.set(index)
    try:
        yield index
    finally:
        _active_index.reset(token)


class Overview(MetricDefinition):
    """The definitions at a glance: the admin's overview page, with no table of its own.

    A proxy, so that the page has its place in every admin site that registers
    it (`<admin>/metricdemo/overview/`) and an entry in the app's index. It
    has no permissions either: the page asks for those of MetricDefinition.
    """

    class Meta:
        proxy = True
        default_permissions = ()
        verbose_name = _("overview")
        verbose_name_plural = _("overview")


class Operator(models.TextChoices):
    """How an alert rule compares its value with the threshold, or absence."""

    GT = ">", _("above (>)")
    GE = ">=", _("at or above (>=)")
    LT = "<", _("below (<)")
    LE = "<=", _("at or below (<=)")
    EQ = "==", _("equal to (==)")
    NE = "!=", _("not equal to (!=)")
    ABSENT = "absent", _("absent: no series exported")


class Aggregation(models.TextChoices):
    """How an alert rule combines the series before comparing."""

    NONE = "", _("none: each series alone")
    SUM = "sum", _("sum")
    MAX = "max", _("maximum")
    MIN = "min", _("minimum")
    AVG = "avg", _("average")
    COUNT = "count", _("count of series")


class AlertRule(models.Model):
    """A threshold on a definition's series, written out as a Prometheus alerting rule.

    `metrics rules` and the opt-in rules URL write the enabled rules of the
    enabled definitions, with the names and labels /metrics serves, so a
    rename of the definition renames what its rules read.
    """

    definition = models.ForeignKey(
        MetricDefinition,
        verbose_name=_("definition"),
        on_delete=models.CASCADE,
        related_name="alert_rules",
    )
    name = fields.CharField(
        _("alert name"),
        max_length=200,
        validators=[validators.validate_alert_name],
        help_text=_(
            "The Prometheus alert name: letters, digits, '_' and ':', not starting "
            "with a digit. Example: OrdersWaitingForPayment."
        ),
    )
    operator = fields.CharField(
        _("operator"),
        max_length=8,
        choices=Operator.choices,
        default=Operator.GT,
        help_text=_(
            "Fire when the value compares so with the threshold, or when the "
            "metric exports no series at all (absent)."
        ),
    )
    threshold = models.FloatField(
        _("threshold"),
        null=True,
        blank=True,
        validators=[validators.validate_finite],
        help_text=_("The number the value is compared with. Example: 50."),
    )
    label_filter = fields.JSONField(
        _("label filter"),
        default=dict,
        blank=True,
        help_text=_(
            "Only series with these label values, as a JSON object. Example: "
            '{"country": "DE"}.'
        ),
    )
    aggregation = fields.CharField(
        _("aggregation"),
        max_length=8,
        choices=Aggregation.choices,
        default=Aggregation.NONE,
        blank=True,
        help_text=_("Combine the series before comparing; none compares each."),
    )
    by_labels = fields.CharField(
        _("by labels"),
        max_length=200,
        blank=True,
        help_text=_(
            "With an aggregation: the labels to keep, separated by commas; one "
            "alert per combination. Example: country."
        ),
    )
    quantile = models.FloatField(
        _("quantile"),
        null=True,
        blank=True,
        help_text=_(
            "For a histogram: the quantile compared with the threshold, between "
            "0 and 1. Example: 0.9 for the 90th percentile."
        ),
    )
    for_duration = models.PositiveIntegerField(
        _("for (seconds)"),
        default=300,
        help_text=_(
            "How long the condition must hold before the alert fires; 0 fires at "
            "once. Example: 600 for ten minutes."
        ),
    )
    keep_firing_for = models.PositiveIntegerField(
        _("keep firing for (seconds)"),
        default=0,
        help_text=_("How long the alert keeps firing after the condition clears."),
    )
    severity = fields.CharField(
        _("severity"),
        max_length=32,
        default="warning",
        validators=[validators.validate_severity],
        help_text=_(
            "The severity label Alertmanager routes on. Examples: critical, warning, "
            "info."
        ),
    )
    summary = fields.CharField(
        _("summary"),
        max_length=500,
        blank=True,
        help_text=_(
            "One line for the notification; Prometheus templates allowed. Example: "
            "{{ $value }} orders wait for payment."
        ),
    )
    description = fields.TextField(
        _("description"),
        blank=True,
        help_text=_(
            "More detail; Prometheus templates allowed, such as {{ $labels.status }}."
        ),
    )
    runbook_url = models.URLField(
        _("runbook URL"),
        blank=True,
        help_text=_(
            "Where the on-call finds what to do. Example: https://wiki/orders."
        ),
    )
    enabled = models.BooleanField(
        _("enabled"),
        default=True,
        help_text=_("Untick to leave this rule out of the rule file."),
    )
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        ordering = ["definition__name", "name"]
        verbose_name = _("alert rule")
        verbose_name_plural = _("alert rules")
        constraints = [
            models.UniqueConstraint(
                fields=["definition", "name"], name="metricdemo_alert_rule_unique_name"
            )
        ]

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        """Check the rule against its definition: labels, quantile, threshold."""
        problems = alerting.rule_problems(self)
        if problems:
            raise ValidationError(problems)


#: The fields of an alert rule that export writes and import reads.
ALERT_RULE_FIELDS = (
    "name",
    "operator",
    "threshold",
    "label_filter",
    "aggregation",
    "by_labels",
    "quantile",
    "for_duration",
    "keep_firing_for",
    "severity",
    "summary",
    "description",
    "runbook_url",
    "enabled",
)


class Change(models.TextChoices):
    """What a definition's version records."""

    CREATED = "created", _("created")
    CHANGED = "changed", _("changed")
    DELETED = "deleted", _("deleted")
    RECORDED = "recorded", _("as found when history began")


#: The key of a version's snapshot that holds the rules, as in an export file.
SNAPSHOT_RULES_KEY = "alert_rules"


class DefinitionVersion(models.Model):
    """One state of a definition: its editable fields and alert rules, who and when.

    Recorded on every save and delete of a definition or of one of its rules
    (see signals.py) and by the bulk writes of MetricDefinitionQuerySet. The
    definition is named by its id, not a foreign key, so that a deleted
    definition keeps its history.
    """

    definition_id = models.BigIntegerField(
        _("definition id"),
        db_index=True,
        help_text=_("The id of the definition, kept after it is deleted. Example: 42."),
    )
    change = models.CharField(
        _("change"),
        max_length=16,
        choices=Change.choices,
        help_text=_("What happened to the definition. Example: changed."),
    )
    snapshot = models.JSONField(
        _("snapshot"),
        encoder=validators.EscapingJSONEncoder,
        help_text=_(
            "The editable fields and the alert rules after the change, as JSON. "
            'Example: {"name": "shop.orders", "value": 1, "alert_rules": []}.'
        ),
    )
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("user"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        help_text=_(
            "Who made the change in the admin or with `metrics import --as-user`; "
            "empty for the ORM. Example: alice."
        ),
    )
    recorded_at = models.DateTimeField(
        _("recorded at"),
        default=timezone.now,
        help_text=_("When the change was saved. Example: 2026-12-01 09:30."),
    )
    restored_from = models.BigIntegerField(
        _("restored from"),
        null=True,
        blank=True,
        help_text=_(
            "The number of the version a restore applied; empty otherwise. Example: 17."
        ),
    )

    class Meta:
        ordering = ["-pk"]
        verbose_name = _("definition version")
        verbose_name_plural = _("definition versions")

    def __str__(self) -> str:
        return f"version {self.pk} of definition {self.definition_id}"

    @property
    def rules(self) -> list[dict]:
        """Return the alert rules of the snapshot, each a dict of its fields."""
        return list(self.snapshot.get(SNAPSHOT_RULES_KEY) or [])

    @classmethod
    def record(
        cls,
        definitions,
        change: str,
        *,
        user=None,
        using: str | None = None,
        restored_from: int | None = None,
    ) -> list[DefinitionVersion]:
        """Save a version of each definition, its rules read from the database.

        Nothing is recorded for a change that leaves a definition as its
        latest version has it (a save that changed nothing), nor for a
        definition without a pk (a bulk insert on a database that returns no
        ids).
        """
        definitions = [d for d in definitions if d.pk is not None]
        if not definitions:
            return []
        using = using or router.db_for_write(cls)
        pks = [definition.pk for definition in definitions]
        rules: dict[int, list[AlertRule]] = {}
        for rule in AlertRule.objects.using(using).filter(definition_id__in=pks):
            rules.setdefault(rule.definition_id, []).append(rule)
        if not getattr(user, "pk", None):
            user = None
        versions = [
            cls(
                definition_id=definition.pk,
                change=change,
                snapshot=definition_snapshot(definition, rules.get(definition.pk, [])),
                user=user,
                restored_from=restored_from,
            )
            for definition in definitions
        ]
        if change == Change.CHANGED:
            latest = cls.latest_snapshots(pks, using)
            versions = [
                v for v in versions if latest.get(v.definition_id) != v.snapshot
            ]
        return cls.objects.using(using).bulk_create(versions)

    @classmethod
    def latest_snapshots(cls, pks, using: str | None = None) -> dict[int, dict]:
        """Return {definition id: snapshot} of the latest version of each."""
        manager = cls.objects.using(using) if using else cls.objects
        latest = (
            manager.filter(definition_id__in=pks)
            .values("definition_id")
            .annotate(latest=models.Max("pk"))
            .values("latest")
        )
        return dict(
            manager.filter(pk__in=latest).values_list("definition_id", "snapshot")
        )


def definition_snapshot(definition: MetricDefinition, rules) -> dict:
    """Return the definition's editable fields and `rules` as a version stores them.

    The data goes through JSON as the database would store it, so that two
    snapshots compare equal exactly when their stored versions do.
    """
    data = {field: _plain(getattr(definition, field)) for field in EDITABLE_FIELDS}
    data[SNAPSHOT_RULES_KEY] = [
        rule_snapshot(rule) for rule in sorted(rules, key=lambda rule: str(rule.name))
    ]
    return _as_stored(data)


def rule_snapshot(rule: AlertRule) -> dict:
    """Return an alert rule's fields as a version stores them."""
    return _as_stored(
        {field: _plain(getattr(rule, field)) for field in ALERT_RULE_FIELDS}
    )


def _as_stored(data: dict) -> dict:
    # default=str: a value no JSON can hold (a Decimal set through the ORM)
    # is kept as text rather than failing the save that records it.
    text = json.dumps(data, cls=validators.EscapingJSONEncoder, default=str)
    return json.loads(text)


def _plain(value):
    # JSON has no NaN or infinity, and PostgreSQL and MariaDB refuse them.
    if isinstance(value, float) and not math.isfinite(value):
        return repr(value)
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(item) for item in value]
    return value
