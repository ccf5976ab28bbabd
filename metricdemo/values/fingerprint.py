"""Hash a definition's editable fields: the version a stored or cached value is of."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Collection

from metricdemo.models import EDITABLE_FIELDS, MetricDefinition


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
    text = json.dumps(params, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:32]
