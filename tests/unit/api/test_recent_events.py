"""The stream's shared ring of recent events: what it serves and when a client must read the
store instead (`api.app.RecentEvents`), over a real store."""

import asyncio

from api.app import RecentEvents
from api.store import Located, Store
from ticklane.trading import Fill, Side


def fills(store: Store, first: int, count: int) -> None:
    """`count` fills as the next changes, read from `fills` partition 0 at `first` on."""
    batch = [
        Located(0, n, Fill(f"f{n}", "c1", "v1", "ES", Side.BUY, 1, 10**11, n, strategy="s1"))
        for n in range(first, first + count)
    ]
    store.apply(batch, {("fills", 0): first + count})


def seqs(served: list[tuple[int, str]] | None) -> list[int] | None:
    return None if served is None else [seq for seq, _ in served]


def test_a_client_resuming_just_before_the_present_reads_the_store_for_what_it_missed(tmp_path):
    store = Store(tmp_path / "api.sqlite")
    try:
        fills(store, 0, 3)
        recent = RecentEvents(store)

        async def follow() -> None:
            assert seqs(await recent.after(3)) == []  # the ring starts at the present: 3
            fills(store, 3, 1)
            assert seqs(await recent.after(3)) == [4]
            # Change 3 came before the ring: a client that saw only 2 reads it from the store
            # (served from the ring, it would get 4 and never 3).
            assert await recent.after(2) is None
            assert await recent.after(0) is None

        asyncio.run(follow())
    finally:
        store.close()


def test_a_full_ring_drops_its_oldest_and_sends_older_clients_to_the_store(tmp_path):
    store = Store(tmp_path / "api.sqlite")
    try:
        recent = RecentEvents(store, size=3)

        async def follow() -> None:
            assert seqs(await recent.after(0)) == []
            fills(store, 0, 5)
            texts = await recent.after(2)
            assert seqs(texts) == [3, 4, 5]  # changes 1 and 2 dropped: 2 is its base
            assert texts is not None
            assert all(text.startswith(f"id: {seq}\nevent: fill\n") for seq, text in texts)
            assert seqs(await recent.after(4)) == [5]
            assert await recent.after(1) is None  # it needs 2, which the ring dropped

        asyncio.run(follow())
    finally:
        store.close()
