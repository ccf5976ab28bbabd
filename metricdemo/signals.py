"""React to saves and deletes: bump the change stamp, record definitions' versions.

Every save or delete of a definition, and every save or delete of one of its
alert rules, records a version of the definition (models.DefinitionVersion).
Inside `one_version_each()` (the admin's saves, `metrics import`) the versions
wait for the end of the block, so that a definition saved with its rules gets
one version that holds them all.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

from django.db import connections
from django.db.models import QuerySet
from django.db.models.signals import post_delete, post_save, pre_delete, pre_save
from django.dispatch import receiver

from metricdemo.models import (
    AlertRule,
    Change,
    ChangeStamp,
    DefinitionVersion,
    MetricDefinition,
)


def bump_change_stamp(sender: Any, *, using: str, **kwargs: Any) -> None:
    """Mark the definitions as changed, in the caller's transaction if there is one."""
    ChangeStamp.bump(using)


@dataclass
class _Pending:
    """What the version of a definition changed in a block will say."""

    created: bool = False
    user: Any = None
    restored_from: int | None = None


@dataclass
class _Block:
    """The definitions changed in a `one_version_each()` block, by (alias, pk)."""

    user: Any
    pending: dict[tuple[str, int], _Pending] = field(default_factory=dict)

    def note(
        self,
        using: str,
        pk: int,
        *,
        created: bool = False,
        user: Any = None,
        restored_from: int | None = None,
    ) -> None:
        """Remember that the definition changed; the first user named is kept."""
        entry = self.pending.setdefault((using, pk), _Pending())
        entry.created |= created
        entry.user = entry.user or user
        entry.restored_from = entry.restored_from or restored_from

    def record(self, keys: list[tuple[str, int]] | None = None) -> None:
        """Record a version of each pending definition (or of `keys`), as stored now."""
        groups: dict[tuple, list[int]] = {}
        for key in list(self.pending) if keys is None else keys:
            entry = self.pending.pop(key, None)
            if entry is None or _rolls_back(key[0]):
                continue  # a dry run's changes are undone, and so are its versions
            change = Change.CREATED if entry.created else Change.CHANGED
            user = entry.user or self.user
            using, pk = key
            groups.setdefault((using, change, user, entry.restored_from), []).append(pk)
        for (using, change, user, restored_from), pks in groups.items():
            DefinitionVersion.record(
                MetricDefinition.objects.using(using).filter(pk__in=pks),
                change,
                user=user,
                using=using,
                restored_from=restored_from,
            )


def _rolls_back(using: str) -> bool:
    connection = connections[using]
    return connection.in_atomic_block and connection.needs_rollback


_block: ContextVar[_Block | None] = ContextVar("metricdemo_versions", default=None)


@contextmanager
def one_version_each(user: Any = None) -> Iterator[None]:
    """Record one version of each definition changed in the block, as it ends.

    A definition saved with its rules then gets one version holding them
    all, not one per save. `user` is recorded where the save names no acting
    user (a delete, a rule saved on its own page). Nothing is recorded if the
    block raises; enter it inside the transaction of the changes, so that
    they and their versions are written together. A block inside a block
    joins it.
    """
    if _block.get() is not None:
        yield
        return
    block = _Block(user)
    token = _block.set(block)
    try:
        yield
    finally:
        _block.reset(token)
    block.record()


@receiver(post_save, sender=MetricDefinition, dispatch_uid="metricdemo.version_saved")
def record_saved_definition(
    sender: Any, *, instance: MetricDefinition, created: bool, using: str, **kwargs
) -> None:
    """Record the saved definition's version, or note it for the block's end."""
    if kwargs.get("raw"):
        return  # loaddata: a fixture brings its own history
    block = _block.get()
    if block is not None:
        block.note(
            using,
            instance.pk,
            created=created,
            user=instance.acting_user,
            restored_from=instance.restored_from,
        )
        return
    DefinitionVersion.record(
        [instance],
        Change.CREATED if created else Change.CHANGED,
        user=instance.acting_user,
        using=using,
        restored_from=instance.restored_from,
    )


@receiver(
    pre_delete, sender=MetricDefinition, dispatch_uid="metricdemo.version_deleted"
)
def record_deleted_definition(
    sender: Any, *, instance: MetricDefinition, using: str, **kwargs
) -> None:
    """Record the definition as deleted, with the rules it has until the delete."""
    block = _block.get()
    user = instance.acting_user
    if block is not None:
        block.record([(using, instance.pk)])  # a change earlier in the block
        user = user or block.user
    DefinitionVersion.record([instance], Change.DELETED, user=user, using=using)


@receiver(pre_save, sender=AlertRule, dispatch_uid="metricdemo.rule_moving")
def note_rule_move(sender: Any, *, instance: AlertRule, using: str, **kwargs) -> None:
    """Remember the definition a saved rule leaves, when it moves to another."""
    instance._metricdemo_left = None
    if kwargs.get("raw") or instance._state.adding:
        return
    stored = AlertRule.objects.using(using).filter(pk=instance.pk)
    left = stored.values_list("definition_id", flat=True).first()
    if left is not None and left != instance.definition_id:
        instance._metricdemo_left = left


@receiver(post_save, sender=AlertRule, dispatch_uid="metricdemo.version_rule_saved")
@receiver(post_delete, sender=AlertRule, dispatch_uid="metricdemo.version_rule_deleted")
def record_rule_change(
    sender: Any, *, instance: AlertRule, using: str, **kwargs
) -> None:
    """Record a version of the rule's definition, or note it for the block's end.

    A rule moved to another definition records a version of both. Rules
    deleted with their definition record nothing more: its deletion is
    recorded, rules included.
    """
    if kwargs.get("raw") or _deletes_definitions(kwargs.get("origin")):
        return
    pks = [instance.definition_id]
    if getattr(instance, "_metricdemo_left", None) is not None:
        pks.append(instance._metricdemo_left)
    block = _block.get()
    if block is not None:
        for pk in pks:
            block.note(using, pk)
        return
    DefinitionVersion.record(
        MetricDefinition.objects.using(using).filter(pk__in=pks),
        Change.CHANGED,
        using=using,
    )


def _deletes_definitions(origin: Any) -> bool:
    # `origin` is what delete() was called on: a definition, or a queryset.
    if isinstance(origin, QuerySet):
        return issubclass(origin.model, MetricDefinition)
    return isinstance(origin, MetricDefinition)
