"""Options on futures at TastyTrade: Databento's `ESM4 P5230` through the real SDK and the fake.

The fake's instruments are the real Databento definitions of ESM4 and two of its puts
(`tests/data/databento`), turned into instruments as the fake turns md.definition records. The
adapter finds an option in its future's option chain (`symbols.resolve`); nothing here or there
spells a TastyTrade symbol but the assertions on what the fake answered.
"""

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path

import httpx2
import pytest
from pydantic import SecretStr
from tastytrade import Session
from tastytrade.instruments import (
    FutureOption,
    NestedFutureOptionChain,
    get_future_option_chain,
)
from tastytrade.order import InstrumentType

from executors.brokers.base import BrokerError, VenueStatus
from executors.brokers.tastytrade import symbols
from executors.brokers.tastytrade.client import TastytradeBroker
from executors.brokers.tastytrade.config import Credentials
from fakes.tastytrade.background import FakeTastytradeServer
from fakes.tastytrade.instruments import from_definition
from fakes.tastytrade.record import Record
from fakes.tastytrade.server import FakeConfig
from tests.conftest import poll_until
from tests.data import databento_dir
from ticklane import dbn
from ticklane.dbn_files import DbnFile
from ticklane.market import InstrumentDef
from ticklane.settings import TastytradeSettings
from ticklane.trading import Fill, Order, OrderStatus, OrderType, Side

pytestmark = [
    pytest.mark.integration,
    # The SDK posts its JSON as `data=`, which httpx2 deprecates; not ours to change.
    pytest.mark.filterwarnings("ignore:Use 'content=<...>':DeprecationWarning"),
]

SCALE = 1_000_000_000
PUT = "ESM4 P5230"
DEFINITIONS = (
    "glbx-esm4-20240509.definition.dbn.zst",  # ESM4, NQM4
    "glbx-esm4-options-20240509.definition.dbn.zst",  # ESM4 P5230, ESM4 P5250
)


def definitions() -> list[InstrumentDef]:
    found: list[InstrumentDef] = []
    for name in DEFINITIONS:
        records = [r for batch in DbnFile(databento_dir() / name).batches() for r in batch.records]
        found += dbn.to_instruments(b"".join(records))
    return found


@pytest.fixture
def fake(tmp_path: Path) -> Iterator[FakeTastytradeServer]:
    instruments = [i for d in definitions() if (i := from_definition(d)) is not None]
    with FakeTastytradeServer(tmp_path / "fake", FakeConfig()) as server:
        server.call(lambda f: [f.venue.catalogue.add(i) for i in instruments])
        yield server


@pytest.fixture
def broker(fake: FakeTastytradeServer) -> Iterator[TastytradeBroker]:
    settings = TastytradeSettings(api_url=fake.url, timeout_s=1.0)
    adapter = TastytradeBroker(settings, Credentials(SecretStr("secret"), SecretStr("refresh")))
    try:
        yield adapter
    finally:
        adapter.close()


def resolve(fake: FakeTastytradeServer, symbol: str) -> symbols.Instrument:
    async def scenario() -> symbols.Instrument:
        async with Session("secret", "refresh", transport=fake.transport()) as session:
            return await symbols.resolve(session, symbol, symbols.kind_of(symbol))

    return asyncio.run(scenario())


def buy(symbol: str, quantity: int, limit: int) -> Order:
    return Order(
        client_order_id="ord-fo-0001",
        signal_id="sig-fo-0001",
        strategy="s1",
        symbol=symbol,
        side=Side.BUY,
        quantity=quantity,
        order_type=OrderType.LIMIT,
        status=OrderStatus.PENDING_SUBMIT,
        ts_event=time.time_ns(),
        limit_price=limit,
    )


