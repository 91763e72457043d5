"""Exactly once across crashes: framing, resume and planning against a model of Kafka.

Each run re-reads the source from the start, as a restarted file producer does. A crash
keeps, for every topic-partition independently, an arbitrary prefix of what the run
sent there (Kafka writes each partition in order, but partitions progress separately).
"""

from collections import defaultdict

from hypothesis import example, given, settings
from hypothesis import strategies as st

from producers.framing import ChainFramer, FrameLimits, Framer
from producers.planner import FramePlanner
from producers.resume import ResumeState, SeenFrame, seen_frames
from ticklane.market import FrameRun, MarketFrame

SYMBOLS = ["A", "B", "C", "D", "E"]
TOPICS = {"md.trades": 3, "md.mbp-1": 2}


RECORD_SIZE = 12
TOPIC_NAMES = list(TOPICS)


def record(index: int, topic: str, symbol: str) -> bytes:
    """A fixed-size stand-in for a DBN record: header, index, topic and symbol codes."""
    rtype = 0 if topic == "md.trades" else 1
    codes = bytes([TOPIC_NAMES.index(topic), SYMBOLS.index(symbol)])
    return bytes([RECORD_SIZE // 4, rtype]) + index.to_bytes(8, "big") + codes


def route(raw: bytes) -> tuple[str, str] | None:
    topic, symbol = TOPIC_NAMES[raw[10]], SYMBOLS[raw[11]]
    return (topic, symbol) if symbol != "E" else None  # E stands for control records


def partition_of(topic: str, symbol: str) -> int:
    return SYMBOLS.index(symbol) % TOPICS[topic]


Log = dict[tuple[str, int], list[tuple[list[SeenFrame], list[int]]]]


# md.chain: A and C are one chain (C plays an option of A), B and D two more; B and D share
# a partition, so a crash keeps a prefix of both chains' frames, interleaved.
CHAIN_OF = {"A": "A", "B": "B", "C": "A", "D": "D"}


def chain_route(raw: bytes) -> tuple[str, str] | None:
    routed = route(raw)
    return None if routed is None else ("md.chain", routed[1])


def chain_partition(_topic: str, symbol: str) -> int:
    return SYMBOLS.index(CHAIN_OF[symbol]) % 2


def run_once(
    source: list[bytes], log: Log, batch_sizes: list[int], limits: FrameLimits, chain: bool = False
) -> Log:
    """One producer run from the start of the source; returns what it sent per partition."""
    resume = ResumeState.from_tails(
        {tp: [s for seen, _ in frames[-200:] for s in seen] for tp, frames in log.items()}
    )
    if chain:
        framer = ChainFramer(limits, CHAIN_OF.__getitem__)
        planner = FramePlanner(chain_route, chain_partition, resume, limits, framer=framer)
    else:
        planner = FramePlanner(route, partition_of, resume, limits)
    sent: Log = defaultdict(list)
    start, sizes = 0, iter(batch_sizes)
    while start < len(source):
        size = next(sizes, 7)
        for planned in planner.plan(source[start : start + size], start):
            frame = planned.frame
            got = [int.from_bytes(r[2:10], "big") for r in split(frame.records)]
            # As the next run reads it back: a frame of several symbols counts for each.
            message = MarketFrame(
                frame.symbol,
                frame.records,
                "",
                frame.position,
                planned.batch,
                frame.symbols,
                frame.runs,
            )
            sent[(frame.topic, planned.partition)].append((seen_frames(message), got))
        start += size
    return sent


def split(records: bytes) -> list[bytes]:
    return [records[i : i + RECORD_SIZE] for i in range(0, len(records), RECORD_SIZE)]


def crash_then_finish(case, *, chain: bool) -> Log:
    """Runs that crash (keeping a random prefix per partition), then one that finishes."""
    layout, runs, keep_fractions, max_records = case
    source = [record(i, topic, symbol) for i, (topic, symbol) in enumerate(layout)]
    limits = FrameLimits(max_records=max_records)
    log: Log = defaultdict(list)
    fractions = iter(keep_fractions * 10)
    for crashing, sizes in [(True, s) for s in runs] + [(False, [])]:
        sent = run_once(source, log, sizes, limits, chain=chain)
        for tp, frames in sent.items():
            keep = int(len(frames) * next(fractions)) if crashing else len(frames)
            log[tp].extend(frames[:keep])
    return log


scenario = st.tuples(
    st.lists(st.tuples(st.sampled_from(list(TOPICS)), st.sampled_from(SYMBOLS)), max_size=80),
    st.lists(st.lists(st.integers(1, 15), max_size=20), min_size=1, max_size=4),
    st.lists(st.floats(0, 1), min_size=10, max_size=10),
    st.integers(1, 6),
)


@given(scenario)
@settings(max_examples=500, deadline=None)
# A run that re-frames records a crashed run left half-written must tag them with the
# crashed run's batch, or a third run re-sends what the first already wrote.
@example(
    (
        [("md.trades", "A"), ("md.trades", "D"), ("md.trades", "A"), ("md.trades", "D")],
        [[4], [1, 1, 1, 1]],
        [0.5] * 10,
        6,
    )
)
def test_every_record_exactly_once_in_order_across_crashes(case) -> None:
    layout = case[0]
    log = crash_then_finish(case, chain=False)

    expected: dict[tuple[str, int], list[int]] = defaultdict(list)
    for i, (topic, symbol) in enumerate(layout):
        if symbol != "E":
            expected[(topic, partition_of(topic, symbol))].append(i)
    for tp in set(expected) | set(log):
        written = [i for _, got in log[tp] for i in got]
        assert sorted(written) == expected[tp], f"{tp}: lost or duplicated records"
        for symbol in SYMBOLS:
            mine = [i for i in written if layout[i][1] == symbol]
            assert mine == sorted(mine), f"{tp} {symbol}: out of order"


@given(scenario)
@settings(max_examples=300, deadline=None)
def test_chains_keep_every_records_order_exactly_once_across_crashes(case) -> None:
    """md.chain: each chain's records, of every symbol and type, in source order."""
    layout = case[0]
    log = crash_then_finish(case, chain=True)
    for chain in ("A", "B", "D"):
        tp = ("md.chain", chain_partition("md.chain", chain))
        written = [i for _, got in log[tp] for i in got if CHAIN_OF[layout[i][1]] == chain]
        expected = [i for i, (_, symbol) in enumerate(layout) if CHAIN_OF.get(symbol) == chain]
        assert written == expected, f"chain {chain}: lost, duplicated or reordered"


def test_chain_frames_hold_a_chains_records_of_every_symbol_and_type_up_to_the_caps() -> None:
    framer = ChainFramer(FrameLimits(max_records=2), CHAIN_OF.__getitem__)
    layout = [("md.trades", "A"), ("md.trades", "A"), ("md.trades", "A"), ("md.mbp-1", "C")]
    layout += [("md.trades", "D"), ("md.trades", "A"), ("md.mbp-1", "C"), ("md.mbp-1", "C")]
    for i, (topic, symbol) in enumerate(layout):
        framer.add("md.chain", symbol, i, record(i, topic, symbol))
    frames = framer.drain()
    assert [(f.symbol, f.first, f.position, f.count, f.symbols) for f in frames] == [
        ("A", 0, 1, 2, ("A",)),
        ("A", 2, 3, 2, ("A", "C")),
        ("D", 4, 4, 1, ("D",)),
        ("A", 5, 6, 2, ("A", "C")),
        ("A", 7, 7, 1, ("C",)),
    ]
    assert [f.runs for f in frames] == [
        (FrameRun(0, 2),),
        (FrameRun(0, 1), FrameRun(1, 1)),
        (FrameRun(0, 1),),
        (FrameRun(0, 1), FrameRun(1, 1)),
        (FrameRun(0, 1),),
    ]
    big = ChainFramer(FrameLimits(), CHAIN_OF.__getitem__)
    for i, (topic, symbol) in enumerate(layout):
        big.add("md.chain", symbol, i, record(i, topic, symbol))
    a, d = big.drain()  # uncapped: one frame per chain and batch
    assert (a.symbol, a.count, a.symbols, d.symbol, d.count) == ("A", 7, ("A", "C"), "D", 1)
    assert [(r.symbol, r.count) for r in a.runs] == [(0, 3), (1, 1), (0, 1), (1, 2)]


def test_frames_respect_caps_and_keep_symbol_order() -> None:
    framer = Framer(FrameLimits(max_records=2, max_bytes=10_000))
    for i, symbol in enumerate("ABAAAB"):
        framer.add("md.trades", symbol, i, record(i, "md.trades", symbol))
    frames = framer.drain()
    assert [(f.symbol, f.first, f.position, f.count) for f in frames] == [
        ("A", 0, 2, 2),
        ("B", 1, 5, 2),
        ("A", 3, 4, 2),
    ]
    assert framer.drain() == []


def test_byte_cap_splits_frames() -> None:
    rec = record(0, "md.trades", "A")
    framer = Framer(FrameLimits(max_records=100, max_bytes=len(rec) * 2))
    for i in range(5):
        framer.add("md.trades", "A", i, record(i, "md.trades", "A"))
    assert [f.count for f in framer.drain()] == [2, 2, 1]


def test_single_records_make_single_record_frames() -> None:
    planner = FramePlanner(route, partition_of, ResumeState(), FrameLimits())
    for i in range(3):
        (planned,) = planner.plan([record(i, "md.trades", "A")], i)
        assert (planned.frame.count, planned.frame.position, planned.batch) == (1, i, i)
