"""Filter keys reach SQL only as field paths and lookups the app has parsed.

Django 5.2.0 to 5.2.7 let a keyword named `_connector` (or `_negated`) given to
`Q(**kwargs)` or `filter(**kwargs)` write SQL of its own (CVE-2025-64459). The
app never hands a stored key to either as a keyword: each key is parsed into a
field path, transforms and a lookup, refused otherwise, and the query is built
from the parsed parts. `nox -s injection` runs this module on Django 5.2.7,
where the attack below recovered a password hash before the fix.
"""

from __future__ import annotations

import json

import pytest
from django.core.exceptions import ValidationError
from django.db.models import Q
from django.urls import reverse

from metricdemo.evaluation import evaluate
from metricdemo.models import MetricDefinition
from tests.refusals import form_data
from tests.scraping import evaluations, scrape, value

PREVIEW_URL = reverse("admin:metricdemo_metricdefinition_preview")
#: A guess no hash starts with; the right one is the start of root's hash.
WRONG = "nothing$"


def attack(guess: str, key: str = "_connector") -> dict[str, object]:
    """Return filters that count every order if root's password hash starts so."""
    return {
        key: f"OR (SELECT substr(password,1,{len(guess)}) FROM auth_user WHERE "
        f"username='root') = '{guess}' OR",
        "status": "nope",
        "total": -1,
    }


@pytest.fixture
def root(django_user_model):
    """Return the superuser whose password hash the attack guesses at."""
    return django_user_model.objects.create_superuser("root", "root@example.com", "pw")


def right(root) -> str:
    """Return a right guess: the algorithm that starts root's password hash."""
    return root.password.split("$", 1)[0] + "$"


@pytest.mark.django_db
@pytest.mark.parametrize("key", ["_connector", "_negated", "status___connector"])
def test_injection__refused_by_the_model(root, key):
    definition = MetricDefinition(
        name="shop.leak",
        source="row_count",
        model="shop.Order",
        filters=attack(right(root), key),
    )
    with pytest.raises(ValidationError) as caught:
        definition.full_clean()
    assert repr(key) in " ".join(caught.value.message_dict["filters"])


@pytest.mark.django_db
def test_injection__preview_answers_a_field_error_whatever_the_guess(
    client, root, orders
):
    client.force_login(root)
    answers = []
    for guess in (right(root), WRONG):
        data = form_data(
            name="shop.leak",
            source="row_count",
            model="shop.Order",
            filters=json.dumps(attack(guess)),
        )
        response = client.post(PREVIEW_URL, data)
        assert response.status_code == 200
        form = response.context["form"]
        assert "'_connector'" in " ".join(form.errors["filters"])
        assert response.context["evaluation"] is None
        answers.append(response.context["series"])
    assert answers == [None, None]


@pytest.mark.django_db(transaction=True)
def test_injection__stored_without_validation_costs_only_its_definition(
    client, root, orders
):
    """A row that skipped validation is an error of its own; the rest exports."""
    MetricDefinition.objects.bulk_create(
        [
            MetricDefinition(
                name="shop.leak",
                source="row_count",
                model="shop.Order",
                filters=attack(right(root)),
            ),
            MetricDefinition(
                name="shop.orders", source="row_count", model="shop.Order"
            ),
        ]
    )
    families = scrape(client)
    assert value(families, "shop_leak") is None
    assert evaluations(families, "shop.leak") == {"error": 1.0}
    assert value(families, "shop_orders") == 6.0


@pytest.mark.django_db(transaction=True)
def test_raw_filter_keys_never_reach_q_as_keywords(orders, monkeypatch):
    """Validation and evaluation build Q from parsed parts, never Q(**filters)."""
    filters = {
        "status__in": ["pending", "paid"],
        "customer__country": "DE",
        "created__gte": "now-100y",
        "total__gte": 0,
    }
    keywords: list[str] = []
    original = Q.__init__

    def spy(self, *args, **kwargs):
        keywords.extend(kwargs)
        original(self, *args, **kwargs)

    monkeypatch.setattr(Q, "__init__", spy)
    definition = MetricDefinition(
        name="shop.open",
        source="row_count",
        model="shop.Order",
        filters=filters,
        group_by="customer__country",
    )
    definition.full_clean()
    result = evaluate(definition)
    assert result.ok, result.error
    assert sum(v for v, _ in result.observations) == 2
    assert not set(keywords) & set(filters), keywords
