"""Bundled-data readers: units, time zones and physics against the derived reference files."""

from __future__ import annotations

import pandas as pd
import pytest

from adapters import datasets as d


def test_pv_from_dwd_weather_matches_bundled_pvlib_file():
    ref = d.read_pv_per_kwp()
    idx = pd.date_range(ref.index[0], periods=len(ref) * 4, freq="15min")
    pv = d.pv_power(d.weather_for_period(idx), d.PvSystem(peak_kw=1.0))
    assert pv.sum() / 4 == pytest.approx(ref.sum(), rel=0.03)  # kWh/kWp in the June week
    hourly = pv.resample("1h").mean()
    assert hourly.corr(ref) > 0.97
    assert pv[pv.index.hour == 0].max() == 0  # night (UTC midnight)


def test_weather_uses_measured_then_try():
    idx = pd.date_range("2024-01-08", periods=96, freq="15min", tz="UTC")
    w = d.weather_for_period(idx)
    assert (w["source"] == "dwd").all()
    later = d.weather_for_period(pd.date_range("2031-07-01", periods=48, freq="1h", tz="UTC"))
    assert (later["source"] == "try").all()
    assert later["ghi_wm2"].max() > 300 and later["temp_air_c"].between(-30, 45).all()
    assert later["ghi_wm2"].iloc[:2].eq(0).all()  # 00-02 UTC in July is night in Potsdam


def test_try_reader_shape_and_hour_shift():
    t = d.read_try()
    assert len(t) == 8760
    # the TRY's hour 1 of 1 January (00:00-01:00 CET) starts at 23:00 UTC on 31 December
    assert (365, 23) in t.index
    # the irradiance-weighted centre of the day sits at Potsdam's solar noon, 11:08 UTC
    flat = t.reset_index()
    centre = (flat["ghi_wm2"] * (flat["hour_utc"] + 0.5)).sum() / flat["ghi_wm2"].sum()
    assert centre == pytest.approx(11 + 8 / 60, abs=0.4)


def test_bdew_load_units_and_time_zone():
    s = d.read_bdew_load()
    assert s.index[0] == pd.Timestamp("2023-12-31T23:00Z")
    assert s.sum() / 4 == pytest.approx(3000, rel=1e-4)  # kWh/a
    idx = pd.date_range("2027-03-01", periods=7 * 96, freq="15min", tz="UTC")
    week = d.household_load_for_period(idx, annual_kwh=4500)
    assert week.sum() / 4 == pytest.approx(4500 / 52, rel=0.25)


def test_uci_week_local_to_utc():
    s = d.read_uci_load()
    assert s.index[0] == pd.Timestamp("2008-01-06T23:00Z")  # 00:00 Paris (CET)
    assert 0 < s.mean() < 5


def test_ev_sessions_decimal_comma_and_period_mapping():
    s = d.read_ev_sessions()
    assert len(s) > 30000 and s["energy_kwh"].max() > 20  # decimal comma parsed
    assert str(s["plugin_utc"].dt.tz) == "UTC"
    start, end = pd.Timestamp("2030-02-04", tz="UTC"), pd.Timestamp("2030-02-11", tz="UTC")
    sel = d.ev_sessions_for_period(s, start, end)
    assert len(sel) > 0
    assert (sel["plugout_utc"] > start).all() and (sel["plugin_utc"] < end).all()
    orig = s[s["session_id"].isin(sel["session_id"])].set_index("session_id")
    shift = sel.set_index("session_id")["plugin_utc"] - orig["plugin_utc"]
    assert (shift.dt.days % 7 == 0).all()  # weekday kept


def test_naive_index_raises():
    with pytest.raises(ValueError, match="UTC"):
        d.weather_for_period(pd.date_range("2024-06-10", periods=4, freq="15min"))
