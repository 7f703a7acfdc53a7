"""Open-Meteo forecast: ``get_open_meteo_forecast`` fetches, ``read_open_meteo_json`` parses.

Why Open-Meteo: key-free, global (the fleet is not only German), hourly GHI, diffuse and
direct-normal irradiance plus 2 m temperature and 10 m wind from national models (ICON-D2 /
ICON-EU over Germany) in one JSON call, and a base URL that can point at a self-hosted
instance. Data licence: CC BY 4.0 ("Weather data by Open-Meteo.com").

Open-Meteo's time semantics (documented per variable): radiation is the *mean over the
preceding* interval, temperature and wind are *instantaneous* at the timestamp. The reader
labels every row at interval start (project convention): a radiation value stamped ``T`` belongs
to ``[T - step, T)``, and the interval's temperature and wind are the mean of the two instants
that bound it. Provider names map to the project's vocabulary :data:`WEATHER_COLUMNS` in
project units (W/m^2, degC, m/s); a km/h wind is converted.
"""

from __future__ import annotations

import httpx
import numpy as np
import pandas as pd
from pydantic import BaseModel, ValidationError
from tenacity import retry, retry_if_exception_type, stop_after_attempt, wait_exponential

OPEN_METEO_URL = "https://api.open-meteo.com"
#: Project column -> Open-Meteo hourly variable.
VARIABLES = {
    "ghi_wm2": "shortwave_radiation",
    "dhi_wm2": "diffuse_radiation",
    "dni_wm2": "direct_normal_irradiance",
    "temp_air_c": "temperature_2m",
    "wind_speed_ms": "wind_speed_10m",
}
RADIATION = ("ghi_wm2", "dhi_wm2", "dni_wm2")
WEATHER_COLUMNS = ["temp_air_c", "ghi_wm2", "dhi_wm2", "wind_speed_ms"]
_WIND_FACTORS = {"m/s": 1.0, "km/h": 1 / 3.6}


class WeatherDataError(ValueError):
    """A weather response is malformed; the message names the field."""


class _Response(BaseModel):
    latitude: float
    longitude: float
    utc_offset_seconds: int = 0
    hourly_units: dict[str, str] = {}
    hourly: dict[str, list[str] | list[float | None]]


def _unit_check(units: dict[str, str], column: str, variable: str) -> float:
    unit = units.get(variable)
    if column == "wind_speed_ms":
        if unit is not None and unit not in _WIND_FACTORS:
            raise WeatherDataError(f"hourly_units.{variable}: unknown unit {unit!r}")
        return _WIND_FACTORS.get(unit or "m/s", 1.0)
    expected = "°C" if column == "temp_air_c" else "W/m²"
    if unit is not None and unit != expected:
        raise WeatherDataError(f"hourly_units.{variable}: expected {expected!r}, got {unit!r}")
    return 1.0


def _values(block: dict[str, list[str] | list[float | None]], variable: str, n: int) -> np.ndarray:
    if variable not in block:
        raise WeatherDataError(f"hourly.{variable}: missing")
    raw = block[variable]
    if len(raw) != n:
        raise WeatherDataError(f"hourly.{variable}: {len(raw)} values for {n} times")
    try:
        return np.array([np.nan if v is None else float(v) for v in raw], dtype=float)
    except (TypeError, ValueError):
        raise WeatherDataError(f"hourly.{variable}: not numbers") from None


def read_open_meteo_json(text: str | bytes) -> pd.DataFrame:
    """Parse an Open-Meteo ``/v1/forecast`` JSON answer with hourly variables.

    Parameters
    ----------
    text : str or bytes
        The JSON document (``timeformat=iso8601``, any ``timezone``).

    Returns
    -------
    pandas.DataFrame
        One row per interval, labelled at its start (UTC): ``ghi_wm2``, ``dhi_wm2``, ``dni_wm2``
        [W/m^2] (interval means), ``temp_air_c`` [degC] and ``wind_speed_ms`` [m/s]
        (interval means of the instantaneous values). ``attrs`` holds ``latitude``,
        ``longitude`` [deg] of the model grid cell.

    Raises
    ------
    WeatherDataError
        Malformed JSON, a missing variable, a length mismatch or an unexpected unit.
    """
    try:
        doc = _Response.model_validate_json(text)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "(document)"
        raise WeatherDataError(f"Open-Meteo JSON: {where}: {first['msg']}") from None
    times = doc.hourly.get("time")
    if not times:
        raise WeatherDataError("hourly.time: missing or empty")
    try:
        local = pd.DatetimeIndex(pd.to_datetime([str(t) for t in times], format="ISO8601"))
    except (ValueError, TypeError):
        raise WeatherDataError("hourly.time: not ISO 8601 times") from None
    stamps = (local - pd.Timedelta(seconds=doc.utc_offset_seconds)).tz_localize("UTC")
    if len(stamps) < 2 or not (stamps[1:] > stamps[:-1]).all():
        raise WeatherDataError("hourly.time: needs two or more increasing times")
    step = stamps[1] - stamps[0]
    columns = {}
    for column, variable in VARIABLES.items():
        factor = _unit_check(doc.hourly_units, column, variable)
        columns[column] = _values(doc.hourly, variable, len(stamps)) * factor
    frame = pd.DataFrame(columns, index=stamps)
    # instants -> interval [T - step, T) means; radiation is already the preceding mean
    for column in ("temp_air_c", "wind_speed_ms"):
        frame[column] = frame[column].rolling(2, min_periods=1).mean()
    frame.index = pd.DatetimeIndex(stamps - step, name="start_utc")
    frame.attrs.update(latitude=doc.latitude, longitude=doc.longitude)
    return frame


@retry(
    retry=retry_if_exception_type(httpx.TransportError),
    wait=wait_exponential(multiplier=1, max=10),
    stop=stop_after_attempt(2),
    reraise=True,
)
def _get(client: httpx.Client, url: str, params: dict[str, str | float | int]) -> str:
    response = client.get(url, params=params)
    if response.status_code != httpx.codes.OK:
        raise WeatherDataError(f"Open-Meteo {url}: HTTP {response.status_code}")
    return response.text


def get_open_meteo_forecast(
    latitude: float,
    longitude: float,
    *,
    base_url: str = OPEN_METEO_URL,
    forecast_days: int = 3,
    past_days: int = 1,
    timeout_s: float = 20.0,
) -> pd.DataFrame:
    """Fetch the hourly forecast at a location and parse it (see :func:`read_open_meteo_json`).

    Parameters
    ----------
    latitude, longitude : float
        [deg north], [deg east].
    base_url : str
        Open-Meteo (default) or a self-hosted instance / a test server.
    forecast_days, past_days : int
        Days ahead from today and back before it (the past day bridges a late refresh).
    timeout_s : float
        HTTP timeout [s]; connection errors are retried once.
    """
    params: dict[str, str | float | int] = {
        "latitude": round(latitude, 4),
        "longitude": round(longitude, 4),
        "hourly": ",".join(VARIABLES.values()),
        "timezone": "GMT",
        "wind_speed_unit": "ms",
        "forecast_days": forecast_days,
        "past_days": past_days,
    }
    with httpx.Client(timeout=timeout_s) as client:
        text = _get(client, f"{base_url.rstrip('/')}/v1/forecast", params)
    return read_open_meteo_json(text)
