"""Count the instruments this process holds; make the edits that retire one."""

from __future__ import annotations

import gc

from opentelemetry.sdk.metrics import MeterProvider

from metricdemo.conf import app_settings
from metricdemo.models import MetricDefinition
from metricdemo.reserved import SELF_METRICS

KINDS = ("gauge", "counter", "updowncounter")
UNITS = ("", "s", "By", "{item}")


def held_instruments(scope_name: str) -> list[str]:
    """Return the names of the instruments every live MeterProvider holds in a scope.

    OpenTelemetry has no API that lists instruments, nor one that removes
    them: each SDK Meter keeps its instruments in `_instrument_id_instrument`
    for as long as its provider lives, and every collection of that provider
    walks them. So this reads that registry on every MeterProvider the garbage
    collector still finds, shut down or not: a provider that is only shut
    down still holds its instruments' memory.
    """
    gc.collect()
    names = []
    for obj in gc.get_objects():
        if isinstance(obj, MeterProvider):
            for scope, meter in list(obj._meters.items()):
                if scope.name == scope_name:
                    names.extend(
                        instrument.name
                        for instrument in meter._instrument_id_instrument.values()
                    )
    return names


def definition_instruments() -> list[str]:
    """Return the names of the definitions' instruments this process holds, sorted.

    The app's self-metrics share the definitions' scope; they are left out.
    """
    own = {name for name, _kind, _unit in SELF_METRICS.values()}
    held = held_instruments(app_settings.METER_NAME)
    return sorted(name for name in held if name not in own)


def change_instrument(definition: MetricDefinition, turn: int, name: str) -> None:
    """Give `definition` another instrument, unsaved: by `turn`, a new name
    (`name`), the next kind, the next unit or a new description.
    """
    field = turn % 4
    if field == 0:
        definition.name = name
    elif field == 1:
        definition.kind = KINDS[(KINDS.index(definition.kind) + 1) % len(KINDS)]
    elif field == 2:
        definition.unit = UNITS[(UNITS.index(definition.unit) + 1) % len(UNITS)]
    else:
        definition.description = f"{name}: a new description."


def held_series(instrument_name: str) -> list[dict]:
    """Return the attribute sets live MeterProviders keep state for, of one instrument.

    The SDK keeps an aggregation per attribute set an instrument ever
    reported, for as long as its provider lives, and walks every one on each
    collection, whether or not the set is still reported. (SDK internals, as
    held_instruments() reads them.)
    """
    gc.collect()
    held = []
    for obj in gc.get_objects():
        if not isinstance(obj, MeterProvider):
            continue
        consumer = getattr(obj, "_measurement_consumer", None)
        for storage in dict(getattr(consumer, "_reader_storages", {})).values():
            matches = storage._instrument_view_instrument_matches
            for instrument, views in list(matches.items()):
                if instrument.name != instrument_name:
                    continue
                for view in views:
                    for aggregation in list(view._attributes_aggregation.values()):
                        held.append(dict(aggregation._attributes or {}))
    return held
