"""One small registry mechanism for every kind of plug-in.

Losses, methods, task types, data sources, metrics and suites all use
:class:`Registry`. Third-party packages add entries through the entry point
group named by the registry (for example ``lossbench.losses``).
"""

from __future__ import annotations

import difflib
import importlib
import pkgutil
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from typing import Any, Generic, TypeVar

from lossbench.errors import SpecError

T = TypeVar("T")


def import_submodules(package: str, path: Iterable[str]) -> None:
    """Import every module of a package: a module registers what it defines, so adding one edits nothing else."""
    for module in pkgutil.iter_modules(path):
        importlib.import_module(f"{package}.{module.name}")


@dataclass(frozen=True)
class Entry(Generic[T]):
    """A registered object and its metadata."""

    name: str
    obj: T
    meta: Mapping[str, Any] = field(default_factory=dict)


class Registry(Generic[T]):
    """A name → object map with metadata, suggestions and plug-in discovery."""

    def __init__(self, kind: str, entry_point_group: str | None = None, plural: str | None = None) -> None:
        self.kind = kind
        self.plural = plural or f"{kind}s"
        self.entry_point_group = entry_point_group
        self._entries: dict[str, Entry[T]] = {}
        self._plugins_loaded = entry_point_group is None

    def register(self, name: str, obj: T | None = None, **meta: Any) -> Any:
        """Register ``obj`` under ``name``; without ``obj`` it works as a decorator."""

        def add(target: T) -> T:
            if name in self._entries and self._entries[name].obj is not target:
                raise ValueError(f"{self.kind} {name!r} is already registered")
            self._entries[name] = Entry(name, target, dict(meta))
            return target

        return add(obj) if obj is not None else add

    def unregister(self, name: str) -> None:
        """Remove an entry (for tests and plug-ins that register temporary objects)."""
        self._entries.pop(name, None)

    def _load_plugins(self) -> None:
        if self._plugins_loaded:
            return
        self._plugins_loaded = True
        for ep in entry_points(group=self.entry_point_group or ""):
            ep.load()  # importing the module runs its register() calls

    def entry(self, name: str) -> Entry[T]:
        self._load_plugins()
        try:
            return self._entries[name]
        except KeyError:
            raise SpecError(self.unknown_message(name), self.suggest(name)) from None

    def get(self, name: str) -> T:
        return self.entry(name).obj

    def unknown_message(self, name: str) -> str:
        return f"Unknown {self.kind} {name!r}."

    def suggest(self, name: str) -> str:
        close = difflib.get_close_matches(name, self.names(), n=3, cutoff=0.5)
        if close:
            names = " or ".join(repr(c) for c in close)
            return f"Did you mean {names}? See `lossbench list {self.plural}`."
        return f"See `lossbench list {self.plural}` for the available names."

    def names(self) -> list[str]:
        self._load_plugins()
        return sorted(self._entries)

    def __contains__(self, name: object) -> bool:
        self._load_plugins()
        return name in self._entries

    def __iter__(self) -> Iterator[Entry[T]]:
        self._load_plugins()
        return iter(sorted(self._entries.values(), key=lambda e: e.name))

    def __len__(self) -> int:
        self._load_plugins()
        return len(self._entries)

    def filter(self, predicate: Callable[[Entry[T]], bool]) -> list[Entry[T]]:
        return [e for e in self if predicate(e)]
