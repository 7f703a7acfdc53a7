"""Weather per site location: a provider's forecast cached per grid cell, clear sky as fallback.

:meth:`WeatherFeed.weather` answers from memory (a cycle never waits on the network); a
background task calls :meth:`WeatherFeed.refresh_due` (blocking, run it in a thread) or
:meth:`WeatherFeed.run`, which fetches every cell a site asked for whose forecast is older than
``refresh_after``. Sites within one cell (0.1 deg, about 11 x 7 km in Germany) share one fetch.

A slot is served from the forecast when the cell's forecast covers it and is younger than
``max_age``; otherwise it is the flagged fallback: pvlib's clear-sky irradiance at the location
(the controller scales it with the site's measured PV, "clear sky x measured scale") and the
bundled climatological temperature (DWD test reference year by day of year). The ``source``
column says which: ``forecast`` or ``clearsky``.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import pandas as pd

from adapters import datasets
from adapters.weather import get_open_meteo_forecast
from core.timeindex import shareable
from optimizer.forecast import PvSystem, clear_sky_weather

log = logging.getLogger(__name__)
WEATHER_COLUMNS = datasets.WEATHER_COLUMNS
FORECAST, CLEARSKY = "forecast", "clearsky"
#: Clear-sky fallback frames kept (one per cell, three days each, ~30 kB).
MAX_CACHED_CELLS = 4096


class WeatherProvider(Protocol):
    """A forecast at a location: :data:`WEATHER_COLUMNS` on a UTC index (interval start)."""

    def forecast(self, latitude: float, longitude: float) -> pd.DataFrame: ...


@dataclass(frozen=True)
class OpenMeteoProvider:
    """Open-Meteo's ``/v1/forecast`` at ``base_url`` (a setting, so tests point it locally).

    ``past_days``: the days before today in every answer. Fourteen cover the heat-store fit's
    window (``scheduler.controller.HEAT_FIT_HISTORY``), so a controller started after a
    deploy refits on two weeks of outdoor temperatures instead of relearning for days
    (~14 kB more per cell in memory: hourly values).
    """

    base_url: str = "https://api.open-meteo.com"
    timeout_s: float = 20.0
    past_days: int = 14

    def forecast(self, latitude: float, longitude: float) -> pd.DataFrame:
        return get_open_meteo_forecast(
            latitude,
            longitude,
            base_url=self.base_url,
            timeout_s=self.timeout_s,
            past_days=self.past_days,
        )


def _utc_now() -> pd.Timestamp:
    return pd.Timestamp.now(tz="UTC")


@dataclass(frozen=True)
class _Entry:
    frame: pd.DataFrame
    fetched_at: pd.Timestamp


class WeatherFeed:
    """Forecasts per location cell with a staleness limit, and the clear-sky fallback.

    Parameters
    ----------
    provider : WeatherProvider or None
        None: no provider configured, every slot is the fallback.
    clock : callable
        Current UTC time.
    cell_deg : float
        Cell size [deg]; locations are rounded to the cell centre before fetching.
    refresh_after : pandas.Timedelta
        A cell's forecast is re-fetched when older than this.
    max_age : pandas.Timedelta
        A forecast older than this is not used (fallback instead).
    """

    def __init__(
        self,
        provider: WeatherProvider | None,
        clock: Callable[[], pd.Timestamp] = _utc_now,
        *,
        cell_deg: float = 0.1,
        refresh_after: pd.Timedelta | None = None,
        max_age: pd.Timedelta | None = None,
    ) -> None:
        self.provider = provider
        self.clock = clock
        self.cell_deg = cell_deg
        self.refresh_after = refresh_after or pd.Timedelta(hours=1)
        self.max_age = max_age or pd.Timedelta(hours=12)
        self._lock = threading.Lock()
        self._cells: dict[tuple[int, int], _Entry | None] = {}
        self._errors: dict[tuple[int, int], str] = {}
        self._fallbacks: dict[tuple[int, int], pd.DataFrame] = {}
        self._climate = datasets.weather_for_period

    # ------------------------------------------------------------------ cells
    def cell(self, latitude: float, longitude: float) -> tuple[int, int]:
        """The cell key of a location."""
        return (round(latitude / self.cell_deg), round(longitude / self.cell_deg))

    def _centre(self, cell: tuple[int, int]) -> tuple[float, float]:
        return cell[0] * self.cell_deg, cell[1] * self.cell_deg

    def register(self, latitude: float, longitude: float) -> None:
        """Have the location's cell fetched by the next :meth:`refresh_due`."""
        with self._lock:
            self._cells.setdefault(self.cell(latitude, longitude), None)

    # ------------------------------------------------------------------ fetching
    def refresh(self, latitude: float, longitude: float) -> bool:
        """Fetch the cell of a location now (blocking); False (and the old data) on failure."""
        key = self.cell(latitude, longitude)
        if self.provider is None:
            return False
        try:
            frame = self.provider.forecast(*self._centre(key))
        except Exception as exc:  # network, HTTP or parse errors: keep what we had
            with self._lock:
                self._errors[key] = f"{type(exc).__name__}: {exc}"
                self._cells.setdefault(key, None)
            log.warning("weather %s: %s", key, self._errors[key])
            return False
        with self._lock:
            # every site of the cell reads it, from cycle threads: warmed, see shareable
            self._cells[key] = _Entry(shareable(frame[WEATHER_COLUMNS].astype(float)), self.clock())
            self._errors.pop(key, None)
        return True

    def refresh_due(self) -> int:
        """Fetch every registered cell whose forecast is missing or older than
        ``refresh_after`` (blocking); returns how many were fetched successfully."""
        now = self.clock()
        with self._lock:
            due = [
                k
                for k, e in self._cells.items()
                if e is None or now - e.fetched_at > self.refresh_after
            ]
        return sum(self.refresh(*self._centre(k)) for k in due)

    async def run(
        self,
        every_s: float = 900.0,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        """Refresh due cells in a thread every ``every_s`` seconds, forever; never raises."""
        while True:
            try:
                await asyncio.to_thread(self.refresh_due)
            except Exception:
                log.exception("weather refresh failed")
            await sleep(every_s)

    # ------------------------------------------------------------------ reading
    def status(self, latitude: float, longitude: float) -> tuple[pd.Timestamp | None, str]:
        """(time of the cell's last successful fetch or None, last error or "")."""
        key = self.cell(latitude, longitude)
        with self._lock:
            entry, error = self._cells.get(key), self._errors.get(key, "")
        return (None if entry is None else entry.fetched_at), error

    def weather(self, index: pd.DatetimeIndex, latitude: float, longitude: float) -> pd.DataFrame:
        """:data:`WEATHER_COLUMNS` on ``index`` plus ``source`` (``forecast``/``clearsky``).

        Never touches the network; registers the location for the next refresh.
        """
        self.register(latitude, longitude)
        with self._lock:
            entry = self._cells.get(self.cell(latitude, longitude))
        out = self._fallback(index, latitude, longitude)
        if entry is None or self.clock() - entry.fetched_at > self.max_age:
            return out
        fc = _on_index(entry.frame, index)
        have = fc.notna().all(axis=1).to_numpy()
        out.loc[have, WEATHER_COLUMNS] = fc.loc[have, WEATHER_COLUMNS].to_numpy()
        out.loc[have, "source"] = FORECAST
        return out

    def _fallback(self, index: pd.DatetimeIndex, latitude: float, longitude: float) -> pd.DataFrame:
        """Clear sky at the cell centre and climatology, computed for three days at a time per
        cell (pvlib and the climatology cost ~0.1 s; a cycle asks every 15 minutes)."""
        key = self.cell(latitude, longitude)
        start = index[0].floor("D")
        days = max(3, int(np.ceil((index[-1] - start) / pd.Timedelta(days=1))) + 1)
        with self._lock:
            cached = self._fallbacks.get(key)
        if cached is None or index[0] < cached.index[0] or index[-1] > cached.index[-1]:
            span = pd.date_range(start, periods=days * 96, freq="15min")
            cached = shareable(self._fallback_frame(span, *self._centre(key)))
            with self._lock:
                if len(self._fallbacks) >= MAX_CACHED_CELLS:
                    self._fallbacks.pop(next(iter(self._fallbacks)))
                self._fallbacks[key] = cached
        out = cached.reindex(index, method="ffill")
        out["source"] = CLEARSKY
        return out

    def _fallback_frame(
        self, index: pd.DatetimeIndex, latitude: float, longitude: float
    ) -> pd.DataFrame:
        sky = clear_sky_weather(index, PvSystem(latitude=latitude, longitude=longitude))
        climate = self._climate(index)
        return pd.DataFrame(
            {
                "temp_air_c": climate["temp_air_c"].to_numpy(float),
                "ghi_wm2": sky["ghi_wm2"].to_numpy(float),
                "dhi_wm2": sky["dhi_wm2"].to_numpy(float),
                "wind_speed_ms": climate["wind_speed_ms"].to_numpy(float),
            },
            index=index,
        )

    def at(self, latitude: float, longitude: float) -> LocationWeather:
        """This feed at one location (the interface of ``scheduler.feeds.BundledWeather``)."""
        return LocationWeather(self, latitude, longitude)


@dataclass(frozen=True)
class LocationWeather:
    """``weather(index)`` at a fixed location; a drop-in for ``BundledWeather`` in a controller."""

    feed: WeatherFeed
    latitude: float
    longitude: float

    def weather(self, index: pd.DatetimeIndex) -> pd.DataFrame:
        return self.feed.weather(index, self.latitude, self.longitude)


def _on_index(frame: pd.DataFrame, index: pd.DatetimeIndex) -> pd.DataFrame:
    """A provider frame (any step) on ``index``: radiation held over its interval (an interval
    mean), temperature and wind interpolated in time; NaN outside the provider's span."""
    src = pd.DatetimeIndex(frame.index)
    if len(src) < 2:
        return pd.DataFrame(np.nan, index=index, columns=WEATHER_COLUMNS)
    step = src[1] - src[0]
    inside = (index >= src[0]) & (index < src[-1] + step)
    out = pd.DataFrame(np.nan, index=index, columns=WEATHER_COLUMNS)
    if not inside.any():
        return out
    rows = index[inside]
    held = frame.reindex(rows, method="ffill")
    for column in ("ghi_wm2", "dhi_wm2"):
        out.loc[rows, column] = held[column].to_numpy()
    # instants of a step-long interval mean sit at its centre
    centres = (src + step / 2).to_numpy("datetime64[ns]").astype("int64")
    slot = index[1] - index[0] if len(index) > 1 else step
    targets = (rows + slot / 2).to_numpy("datetime64[ns]").astype("int64")
    for column in ("temp_air_c", "wind_speed_ms"):
        out.loc[rows, column] = np.interp(targets, centres, frame[column].to_numpy(float))
    return out
