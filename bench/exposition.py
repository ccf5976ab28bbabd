"""Read exposition text: count its series and check that exporters agree."""

from __future__ import annotations

from collections import Counter

from prometheus_client.parser import text_string_to_metric_families

from bench.references import SCOPE_LABELS


def series(body: bytes, prefix: str = "bench_series") -> Counter:
    """Return the samples whose name starts with `prefix`, scope labels left out."""
    found: Counter = Counter()
    for family in text_string_to_metric_families(body.decode()):
        for sample in family.samples:
            if sample.name.startswith(prefix):
                labels = tuple(
                    sorted(
                        (k, v)
                        for k, v in sample.labels.items()
                        if k not in SCOPE_LABELS
                    )
                )
                found[(sample.name, labels, sample.value)] += 1
    return found


def same_series(expected: int | None, **bodies: bytes) -> None:
    """Raise unless every exposition holds the same definition series."""
    found_in = {name: series(body) for name, body in bodies.items()}
    first_name, first = next(iter(found_in.items()))
    if expected is not None and sum(first.values()) != expected:
        raise RuntimeError(
            f"{first_name} exports {sum(first.values())} series, not {expected}."
        )
    for name, found in found_in.items():
        if found != first:
            raise RuntimeError(
                f"{name} and {first_name} export different series: "
                f"{sorted((found - first).elements())[:3]} against "
                f"{sorted((first - found).elements())[:3]}."
            )


def sample_count(body: bytes, prefix: str = "") -> int:
    """Return how many samples start with `prefix`, target_info left out."""
    return sum(
        1
        for line in body.decode().splitlines()
        if line
        and not line.startswith("#")
        and line.startswith(prefix)
        and not line.startswith("target_info")
    )


def same_sample_count(app_body: bytes, copy_body: bytes) -> None:
    """Raise unless the copy of the app's series exports as many samples."""
    if sample_count(app_body) != sample_count(copy_body):
        raise RuntimeError(
            f"The copy of the app's series exports {sample_count(copy_body)} "
            f"samples, the app {sample_count(app_body)}."
        )


def family_sizes(body: bytes) -> dict[str, tuple[int, bool]]:
    """Return {family: (samples, whether one is an overflow series)}."""
    return {
        family.name: (
            len(family.samples),
            any("otel_metric_overflow" in s.labels for s in family.samples),
        )
        for family in text_string_to_metric_families(body.decode())
        if family.name != "target"
    }
