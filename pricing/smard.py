"""SMARD.de chart data (Bundesnetzagentur): key-free DE-LU day-ahead prices.

SMARD publishes weekly JSON files ``{"meta_data": ..., "series": [[epoch_ms, EUR/MWh|null], ...]}``
listed by an index file. Timestamps are UTC epoch milliseconds of the interval start, so the
25-hour and 23-hour days need no special handling. ``null`` means not (yet) published and becomes
a gap. Data licence: CC BY 4.0, "Bundesnetzagentur | SMARD.de".
"""

from __future__ import annotations

import httpx
import pandas as pd
from pydantic import BaseModel, ValidationError
from tenacity import retry, retry_if_exception_type, stop_after_attempt, wait_exponential

from pricing.errors import PriceDataError, PricingError
from pricing.series import QUARTER, clean_series, expand_to_quarter_hours

SMARD_BASE_URL = "https://www.smard.de/app/chart_data"
DAY_AHEAD_FILTER = 4169  # SMARD's filter id of the day-ahead auction price
RESOLUTIONS = {"quarterhour": pd.Timedelta(minutes=15), "hour": pd.Timedelta(hours=1)}


class _SmardChart(BaseModel):
    series: list[tuple[int, float | None]]


class _SmardIndex(BaseModel):
    timestamps: list[int]


def read_smard_json(text: str | bytes, resolution: str) -> pd.Series:
    """Parse one SMARD chart-data JSON file of day-ahead prices.

    Parameters
    ----------
    text : str or bytes
        The JSON document.
    resolution : {"quarterhour", "hour"}
        SMARD resolution of the file (part of its file name).

    Returns
    -------
    pandas.Series
        Spot price [EUR/kWh] on a UTC 15-minute grid, ``null`` values left out (gaps).
    """
    if resolution not in RESOLUTIONS:
        raise PriceDataError(f"SMARD resolution must be one of {sorted(RESOLUTIONS)}")
    try:
        chart = _SmardChart.model_validate_json(text)
    except ValidationError as exc:
        raise PriceDataError(
            f"SMARD JSON is malformed: {exc.errors()[0]['msg']} "
            f"at {'/'.join(map(str, exc.errors()[0]['loc']))}"
        ) from exc
    if not chart.series:
        raise PriceDataError("SMARD JSON: field 'series' is empty")
    stamps = pd.to_datetime([row[0] for row in chart.series], unit="ms", utc=True)
    values = pd.Series([row[1] for row in chart.series], index=stamps, dtype=float)
    values = clean_series(values, name="SMARD series") / 1000.0
    return expand_to_quarter_hours(values, RESOLUTIONS[resolution]).rename("spot_eur_per_kwh")


@retry(
    retry=retry_if_exception_type(httpx.TransportError),
    wait=wait_exponential(multiplier=1, max=20),
    stop=stop_after_attempt(4),
    reraise=True,
)
def _get_text(client: httpx.Client, url: str) -> str:
    response = client.get(url)
    if response.status_code != httpx.codes.OK:
        raise PricingError(f"SMARD {url}: HTTP {response.status_code}")
    return response.text


def get_smard_prices(
    start: pd.Timestamp,
    end: pd.Timestamp,
    *,
    resolution: str = "quarterhour",
    region: str = "DE-LU",
    base_url: str = SMARD_BASE_URL,
    timeout_s: float = 30.0,
    attempts: int = 4,
) -> pd.Series:
    """Fetch SMARD day-ahead prices covering ``[start, end)`` and parse them.

    Parameters
    ----------
    start, end : pandas.Timestamp
        tz-aware bounds.
    resolution : {"quarterhour", "hour"}
        SMARD resolution; quarter-hour prices exist from 1 Oct 2025.
    region : str
        SMARD region code.
    base_url : str
        Override for tests.
    timeout_s : float
        HTTP timeout [s].
    attempts : int
        Tries per request on connection errors (exponential back-off up to 20 s).
    """
    get_text = _get_text.retry_with(stop=stop_after_attempt(max(1, attempts)))
    prefix = f"{base_url}/{DAY_AHEAD_FILTER}/{region}"
    with httpx.Client(timeout=timeout_s) as client:
        index_text = get_text(client, f"{prefix}/index_{resolution}.json")
        try:
            weeks = sorted(_SmardIndex.model_validate_json(index_text).timestamps)
        except ValidationError as exc:
            raise PriceDataError(f"SMARD index JSON is malformed: {exc}") from exc
        start_ms, end_ms = start.value // 1_000_000, end.value // 1_000_000
        wanted = [
            w
            for i, w in enumerate(weeks)
            if w < end_ms and (i + 1 == len(weeks) or weeks[i + 1] > start_ms)
        ]
        parts = [
            read_smard_json(
                get_text(client, f"{prefix}/{DAY_AHEAD_FILTER}_{region}_{resolution}_{w}.json"),
                resolution,
            )
            for w in wanted
        ]
    if not parts:
        raise PriceDataError(f"SMARD has no {resolution} file covering {start}..{end}")
    joined = pd.concat(parts).sort_index()
    joined = joined[~joined.index.duplicated(keep="last")]
    return joined[(joined.index >= start) & (joined.index < end + QUARTER)]
