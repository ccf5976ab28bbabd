"""Decide what a definition may read: models, fields, settings and permissions.

The settings-based rules refuse a definition when it is validated and again
each time it is observed, so a definition stored before a rule tightened stops
exporting. The permission rules apply when a user is known (the admin, `metrics
import --as-user`): an editor publishes only what Django lets them see.

The rules live in submodules, each importing only those above it here:

- `sensitive`: names that look secret, and the settings a source may export.
- `paths`: the fields a lookup path names, and every path a definition reads.
- `identity`: fields that identify a person, in group-bys and filters.
- `sqlite_functions`: lookups whose Python functions SQLite cannot interrupt.
- `rows`: the models and field paths row-based definitions may read.
- `permissions`: what an editor needs to publish a source or read a model.

This module names the functions other modules use.
"""

from metricdemo.policy.identity import identity_reason, identity_refusals
from metricdemo.policy.paths import lookup_fields
from metricdemo.policy.permissions import (
    READ_SETTINGS,
    USE_CALLBACKS,
    allowed_models,
    may_view,
    model_permission_refusal,
    path_permission_refusal,
    row_count_permission_refusals,
    source_permission_refusal,
    suggested_models,
    suggested_settings,
)
from metricdemo.policy.rows import (
    group_by_refusal,
    lookup_refusal,
    model_refusal,
    row_count_refusals,
)
from metricdemo.policy.sensitive import sensitive_match, setting_refusal
from metricdemo.policy.sqlite_functions import unbounded_lookup_refusals

__all__ = [
    "READ_SETTINGS",
    "USE_CALLBACKS",
    "allowed_models",
    "group_by_refusal",
    "identity_reason",
    "identity_refusals",
    "lookup_fields",
    "lookup_refusal",
    "may_view",
    "model_permission_refusal",
    "model_refusal",
    "path_permission_refusal",
    "row_count_permission_refusals",
    "row_count_refusals",
    "sensitive_match",
    "setting_refusal",
    "source_permission_refusal",
    "suggested_models",
    "suggested_settings",
    "unbounded_lookup_refusals",
]
