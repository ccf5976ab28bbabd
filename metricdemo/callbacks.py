"""Keep the registry of Python callbacks that `callback` definitions may call."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

AttributeValue = str | bool | int | float
Attributes = Mapping[str, AttributeValue]
CallbackResult = float | int | Iterable[tuple[float, Attributes]]
CallbackFunc = Callable[[], CallbackResult]

CALLBACK_NAME_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_.\-]{0,99}")


@dataclass(frozen=True)
class RegisteredCallback:
    """A function registered under a name, with a description for the admin."""

    name: str
    func: CallbackFunc
    description: str = ""

    @property
    def label(self) -> str:
        """Return the text shown in the admin's choice list."""
        return f"{self.name} ({self.description})" if self.description else self.name


_registry: dict[str, RegisteredCallback] = {}


def register_callback(
    name: str, func: CallbackFunc | None = None, *, description: str = ""
) -> CallbackFunc | Callable[[CallbackFunc], CallbackFunc]:
    """Register `func` under `name` for `callback` definitions; usable as a decorator.

    `func()` takes no arguments and returns a number, or an iterable of
    `(value, attributes)` pairs, one per series.

    Raises:
        ValueError: the name is malformed, or another function already has it.
    """
    if not isinstance(name, str) or not CALLBACK_NAME_RE.fullmatch(name):
        raise ValueError(
            f"Invalid callback name {name!r}: use 1 to 100 letters, digits, "
            "'_', '.' or '-', starting with a letter or '_'."
        )

    def decorator(f: CallbackFunc) -> CallbackFunc:
        if not callable(f):
            raise ValueError(f"Callback {name!r} must be callable, got {f!r}.")
        existing = _registry.get(name)
        if existing is not None and not _same_function(existing.func, f):
            raise ValueError(
                f"A different function is already registered as callback {name!r} "
                f"({existing.func.__module__}.{existing.func.__qualname__}); "
                "call unregister_callback() first or choose another name."
            )
        _registry[name] = RegisteredCallback(name, f, description)
        return f

    return decorator(func) if func is not None else decorator


def unregister_callback(name: str) -> None:
    """Remove the callback registered under `name`; do nothing if there is none."""
    _registry.pop(name, None)


def get_callback(name: str) -> RegisteredCallback | None:
    """Return the callback registered under `name`, or None."""
    return _registry.get(name)


def registered_callbacks() -> list[RegisteredCallback]:
    """Return every registered callback, sorted by name."""
    return sorted(_registry.values(), key=lambda c: c.name)


def _same_function(a: Callable, b: Callable) -> bool:
    # A module imported twice (autoreload, tests) registers an equal function
    # object that is not the same object; treat it as the same registration.
    return a is b or _origin(a) == _origin(b) is not None


def _origin(func: Callable) -> tuple | None:
    code = getattr(func, "__code__", None)
    if code is None:
        return None
    return (func.__module__, func.__qualname__, code.co_filename, code.co_firstlineno)
