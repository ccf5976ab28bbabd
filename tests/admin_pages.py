"""The definition admin's URLs, its pages' cells, and actions run as a user would."""

from __future__ import annotations

from dataclasses import dataclass
from dataclasses import field as dataclass_field
from html.parser import HTMLParser

from django.urls import reverse

from metricdemo.models import MetricDefinition

ADD_URL = reverse("admin:metricdemo_metricdefinition_add")
LIST_URL = reverse("admin:metricdemo_metricdefinition_changelist")
PREVIEW_URL = reverse("admin:metricdemo_metricdefinition_preview")
OVERVIEW_URL = reverse("admin:metricdemo_overview_changelist")


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


@dataclass
class Element:
    """An element of a parsed page: its tag, attributes, children and text."""

    tag: str
    attrs: dict[str, str]
    children: list[Element | str] = dataclass_field(default_factory=list)

    @property
    def classes(self) -> list[str]:
        """Return the element's classes."""
        return (self.attrs.get("class") or "").split()

    @property
    def text(self) -> str:
        """Return the text inside the element, runs of white space made one space."""
        parts = [
            child if isinstance(child, str) else child.text for child in self.children
        ]
        return " ".join("".join(parts).split())

    def iter(self):
        """Yield the element and every element inside it, in document order."""
        yield self
        for child in self.children:
            if isinstance(child, Element):
                yield from child.iter()

    def find_all(self, css_class: str = "", tag: str = "") -> list[Element]:
        """Return the elements inside (this one too) with the class and the tag."""
        return [
            element
            for element in self.iter()
            if (not css_class or css_class in element.classes)
            and (not tag or element.tag == tag)
        ]

    def find(self, css_class: str = "", tag: str = "") -> Element | None:
        """Return the first element with the class and the tag, or None."""
        found = self.find_all(css_class, tag)
        return found[0] if found else None


class Tree(HTMLParser):
    """Build a tree of Elements from a page."""

    def __init__(self) -> None:
        super().__init__()
        self.root = Element("document", {})
        self._open = [self.root]

    def handle_starttag(self, tag, attrs) -> None:
        element = Element(tag, {key: value or "" for key, value in attrs})
        self._open[-1].children.append(element)
        if tag not in VOID:
            self._open.append(element)

    def handle_startendtag(self, tag, attrs) -> None:
        self._open[-1].children.append(Element(tag, dict(attrs)))

    def handle_endtag(self, tag) -> None:
        for depth in range(len(self._open) - 1, 0, -1):
            if self._open[depth].tag == tag:
                del self._open[depth:]
                return

    def handle_data(self, data) -> None:
        self._open[-1].children.append(data)


def parse_page(page: str | bytes) -> Element:
    """Return a page parsed into a tree of Elements."""
    parser = Tree()
    parser.feed(page.decode() if isinstance(page, bytes) else page)
    parser.close()
    return parser.root


@dataclass(frozen=True)
class Card:
    """What one card of the overview shows."""

    name: str
    state: str
    value: str
    #: The value's full text (its title), where there is one.
    full: str
    message: str
    top: list[tuple[str, str]]
    meta: str
    sparkline: bool
    #: The card's name marks each place it may break with <wbr>.
    breaks: int


def overview_cards(page: str | bytes) -> list[Card]:
    """Return the overview's cards in page order."""
    cards = []
    for card in parse_page(page).find_all("metricdemo-card"):
        value = card.find("metricdemo-card-value")
        message = card.find("metricdemo-card-message")
        name = card.find("metricdemo-card-name")
        cards.append(
            Card(
                name=name.text.replace(" ", ""),
                state=card.find("metricdemo-state").text,
                value=value.text if value else "",
                full=value.attrs.get("title", "") if value else "",
                message=message.text if message else "",
                top=[
                    (
                        item.find("metricdemo-top-labels").text,
                        item.find("metricdemo-top-value").text,
                    )
                    for top in card.find_all("metricdemo-top")
                    for item in top.find_all(tag="li")
                    if item.find("metricdemo-top-labels")
                ],
                meta=card.find("metricdemo-card-meta").text,
                sparkline=card.find("metricdemo-sparkline", "svg") is not None,
                breaks=len(name.find_all(tag="wbr")),
            )
        )
    return cards
