"""An engine over a real SQLite ledger and a paper venue fed ticks by hand (no Kafka)."""

from pathlib import Path

from executors.brokers.paper.matching import Tick
from executors.brokers.paper.store import VenueStore
from executors.brokers.paper.venue import PaperBroker
from executors.engine import Engine, EngineConfig
from executors.reconcile import reconcile
from executors.risk import RiskLimits
from executors.stores import open_sqlite
from ticklane.trading import Signal

T0 = 1_719_840_600_000_000_000
PX = 100 * 10**9
WALL0 = 1_719_900_000_000_000_000


def limits(**overrides):
    values = {
        "max_position": 100,
        "max_notional": 10**18,
        "max_orders_per_minute": 10_000,
        "daily_loss_limit": 1_000 * 10**9,
    } | overrides
    return RiskLimits(**values)


def quote(ts, bid=PX - 10**8, ask=PX + 10**8):
    return Tick(ts, bid=bid, ask=ask)


def signal(symbol, ts, target, strategy="s1", price=PX):
    return Signal.create(strategy, symbol, ts, target, reference_price=price)


class Rig:
    """Ledger + venue + engine in a directory; `restart()` rebuilds all three from disk."""

    def __init__(
        self,
        root: Path,
        *,
        reverse=True,
        lose_every=0,
        risk=None,
        wrap=None,
        settle_s=10.0,
        **config,
    ) -> None:
        self.root = root
        self.reverse = reverse
        self.lose_every = lose_every
        self.risk = risk or limits()
        self.wrap = wrap or (lambda venue, rig: venue)
        """Puts a venue of the test's own (faults) in front of the paper venue."""
        self.settle_ns = int(settle_s * 1e9)
        self.config = config
        """More EngineConfig fields (route, halt_on_foreign_positions)."""
        self.now = WALL0
        """The engine's wall clock: tests move it with `advance`."""
        self.open()

    def advance(self, seconds: float) -> None:
        self.now += int(seconds * 1e9)

    def open(self) -> None:
        self.ledger = open_sqlite(self.root / "ledger.sqlite")
        self.venue = PaperBroker(
            VenueStore(self.root / "paper"),
            reverse_in_one_order=self.reverse,
            lose_answer_every=self.lose_every,
        )
        broker = self.wrap(self.venue, self)
        config = EngineConfig(self.risk, settle_ns=self.settle_ns, **self.config)
        self.engine = Engine(self.ledger, broker, config, clock=lambda: self.now)
        self.engine.load()
        reconcile(self.engine)

    def close(self) -> None:
        self.ledger.close()
        self.venue.close()

    def restart(self) -> None:
        self.close()
        self.open()

    def ticks(self, symbol, *ticks) -> None:
        self.venue.on_ticks(symbol, list(ticks))
        self.engine.take_updates()
