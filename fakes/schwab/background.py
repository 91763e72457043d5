"""The fake Schwab server in a background thread, for tests (`fakes/serving.py`).

with FakeSchwabServer(tmp_path) as fake:
    client = sdk_client(fake.url, fake.token_file(), write)   # fakes/schwab/client.py
"""

import time
from pathlib import Path
from typing import Any

from fakes.schwab.auth import token_file
from fakes.schwab.server import FakeConfig, FakeSchwab
from fakes.serving import BackgroundServer
from ticklane.kafka import ClientConfig


class FakeSchwabServer(BackgroundServer[FakeSchwab, FakeConfig]):
    """The fake in a daemon thread named `fake-schwab`, on a free loopback port."""

    thread_name = "fake-schwab"

    def __init__(
        self,
        data_dir: Path,
        config: FakeConfig | None = None,
        *,
        port: int = 0,
        kafka: tuple[ClientConfig, list[str]] | None = None,
    ) -> None:
        super().__init__(data_dir, config or FakeConfig(), port=port, kafka=kafka)

    def build(self, kafka: tuple[ClientConfig, list[str]] | None) -> FakeSchwab:
        """The fake venue."""
        return FakeSchwab(self.config, self.data_dir, kafka=kafka)

    def token_file(self, *, age_s: float = 0.0, access_expired: bool = False) -> dict[str, Any]:
        """A schwab-py token file from a login `age_s` seconds ago (as `POST /__fake/tokens`)."""

        def login(fake: FakeSchwab) -> dict[str, Any]:
            now = time.time()
            grant = fake.tokens.login(now, age_s=age_s, access_expired=access_expired)
            return token_file(grant, now - age_s)

        return self.call(login)
