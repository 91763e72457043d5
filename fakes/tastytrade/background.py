"""The fake TastyTrade server in a background thread, for tests (`fakes/serving.py`).

with FakeTastytradeServer(tmp_path) as fake:
    session = Session("secret", "refresh", transport=fake.transport())
"""

from pathlib import Path

from executors.brokers.transport import RewritingTransport
from fakes.serving import BackgroundServer
from fakes.tastytrade.server import FakeConfig, FakeTastytrade
from ticklane.kafka import ClientConfig


class FakeTastytradeServer(BackgroundServer[FakeTastytrade, FakeConfig]):
    """The fake in a daemon thread named `fake-tastytrade`, on a free loopback port."""

    thread_name = "fake-tastytrade"

    def __init__(
        self,
        data_dir: Path,
        config: FakeConfig | None = None,
        *,
        port: int = 0,
        kafka: tuple[ClientConfig, list[str]] | None = None,
    ) -> None:
        super().__init__(data_dir, config or FakeConfig(), port=port, kafka=kafka)

    def build(self, kafka: tuple[ClientConfig, list[str]] | None) -> FakeTastytrade:
        """The fake venue."""
        return FakeTastytrade(self.config, self.data_dir, kafka=kafka)

    def transport(self) -> RewritingTransport:
        """A transport that sends the SDK's requests here (the adapters' own, for `api_url`)."""
        return RewritingTransport(self.url)
