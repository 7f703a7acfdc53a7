"""A simulated fleet on the bundled real data, with each box stubbed by an in-process twin.

Homes differ (seeded): PV size, battery size, EV present or not with its charging mode and
energy, heat pump or not, battery SOC and store temperature at the start. Prices, weather and
the reference PV and load profiles are the bundled real ones (:func:`fleet_frame`), shared by
all homes; a home scales them by its kWp and annual load. The box link is a
:class:`TwinBox` (a :class:`~simulation.twin.Twin` in this process), so a benchmark
measures planning, not the network.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from adapters.datasets import PvSystem
from adapters.heartbeat.esi_types import BatteryMode
from core.timeindex import check_index, utc_range
from optimizer import (
    PV,
    Battery,
    ChargingMode,
    EVSession,
    FeedInRule,
    Grid,
    HeatPump,
    Setpoints,
    Site,
    State,
    Wallbox,
)
from scheduler.fleet import (
    FleetReport,
    FleetRunner,
    SiteForecast,
    SiteJob,
    SiteReport,
    SiteStatus,
)
from scheduler.scenario import Home, scenario_frame
from simulation.twin import (
    BatteryParams,
    DeviceCommand,
    HeatPumpParams,
    Profiles,
    SiteParams,
    Twin,
)

#: Annual household load the shared ``load_kw`` profile is scaled to [kWh/a].
REFERENCE_LOAD_KWH = 1000.0
#: A sunny June week with measured weather (midnight in Berlin).
DEFAULT_START = "2024-06-12T22:00Z"
EV_CAPACITY_KWH = 60.0


class BoxUnreachableError(ConnectionError):
    """The stubbed box does not answer."""


@dataclass(frozen=True)
class SimulatedHome:
    """One home of the simulated fleet.

    ``pv_kwp`` [kWp] (0 = none), ``battery_kwh`` [kWh] (0 = none), ``annual_load_kwh``
    [kWh/a], ``soc`` [0-1], ``t_store_c`` [degC]; ``ev_mode`` is ``None`` without a car, else
    the car's mode, with ``ev_need_kwh`` [kWh] to charge before ``departure_h`` [h after the
    cycle start].
    """

    site_id: str
    pv_kwp: float
    battery_kwh: float
    annual_load_kwh: float
    heat_pump: bool
    soc: float
    t_store_c: float
    ev_mode: ChargingMode | None
    ev_need_kwh: float
    departure_h: float

    def site(self) -> Site:
        """The optimizer's view of the home."""
        battery = None
        if self.battery_kwh > 0:
            power = self.battery_kwh / 2
            battery = Battery(self.battery_kwh, charge_kw=power, discharge_kw=power)
        return Site(
            grid=Grid(feed_in_rule=FeedInRule.NO_PAYMENT_AT_NEGATIVE_SPOT),
            pv=PV(self.pv_kwp) if self.pv_kwp > 0 else None,
            battery=battery,
            wallboxes=(Wallbox(),) if self.ev_mode is not None else (),
            heat_pumps=(HeatPump(),) if self.heat_pump else (),
        )


def simulated_homes(
    n: int, seed: int = 0, smart_ev_share: float | None = None
) -> list[SimulatedHome]:
    """``n`` different homes, reproducible from ``seed``.

    By default 60 % have a car in a random mode; with ``smart_ev_share`` that share of homes
    has a car plugged in ``smart`` mode with energy still to charge before departure (the
    hard case for the optimizer).
    """
    rng = np.random.default_rng(seed)
    modes = [ChargingMode.SMART] if smart_ev_share is not None else list(ChargingMode)
    share = 0.6 if smart_ev_share is None else smart_ev_share
    homes = []
    for k in range(n):
        has_ev = rng.random() < share
        homes.append(
            SimulatedHome(
                site_id=f"home-{k:06d}",
                pv_kwp=float(rng.choice([0.0, 4.0, 6.0, 8.0, 10.0, 12.0])),
                battery_kwh=float(rng.choice([0.0, 5.0, 10.0, 15.0])),
                annual_load_kwh=float(rng.uniform(2000, 6000)),
                heat_pump=bool(rng.random() < 0.4),
                soc=float(rng.uniform(0.1, 0.9)),
                t_store_c=float(rng.uniform(20.0, 22.5)),
                ev_mode=modes[int(rng.integers(len(modes)))] if has_ev else None,
                ev_need_kwh=float(rng.uniform(5, 40)),
                departure_h=float(rng.uniform(6, 12)),
            )
        )
    return homes


def fleet_frame(start: str | pd.Timestamp = DEFAULT_START, periods: int = 96) -> pd.DataFrame:
    """The shared frame: bundled prices, CO2, weather, PV per kWp and load per MWh/a.

    Returns
    -------
    pandas.DataFrame
        15-min UTC index; columns of :data:`scheduler.fleet.SHARED_INPUTS` plus
        ``pv_kw`` [kW per kWp] and ``load_kw`` [kW per :data:`REFERENCE_LOAD_KWH`].
    """
    reference = Home(pv_system=PvSystem(peak_kw=1.0), annual_load_kwh=REFERENCE_LOAD_KWH)
    return scenario_frame(reference, utc_range(start, periods, 15))


