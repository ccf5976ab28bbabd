"""Ten small models for the benchmark's row counts, each in its own table."""

from django.db import models

STATUSES = [("new", "New"), ("open", "Open"), ("done", "Done"), ("lost", "Lost")]


class Row(models.Model):
    """The fields every benchmark model shares: status, flag, amount, price, time."""

    status = models.CharField(max_length=8, choices=STATUSES, default="new")
    flagged = models.BooleanField(default=False)
    amount = models.IntegerField(default=0)
    price = models.DecimalField(max_digits=10, decimal_places=2, default=0)
    created = models.DateTimeField(null=True, blank=True)

    class Meta:
        abstract = True

    def __str__(self) -> str:
        return f"{type(self).__name__} {self.pk} ({self.status})"


class Customer(Row):
    """A customer with a country, which orders group by through their relation."""

    country = models.CharField(max_length=2, default="DE")


class Order(Row):
    """An order of a customer."""

    customer = models.ForeignKey(Customer, on_delete=models.CASCADE)


class Invoice(Row):
    """An invoice."""


class Payment(Row):
    """A payment."""


class Shipment(Row):
    """A shipment."""


class Product(Row):
    """A product."""


class Review(Row):
    """A review."""


class Ticket(Row):
    """A support ticket."""


class Subscription(Row):
    """A subscription."""


class Refund(Row):
    """A refund."""
