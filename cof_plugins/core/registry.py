"""Name -> object registries that fail loudly.

One small class for every place where a name in a config or on the command line selects
code: benchmark formats, conversion styles, reward modes, reward functions, profiles, model
families. Registering a name twice with a different object raises (two plugins fighting over
a name is a bug to fix, not to resolve by import order); registering the same object again
is a no-op, so ``register()`` functions stay idempotent. A miss lists the valid names and the
closest spelling.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Iterator
from typing import Generic, TypeVar

T = TypeVar("T")


class RegistryError(KeyError):
    """A name that is unknown or already taken; ``str()`` is the whole message."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


class Registry(Generic[T]):
    """A named table of ``T``; ``kind`` names what it holds in error messages."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._items: dict[str, T] = {}

    def register(self, name: str, item: T | None = None) -> Callable[[T], T] | T:
        """``registry.register("x", obj)`` or, as a decorator, ``@registry.register("x")``."""
        if not isinstance(name, str) or not name:
            raise ValueError(f"{self.kind} names must be non-empty strings, got {name!r}")
        if item is None:
            return lambda obj: self._add(name, obj)
        return self._add(name, item)

    def _add(self, name: str, item: T) -> T:
        current = self._items.get(name)
        if current is not None and current is not item:
            raise RegistryError(
                f"{self.kind} {name!r} is already registered to {_describe(current)}; "
                f"refusing to replace it with {_describe(item)} (pick another name)"
            )
        self._items[name] = item
        return item

    def get(self, name: str) -> T:
        """The item called ``name``; a miss raises, listing the valid names."""
        try:
            return self._items[name]
        except (KeyError, TypeError):
            raise RegistryError(self.unknown_message(name)) from None

    def unknown_message(self, name: object) -> str:
        names = self.names()
        close = difflib.get_close_matches(str(name), names, n=1) if isinstance(name, str) else []
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        return f"unknown {self.kind} {name!r}{hint}; valid: {', '.join(names) or '(none)'}"

    def names(self) -> list[str]:
        """Registered names in registration order."""
        return list(self._items)

    def __contains__(self, name: object) -> bool:
        return name in self._items

    def __iter__(self) -> Iterator[str]:
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)


def _describe(obj: object) -> str:
    module = getattr(obj, "__module__", None)
    qualname = getattr(obj, "__qualname__", None)
    return f"{module}.{qualname}" if module and qualname else repr(obj)[:80]
