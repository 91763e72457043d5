"""The API process: the materializer in a thread, the HTTP server in the main one."""

import logging
import socket
import threading
from pathlib import Path
from typing import Final

import uvicorn

from api.app import ApiState, create_app
from api.materializer import Materializer
from api.metrics import ApiMetrics
from api.store import Store
from ticklane.settings import Settings

log = logging.getLogger(__name__)

URL_FILE: Final = "server.url"
"""Written beside the store once the server listens: its URL, for scripts and the demo."""


def store_path(settings: Settings) -> Path:
    """Where the API keeps its store."""
    return settings.api.store_path or settings.data_dir / "api" / "api.sqlite"


class ApiService:
    """Store, materializer and HTTP server of one API process."""

    def __init__(self, settings: Settings, bootstrap: str) -> None:
        self.settings = settings
        self.store = Store(store_path(settings))
        self.metrics = ApiMetrics()
        self.materializer = Materializer(settings, bootstrap, self.store, self.metrics)
        api = settings.api
        self.state = ApiState(
            self.store,
            self.metrics,
            self.materializer,
            page_size=min(api.page_size, api.max_page_size),
            max_page_size=api.max_page_size,
            ready_max_lag=api.ready_max_lag,
        )
        self.app = create_app(self.state)

    def serve(self, stop: threading.Event) -> None:
        """Materialize and answer until `stop` is set (or the server stops)."""
        api = self.settings.api
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((api.host, api.port))
        host, port = sock.getsockname()[:2]
        config = uvicorn.Config(self.app, log_level="warning", lifespan="off", access_log=False)
        server = uvicorn.Server(config)
        reader = threading.Thread(
            target=self._materialize, args=(stop,), name="materializer", daemon=True
        )
        reader.start()

        def stop_server() -> None:
            stop.wait()
            server.should_exit = True

        threading.Thread(target=stop_server, name="api-stop", daemon=True).start()
        url = f"http://{host}:{port}"
        url_file = self.store.path.parent / URL_FILE
        url_file.write_text(url + "\n")
        log.info("api answering at %s", url)
        print(f"api answering at {url}", flush=True)
        try:
            server.run(sockets=[sock])
        finally:
            stop.set()
            reader.join(timeout=10)
            url_file.unlink(missing_ok=True)

    def _materialize(self, stop: threading.Event) -> None:
        try:
            self.materializer.run(stop)
        except Exception:
            log.exception("the materializer stopped; the API answers from its store as it is")
            self.materializer.error = "the materializer stopped (see the log)"

    def close(self) -> None:
        """Close the Kafka clients and the store."""
        self.materializer.close()
        self.store.close()
