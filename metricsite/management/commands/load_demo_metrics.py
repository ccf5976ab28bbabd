"""Create the demo's metric definitions that do not exist yet."""

from django.core.management.base import BaseCommand
from django.db import transaction

from metricdemo.models import MetricDefinition
from metricsite.demo import DEMO_DEFINITIONS


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
        if options["verbosity"] < 1:
            return
        kept = len(DEMO_DEFINITIONS) - len(created)
        for name in created:
            self.stdout.write(f"created {name}")
        self.stdout.write(
            self.style.SUCCESS(
                f"Demo definitions: {len(created)} created, {kept} already present."
            )
        )
