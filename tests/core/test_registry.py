"""The shared Registry: conflicts raise, the same object again is a no-op, misses list names."""

from __future__ import annotations

import pytest

from cof_plugins.core.registry import Registry, RegistryError


def first() -> int:
    return 1


def second() -> int:
    return 2


def test_register_get_and_decorator():
    reg: Registry = Registry("thing")
    reg.register("one", first)

    @reg.register("two")
    def two() -> int:
        return 2

    assert reg.get("one") is first
    assert reg.get("two") is two
    assert reg.names() == ["one", "two"]
    assert "one" in reg and "three" not in reg
    assert len(reg) == 2


def test_same_object_again_is_idempotent_but_another_raises():
    reg: Registry = Registry("reward mode")
    reg.register("agar", first)
    reg.register("agar", first)
    with pytest.raises(RegistryError) as err:
        reg.register("agar", second)
    message = str(err.value)
    assert "reward mode 'agar' is already registered" in message
    assert "second" in message
    assert reg.get("agar") is first


def test_miss_lists_valid_names_and_closest():
    reg: Registry = Registry("benchmark format")
    reg.register("vstar", first)
    reg.register("hrbench", second)
    with pytest.raises(RegistryError) as err:
        reg.get("hrbnech")
    message = str(err.value)
    assert message.startswith("unknown benchmark format 'hrbnech'")
    assert "did you mean 'hrbench'?" in message
    assert "valid: vstar, hrbench" in message
    with pytest.raises(RegistryError, match="valid: vstar, hrbench"):
        reg.get(None)  # type: ignore[arg-type]


def test_bad_names_are_refused():
    reg: Registry = Registry("style")
    for bad in ("", None, 3):
        with pytest.raises(ValueError, match="non-empty strings"):
            reg.register(bad, first)  # type: ignore[arg-type]