class TwinBox:
    """The box link of one home, stubbed by its physical twin in this process.

    ``read_state`` is what the controller reads from the box (SOC, store temperature, the car
    plugged in); ``apply`` sends the live setpoints, and the twin runs one slot under them.
    """

    def __init__(self, home: SimulatedHome, frame: pd.DataFrame, reachable: bool = True) -> None:
        self.home = home
        self.reachable = reachable
        self.t = float(frame.index[0].timestamp())
        self.dt_s = check_index(pd.DatetimeIndex(frame.index)).total_seconds()
        self.twin = Twin(_twin_params(home), _twin_profiles(home, frame))

    def read_state(self) -> State:
        """Live state now; raises :class:`BoxUnreachableError` when the box does not answer."""
        if not self.reachable:
            raise BoxUnreachableError(f"{self.home.site_id}: no answer from the box")
        sessions: tuple[EVSession, ...] = ()
        k = self.twin.ev_session(self.t)
        if k is not None and self.home.ev_mode is not None:
            left = float(self.twin._ev_left[k])
            departure = pd.Timestamp(self.twin._plugout[k], unit="s", tz="UTC")
            energy = max(EV_CAPACITY_KWH - left, 0.0)
            sessions = (
                EVSession(
                    mode=self.home.ev_mode,
                    capacity_kwh=EV_CAPACITY_KWH,
                    energy_kwh=energy,
                    departure=departure,
                ),
            )
        temps = {"hp": self.twin.t_store_c} if self.home.heat_pump else {}
        soc = float(np.clip(self.twin.soc, 0.0, 1.0)) if self.home.battery_kwh > 0 else 0.5
        return State(soc, temps, sessions)

    def apply(self, setpoints: Setpoints) -> None:
        """Send the live setpoints; the twin runs the slot under them."""
        if not self.reachable:
            raise BoxUnreachableError(f"{self.home.site_id}: no answer from the box")
        self.twin.step(self.t, self.dt_s, device_command(setpoints))
        self.t += self.dt_s


def device_command(sp: Setpoints) -> DeviceCommand:
    """What a box applies for the optimizer's setpoints (battery + = discharge [kW])."""
    wb = sp.wallboxes.get("ev")
    hp = sp.heat_pumps.get("hp")
    return DeviceCommand(
        battery_kw=sp.battery_kw or 0.0,
        battery_mode=BatteryMode.AUTO if sp.battery_kw is None else BatteryMode.SETPOINT,
        wallbox_current_a=(wb.current_a or 0.0) if wb is not None else 0.0,
        wallbox_phases=wb.phases if wb is not None and wb.phases else 3,
        hp_sgready=hp.sgready if hp is not None else 2,
    )


def _twin_params(home: SimulatedHome) -> SiteParams:
    power = home.battery_kwh / 2
    battery = BatteryParams(
        capacity_kwh=max(home.battery_kwh, 1e-3),
        charge_max_kw=power,
        discharge_max_kw=power,
        soc_init=home.soc,
    )
    return SiteParams(
        pv=PvSystem(peak_kw=home.pv_kwp),
        battery=battery,
        heat_pump=HeatPumpParams(t_init_c=home.t_store_c),
        annual_load_kwh=home.annual_load_kwh,
    )


def _twin_profiles(home: SimulatedHome, frame: pd.DataFrame) -> Profiles:
    start = frame.index[0]
    plugin = [start] if home.ev_mode is not None else []
    plugout = [start + pd.Timedelta(hours=home.departure_h)] if plugin else []
    sessions = pd.DataFrame(
        {
            "plugin_utc": pd.to_datetime(plugin, utc=True),
            "plugout_utc": pd.to_datetime(plugout, utc=True),
            "energy_kwh": [home.ev_need_kwh] if plugin else [],
        }
    )
    return Profiles(
        start=start.timestamp(),
        pv_kw=frame["pv_kw"].to_numpy(float) * home.pv_kwp,
        load_kw=frame["load_kw"].to_numpy(float) * home.annual_load_kwh / REFERENCE_LOAD_KWH,
        t_out_c=frame["t_out_c"].to_numpy(float),
        ev_sessions=sessions,
    )


def home_job(home: SimulatedHome, state: State) -> SiteJob:
    """The fleet job of ``home`` with the state its box reported."""
    forecast = SiteForecast(
        pv_scale=home.pv_kwp, load_scale=home.annual_load_kwh / REFERENCE_LOAD_KWH
    )
    return SiteJob(home.site_id, home.site(), state, forecast)


@dataclass(frozen=True)
class SimulatedCycle:
    """A fleet cycle with the box link: the runner's report and the box I/O time [s]."""

    report: FleetReport
    box_io_s: float


def run_simulated_cycle(
    runner: FleetRunner,
    boxes: list[TwinBox],
    frame: pd.DataFrame,
    on_sites_done: Callable[[int], object] | None = None,
) -> SimulatedCycle:
    """Read every box, plan the fleet, send each box its live setpoints.

    A box that does not answer is reported ``box_unreachable`` and not planned; the others
    are planned and applied as usual.
    """
    t0 = time.perf_counter()
    jobs: list[SiteJob] = []
    unreachable: dict[str, str] = {}
    for box in boxes:
        try:
            jobs.append(home_job(box.home, box.read_state()))
        except BoxUnreachableError as exc:
            unreachable[box.home.site_id] = str(exc)
    io_s = time.perf_counter() - t0
    if on_sites_done is not None and unreachable:
        on_sites_done(len(unreachable))
    report = runner.run(jobs, frame, on_sites_done)
    t1 = time.perf_counter()
    by_id = {r.site_id: r for r in report.sites}
    sites: list[SiteReport] = []
    for box in boxes:
        site_id = box.home.site_id
        if site_id in unreachable:
            sites.append(SiteReport(site_id, SiteStatus.UNREACHABLE, unreachable[site_id]))
            continue
        result = by_id[site_id]
        if result.status == SiteStatus.OK:
            box.apply(result.setpoints[0])
        sites.append(result)
    io_s += time.perf_counter() - t1
    return SimulatedCycle(FleetReport(tuple(sites), report.wall_s), io_s)
