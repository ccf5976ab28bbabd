"""Bump the change stamp whenever a definition is saved or deleted."""

from typing import Any

from metricdemo.models import ChangeStamp


def bump_change_stamp(sender: Any, *, using: str, **kwargs: Any) -> None:
    """Mark the definitions as changed, in the caller's transaction if there is one."""
    ChangeStamp.bump(using)
