"""Where the car's money goes: per EV session, the closed loop against perfect foresight.

Runs one week of ``benchmarks/decision_quality.py`` (same inputs, same controller) and prints,
per real session: plug-in and plug-out, the real need, what the controller aimed for at
plug-in (reliable departure, need), the energy each run delivered inside the session, and the
average price each paid for it (grid energy at the import price, in slots that export at the
feed-in price forgone: the marginal price of the car's kWh), and the mean hours before the
real departure at which each run charged. ``--oracle`` gives the controller each session's
real departure and need (what a perfect session forecast would), so the loss of learning the
sessions separates from the loss of the control.

Usage::

    nice .venv/bin/python benchmarks/ev_breakdown.py 2024-09-02 --size 6000 --mode realistic
    nice .venv/bin/python benchmarks/ev_breakdown.py 2024-09-02 --size 3500 --mode perfect --oracle
"""

from __future__ import annotations

import argparse
import contextlib
import tempfile
import time
from dataclasses import replace

import numpy as np
import pandas as pd
from decision_quality import ev_oracle, measured_inputs

from scheduler.backtest import backtest
from scheduler.controller import SiteConfig, SiteController
from scheduler.simulate import perfect_foresight, run_no_control
from simulation.twin import Twin


def session_rows(
    sessions: pd.DataFrame, runs: dict[str, pd.DataFrame], prices: pd.DataFrame
) -> pd.DataFrame:
    """Per session and run: delivered [kWh], average marginal price [EUR/kWh], cost [EUR] and
    the energy-weighted mean lead [h] before the real plug-out."""
    rows = []
    for a, b, need in sessions[["plugin_utc", "plugout_utc", "energy_kwh"]].itertuples(index=False):
        row: dict[str, object] = {"plug-in": a, "plug-out": b, "need": need}
        for name, frame in runs.items():
            t = pd.DatetimeIndex(frame.index)
            inside = (t >= a) & (t < b)
            e = frame["ev_kw"].to_numpy(float)[inside] * frame["h"].to_numpy(float)[inside]
            slot = t[inside].floor("15min")
            imp = prices["import_eur_per_kwh"].reindex(slot).to_numpy(float)
            exp = prices["export_eur_per_kwh"].reindex(slot).to_numpy(float)
            price = np.where(frame["grid_kw"].to_numpy(float)[inside] < 0, exp, imp)
            got = float(e.sum())
            lead = np.asarray((b - t[inside]) / pd.Timedelta(hours=1), dtype=float)
            row[f"{name} kWh"] = got
            row[f"{name} EUR"] = float((e * price).sum())
            row[f"{name} EUR/kWh"] = float((e * price).sum()) / got if got > 1e-9 else np.nan
            row[f"{name} lead h"] = float((e * lead).sum()) / got if got > 1e-9 else np.nan
        rows.append(row)
    return pd.DataFrame(rows)


def minute_frame(steps: pd.DataFrame) -> pd.DataFrame:
    return pd.DataFrame(
        {"ev_kw": steps["ev_kw"], "grid_kw": steps["grid_kw"], "h": steps["dt_s"] / 3600}
    )


