"""Reconnect replay overlap: nothing lost, nothing doubled, identical records both kept."""

from hypothesis import given, settings
from hypothesis import strategies as st

from producers.dedupe import ReplayDedupe
from ticklane.dbn import ts_event


def rec(ts: int, payload: int) -> bytes:
    return bytes([4, 0]) + bytes(6) + ts.to_bytes(8, "little") + payload.to_bytes(4, "little")


@st.composite
def feeds(draw: st.DrawFn) -> tuple[list[bytes], list[int], int]:
    """A feed with small ts disorder, duplicates, and the points where sessions drop."""
    n = draw(st.integers(1, 60))
    ts, out = 1_000, []
    for _ in range(n):
        ts += draw(st.integers(0, 30))
        jitter = draw(st.integers(0, 20))  # event times out of order by up to 20
        out.append(rec(max(0, ts - jitter), draw(st.integers(0, 3))))
    drops = sorted(draw(st.lists(st.integers(1, n), max_size=6)))
    return out, drops, draw(st.integers(25, 100))


@given(feeds())
@settings(max_examples=400)
def test_replay_after_drops_yields_the_feed_exactly(case) -> None:
    feed, drops, window = case
    dedupe = ReplayDedupe(window)
    produced: list[bytes] = []
    position = 0  # how far into the feed the gateway has delivered
    for drop in [*drops, len(feed)]:
        start = dedupe.resume_from()
        end = max(drop, position)
        # A session sends, in feed order, every record that has happened by the time it
        # drops: all with ts_event >= start (intraday replay), or from "now" without one.
        session = [
            r
            for i, r in enumerate(feed[:end])
            if (i >= position if start is None else ts_event(r) >= start)
        ]
        dedupe.begin_replay()
        produced += [r for r in session if dedupe.admit(r)]
        position = end
    assert produced == feed


def test_identical_records_in_the_feed_are_both_kept() -> None:
    dedupe = ReplayDedupe(10)
    assert dedupe.admit(rec(5, 1))
    assert dedupe.admit(rec(5, 1))
    dedupe.begin_replay()
    assert not dedupe.admit(rec(5, 1))
    assert not dedupe.admit(rec(5, 1))
    assert dedupe.admit(rec(5, 1))  # a third copy is new data
    assert dedupe.dropped == 2


def test_resume_point_and_seed() -> None:
    dedupe = ReplayDedupe(100)
    assert dedupe.resume_from() is None
    dedupe.seed([rec(1_000, 0), rec(900, 1)])
    assert dedupe.resume_from() == 900
    dedupe.begin_replay()
    assert not dedupe.admit(rec(900, 1))
    assert dedupe.admit(rec(950, 2))
