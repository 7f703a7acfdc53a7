"""``hbopt demo``: one simulated day of the whole service, closed loop, in accelerated time.

Starts the box simulator (a real Modbus TCP server on 127.0.0.1 with the physical twin behind
it), a SQLite store in a temporary directory and the scheduler on embedded defaults (the
typical home: 8 kWp, 10 kWh battery, 11 kW wallbox, heat pump; the bundled real prices,
weather and household load; a commuter's car home from 17:30 to 07:30 local that wants
25 kWh by 07:00). Runs 24 hours closed-loop with a progress bar, then prints the day's plan vs
what happened, money and CO2 against the box's own logic on the same day, and writes a PNG.
No network, no configuration. With ``--serve`` it then serves the API and the dashboard on the
day's data (:mod:`hbopt.demo_serve`). It composes the scheduler and the API, so it lives at the
top of the package, next to the command line.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import shutil
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import matplotlib
import pandas as pd
from tqdm import tqdm

from api.accounts_store import AccountStore, DevicePreferences, EquipmentDoc
from api.schemas import WallboxPreferences
from api.settings import Settings
from core.errors import CliError
from hbopt.demo_serve import SCHEDULER_DB, DemoAccount, create_demo_account, serve_demo
from hbopt.service import ControlLoop, ControlSettings
from optimizer import ChargingMode
from scheduler.backtest import format_outcomes
from scheduler.clock import SteppedClock
from scheduler.controller import DepartureTarget, SiteConfig, SiteController
from scheduler.simulate import (
    ClosedLoopRun,
    drive,
    measured_box,
    outcome_from_steps,
    period_prices,
    run_no_control,
    scripted_twin,
    steps_frame,
    valuation,
)
from scheduler.site_model import SiteEquipment
from simulation.box_sim import start_box_simulator
from simulation.twin import Twin

matplotlib.use("Agg")
from matplotlib import dates as mdates
from matplotlib import pyplot as plt
from matplotlib.axes import Axes

TZ = "Europe/Berlin"


def demo_config() -> SiteConfig:
    """The embedded defaults of the demo site."""
    departure = DepartureTarget("07:00", target_kwh=45.0, arrival_kwh=20.0, capacity_kwh=60.0)
    return SiteConfig(
        "demo-home", charging_mode=ChargingMode.SMART, departure=departure, watchdog_timeout_s=60
    )


def run(args: argparse.Namespace, start: pd.Timestamp, out: Path) -> int:
    """The demo of :mod:`hbopt.demo_cli`'s checked arguments: ``start`` (UTC), ``out`` exists."""
    start = start.floor("15min")
    end = start + pd.Timedelta(hours=args.hours)
    mode = ChargingMode(args.mode)
    store_dir = out if args.serve else Path(tempfile.mkdtemp(prefix="hbopt-store-"))
    account = create_demo_account(store_dir, datetime.now(UTC))
    car = [(start + pd.Timedelta(hours=5.5), start + pd.Timedelta(hours=19.5), 26.0)]
    t0 = time.perf_counter()
    run = asyncio.run(
        run_service_day(account, store_dir, scripted_twin(start, 2, car), start, end, mode=mode)
    )
    config = run.controller.config
    base = run_no_control(scripted_twin(start, 2, car), start, end)
    prices = period_prices(config, start, end)
    value = valuation(config, prices)
    ctl = outcome_from_steps(run.steps, prices, value, config.hp_temp_init_c)
    nc = outcome_from_steps(base, prices, value, config.hp_temp_init_c)
    first_plan = run.controller.plans[0][1]
    print()
    print(plan_vs_actual(first_plan, run.steps))
    print()
    print(format_outcomes({"scheduler": ctl, "no control": nc}))
    print()
    print(
        f"saving vs no control  {nc.net_cost_eur - ctl.net_cost_eur:.2f} EUR net "
        f"({nc.cost_eur - ctl.cost_eur:.2f} EUR on the bill), "
        f"CO2 {nc.co2_kg - ctl.co2_kg:+.1f} kg avoided"
    )
    reports = run.controller.reports
    events = sorted({r for rep in reports for r in rep.reasons if r != "timer"})
    print(
        f"cycles                {len(reports)} ({sum(not r.ok for r in reports)} failed), "
        f"events: {', '.join(events)}"
    )
    path = out / f"hbopt-demo-{start:%Y%m%d}.png"
    plot_day(run.steps, base, prices, first_plan, path)
    print(f"plot                  {path}")
    print(f"store                 SQLite in {store_dir} ({len(reports)} plans saved)")
    print(f"wall time             {time.perf_counter() - t0:.1f} s")
    if not args.serve:
        shutil.rmtree(store_dir, ignore_errors=True)
        print("dashboard             run `hbopt demo --serve` to browse this day in the dashboard")
        return 0
    serve_demo(account, store_dir, end, "127.0.0.1", args.port)
    return 0


