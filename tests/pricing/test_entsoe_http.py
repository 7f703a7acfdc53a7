"""get_entsoe_* through entsoe-py against a real HTTP server on 127.0.0.1 (ENTSO-E's replies)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import entsoe.entsoe
import pandas as pd
import pytest

from pricing.entsoe import get_entsoe_generation, get_entsoe_prices
from pricing.errors import EntsoeAuthError, EntsoeNoDataError

DATA = Path(__file__).resolve().parents[1] / "data"
REPLIES = {
    # token -> (HTTP status, content type, body file)
    "good": (
        200,
        "text/xml",
        "entsoe_A44_ES_day_ahead_2025-09-29_to_2025-10-02_PT60M_to_PT15M.xml",
    ),
    "gen": (200, "text/xml", "entsoe_A75_LU_generation_per_type_2024-05-21_to_2024-05-24.xml"),
    "nodata": (200, "text/xml", "entsoe_acknowledgement_no_data.xml"),
    "bad": (401, "text/html", None),
}


class _Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        query = parse_qs(urlparse(self.path).query)
        status, ctype, name = REPLIES[query["securityToken"][0]]
        body = (DATA / name).read_bytes() if name else b"<html><body>Unauthorized</body></html>"
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def fake_entsoe(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    # entsoe-py reads its endpoint from this module global (ENTSOE_ENDPOINT_URL at import)
    monkeypatch.setattr(entsoe.entsoe, "URL", f"http://127.0.0.1:{server.server_address[1]}/api")
    yield
    server.shutdown()
    server.server_close()


START = pd.Timestamp("2025-09-28T22:00Z")
END = pd.Timestamp("2025-10-02T22:00Z")


def test_prices_through_entsoe_py(fake_entsoe: None) -> None:
    spot = get_entsoe_prices("good", "ES", START, END, timeout_s=5)
    assert len(spot) == 4 * 96 and spot.notna().all()


def test_generation_through_entsoe_py(fake_entsoe: None) -> None:
    gen = get_entsoe_generation("gen", "LU", START, END, timeout_s=5)
    assert "Solar" in gen.columns


def test_no_data_reply_is_typed(fake_entsoe: None) -> None:
    with pytest.raises(EntsoeNoDataError):
        get_entsoe_prices("nodata", "DE_LU", START, END, timeout_s=5)


def test_unauthorized_is_typed(fake_entsoe: None) -> None:
    with pytest.raises(EntsoeAuthError, match="token"):
        get_entsoe_prices("bad", "DE_LU", START, END, timeout_s=5)
