"""``hbopt backtest``: the command line of :mod:`scheduler.backtest`."""

from __future__ import annotations

import argparse

from core import cli_args
from core.errors import CliError
from scheduler.plan_cli import CHARGING_MODES, SITE_TZ


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg,unused-ignore]
    p = subparsers.add_parser(
        "backtest",
        help="run the controller over historical days against the simulated box",
        description="Closed-loop backtest on the bundled real prices, weather, load and EV "
        "sessions, compared with no control and with the perfect-foresight optimum.",
    )
    p.add_argument(
        "--start",
        default="2024-06-01T00:00Z",
        help=f"first day; without an offset it is local time in {SITE_TZ} (default %(default)s)",
    )
    p.add_argument("--days", type=int, default=7, help="number of days (default 7)")
    p.add_argument("--mode", default="smart", choices=CHARGING_MODES)
    p.add_argument(
        "--pv-forecast",
        default="clearsky",
        choices=("clearsky", "weather", "day-ahead"),
        help="clear-sky x recent production (default), the measured weather as a (perfect) "
        "forecast, or the measured weather with day-ahead forecast errors "
        "(optimizer.weather_errors, published skill)",
    )
    p.add_argument(
        "--transport",
        default="inprocess",
        choices=("inprocess", "modbus"),
        help="box link: in-process (default, fast) or Modbus TCP on 127.0.0.1",
    )
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if not 1 <= args.days <= 60:
        raise CliError(f"--days: must be in 1..60, got {args.days}")
    start = cli_args.start_time("--start", args.start, SITE_TZ)
    import tempfile
    from dataclasses import replace

    from optimizer import ChargingMode
    from optimizer.weather_errors import DayAheadErrors, perturb_weather
    from scheduler.backtest import backtest, format_result
    from scheduler.backtest_inputs import bundled_inputs
    from scheduler.controller import SiteConfig

    config = replace(
        SiteConfig("backtest", watchdog_timeout_s=180),
        charging_mode=ChargingMode(args.mode),
        pv_forecast="clearsky" if args.pv_forecast == "clearsky" else "weather",
    )
    inputs = bundled_inputs(start, args.days, config.home)
    if args.pv_forecast == "day-ahead":
        errors = DayAheadErrors(seed=int(start.dayofyear))
        inputs = replace(inputs, forecast_weather=perturb_weather(inputs.weather, errors))
    with tempfile.TemporaryDirectory(prefix="hbopt-backtest-") as tmp:
        result = backtest(
            start,
            args.days,
            config,
            inputs=inputs,
            transport=args.transport,
            store_dir=tmp,
            progress=not args.quiet,
        )
    print(format_result(result))
    return 0
