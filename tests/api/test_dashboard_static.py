"""The dashboard's files: served under /ui/, shipped in the package, nothing from the network."""

from __future__ import annotations

import re

from api.routers.dashboard import static_dir
from tests.api.conftest import Api


def test_front_page_redirects_to_the_dashboard(api: Api) -> None:
    response = api.client.get("/", follow_redirects=False)
    assert response.status_code == 307
    assert response.headers["location"] == "/ui/"
    page = api.client.get("/ui/")
    assert page.status_code == 200
    assert '<script type="module" src="js/main.js">' in page.text
    for asset in ("js/main.js", "vendor/uPlot.iife.min.js", "vendor/uPlot.min.css", "style.css"):
        assert api.client.get(f"/ui/{asset}").status_code == 200, asset


def test_pages_load_nothing_from_other_hosts() -> None:
    own = [static_dir() / "index.html", static_dir() / "style.css"]
    own += sorted((static_dir() / "js").glob("*.js"))
    for path in own:
        # the SVG namespace is a name and an input's placeholder an example, not requests
        text = path.read_text().replace('"http://www.w3.org/2000/svg"', "")
        text = re.sub(r'placeholder: "[^"]*"', "", text)
        assert not re.search(r"https?://", text), path
    # Every /v1 path the pages call is an /v1/app or /v1/auth route (what the app uses).
    calls = set()
    for path in own:
        calls |= set(re.findall(r"[\"`](/v1/[a-z]+)", path.read_text()))
    assert calls <= {"/v1/app", "/v1/auth"}, calls
