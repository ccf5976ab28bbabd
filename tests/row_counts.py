"""Row-count definitions over the test shop's models, for the batching tests."""

from metricdemo.models import MetricDefinition

MODELS = [
    ("shop.Order", {"status": "pending"}, ""),
    ("shop.Order", {}, "status"),
    ("shop.Order", {"created__year": 2026}, "customer__country"),
    ("shop.Customer", {}, ""),
    ("shop.Customer", {"country__in": ["DE", "FR"]}, "country"),
    ("auth.User", {"is_active": True}, "is_staff"),
    ("auth.Group", {}, ""),
    ("contenttypes.ContentType", {}, "app_label"),
    ("metricdemo.MetricDefinition", {"enabled": True}, "kind"),
]


def create_counts(count: int, prefix: str = "counts", shapes=MODELS) -> None:
    """Store `count` validated row counts named `<prefix>.n<i>`, cycling `shapes`."""
    definitions = []
    for i in range(count):
        model, filters, group_by = shapes[i % len(shapes)]
        fields = {"model": model, "filters": filters, "group_by": group_by}
        definitions.append(
            MetricDefinition(name=f"{prefix}.n{i}", source="row_count", **fields)
        )
        definitions[-1].full_clean()
    MetricDefinition.objects.bulk_create(definitions)
