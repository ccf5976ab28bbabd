"""Unit tests for metricdemo.fields: text SQLite holds as bytes that are not UTF-8."""

from __future__ import annotations

import pytest

from metricdemo import fields, validators
from metricdemo.models import MetricDefinition
from tests.undecodable import write_undecodable_description


def test_decoded__utf8_bytes_are_plain_text():
    text = fields.decoded("héllo".encode())
    assert text == "héllo" and type(text) is str


def test_decoded__other_bytes_are_undecodable_text_with_replacements():
    text = fields.decoded(b"help\xff")
    assert isinstance(text, fields.UndecodableText) and text == "help\ufffd"


def test_decoded__text_and_none_pass_through():
    assert fields.decoded("x") == "x" and fields.decoded(None) is None


def test_undecodable_text__is_refused_as_unencodable():
    assert validators.unencodable_text(["ok", fields.UndecodableText("a\ufffd")])


def test_fields__migrations_see_the_plain_django_fields():
    for name in ("name", "description", "attributes", "filters"):
        path = MetricDefinition._meta.get_field(name).deconstruct()[1]
        assert path.startswith("django.db.models.") and "metricdemo" not in path


@pytest.mark.django_db
def test_fields__read_back_as_they_were_stored():
    MetricDefinition.objects.create(
        name="x.y",
        description="Größe",
        source="constant",
        value=1,
        attributes={"région": "é"},
    )
    row = MetricDefinition.objects.get(name="x.y")
    assert (row.description, row.attributes) == ("Größe", {"région": "é"})
    assert MetricDefinition.objects.values_list("description", flat=True)[0] == "Größe"


@pytest.mark.django_db
def test_fields__an_undecodable_value_costs_its_row_only():
    MetricDefinition.objects.create(name="x.ok", source="constant", value=1)
    broken = MetricDefinition.objects.create(
        name="x.broken", source="constant", value=1
    )
    stored = write_undecodable_description(broken.pk)
    rows = {row.name: row.description for row in MetricDefinition.objects.all()}
    assert rows["x.ok"] == ""
    # Only SQLite keeps such bytes; the others refuse them on write.
    assert isinstance(rows["x.broken"], fields.UndecodableText) is stored
