"""Models the tests count rows of."""

from django.db import models


class Customer(models.Model):
    """A customer with a country, for group-by along a relation."""

    name = models.CharField(max_length=100)
    # NULL on purpose: a group-by over it must export NULL as an empty label.
    country = models.CharField(max_length=2, blank=True, null=True)  # noqa: DJ001

    def __str__(self) -> str:
        return self.name


class Order(models.Model):
    """An order with a status and a total, for filters and group-by."""

    STATUSES = [("pending", "Pending"), ("paid", "Paid"), ("shipped", "Shipped")]

    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, null=True)
    status = models.CharField(max_length=10, choices=STATUSES, default="pending")
    total = models.DecimalField(max_digits=10, decimal_places=2, default=0)
    created = models.DateTimeField()
    express = models.BooleanField(default=False)
    # Nullable on purpose, for the aggregates: NULLs are left out of them.
    quantity = models.IntegerField(null=True, blank=True)
    shipped_on = models.DateField(null=True, blank=True)
    handling = models.DurationField(null=True, blank=True)
    # For durations between two datetimes (paid - created).
    paid = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"{self.status} order {self.pk}"


class Voucher(models.Model):
    """A voucher whose primary key is its secret code, reached from a customer."""

    key = models.CharField(max_length=40, primary_key=True)
    customer = models.ForeignKey(
        Customer, on_delete=models.CASCADE, related_name="vouchers"
    )
    label = models.CharField(max_length=40, blank=True)

    def __str__(self) -> str:
        return self.label


class VipCustomer(Customer):
    """A proxy: it reads the customers' table, so it shares Customer's rules."""

    class Meta:
        proxy = True


class Call(models.Model):
    """One call of the test.count_calls callback, counted apart from the app."""

    pid = models.IntegerField()
    created = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"call by {self.pid}"