def test_a_cme_option_resolves_to_its_chain_entry_and_the_chains_ticks(fake) -> None:
    async def chain_put() -> tuple[str, FutureOption]:
        async with Session("secret", "refresh", transport=fake.transport()) as session:
            chain = await NestedFutureOptionChain.get(session, "/ES")
            [expiration] = [
                e
                for c in chain.option_chains
                for e in c.expirations
                if e.option_contract_symbol == "ESM4"
            ]
            [strike] = [k for k in expiration.strikes if k.strike_price == 5230]
            flat = await get_future_option_chain(session, "ES")
            assert sorted(o.symbol for o in flat[expiration.expiration_date]) == [
                strike.put,
                "./ESM4 ESM4  240621P5250",
            ]
            return strike.put, await FutureOption.get(session, strike.put)

    listed, option = asyncio.run(chain_put())
    instrument = resolve(fake, PUT)
    assert instrument.kind is InstrumentType.FUTURE_OPTION
    assert instrument.venue_symbol == listed == option.symbol == "./ESM4 ESM4  240621P5230"
    assert (option.underlying_symbol, option.strike_price, option.multiplier) == ("/ESM4", 5230, 50)
    assert option.exchange_symbol == PUT
    # The chain's bands: 0.05 below a 5.00 premium, 0.25 from there up.
    assert instrument.tick_at(98 * SCALE) == SCALE // 4
    assert instrument.tick_at(3 * SCALE) == SCALE // 20


def test_an_unknown_strike_is_refused_naming_the_symbol(fake, broker) -> None:
    with pytest.raises(symbols.SymbolError, match=r"ESM4 P5240: .*/ESM4 has no put at strike 5240"):
        resolve(fake, "ESM4 P5240")
    with pytest.raises(BrokerError, match="ESM4 P5240"):
        broker.submit(buy("ESM4 P5240", 1, 98 * SCALE))
    assert broker.tick_size("ESM4 P5240", 98 * SCALE) is None
    record = Record(fake.data_dir, read_only=True)
    try:
        assert record.orders() == []
    finally:
        record.close()


def test_an_order_for_a_cme_option_is_placed_recorded_and_filled(fake, broker) -> None:
    assert broker.tick_size(PUT, 98 * SCALE) == SCALE // 4
    assert not broker.caps_for(PUT).can_reverse_in_one_order
    # 98.30 rounds down to the 0.25 tick a buyer may pay: 98.25.
    placed = broker.submit(buy(PUT, 2, 98_300_000_000))
    assert placed.status is VenueStatus.ACCEPTED
    # The first bbo-1m quote of ESM4 P5230 on 2024-05-09 (glbx-esm4-options-20240509).
    tick = {"ts_event": time.time_ns(), "bid": 97_500_000_000, "ask": 98_250_000_000}
    response = httpx2.post(f"{fake.url}/__fake/ticks", json={"symbol": PUT, "ticks": [tick]})
    assert response.status_code == 200, response.text

    seen: list[Fill] = []

    def filled() -> bool:
        seen.extend(u for u in broker.updates() if isinstance(u, Fill))
        return sum(f.quantity for f in seen if f.client_order_id == "ord-fo-0001") == 2

    poll_until(filled, timeout_s=20, interval_s=0.05, what="the option's fill pushed")
    assert {(f.symbol, f.side, f.price) for f in seen} == {(PUT, Side.BUY, 98_250_000_000)}
    assert broker.positions() == {PUT: 2}
    record = Record(fake.data_dir, read_only=True)
    try:
        [received] = record.orders()
        [fill] = record.fills()
    finally:
        record.close()
    assert received.external_identifier == "ord-fo-0001"
    assert [
        (leg.instrument_type, leg.symbol, leg.action, leg.quantity) for leg in received.legs
    ] == [("Future Option", "./ESM4 ESM4  240621P5230", "Buy to Open", 2)]
    assert (received.price, received.price_effect) == (98_250_000_000, "Debit")
    assert (fill.symbol, fill.quantity, fill.price) == (
        "./ESM4 ESM4  240621P5230",
        2,
        98_250_000_000,
    )
