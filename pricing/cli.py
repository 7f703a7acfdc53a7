"""``hbopt prices``: one local day's spot, retail import/export price and CO2 intensity per slot."""

from __future__ import annotations

import argparse
from datetime import date
from pathlib import Path

import pandas as pd

from core.timeindex import ALLOWED_STEPS_MIN, local_day
from pricing.scenario import site_prices
from pricing.sources import PricingSettings, make_carbon_source, make_price_source
from pricing.tariff import SiteExportRules, load_tariff
from pricing.tariffs import EXAMPLE_TARIFF

LOCAL_TZ = "Europe/Berlin"


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg,unused-ignore]
    """Add the ``prices`` sub-command."""
    parser = subparsers.add_parser(
        "prices", help="print one day's spot, retail import/export price and CO2 per slot"
    )
    parser.add_argument("--day", required=True, help="local day (Europe/Berlin), YYYY-MM-DD")
    parser.add_argument(
        "--step", type=int, default=15, choices=ALLOWED_STEPS_MIN, help="slot length [min]"
    )
    parser.add_argument(
        "--tariff",
        type=Path,
        default=EXAMPLE_TARIFF,
        help="tariff TOML (default: the shipped German example)",
    )
    parser.add_argument(
        "--source",
        default=None,
        help="price source name (default: HBOPT_PRICE_SOURCE or 'bundled')",
    )
    parser.add_argument(
        "--carbon-source",
        default=None,
        help="carbon source name (default: HBOPT_CARBON_SOURCE or 'bundled')",
    )
    parser.add_argument(
        "--unpaid-when-negative",
        action="store_true",
        help="site rule: no export payment while spot < 0",
    )
    parser.set_defaults(func=run)


def day_table(args: argparse.Namespace) -> pd.DataFrame:
    """The frame ``hbopt prices`` prints (local time index)."""
    try:
        date.fromisoformat(args.day)
    except ValueError as exc:
        raise ValueError(f"--day {args.day!r} is not a date (YYYY-MM-DD)") from exc
    index = local_day(args.day, tz=LOCAL_TZ, step_min=args.step)
    overrides = {
        k: v for k, v in (("price_source", args.source), ("carbon_source", args.carbon_source)) if v
    }
    settings = PricingSettings(**overrides)
    tariff = load_tariff(args.tariff)
    rules = SiteExportRules(unpaid_when_spot_negative=args.unpaid_when_negative)
    frame = site_prices(
        index,
        tariff,
        rules,
        price_source=make_price_source(settings),
        carbon_source=make_carbon_source(settings),
    )
    table = frame[
        ["spot_eur_per_kwh", "import_eur_per_kwh", "export_eur_per_kwh", "co2_g_per_kwh"]
    ].set_axis(["spot", "import_price", "export_price", "co2_g_kwh"], axis=1)
    table = table.assign(price_est=frame["price_is_estimate"], co2_est=frame["co2_is_estimate"])
    table.index = pd.DatetimeIndex(table.index).tz_convert(LOCAL_TZ)
    return table


def run(args: argparse.Namespace) -> int:
    table = day_table(args)
    print(
        f"# {args.day} ({LOCAL_TZ}), {len(table)} slots of {args.step} min; "
        "prices EUR/kWh (import gross incl. VAT), CO2 gCO2eq/kWh; est = estimate"
    )
    print(f"{'local start':<25} {'spot':>8} {'import':>8} {'export':>8} {'co2':>6}  est")
    for stamp, row in zip(table.index, table.itertuples(), strict=True):
        flags = ",".join(n for n, on in (("price", row.price_est), ("co2", row.co2_est)) if on)
        print(
            f"{stamp.isoformat():<25} {row.spot:8.4f} {row.import_price:8.4f} "
            f"{row.export_price:8.4f} {row.co2_g_kwh:6.0f}  {flags or '-'}"
        )
    return 0
