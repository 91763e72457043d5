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


class Sent:
    """A changelog delivery as a test drives it."""

    def __init__(self) -> None:
        self.finished = False
        self.error: BaseException | None = None

    def done(self) -> bool:
        return self.finished

    def exception(self) -> BaseException | None:
        return self.error


def test_commit_waits_for_each_frames_state_to_be_delivered() -> None:
    progress = started(10)
    first, second, third = Sent(), Sent(), Sent()
    progress.absorbed(TP, 10, first)
    progress.absorbed(TP, 11)  # a replay: nothing written
    progress.absorbed(TP, 12, second)
    progress.absorbed(TP, 13, third)
    assert progress.committable(TP) == 10
    second.finished = third.finished = True
    assert progress.committable(TP) == 10  # the first still holds everything after it
    first.finished = True
    assert progress.committable(TP) == 14


def test_a_failed_delivery_holds_the_commit_for_good() -> None:
    progress = started(0)
    failed = Sent()
    progress.absorbed(TP, 0, failed)
    failed.finished, failed.error = True, RuntimeError("broker said no")
    progress.absorbed(TP, 1)
    assert progress.committable(TP) == 0
