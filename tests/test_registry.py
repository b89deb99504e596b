from __future__ import annotations

from typing import Any

import pytest

from lossbench import registry as registry_mod
from lossbench.errors import SpecError
from lossbench.registry import Registry


class FakeEntryPoint:
    def __init__(self, target: Registry[Any]) -> None:
        self.target = target
        self.loaded = 0

    def load(self) -> None:
        self.loaded += 1
        self.target.register("plugin-thing", object(), family="plugin")


def test_entry_point_plugins_register_on_first_lookup(monkeypatch: pytest.MonkeyPatch) -> None:
    reg: Registry[Any] = Registry("widget", entry_point_group="lossbench.widgets")
    ep = FakeEntryPoint(reg)
    groups: list[str] = []

    def fake_entry_points(group: str) -> list[FakeEntryPoint]:
        groups.append(group)
        return [ep] if group == "lossbench.widgets" else []

    monkeypatch.setattr(registry_mod, "entry_points", fake_entry_points)
    assert "plugin-thing" in reg.names()
    assert reg.entry("plugin-thing").meta["family"] == "plugin"
    reg.names()
    assert ep.loaded == 1 and groups == ["lossbench.widgets"]


def test_unknown_name_suggests_close_matches() -> None:
    reg: Registry[int] = Registry("widget", plural="widgets")
    reg.register("focal", 1)
    reg.register("focal-tversky", 2)
    with pytest.raises(SpecError) as err:
        reg.get("focl")
    assert "Unknown widget 'focl'" in str(err.value) and "'focal'" in str(err.value)
    assert "lossbench list widgets" in str(err.value)


def test_registering_a_different_object_twice_is_refused() -> None:
    reg: Registry[int] = Registry("widget")
    reg.register("a", 1)
    reg.register("a", 1)  # the same object again (a re-import) is fine
    with pytest.raises(ValueError, match="already registered"):
        reg.register("a", 2)
