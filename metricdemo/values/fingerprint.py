"""Hash a definition's editable fields: the version a stored or cached value is of."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Collection

from metricdemo.models import EDITABLE_FIELDS, MetricDefinition

#: Editable fields added after values were first stored, with their defaults.
ADDED_LATER = ("buckets",)


def fingerprint(
    definition: MetricDefinition, *, leave_out: Collection[str] = ()
) -> str:
    """Return a hash of the editable fields but `leave_out`; editing one changes it."""
    # The scheduled table stores these hashes: any change to how they are
    # computed makes every stored value look like an older version's.
    params = {
        name: getattr(definition, name, None)
        for name in EDITABLE_FIELDS
        if name not in leave_out
    }
    # Fields added later count only when set, so that values stored before
    # them keep their version.
    for name in ADDED_LATER:
        if params.get(name) in (None, [], ()):
            params.pop(name, None)
    text = json.dumps(params, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:32]