async def run_service_day(
    account: DemoAccount,
    data_dir: Path,
    twin: Twin,
    start: pd.Timestamp,
    end: pd.Timestamp,
    *,
    mode: ChargingMode,
) -> ClosedLoopRun:
    """The service's control loop for the demo site, its box simulated on 127.0.0.1.

    The owner's site gets a box (paired with its starter code, its Modbus address recorded),
    the typical home's equipment and the charging mode, as an owner and the operator would
    enter them; then :class:`~hbopt.service.ControlLoop` -- what ``hbopt serve`` runs --
    controls it on a stepped clock that the simulated minutes drive.
    """
    box, sim_clock = measured_box(twin, start, account.site_id)
    sim = await start_box_simulator(box)
    clock = SteppedClock(sim_clock)
    _set_up_site(account, sim.port, start, mode)
    settings = Settings(
        database_path=account.accounts_path,
        telemetry_path=data_dir / SCHEDULER_DB,
        log_requests=False,
        input_jobs=False,  # the demo plans on the bundled data, offline
    )
    # one process on a stepped clock that jumps minutes: no leases to share or renew
    control = ControlSettings(solver_workers=1, watchdog_timeout_s=60, poll_s=60.0, leases=False)
    loop = ControlLoop(settings, control, clock, keep_history=None)
    task = asyncio.create_task(loop.run())
    t0 = time.perf_counter()
    try:
        controller = await _first_cycle(loop, account.site_id, task)
        minutes = int((end - start).total_seconds() // 60)
        with tqdm(total=minutes, desc="simulated day", unit="sim-min") as bar:
            await drive(clock, box, end, bar)
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await sim.stop()
    return ClosedLoopRun(steps_frame(box.steps), controller, box, time.perf_counter() - t0)


def _set_up_site(account: DemoAccount, port: int, start: pd.Timestamp, mode: ChargingMode) -> None:
    """Pair a box, record its address, enter the equipment and the car's settings."""
    accounts = AccountStore(account.accounts_path)
    now = datetime.now(UTC)
    try:
        serial = f"DEMO-{account.site_id[-6:]}"
        accounts.register_starter_code(serial, "factory", now)
        accounts.pair_box(serial, account.site_id, f"demo-token-{serial}", now)
        accounts.set_box_link(serial, "127.0.0.1", port, 1, now)
        equipment = SiteEquipment()
        doc = EquipmentDoc(account.site_id, equipment.model_dump_json(), now, "demo")
        accounts.set_equipment(doc)
        departure = demo_config().departure.next_departure(start).to_pydatetime()
        target = demo_config().departure.target_kwh
        prefs = WallboxPreferences(mode=mode, departure=departure, target_kwh=target)
        name = equipment.wallboxes[0].name
        accounts.set_device_preferences(
            DevicePreferences(
                account.site_id, "wallbox", name, prefs.model_dump_json(), now, "demo"
            )
        )
    finally:
        accounts.close()


async def _first_cycle(loop: ControlLoop, site_id: str, task: asyncio.Task[None]) -> SiteController:
    """Wait (real time) until the supervisor started the site and its first cycle is done."""
    for _ in range(6000):
        if task.done():
            task.result()  # raises what stopped the control loop
        running = {} if loop.supervisor is None else loop.supervisor.running
        controller = running.get(site_id)
        if controller is not None and controller.reports:
            return controller
        await asyncio.sleep(0.01)
    raise CliError("the control loop did not start the demo site within 60 s")


def plan_vs_actual(plan: pd.DataFrame, steps: pd.DataFrame) -> str:
    """Hourly table: the first plan of the day (forecast) next to what the twin did."""
    hourly = steps.resample("1h").mean()
    planned = plan.resample("1h").mean().reindex(hourly.index)
    cols = [
        ("PV kW", "pv_forecast_kw", "pv_kw"),
        ("house kW", "load_kw", "load_kw"),
        ("EV kW", "ev_kw", "ev_kw"),
        ("HP kW", "hp_kw", "hp_kw"),
        ("batt kW", "battery_kw", "battery_kw"),
        ("grid kW", "grid_kw", "grid_kw"),
    ]
    head = "local  " + " ".join(f"{name:>13}" for name, _, _ in cols) + "   SOC plan/real"
    sub = "       " + " ".join(f"{'plan   real':>13}" for _ in cols)
    lines = ["the day's first plan (forecasts) vs what happened, hourly means", head, sub]
    for i, ts in enumerate(pd.DatetimeIndex(hourly.index).tz_convert(TZ)):
        p, row = planned.iloc[i], hourly.iloc[i]
        cells = " ".join(f"{p[a]:6.2f} {row[b]:6.2f}" for _, a, b in cols)
        soc = f"{p['battery_soc']:5.0%} {row['soc_end']:5.0%}"
        lines.append(f"{ts:%H:%M}  {cells}   {soc}")
    return "\n".join(lines)


def plot_day(
    steps: pd.DataFrame,
    base: pd.DataFrame,
    prices: pd.DataFrame,
    plan: pd.DataFrame,
    path: Path,
) -> None:
    """The day as one PNG: prices and grid CO2 intensity, PV and load, grid import/export,
    battery SOC, EV and heat-pump power, and the CO2 the imports caused (scheduler vs the
    box's own logic)."""
    local, base_l = steps.tz_convert(TZ), base.tz_convert(TZ)
    pr = prices.tz_convert(TZ)
    fig, axes = plt.subplots(6, 1, figsize=(11, 14), sharex=True)
    fig.suptitle("Heartbeat Optimizer demo: one simulated day, closed loop", fontsize=13)
    _prices_panel(axes[0], pr)
    pl = plan.tz_convert(TZ)
    axes[1].plot(local.index, local["pv_kw"], color="#e5a800", label="PV")
    axes[1].plot(pl.index, pl["pv_forecast_kw"], "--", color="#a67a00", label="PV forecast")
    axes[1].plot(local.index, local["load_kw"], color="#2f6fb3", label="house load")
    axes[1].set_ylabel("kW")
    _grid_panel(axes[2], local, base_l)
    axes[3].plot(local.index, local["soc_end"] * 100, color="#1b8a5a", label="scheduler")
    axes[3].plot(base_l.index, base_l["soc_end"] * 100, color="#888", label="no control")
    axes[3].set_ylabel("battery SOC %")
    axes[3].set_ylim(0, 100)
    axes[4].plot(local.index, local["ev_kw"], color="#d2487a", label="EV, scheduler")
    axes[4].plot(base_l.index, base_l["ev_kw"], ":", color="#d2487a", label="EV, no control")
    axes[4].plot(local.index, local["hp_kw"], color="#d66a1f", label="heat pump, scheduler")
    axes[4].plot(base_l.index, base_l["hp_kw"], ":", color="#d66a1f", label="HP, no control")
    axes[4].set_ylabel("kW")
    _co2_panel(axes[5], local, base_l, pr)
    axes[5].set_xlabel(f"local time ({TZ})")
    axes[5].xaxis.set_major_formatter(mdates.DateFormatter("%H:%M", tz=TZ))
    for ax in axes:
        ax.legend(loc="best", fontsize=8, ncol=2, framealpha=0.85)
        ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def _prices_panel(ax: Axes, pr: pd.DataFrame) -> None:
    ax.step(pr.index, pr["import_eur_per_kwh"] * 100, where="post", label="import price")
    ax.step(pr.index, pr["export_eur_per_kwh"] * 100, where="post", label="export price")
    ax.set_ylabel("ct/kWh")
    twin = ax.twinx()
    twin.plot(pr.index, pr["co2_g_per_kwh"], color="#5e6e67", alpha=0.6, lw=1)
    twin.set_ylabel("grid g CO2/kWh", color="#5e6e67")


def _grid_panel(ax: Axes, local: pd.DataFrame, base_l: pd.DataFrame) -> None:
    """Import up, export down: the scheduler filled, the box's own logic as a line."""
    grid = local["grid_kw"]
    ax.fill_between(grid.index, grid.clip(lower=0), step="post", color="#b3541e", alpha=0.6,
                    label="import, scheduler")  # fmt: skip
    ax.fill_between(grid.index, grid.clip(upper=0), step="post", color="#3b9ad9", alpha=0.6,
                    label="export, scheduler")  # fmt: skip
    ax.step(base_l.index, base_l["grid_kw"], where="post", color="#444", lw=0.8,
            label="grid, no control")  # fmt: skip
    ax.axhline(0, color="#444", lw=0.6)
    ax.set_ylabel("grid kW\n(+ import)")


def _co2_panel(ax: Axes, local: pd.DataFrame, base_l: pd.DataFrame, pr: pd.DataFrame) -> None:
    """Cumulative CO2 of the grid imports [kg] at the grid's hourly intensity."""
    for frame, label, style in ((local, "scheduler", "-"), (base_l, "no control", "--")):
        index = pd.DatetimeIndex(frame.index)
        dt_h = (index[1] - index[0]).total_seconds() / 3600
        intensity = pr["co2_g_per_kwh"].reindex(frame.index, method="ffill")
        kg = (frame["grid_kw"].clip(lower=0) * dt_h * intensity / 1000).cumsum()
        ax.plot(kg.index, kg, style, color="#0f7b55", label=f"{label}: {kg.iloc[-1]:.1f} kg")
    ax.set_ylabel("CO2 of imports\nkg, cumulative")
