"""What is worth a message: the detectors on hand-made snapshot sequences."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pandas as pd
import pytest

from insights import InsightSettings, assemble_energy_frame
from insights.flows import slot_quantities
from insights.report import SessionTarget, ev_sessions
from notifications import EventKind, SiteSnapshot, SiteWatch

T0 = datetime(2026, 12, 5, 17, 0, tzinfo=UTC)


def snap(minutes: float, **kw: object) -> SiteSnapshot:
    return SiteSnapshot("s", "Home", "Europe/Berlin", T0 + timedelta(minutes=minutes), **kw)  # type: ignore[arg-type]


def kinds(watch: SiteWatch, snaps: list[SiteSnapshot]) -> list[EventKind]:
    return [e.kind for s in snaps for e in watch.observe(s)]


def test_a_short_outage_is_no_news_and_a_long_one_is_told_once_with_its_end() -> None:
    watch = SiteWatch(offline_after=timedelta(minutes=30))
    short = [snap(0), snap(15, box_ok=False), snap(30, box_ok=False), snap(40)]
    assert kinds(watch, short) == []
    long = [snap(60, box_ok=False)] + [snap(60 + 15 * k, box_ok=False) for k in range(1, 8)]
    assert kinds(watch, long) == [EventKind.BOX_OFFLINE]  # at 30 min, not again
    assert kinds(watch, [snap(200), snap(215)]) == [EventKind.BOX_BACK]


def test_target_at_risk_once_per_departure_and_car_charged_once_per_session() -> None:
    watch = SiteWatch()
    dep1, dep2 = T0 + timedelta(hours=10), T0 + timedelta(hours=34)
    car = {"ev_connected": True, "ev_target_kwh": 40.0}
    seq = [
        snap(0, ev_energy_kwh=10.0, ev_departure=dep1, ev_shortfall_kwh=3.0, **car),
        snap(15, ev_energy_kwh=12.0, ev_departure=dep1, ev_shortfall_kwh=2.5, **car),
        snap(30, ev_energy_kwh=14.0, ev_departure=dep1, ev_shortfall_kwh=0.3, **car),
        snap(45, ev_energy_kwh=16.0, ev_departure=dep2, ev_shortfall_kwh=4.0, **car),
        snap(600, ev_energy_kwh=39.9, ev_departure=dep2, **car),
        snap(615, ev_energy_kwh=40.0, ev_departure=dep2, **car),
    ]
    assert kinds(watch, seq) == [
        EventKind.EV_TARGET_AT_RISK, EventKind.EV_TARGET_AT_RISK, EventKind.EV_CHARGED,
    ]  # fmt: skip
    # plug out: the session is recorded with its outcome
    assert kinds(watch, [snap(700)]) == []
    (outcome,) = watch.ended_sessions
    assert outcome.target_kwh == 40.0 and outcome.met is True
    assert outcome.delivered_kwh == pytest.approx(30.0)
    # a new session may be told again
    again = [snap(800, ev_energy_kwh=40.0, **car)]
    assert kinds(watch, again) == [EventKind.EV_CHARGED]


def test_a_session_that_left_short_is_recorded_as_not_met() -> None:
    watch = SiteWatch()
    car = {"ev_connected": True, "ev_target_kwh": 45.0}
    kinds(watch, [snap(0, ev_energy_kwh=20.0, **car), snap(60, ev_energy_kwh=30.0, **car),
                  snap(75)])  # fmt: skip
    (outcome,) = watch.ended_sessions
    assert outcome.met is False and outcome.delivered_kwh == pytest.approx(10.0)


def test_grid_limit_start_and_end() -> None:
    watch = SiteWatch()
    seq = [snap(0), snap(15, grid_limit_kw=4.2), snap(30, grid_limit_kw=4.2), snap(45)]
    events = [e for s in seq for e in watch.observe(s)]
    assert [e.kind for e in events] == [EventKind.GRID_LIMIT_START, EventKind.GRID_LIMIT_END]
    assert "4.2 kW" in events[0].body


def test_session_average_price_by_hand() -> None:
    # two slots of 15 min: 4 kW into the car each; PV 2 kW in the first, none in the second
    index = pd.date_range("2024-06-10T10:00Z", periods=4, freq="15min")
    power = pd.DataFrame(
        {"pv_kw": [2.0, 0, 0, 0], "house_kw": 0.0, "ev_kw": [4.0, 4.0, 0, 0],
         "hp_kw": 0.0, "battery_kw": 0.0, "grid_kw": [2.0, 4.0, 0, 0]},
        index=index,
    )  # fmt: skip
    imp = pd.Series(0.30, index=index)
    exp = pd.Series(0.08, index=index)
    frame = assemble_energy_frame(
        power, import_eur_per_kwh=imp, export_eur_per_kwh=exp, co2_g_per_kwh=imp * 0 + 400
    )
    q = slot_quantities(frame, InsightSettings(battery=None))
    target = SessionTarget(index[0], index[2], 2.0, True)
    (s,) = ev_sessions(frame, q, "Europe/Berlin", [target])
    # 2 kWh delivered: 0.5 kWh own PV (valued 0.08), 1.5 kWh grid (0.30) -> 0.245 EUR/kWh
    assert s.delivered_kwh == pytest.approx(2.0)
    assert s.own_share == pytest.approx(0.25)
    assert s.average_price_eur_per_kwh == pytest.approx((0.5 * 0.08 + 1.5 * 0.30) / 2.0)
    assert s.end - s.start == pd.Timedelta("30min") and s.met is True
