"""The bundled real DE-LU data (no key, no network): hourly 2024-01..2025-09 and a 15-min week.

Files in ``adapters/data/prices`` (CC BY 4.0, "Bundesnetzagentur | SMARD.de, via Energy-Charts
(Fraunhofer ISE)"; provenance in ``adapters/data/README.md``).
"""

from __future__ import annotations

from functools import lru_cache
from importlib import resources
from pathlib import Path

import pandas as pd

from core.timeindex import shareable
from pricing.errors import PriceDataError
from pricing.series import clean_series, expand_to_quarter_hours
from pricing.smard import read_smard_json

HOURLY_FILE = "de_lu_dayahead_hourly_2024-01-01_2025-09-30.csv"
QUARTER_HOUR_WEEK_FILE = "smard_4169_DE-LU_quarterhour_1760911200000.json"
_HOURLY_COLUMNS = ("price_eur_mwh", "de_solar_generation_mw", "de_load_mw")


def data_path(*parts: str) -> Path:
    """Path of a bundled data file under ``adapters/data``."""
    return Path(str(resources.files("adapters").joinpath("data", *parts)))


def read_de_lu_hourly_csv(path: str | Path) -> pd.DataFrame:
    """Read the DE-LU hourly CSV (price, German solar generation, German load).

    Parameters
    ----------
    path : str or pathlib.Path
        CSV with ``start_utc`` (ISO 8601 with offset) and the columns ``price_eur_mwh``,
        ``de_solar_generation_mw``, ``de_load_mw``.

    Returns
    -------
    pandas.DataFrame
        Columns ``spot_eur_per_kwh`` [EUR/kWh], ``solar_mw`` [MW], ``load_mw`` [MW] on the
        hourly UTC index.
    """
    raw = pd.read_csv(path)
    missing = [c for c in ("start_utc", *_HOURLY_COLUMNS) if c not in raw.columns]
    if missing:
        raise PriceDataError(f"{path}: missing column(s) {missing}")
    stamps = pd.DatetimeIndex(pd.to_datetime(raw["start_utc"], format="ISO8601"))
    if stamps.tz is None:
        raise PriceDataError(f"{path}: column start_utc has naive timestamps")
    raw.index = stamps
    columns = {
        "spot_eur_per_kwh": clean_series(raw["price_eur_mwh"], name="price_eur_mwh") / 1000.0,
        "solar_mw": clean_series(raw["de_solar_generation_mw"], name="de_solar_generation_mw"),
        "load_mw": clean_series(raw["de_load_mw"], name="de_load_mw"),
    }
    return pd.DataFrame(columns)


@lru_cache(maxsize=1)
def bundled_hourly() -> pd.DataFrame:
    """The bundled hourly DE-LU frame (see :func:`read_de_lu_hourly_csv`), read once."""
    return shareable(read_de_lu_hourly_csv(data_path("prices", HOURLY_FILE)))


@lru_cache(maxsize=1)
def bundled_quarter_hour_prices() -> pd.Series:
    """All bundled DE-LU spot prices [EUR/kWh] on one UTC 15-minute grid.

    The hourly series (2024-01-01 .. 2025-09-30) repeated on quarter-hours, plus the real
    15-minute SMARD week 2025-10-20 .. 2025-10-27 (Europe/Berlin).
    """
    hourly = bundled_hourly()["spot_eur_per_kwh"].dropna()
    quarters = expand_to_quarter_hours(hourly, pd.Timedelta(hours=1))
    week_text = data_path("prices", QUARTER_HOUR_WEEK_FILE).read_text()
    week = read_smard_json(week_text, "quarterhour")
    joined = pd.concat([quarters, week]).sort_index()
    return shareable(joined[~joined.index.duplicated(keep="last")].rename("spot_eur_per_kwh"))


def coverage_note() -> str:
    """Which period the bundled prices cover, and where live prices come from."""
    first = bundled_hourly().index.min()
    last = max(bundled_hourly().index.max(), bundled_quarter_hour_prices().index.max())
    return (
        f"the bundled prices cover {first:%Y-%m-%d} to {last:%Y-%m-%d} (and estimates for up to "
        "35 days after); pick a date in that period. For other days use live prices: "
        "`hbopt prices --source smard --day YYYY-MM-DD`, or HBOPT_PRICE_SOURCE=smard (or "
        "entsoe with HBOPT_ENTSOE_TOKEN) for `hbopt serve`"
    )
