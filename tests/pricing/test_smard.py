"""SMARD reader on the real 15-minute and hourly week (25-hour day, negative prices)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pandas as pd
import pytest

from core.timeindex import local_day
from pricing.bundled import data_path
from pricing.errors import PriceDataError, PricingError
from pricing.series import to_step
from pricing.smard import get_smard_prices, read_smard_json

QH = data_path("prices", "smard_4169_DE-LU_quarterhour_1760911200000.json")
HOUR = data_path("prices", "smard_4169_DE-LU_hour_1760911200000.json")


def test_quarter_hour_week() -> None:
    spot = read_smard_json(QH.read_text(), "quarterhour")
    assert len(spot) == 676  # 7 days + the extra hour of 26 Oct 2025
    assert spot.index[0] == pd.Timestamp("2025-10-19T22:00Z")
    assert to_step(spot, local_day("2025-10-26")).notna().sum() == 100
    assert (spot < 0).sum() > 0
    assert spot.min() > -0.5 and spot.max() < 1.0  # EUR/kWh, not EUR/MWh


def test_quarter_hours_average_to_smards_own_hourly_values() -> None:
    quarters = read_smard_json(QH.read_text(), "quarterhour")
    hourly_file = read_smard_json(HOUR.read_text(), "hour")
    hours = pd.date_range("2025-10-19T22:00Z", periods=169, freq="h")
    ours = to_step(quarters, hours)
    theirs = to_step(hourly_file, hours)
    # SMARD rounds its hourly means to 0.01 EUR/MWh
    assert (ours - theirs).abs().max() < 0.00001


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("{not json", "malformed"),
        ('{"meta_data": {}}', "series"),
        ('{"series": [[1760911200000, "abc"]]}', "malformed"),
        ('{"series": []}', "empty"),
    ],
)
def test_malformed_json(text: str, message: str) -> None:
    with pytest.raises(PriceDataError, match=message):
        read_smard_json(text, "quarterhour")


def test_null_values_are_gaps() -> None:
    spot = read_smard_json(
        '{"series": [[1760911200000, 82.95], [1760912100000, null]]}', "quarterhour"
    )
    assert spot.tolist() == [0.08295]


@pytest.fixture
def smard_server(tmp_path: Path) -> Iterator[str]:
    """A real HTTP server on 127.0.0.1 serving SMARD's directory layout from the fixtures."""
    folder = tmp_path / "4169" / "DE-LU"
    folder.mkdir(parents=True)
    (folder / "index_quarterhour.json").write_text('{"timestamps": [1760306400000, 1760911200000]}')
    (folder / "4169_DE-LU_quarterhour_1760911200000.json").write_text(QH.read_text())
    # the week before is published with gaps only
    (folder / "4169_DE-LU_quarterhour_1760306400000.json").write_text(
        '{"series": [[1760306400000, null]]}'
    )
    handler = partial(SimpleHTTPRequestHandler, directory=str(tmp_path))
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_get_smard_prices_over_http(smard_server: str) -> None:
    start = pd.Timestamp("2025-10-25T22:00Z")
    spot = get_smard_prices(start, start + pd.Timedelta(hours=25), base_url=smard_server)
    assert len(spot) == 100
    expected = read_smard_json(QH.read_text(), "quarterhour")
    assert spot.equals(expected[start : start + pd.Timedelta(hours=24, minutes=45)])


def test_http_error_is_a_pricing_error(smard_server: str) -> None:
    start = pd.Timestamp("2025-10-25T22:00Z")
    with pytest.raises(PricingError, match="HTTP 404"):
        get_smard_prices(
            start, start + pd.Timedelta(hours=1), resolution="hour", base_url=smard_server
        )
