"""Ids are deterministic, distinct for distinct causes, and unambiguous at part boundaries.

Deterministic means across processes and versions too: a restarted process must compute the
same ids for the same causes, or a replay after a crash is taken for new work. So a few ids
are pinned to fixed values, and ids are compared between processes with different hash seeds.
"""

import json
import os
import subprocess
import sys

import pytest
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


# Computed once and written down: any change to how ids are derived breaks every ledger,
# venue record and replay made before it, so it must fail here first.
ES_BAR = 1_719_878_400_000_000_000  # 2024-07-02 00:00 UTC
PINNED = {
    "signal": "sig-f8bf31f53a123cc6d8b1f0a7b1f61d27",
    "order_leg_1": "ord-1c20b0d6b0f97373b14dfb04f8637d6f",
    "fill": "fil-6c411995a280a9b65c5b8adab6962ca9",
    "command": "cmd-c8c6b6fe45cfe53880ee84678af2859d",
    "control": "cmd-c52fe674ffe10dc72c5cab109b621f30",
}

COMPUTE = """
import json
from ticklane import ids
from ticklane.control import ControlAction, ControlCommand
from ticklane.trading import Signal

signal = Signal.create("ema_cross", "ESU4", 1_719_878_400_000_000_000, 1).signal_id
print(json.dumps({
    "signal": signal,
    "order_leg_1": ids.client_order_id(signal, 1),
    "fill": ids.fill_id("paper", "v-1", "e-7"),
    "command": ids.command_id("enable", "ema_cross", "ESU4", 5),
    "control": ControlCommand.create(
        ControlAction.ENABLE, 1, strategy="ema", symbol="ESU4"
    ).command_id,
}))
"""


def compute_in(hash_seed: str) -> dict[str, str]:
    """The ids computed in a new interpreter whose str hashes are salted with `hash_seed`."""
    env = os.environ | {"PYTHONHASHSEED": hash_seed}
    result = subprocess.run(
        [sys.executable, "-c", COMPUTE], env=env, capture_output=True, text=True, check=True
    )
    return json.loads(result.stdout)


def test_ids_are_pinned_to_their_known_values() -> None:
    signal = Signal.create("ema_cross", "ESU4", ES_BAR, 1).signal_id
    assert signal == PINNED["signal"]
    assert ids.signal_id("ema_cross", "ESU4", ES_BAR, 0) == PINNED["signal"]
    assert ids.client_order_id(signal, 1) == PINNED["order_leg_1"]
    assert ids.fill_id("paper", "v-1", "e-7") == PINNED["fill"]
    assert ids.command_id("enable", "ema_cross", "ESU4", 5) == PINNED["command"]
    control = ControlCommand.create(ControlAction.ENABLE, 1, strategy="ema", symbol="ESU4")
    assert control.command_id == PINNED["control"]


@pytest.mark.parametrize("hash_seed", ["0", "1", "4242"])
def test_other_processes_compute_the_same_ids(hash_seed: str) -> None:
    assert compute_in(hash_seed) == PINNED
