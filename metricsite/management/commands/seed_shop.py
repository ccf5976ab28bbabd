"""Fill the demo shop with a few thousand customers' orders, once."""

import datetime as dt
import random
from decimal import Decimal

from django.core.management.base import BaseCommand
from django.db import transaction
from django.utils import timezone

from metricsite.demoshop.models import Customer, Order

CUSTOMERS = 400
ORDERS = 3000
DAYS = 30
# Weighted like a shop based in Germany that ships across Europe and to the US.
COUNTRIES = ["DE"] * 8 + ["AT", "CH"] * 2 + ["FR", "NL", "IT", "ES", "GB", "US"] * 1
SEED = 2026


class Command(BaseCommand):
    """Create the demo shop's rows unless it has orders; --reset starts again."""

    help = (
        "Fill the demo shop with customers and a month of orders (a fixed random "
        "seed, so every run makes the same shop). Does nothing if there are orders "
        "already, unless --reset is given."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument(
            "--reset",
            action="store_true",
            help="delete the shop's rows first, then seed it again relative to now",
        )

    def handle(self, *args, **options) -> None:
        with transaction.atomic():
            if options["reset"]:
                Order.objects.all().delete()
                Customer.objects.all().delete()
            elif Order.objects.exists():
                if options["verbosity"] >= 1:
                    self.stdout.write("Demo shop: orders exist already; nothing to do.")
                return
            customers, orders = seed(timezone.now())
        if options["verbosity"] >= 1:
            self.stdout.write(
                self.style.SUCCESS(
                    f"Demo shop: {customers} customers and {orders} orders created."
                )
            )


def seed(now: dt.datetime) -> tuple[int, int]:
    """Create the customers and orders, the last of them placed just before `now`."""
    rng = random.Random(SEED)
    customers = Customer.objects.bulk_create(
        Customer(name=f"Customer {n}", country=rng.choice(COUNTRIES))
        for n in range(1, CUSTOMERS + 1)
    )
    orders = []
    for _ in range(ORDERS):
        # More orders lately: the shop grows.
        age = dt.timedelta(days=DAYS * rng.random() ** 1.5)
        created = now - age
        total = Decimal(round(rng.lognormvariate(3.6, 0.7), 2)).quantize(
            Decimal("0.01")
        )
        status, paid = _fate(rng, age, created)
        orders.append(
            Order(
                customer=rng.choice(customers),
                status=status,
                total=total,
                created_at=created,
                paid_at=paid,
            )
        )
    Order.objects.bulk_create(orders, batch_size=500)
    return len(customers), len(orders)


def _fate(
    rng: random.Random, age: dt.timedelta, created: dt.datetime
) -> tuple[str, dt.datetime | None]:
    # Young orders wait for payment or shipping; old ones shipped or were cancelled.
    roll = rng.random()
    if roll < 0.04:
        return "cancelled", None
    if age < dt.timedelta(hours=2) and roll < 0.6:
        return "pending", None
    if age > dt.timedelta(days=3) and roll < 0.06:
        return "pending", None  # forgotten carts keep the oldest pending order old
    paid = created + dt.timedelta(minutes=rng.uniform(1, 90))
    if age < dt.timedelta(days=2) and roll < 0.7:
        return "paid", paid
    return "shipped", paid
