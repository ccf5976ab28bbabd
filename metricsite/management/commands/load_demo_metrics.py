"""Create the demo's metric definitions and alert rules that do not exist yet."""

from django.core.management.base import BaseCommand
from django.db import transaction

from metricdemo.models import AlertRule, MetricDefinition
from metricsite.demo import DEMO_ALERT_RULES, DEMO_DEFINITIONS


class Command(BaseCommand):
    """Create missing demo definitions; leave existing ones as an operator left them."""

    help = "Create the metricsite demo's metric definitions that do not exist yet."

    def handle(self, *args, **options) -> None:
        created = []
        with transaction.atomic():
            existing = set(MetricDefinition.objects.values_list("name", flat=True))
            for fields in DEMO_DEFINITIONS:
                if fields["name"] in existing:
                    continue
                definition = MetricDefinition(**fields)
                definition.full_clean()
                definition.save()
                created.append(definition.name)
            rules = _missing_rules()
        if options["verbosity"] < 1:
            return
        kept = len(DEMO_DEFINITIONS) - len(created)
        for name in created:
            self.stdout.write(f"created {name}")
        for rule in rules:
            self.stdout.write(f"created alert rule {rule}")
        self.stdout.write(
            self.style.SUCCESS(
                f"Demo definitions: {len(created)} created, {kept} already present."
            )
        )


def _missing_rules() -> list[str]:
    """Create the demo's alert rules whose definition exists and lacks them."""
    created = []
    definitions = MetricDefinition.objects.in_bulk(
        list(DEMO_ALERT_RULES), field_name="name"
    )
    for name, rules in DEMO_ALERT_RULES.items():
        definition = definitions.get(name)
        if definition is None:
            continue
        existing = set(definition.alert_rules.values_list("name", flat=True))
        for fields in rules:
            if fields["name"] in existing:
                continue
            rule = AlertRule(definition=definition, **fields)
            rule.full_clean()
            rule.save()
            created.append(f"{name}: {rule.name}")
    return created
