"""Open-Meteo reader on a stored real response, the weather feed over a real HTTP round trip on
127.0.0.1, the per-cell cache, its staleness limit and the flagged clear-sky fallback."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import pandas as pd
import pytest

from adapters.clock import SimClock
from adapters.store import StoreSettings, make_store
from adapters.weather import WeatherDataError, read_open_meteo_json
from optimizer.forecast import PvSystem, clear_sky_weather, pv_power
from pricing import load_tariff
from scheduler.clock import SteppedClock
from scheduler.controller import SiteConfig, SiteController
from scheduler.feeds import PriceFeed
from scheduler.weather import CLEARSKY, FORECAST, OpenMeteoProvider, WeatherFeed

DATA = Path(__file__).resolve().parents[1] / "data"
BERLIN = DATA / "open_meteo_forecast_berlin_2023-01-01_hourly.json"
LAT, LON = 52.52, 13.41


class _Clock:
    def __init__(self, now: str) -> None:
        self.now = pd.Timestamp(now)

    def __call__(self) -> pd.Timestamp:
        return self.now


@pytest.fixture
def open_meteo() -> Iterator[tuple[str, list[dict[str, list[str]]]]]:
    """A real HTTP server on 127.0.0.1 answering /v1/forecast with the stored response."""
    requests: list[dict[str, list[str]]] = []
    body = BERLIN.read_bytes()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            url = urlparse(self.path)
            requests.append(parse_qs(url.query))
            ok = url.path == "/v1/forecast"
            self.send_response(200 if ok else 404)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body) if ok else 0))
            self.end_headers()
            if ok:
                self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}", requests
    server.shutdown()
    server.server_close()


def test_reader_on_the_stored_response() -> None:
    raw = json.loads(BERLIN.read_text())["hourly"]
    frame = read_open_meteo_json(BERLIN.read_text())
    assert len(frame) == 48 and str(frame.index.tz) == "UTC"
    # radiation stamped T is the mean of [T - 1 h, T): the row starts an hour earlier
    assert frame.index[0] == pd.Timestamp("2022-12-31T23:00Z")
    assert frame["ghi_wm2"].tolist() == raw["shortwave_radiation"]
    # GHI = direct horizontal + diffuse, in Open-Meteo's own numbers
    direct = frame["ghi_wm2"] - frame["dhi_wm2"]
    assert direct.tolist() == pytest.approx(raw["direct_radiation"])
    # the brightest hour holds Berlin's solar noon (about 11:10 UTC on 1 January)
    assert frame["ghi_wm2"].idxmax() == pd.Timestamp("2023-01-01T11:00Z")
    # temperature and wind: the interval mean of the two instants around it; km/h -> m/s
    t = raw["temperature_2m"]
    assert frame["temp_air_c"].iloc[1] == pytest.approx((t[0] + t[1]) / 2)
    w = raw["wind_speed_10m"]
    assert frame["wind_speed_ms"].iloc[1] == pytest.approx((w[0] + w[1]) / 2 / 3.6)
    assert frame.attrs["latitude"] == 52.52


@pytest.mark.parametrize(
    ("edit", "field"),
    [
        (lambda d: d["hourly"].pop("diffuse_radiation"), "hourly.diffuse_radiation"),
        (lambda d: d["hourly"]["temperature_2m"].pop(), "hourly.temperature_2m"),
        (lambda d: d["hourly_units"].update(temperature_2m="°F"), "hourly_units.temperature_2m"),
        (lambda d: d["hourly_units"].update(wind_speed_10m="kn"), "hourly_units.wind_speed_10m"),
        (lambda d: d.pop("hourly"), "hourly"),
        (lambda d: d["hourly"].update(time=["yesterday"] * 48), "hourly.time"),
    ],
)
def test_malformed_responses_name_the_field(edit: object, field: str) -> None:
    doc = json.loads(BERLIN.read_text())
    edit(doc)  # type: ignore[operator]
    with pytest.raises(WeatherDataError, match=field.replace(".", r"\.")):
        read_open_meteo_json(json.dumps(doc))


def test_feed_fetches_per_cell_over_http(open_meteo: tuple[str, list]) -> None:
    url, requests = open_meteo
    clock = _Clock("2023-01-01T06:00Z")
    feed = WeatherFeed(OpenMeteoProvider(url, timeout_s=5), clock)
    index = pd.date_range("2023-01-01T00:00Z", periods=96, freq="15min")
    before = feed.weather(index, LAT, LON)  # never waits on the network
    assert (before["source"] == CLEARSKY).all() and requests == []
    feed.weather(index, 52.53, 13.42)  # a neighbour in the same 0.1-degree cell
    assert feed.refresh_due() == 1 and len(requests) == 1
    query = requests[0]
    assert query["latitude"] == ["52.5"] and query["longitude"] == ["13.4"]
    assert "shortwave_radiation" in query["hourly"][0] and query["wind_speed_unit"] == ["ms"]
    assert query["past_days"] == ["14"]  # the heat-store fit's window, after a restart too
    after = feed.weather(index, LAT, LON)
    assert (after["source"] == FORECAST).all()
    # hourly means held over their quarter-hours
    assert after.loc["2023-01-01T11:00Z":"2023-01-01T11:45Z", "ghi_wm2"].tolist() == [111.0] * 4
    # not due again within the hour; stale after max_age: back to the fallback
    clock.now += pd.Timedelta(minutes=30)
    assert feed.refresh_due() == 0
    clock.now += pd.Timedelta(hours=13)
    assert (feed.weather(index, LAT, LON)["source"] == CLEARSKY).all()
    # a horizon reaching past the forecast: forecast where it covers, flagged fallback after
    late = pd.date_range("2023-01-02T20:00Z", periods=32, freq="15min")
    clock.now = pd.Timestamp("2023-01-02T19:00Z")
    feed.refresh_due()
    mixed = feed.weather(late, LAT, LON)
    # the last row is [22:00, 23:00) (stamped 23:00)
    assert (mixed["source"].iloc[:12] == FORECAST).all()
    assert (mixed["source"].iloc[12:] == CLEARSKY).all()


def test_forecast_feeds_pv_through_pvlib(open_meteo: tuple[str, list]) -> None:
    url, _ = open_meteo
    feed = WeatherFeed(OpenMeteoProvider(url, timeout_s=5), _Clock("2023-01-01T06:00Z"))
    feed.refresh(LAT, LON)
    index = pd.date_range("2023-01-01T00:00Z", periods=96, freq="15min")
    weather = feed.weather(index, LAT, LON)
    system = PvSystem(peak_kw=8.0, latitude=LAT, longitude=LON)
    pv = pv_power(weather, system)
    clear = pv_power(clear_sky_weather(index, system), system)
    # an overcast New Year's Day: some yield, far under clear sky, none at night
    day_kwh, clear_kwh = pv.sum() / 4, clear.sum() / 4
    assert 0.3 < day_kwh < 0.6 * clear_kwh
    assert pv.loc[:"2023-01-01T06:45Z"].sum() == 0 and pv.loc["2023-01-01T16:00Z":].sum() == 0


def test_network_off_is_the_flagged_clear_sky() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    provider = OpenMeteoProvider(f"http://127.0.0.1:{port}", 2)
    feed = WeatherFeed(provider, _Clock("2026-12-05T06:00Z"))
    index = pd.date_range("2026-12-05T00:00Z", periods=96, freq="15min")
    feed.register(LAT, LON)
    assert feed.refresh_due() == 0
    fetched, error = feed.status(LAT, LON)
    assert fetched is None and "ConnectError" in error
    weather = feed.weather(index, LAT, LON)
    assert (weather["source"] == CLEARSKY).all()
    ghi = weather["ghi_wm2"]
    assert ghi.loc["2026-12-05T00:00Z"] == 0 and ghi.loc["2026-12-05T11:00Z"] > 100
    assert weather["temp_air_c"].between(-20, 15).all()  # December climatology


def test_a_controller_started_before_the_first_fetch_reads_the_whole_past_once(
    open_meteo: tuple[str, list], tmp_path: Path
) -> None:
    """A service (re)start: the controller's first heat fit comes before the feed's first
    fetch (nothing but the fallback then). Once the feed answers, the next fit takes every
    past outdoor temperature it has, not only the last day."""
    url, requests = open_meteo
    sim = SimClock("2023-01-02T21:00Z")
    now = lambda: pd.Timestamp(sim.now(), unit="s", tz="UTC")  # noqa: E731
    feed = WeatherFeed(OpenMeteoProvider(url, timeout_s=5), now)
    clock = SteppedClock(sim)
    store = make_store(StoreSettings(data_dir=tmp_path, sqlite_file="t.sqlite3"))
    config = SiteConfig("restart", learn_ev_sessions=False)
    prices = PriceFeed.bundled(
        load_tariff(config.home.tariff_path), config.home.export_rules(), now
    )
    ctl = SiteController(
        config, clock, store, prices, ThreadPoolExecutor(1), weather=feed.at(LAT, LON)
    )
    assert config.home.site.heat_pumps, "the typical home heats with a heat pump"

    def remembered() -> pd.Series:
        return ctl._heat_history()["t_out_c"].dropna()

    ctl._refit_heat()  # the first cycle: no forecast yet, climatology is no measurement
    assert remembered().empty and requests == []
    assert feed.refresh_due() == 1
    sim.advance(3600)
    ctl._refit_heat()
    known = remembered()
    # the file's hours (intervals [2022-12-31 23:00, 2023-01-02 23:00)) up to now, 22:00: all
    # 47 of them, not only the last 24
    assert known.index[0] == pd.Timestamp("2022-12-31T23:00Z")
    assert len(known) == 47 * 4
    hourly = read_open_meteo_json(BERLIN.read_text())["temp_air_c"]
    # the feed's quarter-hours, interpolated between the hourly means
    hours = known.resample("h").mean()
    assert (hours - hourly.reindex(hours.index)).abs().max() < 0.5
