"""``hbopt prices``: one local day's spot, retail import/export price and CO2 intensity per slot."""

from __future__ import annotations

import argparse
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING

from core.errors import CliError

if TYPE_CHECKING:
    from collections.abc import Callable

    import pandas as pd

    from pricing.sources import PricingSettings

LOCAL_TZ = "Europe/Berlin"
#: ``core.timeindex.ALLOWED_STEPS_MIN``, spelled out so that ``--help`` needs no pandas.
STEPS_MIN = (5, 15, 30, 60)


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg,unused-ignore]
    """Add the ``prices`` sub-command."""
    parser = subparsers.add_parser(
        "prices", help="print one day's spot, retail import/export price and CO2 per slot"
    )
    parser.add_argument("--day", required=True, help="local day (Europe/Berlin), YYYY-MM-DD")
    parser.add_argument("--step", type=int, default=15, choices=STEPS_MIN, help="slot length [min]")
    parser.add_argument(
        "--tariff",
        type=Path,
        default=None,
        help="tariff TOML (default: the shipped German example)",
    )
    parser.add_argument(
        "--source",
        default=None,
        help="price source: bundled, smard or entsoe (default: HBOPT_PRICE_SOURCE or 'bundled')",
    )
    parser.add_argument(
        "--carbon-source",
        default=None,
        help="carbon source: bundled or entsoe (default: HBOPT_CARBON_SOURCE or 'bundled')",
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
    import pandas as pd

    from core.timeindex import local_day
    from pricing.errors import PricingError
    from pricing.scenario import site_prices
    from pricing.sources import PricingSettings, make_carbon_source, make_price_source
    from pricing.tariff import SiteExportRules, load_tariff
    from pricing.tariffs import EXAMPLE_TARIFF

    index = local_day(args.day, tz=LOCAL_TZ, step_min=args.step)
    overrides = {
        k: v for k, v in (("price_source", args.source), ("carbon_source", args.carbon_source)) if v
    }
    settings = PricingSettings(**overrides)
    tariff = load_tariff(args.tariff or EXAMPLE_TARIFF)
    rules = SiteExportRules(unpaid_when_spot_negative=args.unpaid_when_negative)
    try:
        sources = make_price_source(settings), make_carbon_source(settings)
    except PricingError as exc:
        raise CliError(f"--source/--carbon-source: {exc}") from None
    frame = _fetched(
        args,
        settings,
        lambda: site_prices(
            index, tariff, rules, price_source=sources[0], carbon_source=sources[1]
        ),
    )
    table = frame[
        ["spot_eur_per_kwh", "import_eur_per_kwh", "export_eur_per_kwh", "co2_g_per_kwh"]
    ].set_axis(["spot", "import_price", "export_price", "co2_g_kwh"], axis=1)
    table = table.assign(price_est=frame["price_is_estimate"], co2_est=frame["co2_is_estimate"])
    table.index = pd.DatetimeIndex(table.index).tz_convert(LOCAL_TZ)
    return table


def _fetched(
    args: argparse.Namespace, settings: PricingSettings, fetch: Callable[[], pd.DataFrame]
) -> pd.DataFrame:
    """``fetch()``; a source that cannot be reached, or has no data, is a one-line error."""
    import httpx

    from pricing.bundled import coverage_note
    from pricing.errors import PricingError

    source = settings.price_source
    try:
        return fetch()
    except httpx.HTTPError as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise CliError(
            f"--source {source}: the price server does not answer ({reason}); without a "
            "network use --source bundled (2024-01-01 to 2025-10), or try again later",
            exit_code=1,
        ) from None
    except PricingError as exc:
        if source == "bundled" and "no known value" in str(exc):
            raise CliError(f"--day {args.day}: {coverage_note()}") from None
        raise CliError(f"--source {source}: {exc}", exit_code=1) from None


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
