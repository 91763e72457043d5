"""The dashboard: the statically exported web app (`web/out`, built by `make web`) served at `/`.

Mounted after every API route, so the API's routes always win. A page path the export does
not hold (a deep link such as `/chart/?symbol=ES` reloaded, or a mistyped one) falls back to
the app's `index.html`, which routes on the client; a path under `/api/` that no route
answers stays a JSON 404, never the app. Without a build, `/` says how to make one.
"""

from pathlib import Path
from typing import Final

from fastapi import FastAPI
from fastapi.responses import HTMLResponse, JSONResponse, Response
from starlette.exceptions import HTTPException
from starlette.staticfiles import StaticFiles
from starlette.types import Scope

DEFAULT_DIR: Final = Path(__file__).resolve().parent.parent / "web" / "out"
"""Where `make web` writes the export, in a checkout."""
API_PATHS: Final = ("api/", "metrics", "health", "ready", "docs", "redoc", "openapi.json")
NOT_BUILT: Final = (
    "<!doctype html><title>ticklane</title><p>The dashboard is not built here. Run "
    "<code>make web</code> (or set <code>api.web_dir</code>); the API is at "
    '<a href="/docs">/docs</a>.</p>'
)


class _App(StaticFiles):
    """Static files, with `index.html` for any page path the export does not hold."""

    async def get_response(self, path: str, scope: Scope) -> Response:
        try:
            return await super().get_response(path, scope)
        except HTTPException as exc:
            if exc.status_code != 404:
                raise
            if path.startswith(API_PATHS):
                return JSONResponse({"detail": "Not Found"}, status_code=404)
            if "." in path.rsplit("/", 1)[-1]:
                raise  # a missing file (script, image): a plain 404, not the page
            return await super().get_response("index.html", scope)


def mount_dashboard(app: FastAPI, directory: Path | None) -> bool:
    """Serve the export in `directory` (default: the checkout's `web/out`) at `/`; whether
    it was found."""
    root = directory or DEFAULT_DIR
    if (root / "index.html").is_file():
        app.mount("/", _App(directory=root, html=True), name="dashboard")
        return True

    @app.get("/", include_in_schema=False)
    def not_built() -> HTMLResponse:
        return HTMLResponse(NOT_BUILT)

    return False
