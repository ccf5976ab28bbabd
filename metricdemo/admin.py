"""Edit metric definitions in the Django admin."""

from django import forms
from django.contrib import admin
from django.utils.translation import gettext_lazy as _

from metricdemo import callbacks
from metricdemo.models import MetricDefinition


class MetricDefinitionForm(forms.ModelForm):
    """Offer the registered callbacks as choices."""

    class Meta:
        model = MetricDefinition
        fields = [
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
        ]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        field = self.fields["callback"]
        choices = [("", "---------")] + [
            (c.name, c.label) for c in callbacks.registered_callbacks()
        ]
        current = self.initial.get("callback") or ""
        if current and current not in dict(choices):
            # Keep a stored name that is no longer registered visible, so the
            # validation message can say what is wrong with it.
            choices.append(
                (current, _("%(name)s (not registered)") % {"name": current})
            )
        self.fields["callback"] = forms.ChoiceField(
            choices=choices,
            required=False,
            label=field.label,
            help_text=field.help_text,
        )


@admin.register(MetricDefinition)
class MetricDefinitionAdmin(admin.ModelAdmin):
    """List, filter, search and edit definitions."""

    form = MetricDefinitionForm
    list_display = (
        "name",
        "exported_name",
        "kind",
        "source",
        "unit",
        "enabled",
        "updated_at",
    )
    list_filter = ("enabled", "kind", "source")
    search_fields = ("name", "description", "model", "setting", "callback")
    readonly_fields = ("exported_name", "created_at", "updated_at")
    fieldsets = (
        (
            None,
            {
                "fields": (
                    "name",
                    "exported_name",
                    "description",
                    "unit",
                    "kind",
                    "enabled",
                )
            },
        ),
        (_("Attributes"), {"fields": ("attributes",)}),
        (
            _("Source"),
            {
                "fields": (
                    "source",
                    "value",
                    "model",
                    "filters",
                    "group_by",
                    "setting",
                    "callback",
                ),
                "description": _(
                    "Pick a source, then fill in only its fields: value for a "
                    "constant; model, filters and group by for a row count; setting "
                    "for a setting; callback for a registered callback."
                ),
            },
        ),
        (
            _("History"),
            {"fields": ("created_at", "updated_at"), "classes": ("collapse",)},
        ),
    )

    @admin.display(description=_("exported as"))
    def exported_name(self, obj: MetricDefinition) -> str:
        return obj.exported_name if obj.pk else "-"
