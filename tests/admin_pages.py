"""The definition admin's URLs, and its change-list actions run as a user would."""

from __future__ import annotations

from django.urls import reverse

from metricdemo.models import MetricDefinition

ADD_URL = reverse("admin:metricdemo_metricdefinition_add")
LIST_URL = reverse("admin:metricdemo_metricdefinition_changelist")
PREVIEW_URL = reverse("admin:metricdemo_metricdefinition_preview")


def change_url(definition: MetricDefinition) -> str:
    """Return the admin change page of a stored definition."""
    return reverse("admin:metricdemo_metricdefinition_change", args=[definition.pk])


def act(client, action: str, *definitions: MetricDefinition) -> list[str]:
    """Run a change-list action on definitions; return the messages shown."""
    response = client.post(
        LIST_URL,
        {"action": action, "_selected_action": [d.pk for d in definitions]},
        follow=True,
    )
    return [str(m) for m in response.context["messages"]]
