"""Ids are deterministic, distinct for distinct causes, and unambiguous at part boundaries."""

from hypothesis import given
from hypothesis import strategies as st

from ticklane import ids
from ticklane.control import ControlAction, ControlCommand
from ticklane.trading import Signal

parts = st.lists(st.one_of(st.text(max_size=8), st.integers()), max_size=5)


@given(parts)
def test_same_parts_same_id(values: list[str | int]) -> None:
    assert ids.deterministic_id("x", *values) == ids.deterministic_id("x", *values)


@given(parts, parts)
def test_different_parts_different_ids(a: list[str | int], b: list[str | int]) -> None:
    same_parts = [(type(x), x) for x in a] == [(type(y), y) for y in b]
    assert (ids.deterministic_id("x", *a) == ids.deterministic_id("x", *b)) == same_parts


def test_boundaries_and_types_do_not_collide() -> None:
    assert ids.deterministic_id("x", "ab", "c") != ids.deterministic_id("x", "a", "bc")
    assert ids.deterministic_id("x", 1) != ids.deterministic_id("x", "1")


def test_signal_ids_follow_their_cause() -> None:
    a = Signal.create("ema_cross", "ESU4", 1_000, 1)
    assert a.signal_id == Signal.create("ema_cross", "ESU4", 1_000, -1).signal_id
    assert a.signal_id != Signal.create("ema_cross", "ESU4", 1_001, 1).signal_id
    assert a.signal_id != Signal.create("ema_cross", "NQU4", 1_000, 1).signal_id
    assert a.signal_id != Signal.create("ema_cross", "ESU4", 1_000, 1, sequence=1).signal_id
    assert a.signal_id.startswith("sig-")
    assert len(a.signal_id) == 36


def test_order_legs_have_distinct_ids() -> None:
    sig = Signal.create("st", "ESU4", 5, 2).signal_id
    assert ids.client_order_id(sig, 0) != ids.client_order_id(sig, 1)
    assert ids.client_order_id(sig) == ids.client_order_id(sig, 0)


def test_control_keys_compact_enable_with_disable() -> None:
    enable = ControlCommand.create(ControlAction.ENABLE, 1, strategy="ema", symbol="ESU4")
    disable = ControlCommand.create(ControlAction.DISABLE, 2, strategy="ema", symbol="ESU4")
    params = ControlCommand.create(ControlAction.SET_PARAMS, 3, strategy="ema", symbol="ESU4")
    assert enable.key == disable.key
    assert params.key != enable.key
    assert enable.command_id != disable.command_id
