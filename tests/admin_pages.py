"""The definition admin's URLs, its pages' cells, and actions run as a user would."""

from __future__ import annotations

from html.parser import HTMLParser

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


#: Elements that have no end tag.
VOID = {
    "area",
    "base",
    "br",
    "col",
    "embed",
    "hr",
    "img",
    "input",
    "link",
    "meta",
    "source",
    "track",
    "wbr",
}


class Cells(HTMLParser):
    """Collect the text of each element whose class starts with `prefix`, by class.

    The class is named without the prefix: field-name gives name.
    """

    def __init__(self, prefix: str = "field-") -> None:
        super().__init__()
        self.prefix = prefix
        self.text: dict[str, list[str]] = {}
        self._open: list[str | None] = []

    def handle_starttag(self, tag, attrs) -> None:
        if tag in VOID:
            return
        classes = (dict(attrs).get("class") or "").split()
        field = next(
            (c[len(self.prefix) :] for c in classes if c.startswith(self.prefix)),
            None,
        )
        self._open.append(field)
        if field:
            self.text.setdefault(field, []).append("")

    def handle_endtag(self, tag) -> None:
        if tag not in VOID and self._open:
            self._open.pop()

    def handle_data(self, data) -> None:
        for field in self._open:
            if field:
                self.text[field][-1] += data


def cells(page: str, prefix: str = "field-") -> dict[str, list[str]]:
    """Return the stripped text of a page's cells, by field (or class after prefix)."""
    parser = Cells(prefix)
    parser.feed(page)
    return {k: [" ".join(v.split()) for v in vs] for k, vs in parser.text.items()}


def filter_choices(page: str, field: str) -> list[str]:
    """Return the labels the change list's filter offers for `field`."""
    marker = f"?{field}__exact="
    labels = []
    for part in page.split(marker)[1:]:
        labels.append(part.split(">", 1)[1].split("<", 1)[0].strip())
    return labels
