"""The web dashboard for owners and supporters: static files under ``/ui/``.

The pages are plain HTML and ES modules that call the ``/v1/app`` routes with the signed-in
user's token, so they show exactly what the app shows and access control stays the API's.
The charting library (uPlot) is vendored under ``static/vendor`` (see ``web/package.json``);
nothing is loaded from the network at run time.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from fastapi import APIRouter, Depends, FastAPI
from fastapi.responses import FileResponse, RedirectResponse
from fastapi.staticfiles import StaticFiles

from api.deps import public

DASHBOARD_PATH = "/ui/"
router = APIRouter(tags=["dashboard"])


def static_dir() -> Path:
    """The directory of the dashboard's files inside the installed package."""
    return Path(str(resources.files("api") / "static"))


@router.get("/", include_in_schema=False, dependencies=[Depends(public)])
def root() -> RedirectResponse:
    """The service's front page is the dashboard."""
    return RedirectResponse(DASHBOARD_PATH)


# Pages the account mails link to; the token follows in the URL fragment (``#token=...``),
# which the browser keeps to itself, so only the page's POST carries it to the API.
MAILED_PAGES = ("confirm-email", "reset-password")


def _index() -> FileResponse:
    return FileResponse(static_dir() / "index.html", headers={"Cache-Control": "no-store"})


for _page in MAILED_PAGES:
    router.add_api_route(
        f"{DASHBOARD_PATH}{_page}",
        _index,
        methods=["GET"],
        include_in_schema=False,
        dependencies=[Depends(public)],
    )


def mount_dashboard(app: FastAPI) -> None:
    """Serve the dashboard's static files under :data:`DASHBOARD_PATH` (public, no data)."""
    app.mount(DASHBOARD_PATH.rstrip("/"), StaticFiles(directory=static_dir(), html=True), name="ui")
