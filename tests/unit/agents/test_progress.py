"""The agents' own account of absorbed md.* offsets: gaps found, stale frames dropped."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from agents.progress import Progress, Verdict

TP = ("md.trades", 3)


def started(next_offset: int = 10, generation: int = 1) -> Progress:
    progress = Progress(frozenset({"md.trades"}))
    progress.begin(TP, generation, next_offset)
    return progress


def test_unknown_until_begun_and_again_in_a_new_generation() -> None:
    progress = Progress(frozenset({"md.trades"}))
    assert progress.verdict(TP, 0, 1) is Verdict.UNKNOWN
    assert progress.committable(TP) is None
    progress.begin(TP, 1, 0)
    assert progress.verdict(TP, 0, 1) is Verdict.ABSORB
    assert progress.verdict(TP, 0, 2) is Verdict.UNKNOWN


def test_next_frame_absorbed_below_stale_above_gap() -> None:
    progress = started(10)
    assert progress.verdict(TP, 10, 1) is Verdict.ABSORB
    assert progress.verdict(TP, 9, 1) is Verdict.STALE
    assert progress.verdict(TP, 12, 1) is Verdict.GAP
    assert progress.next_offset(TP) == 10


def test_commit_covers_only_what_was_absorbed() -> None:
    progress = started(10)
    assert progress.committable(TP) == 10
    progress.absorbed(TP, 10)
    progress.absorbed(TP, 11)
    assert progress.committable(TP) == 12
    assert progress.committable(("md.trades", 4)) is None


def test_absorbing_below_the_next_offset_is_refused() -> None:
    progress = started(10)
    with pytest.raises(ValueError, match="below 10"):
        progress.absorbed(TP, 9)


def test_only_named_topics_are_tracked() -> None:
    progress = started()
    assert progress.tracks("md.trades")
    assert not progress.tracks("ticklane-agents-symbols-changelog")


@given(
    start=st.integers(0, 1_000),
    deliveries=st.lists(st.integers(0, 60), min_size=1, max_size=200),
)
def test_any_delivery_order_commits_nothing_unabsorbed(start: int, deliveries: list[int]) -> None:
    """Whatever a consumer delivers (repeats, skips, rewinds), driven as the handler does,
    every offset below the committable one was absorbed exactly once, in order."""
    progress = started(start)
    absorbed: list[int] = []
    for delta in deliveries:
        offset = start + delta
        verdict = progress.verdict(TP, offset, 1)
        if verdict is Verdict.STALE:
            continue
        if verdict is Verdict.GAP:  # the handler reads the missed frames back first
            for missed in range(progress.next_offset(TP), offset):
                absorbed.append(missed)
                progress.absorbed(TP, missed)
        absorbed.append(offset)
        progress.absorbed(TP, offset)
    committable = progress.committable(TP)
    assert committable is not None
    assert absorbed == list(range(start, committable))
