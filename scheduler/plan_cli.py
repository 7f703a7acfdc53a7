"""``hbopt plan``: solve the bundled one-day scenario and print the schedule and its cost."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

from core import cli_args
from core.errors import CliError

if TYPE_CHECKING:
    import pandas as pd

    from optimizer import Plan

DEFAULT_START = "2024-06-12T22:00Z"  # midnight in Berlin, a sunny week with measured weather
SITE_TZ = "Europe/Berlin"  # the bundled home's time zone
#: ``optimizer.ChargingMode`` values and ``scheduler.scenario.DEVICE_SETS`` keys, spelled out
#: so that ``--help`` imports neither (a test keeps them equal).
CHARGING_MODES = ("off", "now", "solar", "min_solar", "smart", "after_battery")
DEVICE_SET_NAMES = ("battery", "battery+ev", "battery+ev+hp")
SOLVERS = ("highs", "pulp")

TABLE_COLUMNS = {
    "import_eur_per_kwh": ("import", 100.0, "{:6.1f}"),
    "export_eur_per_kwh": ("export", 100.0, "{:6.1f}"),
    "pv_kw": ("PV", 1.0, "{:5.2f}"),
    "load_kw": ("house", 1.0, "{:5.2f}"),
    "grid_kw": ("grid", 1.0, "{:6.2f}"),
    "battery_kw": ("batt", 1.0, "{:6.2f}"),
    "battery_soc": ("SOC%", 100.0, "{:5.1f}"),
    "ev_kw": ("EV", 1.0, "{:5.2f}"),
    "hp_kw": ("HP", 1.0, "{:5.2f}"),
    "hp_temp_c": ("T_HP", 1.0, "{:5.1f}"),
    "hp_sgready": ("SG", 1.0, "{:2.0f}"),
}


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg,unused-ignore]
    p = subparsers.add_parser(
        "plan",
        help="solve the bundled one-day scenario and print the schedule and cost",
        description="Plan the typical home (8 kWp, 10 kWh battery, 11 kW wallbox, heat pump) "
        "on the bundled real prices, weather and load, and print the schedule.",
    )
    p.add_argument(
        "--start",
        default=DEFAULT_START,
        help="horizon start; without an offset (2024-06-12T00:00) it is local time in the "
        f"site's time zone, {SITE_TZ} (default: %(default)s)",
    )
    p.add_argument("--hours", type=int, default=24, help="horizon length [h] (default 24)")
    p.add_argument("--step", type=int, default=15, choices=(5, 15, 30, 60), help="slot [min]")
    p.add_argument("--devices", default="battery+ev+hp", choices=DEVICE_SET_NAMES)
    p.add_argument("--mode", default="smart", choices=CHARGING_MODES)
    p.add_argument("--soc", type=float, default=0.3, help="battery SOC at the start [0-1]")
    p.add_argument("--solver", default="highs", help=f"one of {', '.join(SOLVERS)}")
    p.add_argument("--tz", default=SITE_TZ, help="time zone of the printed table")
    p.add_argument("--csv", type=Path, help="also write the per-slot plan to this CSV file")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    # every flag is checked before the data are loaded and the problem solved
    if args.hours <= 0 or args.hours * 60 % args.step:
        raise CliError("--hours must be positive and a whole number of slots")
    if not 0.0 <= args.soc <= 1.0:
        raise CliError(f"--soc: {args.soc} is not a state of charge; give 0..1 (0.3 = 30 %)")
    if args.solver.partition(":")[0] not in SOLVERS:
        raise CliError(f"--solver: unknown solver {args.solver!r}; use one of {SOLVERS}")
    tz = cli_args.time_zone("--tz", args.tz)
    start = cli_args.start_time("--start", args.start, SITE_TZ)
    if args.csv is not None:
        cli_args.output_file("--csv", args.csv)
    plan = _solve(args, start)
    print(format_table(plan, tz))
    print()
    print(format_summary(plan))
    if args.csv:
        plan.slots.to_csv(args.csv)
        print(f"\nper-slot plan written to {args.csv}")
    return 0


def _solve(args: argparse.Namespace, start: pd.Timestamp) -> Plan:
    from optimizer import ChargingMode, Tuning, optimize
    from pricing.bundled import coverage_note
    from pricing.errors import PricingError
    from scheduler.scenario import DEVICE_SETS, Home, scenario_problem

    home = Home().with_devices(DEVICE_SETS[args.devices])
    periods = args.hours * 60 // args.step
    try:
        problem, _ = scenario_problem(
            home,
            start,
            periods,
            args.step,
            mode=ChargingMode(args.mode),
            battery_soc=args.soc,
            tuning=Tuning(),
        )
    except PricingError:
        raise CliError(f"--start {args.start}: {coverage_note()}") from None
    return optimize(problem, args.solver)


def format_table(plan: Plan, tz: str) -> str:
    """The schedule, one line per slot: prices [ct/kWh], powers [kW], SOC [%], temperature."""
    import pandas as pd

    slots = plan.slots
    cols = [c for c in TABLE_COLUMNS if c in slots]
    header = "time   " + " ".join(f"{TABLE_COLUMNS[c][0]:>6}" for c in cols)
    units = "local  " + " ".join(f"{_unit(c):>6}" for c in cols)
    lines = [header, units]
    local = pd.DatetimeIndex(slots.index).tz_convert(tz)
    for ts, values in zip(local, slots[cols].to_numpy(), strict=True):
        cells = [
            f"{TABLE_COLUMNS[c][2].format(v * TABLE_COLUMNS[c][1]):>6}"
            for c, v in zip(cols, values, strict=True)
        ]
        lines.append(f"{ts:%H:%M}  " + " ".join(cells))
    return "\n".join(lines)


def _unit(column: str) -> str:
    if column.endswith("eur_per_kwh"):
        return "ct/kWh"
    if column.endswith("_kw"):
        return "kW"
    return {"battery_soc": "%", "hp_temp_c": "degC", "hp_sgready": "1-4"}.get(column, "")


def format_summary(plan: Plan) -> str:
    s = plan.summary
    lines = [
        f"energy cost      {s.cost_eur:8.2f} EUR  (import {s.import_kwh:.1f} kWh, "
        f"export {s.export_kwh:.1f} kWh)",
        f"battery wear     {s.battery_wear_eur:8.2f} EUR",
        f"end value        {s.terminal_value_eur:8.2f} EUR  (energy and heat left at the end)",
        f"PV               {s.pv_kwh:8.1f} kWh  self-consumption {s.self_consumption:.0%}, "
        f"curtailed {s.pv_curtailed_kwh:.1f} kWh",
    ]
    if s.co2_kg is not None:
        lines.append(f"grid CO2         {s.co2_kg:8.1f} kg")
    lines.append(
        f"solver           {s.solver} {s.status}, gap {s.mip_gap:.2%}, "
        f"{s.num_vars} variables ({s.num_integers} integer, {s.integers_imposed} branched), "
        f"build {s.build_ms:.1f} ms, solve {s.solve_ms:.1f} ms"
    )
    if s.violations:
        lines.append(
            "not met          "
            + ", ".join(f"{v.name} {v.amount:.2f} {v.unit}" for v in s.violations)
        )
    else:
        lines.append("not met          nothing: every target and comfort bound is met")
    return "\n".join(lines)
