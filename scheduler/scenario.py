"""A home on the bundled real data: the scenario behind ``hbopt plan``, demos and benchmarks.

Prices come from :mod:`pricing` (bundled DE-LU day-ahead prices through the example
German dynamic tariff), PV from the DWD weather through pvlib, the household load from the
BDEW H25 profile (:mod:`adapters.datasets`). The values are what happened, so a plan on
them is a perfect-foresight plan; the scheduler's forecasts replace them in the control loop.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

import pandas as pd

from adapters.datasets import (
    PvSystem,
    household_load_for_period,
    pv_power,
    weather_for_period,
)
from core.timeindex import utc_range
from optimizer import (
    Battery,
    ChargingMode,
    EVSession,
    FeedInRule,
    Grid,
    HeatPump,
    Inputs,
    Problem,
    Site,
    State,
    Tuning,
    Wallbox,
)
from pricing import PriceSource, SiteExportRules, Tariff, load_tariff, site_prices

#: Devices a scenario can include, in the order benchmarks grow them.
DEVICE_SETS: dict[str, tuple[str, ...]] = {
    "battery": ("battery",),
    "battery+ev": ("battery", "ev"),
    "battery+ev+hp": ("battery", "ev", "hp"),
}


def example_tariff_path() -> Path:
    """The shipped German dynamic-tariff example (documented in the file)."""
    return Path(str(resources.files("pricing.tariffs") / "de_dynamic_example.toml"))


@dataclass(frozen=True)
class Home:
    """A home for scenarios: optimizer site, PV orientation and annual household load.

    The default is the typical home of the studies: 8 kWp south, 10 kWh battery, an 11 kW
    wallbox, a 3 kW heat pump, 3,500 kWh/a household load, feed-in without payment at
    negative spot prices (German plants since 2025).
    """

    site: Site = field(
        default_factory=lambda: Site(
            grid=Grid(feed_in_rule=FeedInRule.NO_PAYMENT_AT_NEGATIVE_SPOT),
            battery=Battery(capacity_kwh=10.0, charge_kw=5.0, discharge_kw=5.0),
            wallboxes=(Wallbox(),),
            heat_pumps=(HeatPump(),),
        )
    )
    pv_system: PvSystem = field(default_factory=lambda: PvSystem(peak_kw=8.0))
    annual_load_kwh: float = 3500.0
    tariff_path: Path = field(default_factory=example_tariff_path)
    #: The site's own tariff (selected or uploaded); None: the file at ``tariff_path``.
    tariff: Tariff | None = None

    def retail_tariff(self) -> Tariff:
        """The tariff this home pays: its own, else the file at ``tariff_path``."""
        return self.tariff if self.tariff is not None else load_tariff(self.tariff_path)

    def with_devices(self, devices: tuple[str, ...]) -> Home:
        """The same home with only ``devices`` (``battery``, ``ev``, ``hp``)."""
        site = Site(
            grid=self.site.grid,
            pv=self.site.pv,
            battery=self.site.battery if "battery" in devices else None,
            wallboxes=self.site.wallboxes if "ev" in devices else (),
            heat_pumps=self.site.heat_pumps if "hp" in devices else (),
        )
        return Home(site, self.pv_system, self.annual_load_kwh, self.tariff_path, self.tariff)

    def export_rules(self) -> SiteExportRules:
        grid = self.site.grid
        return SiteExportRules(
            unpaid_when_spot_negative=grid.feed_in_rule == FeedInRule.NO_PAYMENT_AT_NEGATIVE_SPOT,
            export_limit_kw=grid.feed_in_cap_kw,
        )


def scenario_frame(
    home: Home,
    index: pd.DatetimeIndex,
    tariff: Tariff | None = None,
    *,
    price_source: PriceSource | None = None,
    weather: pd.DataFrame | None = None,
    seasonal: bool = False,
) -> pd.DataFrame:
    """Per-slot inputs of ``home`` on ``index`` from the bundled data (or the given inputs).

    Parameters
    ----------
    tariff : Tariff, optional
        Default: the home's own (:meth:`Home.retail_tariff`).
    price_source : PriceSource, optional
        Default: the bundled prices.
    weather : pandas.DataFrame, optional
        Weather on ``index`` (``WEATHER_COLUMNS``); default the bundled measured weather.
    seasonal : bool
        Fill slots with no known price in the 35 days before with the flagged seasonal
        estimate from the bundled history instead of raising (the service, any date).

    Returns
    -------
    pandas.DataFrame
        The optimizer's input columns (:data:`optimizer.problem.INPUT_COLUMNS`) plus
        the tariff breakdown and ``price_is_estimate`` / ``co2_is_estimate`` flags.
    """
    tariff = tariff or home.retail_tariff()
    frame = site_prices(
        index, tariff, home.export_rules(), price_source=price_source, seasonal=seasonal
    )
    weather = weather_for_period(index) if weather is None else weather
    frame["pv_kw"] = pv_power(weather, home.pv_system).clip(lower=0).to_numpy()
    frame["load_kw"] = household_load_for_period(index, home.annual_load_kwh).to_numpy()
    frame["t_out_c"] = weather["temp_air_c"].astype(float).to_numpy()
    return frame


def default_session(index: pd.DatetimeIndex, mode: ChargingMode) -> EVSession:
    """A car plugged in now with 20 of 60 kWh, wanting 48 kWh by 07:00 UTC of the next day."""
    departure = index[0].normalize() + pd.Timedelta(days=1, hours=7)
    return EVSession(mode=mode, capacity_kwh=60, energy_kwh=20, target_kwh=48, departure=departure)


def scenario_problem(
    home: Home,
    start: str | pd.Timestamp,
    periods: int = 96,
    step_min: int = 15,
    *,
    mode: ChargingMode = ChargingMode.SMART,
    battery_soc: float = 0.3,
    tuning: Tuning | None = None,
) -> tuple[Problem, pd.DataFrame]:
    """The optimization problem of ``home`` from ``start`` and the frame it was built from."""
    index = utc_range(start, periods, step_min)
    frame = scenario_frame(home, index)
    sessions = (default_session(index, mode),) if home.site.wallboxes else ()
    temps = {hp.name: 21.0 for hp in home.site.heat_pumps}
    problem = Problem(
        home.site,
        Inputs.from_frame(frame),
        State(battery_soc, temps, sessions),
        tuning or Tuning(),
    )
    return problem, frame
