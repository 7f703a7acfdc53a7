"""Readers for the bundled real data sets, returning UTC-indexed frames in project units.

Each ``read_*`` parses one bundled file (or any file of the same format). The period helpers
(:func:`weather_for_period`, :func:`household_load_for_period`, :func:`ev_sessions_for_period`,
:func:`pv_power`) cover any period; where no measured data exist they map the period onto the
data by a documented rule:

* weather: DWD measured 15-min data (Duesseldorf, two 2024 weeks) where they cover a timestamp,
  otherwise the DWD Test Reference Year 2010 (Potsdam, hourly) by UTC day-of-year and hour
  (day 366 uses day 365);
* BDEW load (calendar 2024, local CET without DST): any date is shifted by whole 364-day
  periods into 2024, which keeps the weekday (the season drifts about 1 day per year);
* the UCI household week repeats every 7 days (weekday kept);
* EV sessions of one user are shifted by whole 364-day periods into that user's data span.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import numpy as np
import pandas as pd

from core.timeindex import shareable

# one PV model for data, twin and forecasts; re-exported for the readers' callers
from optimizer.forecast import PvSystem, pv_power

__all__ = [
    "PvSystem",
    "ev_sessions_for_period",
    "household_load_for_period",
    "measured_weather_2024",
    "pv_power",
    "read_bdew_load",
    "read_dwd_15min",
    "read_ev_sessions",
    "read_pv_per_kwp",
    "read_try",
    "read_uci_load",
    "read_uci_year",
    "uci_load_for_period",
    "uci_year_load_for_period",
    "weather_for_period",
]

DATA_DIR = Path(__file__).resolve().parent / "data"
DWD_FILES = (
    DATA_DIR / "weather" / "dwd_15min_2024-01-08_week_Duesseldorf.csv",
    DATA_DIR / "weather" / "dwd_15min_2024-06-10_week_Duesseldorf.csv",
)
TRY_FILE = DATA_DIR / "weather" / "dwd_TRY2010_04_Potsdam_Jahr.dat"
PV_PER_KWP_FILE = DATA_DIR / "weather" / "pv_sim_duesseldorf_2024-06-10_week_hourly_1kWp_S35.csv"
BDEW_FILE = DATA_DIR / "load" / "bdew_slp_2024_15min_3000kWh_demandlib.csv"
UCI_FILE = DATA_DIR / "load" / "uci_household_sceaux_2008-01-07_week_1min.csv"
UCI_YEAR_FILE = DATA_DIR / "load" / "uci_household_sceaux_2008_15min.csv"
DWD_YEAR_FILE = DATA_DIR / "weather" / "dwd_15min_2024_Duesseldorf.csv"
#: 2008-01-07 + 5845 days = 2024-01-08, both Mondays: the UCI year maps onto 2024 by weekday.
UCI_TO_2024 = pd.Timedelta(days=5845)
EV_NORWAY_FILE = DATA_DIR / "ev" / "norway12_dataset1_charging_reports_2018-2021.csv"
WEATHER_COLUMNS = ["temp_air_c", "ghi_wm2", "dhi_wm2", "wind_speed_ms"]
_DAYS_364 = pd.Timedelta(days=364)


def read_dwd_15min(path: str | Path) -> pd.DataFrame:
    """DWD 15-min weather file (HiSim format; two header lines, then a table; times UTC).

    Returns
    -------
    pandas.DataFrame
        UTC 15-min index (interval start); ``temp_air_c`` [degC], ``ghi_wm2`` and ``dhi_wm2``
        [W/m^2], ``wind_speed_ms`` [m/s], ``pressure_hpa`` [hPa].
    """
    raw = pd.read_csv(path, skiprows=2)
    index = pd.DatetimeIndex(
        pd.to_datetime(raw[["year", "month", "day", "hour", "minute"]]), name="start_utc"
    ).tz_localize("UTC")
    return pd.DataFrame(
        {
            "temp_air_c": raw["temperature"].to_numpy(float),
            "ghi_wm2": raw["global_irradiance"].to_numpy(float),
            "dhi_wm2": raw["diffuse_irradiance"].to_numpy(float),
            "wind_speed_ms": raw["wind_speed"].to_numpy(float),
            "pressure_hpa": raw["pressure"].to_numpy(float),
        },
        index=index,
    )


def read_try(path: str | Path = TRY_FILE) -> pd.DataFrame:
    """DWD Test Reference Year (2010 format), hourly, indexed by day-of-year and UTC hour.

    The file's hour ``HH`` (1..24, CET = UTC+1) is the hour *ending* at ``HH``; its start in UTC
    is ``HH - 2``. Irradiance GHI = direct + diffuse horizontal.

    Returns
    -------
    pandas.DataFrame
        8760 rows with MultiIndex (``doy`` 1..365, ``hour_utc`` 0..23); columns as
        :data:`WEATHER_COLUMNS`.
    """
    return _read_try_cached(Path(path)).copy()


@lru_cache(maxsize=4)
def _read_try_cached(path: Path) -> pd.DataFrame:
    lines = path.read_text(encoding="latin-1").splitlines()
    first = next(i for i, line in enumerate(lines) if line.startswith("***")) + 1
    cols = ["RG", "IS", "MM", "DD", "HH", "N", "WR", "WG", "t", "p", "x", "RF", "W", "B", "D"]
    rows = [line.split()[: len(cols)] for line in lines[first:] if line.strip()]
    tab = pd.DataFrame(rows, columns=cols).astype(float)
    start_cet = pd.to_datetime(
        {"year": 2010, "month": tab["MM"], "day": tab["DD"]}
    ) + pd.to_timedelta(tab["HH"] - 1, unit="h")
    start_utc = start_cet - pd.Timedelta(hours=1)
    # the first hour of 1 January starts on 31 December UTC: wrap it to the year's end
    start_utc = start_utc.where(start_utc.dt.year == 2010, start_utc + pd.Timedelta(days=365))
    frame = pd.DataFrame(
        {
            "doy": start_utc.dt.dayofyear,
            "hour_utc": start_utc.dt.hour,
            "temp_air_c": tab["t"],
            "ghi_wm2": tab["B"] + tab["D"],
            "dhi_wm2": tab["D"],
            "wind_speed_ms": tab["WG"],
        }
    )
    return shareable(frame.set_index(["doy", "hour_utc"]).sort_index())


def weather_for_period(index: pd.DatetimeIndex) -> pd.DataFrame:
    """Weather on ``index``: measured DWD 15-min data where available, else TRY by day-of-year.

    Parameters
    ----------
    index : pandas.DatetimeIndex
        tz-aware UTC, any step.

    Returns
    -------
    pandas.DataFrame
        :data:`WEATHER_COLUMNS` plus ``source`` ("dwd" or "try").
    """
    _require_utc(index)
    tri = read_try()
    doy = np.minimum(index.dayofyear.to_numpy(), 365)
    keys = pd.MultiIndex.from_arrays([doy, index.hour.to_numpy()])
    out = tri.reindex(keys)[WEATHER_COLUMNS].set_axis(index)
    out["source"] = "try"
    for path in DWD_FILES:
        dwd = read_dwd_15min(path)
        inside = (index >= dwd.index[0]) & (index < dwd.index[-1] + pd.Timedelta(minutes=15))
        if inside.any():
            sel = dwd[WEATHER_COLUMNS].reindex(index[inside], method="ffill")
            out.loc[inside, WEATHER_COLUMNS] = sel.to_numpy()
            out.loc[inside, "source"] = "dwd"
    return out


def read_pv_per_kwp(path: str | Path = PV_PER_KWP_FILE) -> pd.Series:
    """Bundled hourly AC PV power per kWp [kW/kWp], UTC index."""
    raw = pd.read_csv(path)
    index = pd.DatetimeIndex(pd.to_datetime(raw["start_utc"], utc=True), name="start_utc")
    return pd.Series(raw["pv_ac_kw_per_kwp"].to_numpy(float), index=index, name="pv_kw_per_kwp")


def read_bdew_load(path: str | Path = BDEW_FILE, profile: str = "h25") -> pd.Series:
    """BDEW standard load profile 2024 scaled to 3000 kWh/a [kW], UTC 15-min index.

    The file's timestamps are local CET *without* daylight saving (366 x 96 rows), so UTC is
    CET - 1 h. ``profile`` is ``h0``, ``h0_dyn`` or ``h25``.
    """
    raw = pd.read_csv(path)
    col = f"{profile}_kw"
    if col not in raw:
        raise ValueError(f"profile: {profile!r} not in {[c[:-3] for c in raw.columns[1:]]}")
    cet = pd.to_datetime(raw["start_local_naive_CET"])
    index = pd.DatetimeIndex(cet - pd.Timedelta(hours=1), name="start_utc").tz_localize("UTC")
    return pd.Series(raw[col].to_numpy(float), index=index, name="load_kw")


@lru_cache(maxsize=4)
def _bdew_load(profile: str) -> pd.Series:
    """The bundled profile, parsed once per process (a service forecasts for every site)."""
    return shareable(read_bdew_load(profile=profile))


def household_load_for_period(
    index: pd.DatetimeIndex, annual_kwh: float = 3000.0, profile: str = "h25"
) -> pd.Series:
    """BDEW household load [kW] on ``index`` (any dates; see module notes), scaled to a year."""
    _require_utc(index)
    base = _bdew_load(profile)
    t0 = base.index[0]
    mapped = t0 + (index - t0) % _DAYS_364
    vals = base.reindex(mapped, method="ffill").to_numpy() * annual_kwh / 3000.0
    return pd.Series(vals, index=index, name="load_kw")


def read_uci_load(path: str | Path = UCI_FILE) -> pd.Series:
    """UCI Sceaux household, 1-min active power [kW]; local Paris time converted to UTC."""
    raw = pd.read_csv(path, usecols=["date_time", "Global_active_power"])
    local = pd.DatetimeIndex(pd.to_datetime(raw["date_time"]))
    index = local.tz_localize("Europe/Paris", ambiguous="NaT", nonexistent="NaT").tz_convert("UTC")
    s = pd.Series(raw["Global_active_power"].to_numpy(float), index=index, name="load_kw")
    return s[s.index.notna()]


def uci_load_for_period(index: pd.DatetimeIndex) -> pd.Series:
    """The UCI measured week repeated every 7 days onto ``index`` [kW]."""
    _require_utc(index)
    base = read_uci_load()
    t0 = base.index[0]
    mapped = t0 + (index - t0) % pd.Timedelta(days=7)
    vals = base.reindex(mapped, method="ffill").bfill().to_numpy()
    return pd.Series(vals, index=index, name="load_kw")


def read_uci_year(path: str | Path = UCI_YEAR_FILE) -> pd.Series:
    """UCI Sceaux household, calendar year 2008 as 15-min means [kW], UTC index.

    The file's stamps are local Paris time (interval start); the DST change's missing and
    repeated hours are dropped.
    """
    return _read_uci_year(Path(path)).copy()


@lru_cache(maxsize=2)
def _read_uci_year(path: Path) -> pd.Series:
    raw = pd.read_csv(path)
    local = pd.DatetimeIndex(pd.to_datetime(raw["start_local_paris"]))
    index = local.tz_localize("Europe/Paris", ambiguous="NaT", nonexistent="NaT").tz_convert("UTC")
    s = pd.Series(raw["load_kw"].to_numpy(float), index=index, name="load_kw")
    s = s[s.index.notna()]
    return shareable(s[~s.index.duplicated()])


def uci_year_load_for_period(index: pd.DatetimeIndex) -> pd.Series:
    """The measured UCI 2008 load on ``index`` [kW]: a 2024 (or any) date is moved by whole
    weeks into 2008 (2024-01-08 -> 2008-01-07, weekdays kept); 15-min values held within a slot.
    """
    _require_utc(index)
    base = read_uci_year()
    t0, t1 = base.index[0], base.index[-1]
    span = pd.Timedelta(weeks=52)
    mapped = index - UCI_TO_2024
    mapped = mapped.where(mapped >= t0, mapped + span).where(mapped <= t1, mapped - span)
    vals = base.reindex(mapped.floor("15min"), method="nearest").to_numpy()
    return pd.Series(vals, index=index, name="load_kw")


def measured_weather_2024(index: pd.DatetimeIndex) -> pd.DataFrame:
    """Measured DWD Duesseldorf 2024 weather (15-min) on ``index`` inside 2024, else
    :func:`weather_for_period`; columns as :data:`WEATHER_COLUMNS` plus ``source``."""
    out = weather_for_period(index)
    year = _read_dwd_year(DWD_YEAR_FILE)
    inside = (index >= year.index[0]) & (index < year.index[-1] + pd.Timedelta(minutes=15))
    if inside.any():
        sel = year[WEATHER_COLUMNS].reindex(index[inside], method="ffill")
        out.loc[inside, WEATHER_COLUMNS] = sel.to_numpy()
        out.loc[inside, "source"] = "dwd"
    return out


@lru_cache(maxsize=2)
def _read_dwd_year(path: Path) -> pd.DataFrame:
    return shareable(read_dwd_15min(path))


def read_ev_sessions(path: str | Path = EV_NORWAY_FILE) -> pd.DataFrame:
    """Norwegian residential EV charging sessions (``;`` separated, decimal comma).

    Returns
    -------
    pandas.DataFrame
        Columns ``location``, ``user_id``, ``session_id``, ``plugin_utc``, ``plugout_utc``
        (local Europe/Oslo converted to UTC; DST-ambiguous rows dropped), ``energy_kwh``.
        Sessions with plug-out not after plug-in are dropped.
    """
    return _read_ev_cached(Path(path)).copy()


@lru_cache(maxsize=4)
def _read_ev_cached(path: Path) -> pd.DataFrame:
    raw = pd.read_csv(path, sep=";", decimal=",")

    def utc(col: str) -> pd.Series:
        local = pd.to_datetime(raw[col], errors="coerce")
        return local.dt.tz_localize(
            "Europe/Oslo", ambiguous="NaT", nonexistent="shift_forward"
        ).dt.tz_convert("UTC")

    out = pd.DataFrame(
        {
            "location": raw["location"].astype(str),
            "user_id": raw["user_id"].astype(str),
            "session_id": raw["session_id"].astype(str),
            "plugin_utc": utc("plugin_time"),
            "plugout_utc": utc("plugout_time"),
            "energy_kwh": pd.to_numeric(raw["energy_session"], errors="coerce"),
        }
    ).dropna()
    out = out[(out["plugout_utc"] > out["plugin_utc"]) & (out["energy_kwh"] >= 0)]
    return shareable(out.sort_values("plugin_utc").reset_index(drop=True))


def ev_sessions_for_period(
    sessions: pd.DataFrame,
    start: pd.Timestamp,
    end: pd.Timestamp,
    user_id: str | None = None,
) -> pd.DataFrame:
    """One user's sessions overlapping ``[start, end)``, shifted by 364-day steps if needed.

    ``user_id`` None picks the user with the most sessions. The returned frame has the same
    columns as :func:`read_ev_sessions`, times moved onto the requested period.
    """
    if start.tzinfo is None or end.tzinfo is None:
        raise ValueError("start/end: naive timestamps; use tz-aware UTC")
    if user_id is None:
        user_id = str(sessions["user_id"].value_counts().idxmax())
    mine = sessions[sessions["user_id"] == user_id]
    if mine.empty:
        raise ValueError(f"user_id: {user_id!r} has no sessions")
    first, last = mine["plugin_utc"].min(), mine["plugout_utc"].max()
    shift = pd.Timedelta(0)
    if start < first or end > last:
        k = int(np.floor((start - first) / _DAYS_364))
        shift = k * _DAYS_364
    lo, hi = start - shift, end - shift
    sel = mine[(mine["plugout_utc"] > lo) & (mine["plugin_utc"] < hi)].copy()
    sel["plugin_utc"] += shift
    sel["plugout_utc"] += shift
    return sel.reset_index(drop=True)


def _require_utc(index: pd.Index) -> None:
    if not isinstance(index, pd.DatetimeIndex) or index.tz is None or str(index.tz) != "UTC":
        raise ValueError("index: need a tz-aware UTC DatetimeIndex")
