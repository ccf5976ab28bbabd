"""The demo shop: customers in countries, and orders with a status and a total."""

from django.db import models


class Customer(models.Model):
    """A customer of the shop."""

    name = models.CharField(max_length=100)
    country = models.CharField(max_length=2, help_text="ISO 3166 code, such as DE.")

    def __str__(self) -> str:
        return self.name


class Order(models.Model):
    """An order, placed at created_at and paid (if it was) at paid_at."""

    STATUSES = [
        ("pending", "Pending payment"),
        ("paid", "Paid, not shipped"),
        ("shipped", "Shipped"),
        ("cancelled", "Cancelled"),
    ]

    customer = models.ForeignKey(
        Customer, on_delete=models.CASCADE, related_name="orders"
    )
    status = models.CharField(max_length=10, choices=STATUSES, default="pending")
    total = models.DecimalField(max_digits=10, decimal_places=2)
    created_at = models.DateTimeField(db_index=True)
    paid_at = models.DateTimeField(null=True, blank=True, db_index=True)

    class Meta:
        indexes = [models.Index(fields=["status", "created_at"])]

    def __str__(self) -> str:
        return f"order {self.pk} ({self.status})"