def plan_frame(plan: object) -> pd.DataFrame:
    s = plan.slots  # type: ignore[attr-defined]
    ev = [c for c in map(str, s.columns) if c.startswith("ev") and c.endswith("_kw")]
    return pd.DataFrame(
        {"ev_kw": s[ev].sum(axis=1), "grid_kw": s["grid_kw"], "h": 0.25}, index=s.index
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("start")
    parser.add_argument("--days", type=int, default=7)
    parser.add_argument("--size", type=float, default=6000.0)
    parser.add_argument("--mode", default="realistic", choices=["realistic", "perfect"])
    parser.add_argument("--oracle", action="store_true", help="real departures and needs")
    parser.add_argument("--save", help="pickle the runs and sessions here")
    args = parser.parse_args()
    start = pd.Timestamp(args.start, tz="UTC")
    end = start + pd.Timedelta(days=args.days)
    t0 = time.perf_counter()
    inputs = measured_inputs(start, args.days, args.size, args.mode).for_period(start, end)
    sessions = inputs.ev_sessions
    sessions = sessions[(sessions["plugout_utc"] > start) & (sessions["plugin_utc"] < end)]
    goals: dict[pd.Timestamp, tuple[pd.Timestamp, float]] = {}

    def watch(ctl: SiteController) -> None:
        if ctl._ev is None:
            return
        plugged = pd.Timestamp(ctl._ev.plugged_at, unit="s", tz="UTC")
        if plugged in goals:
            return
        now = pd.Timestamp(ctl.clock.now(), unit="s", tz="UTC")
        g = ctl.charge_goal(now)
        eff = ctl.config.home.site.wallboxes[0].efficiency
        goals[plugged] = (g.departure, (g.target_kwh - ctl._arrival_kwh()) / eff)

    config = SiteConfig("decision-quality", watchdog_timeout_s=180, pv_forecast="weather")
    told = ev_oracle(sessions) if args.oracle else contextlib.nullcontext()
    with told, tempfile.TemporaryDirectory(prefix="hbopt-evb-") as tmp:
        result = backtest(start, args.days, replace(config), inputs=inputs, progress=False,
                          store_dir=tmp, watch=watch)  # fmt: skip
    config = replace(config, home=inputs.home)
    twin = Twin(inputs.twin_params(), inputs.profiles(start, end))
    soc0, temp0 = twin.soc, twin.t_store_c
    base = run_no_control(Twin(inputs.twin_params(), inputs.profiles(start, end)), start, end)
    index = pd.date_range(start, end, freq="15min", inclusive="left")
    prices = inputs.tariff_prices(index)
    plan = perfect_foresight(replace(config, hp_temp_init_c=temp0), twin, start, end, soc0,
                             prices=prices)  # fmt: skip
    runs = {
        "ctl": minute_frame(result.run.steps),
        "rule": minute_frame(base),
        "pf": plan_frame(plan),
    }
    if args.save:
        pd.to_pickle(
            {
                "runs": runs,
                "sessions": sessions,
                "prices": prices,
                "goals": goals,
                "scores": {k: v.full for k, v in result.scores.items()},
            },
            args.save,
        )
    print(report(session_rows(sessions, runs, prices), goals, list(runs)))
    s = result.scores
    print("fair net EUR: " + ", ".join(
        f"{k} {s[k].full.net_eur:.2f}" for k in ("rule-based", "controller", "perfect foresight")
    ) + f"; EV met {s['controller'].full.ev_met}/{s['controller'].full.ev_total}")  # fmt: skip
    print(f"wall {time.perf_counter() - t0:.0f} s")


def report(
    table: pd.DataFrame, goals: dict[pd.Timestamp, tuple[pd.Timestamp, float]], runs: list[str]
) -> str:
    """The per-session table with the controller's aim at plug-in, and the totals."""
    aims = [min(goals.items(), key=lambda kv: abs((kv[0] - a).total_seconds()), default=None)
            for a in table["plug-in"]]  # fmt: skip
    table.insert(3, "aim dep", [g[1][0] if g else pd.NaT for g in aims])
    table.insert(4, "aim kWh", [g[1][1] if g else np.nan for g in aims])
    fmt = table.copy()
    for c in ("plug-in", "plug-out", "aim dep"):
        fmt[c] = pd.DatetimeIndex(fmt[c]).tz_convert("Europe/Berlin").strftime("%a %H:%M")
    cols = ["plug-in", "plug-out", "need", "aim dep", "aim kWh"] + [
        f"{r} {q}" for r in runs for q in ("kWh", "EUR/kWh", "lead h")
    ]
    lines = [fmt[cols].to_string(index=False, float_format=lambda v: f"{v:.2f}")]
    for r in runs:
        eur, kwh = table[f"{r} EUR"].sum(), table[f"{r} kWh"].sum()
        lines.append(f"{r}: {kwh:.2f} kWh into the cars, {eur:.2f} EUR, {eur / kwh:.4f} EUR/kWh")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
