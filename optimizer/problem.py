"""The optimization problem of one site: configuration, live state, per-slot inputs, tuning."""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from core.timeindex import check_index
from optimizer.config import ConfigError, EVSession, Site, Tuning

#: Input columns of :meth:`Inputs.from_frame`: name -> required.
INPUT_COLUMNS: dict[str, bool] = {
    "import_eur_per_kwh": True,
    "export_eur_per_kwh": True,
    "pv_kw": True,
    "load_kw": True,
    "t_out_c": False,
    "co2_g_per_kwh": False,
    "spot_eur_per_kwh": False,
    "import_cap_kw": False,
}


def _series(name: str, values: object, n: int, *, allow_nan: bool = False) -> np.ndarray:
    arr = np.asarray(values, dtype=float)
    if arr.shape != (n,):
        raise ConfigError(f"Inputs.{name}", f"expected {n} values, got shape {arr.shape}")
    if not allow_nan and not np.isfinite(arr).all():
        bad = int(np.flatnonzero(~np.isfinite(arr))[0])
        raise ConfigError(f"Inputs.{name}", f"NaN or infinite value at slot {bad}")
    arr.setflags(write=False)
    return arr


@dataclass(frozen=True)
class Inputs:
    """Per-slot inputs on a tz-aware UTC index with a fixed step.

    Parameters
    ----------
    index : pandas.DatetimeIndex
        Slot starts, UTC, fixed step of 5, 15, 30 or 60 min.
    import_eur_per_kwh, export_eur_per_kwh : array
        Retail import price and feed-in remuneration [EUR/kWh].
    pv_kw : array
        PV production forecast, mean over the slot [kW].
    load_kw : array
        Household load forecast without EV and heat pump [kW].
    t_out_c : array, optional
        Outdoor temperature [degC]; required when the site has a heat pump.
    co2_g_per_kwh : array, optional
        Grid CO2 intensity [gCO2eq/kWh]; used with a CO2 price and for reporting.
    spot_eur_per_kwh : array, optional
        Day-ahead spot price [EUR/kWh]; with the feed-in rule, export earns nothing where < 0.
    import_cap_kw : array, optional
        §14a dimming: cap on the grid power the controllable devices draw [kW]; NaN = none.
    heat_demand_kw : mapping, optional
        Heat taken from each heat pump's store besides its losses (e.g. hot water) [kW].
    """

    index: pd.DatetimeIndex
    import_eur_per_kwh: np.ndarray
    export_eur_per_kwh: np.ndarray
    pv_kw: np.ndarray
    load_kw: np.ndarray
    t_out_c: np.ndarray | None = None
    co2_g_per_kwh: np.ndarray | None = None
    spot_eur_per_kwh: np.ndarray | None = None
    import_cap_kw: np.ndarray | None = None
    heat_demand_kw: Mapping[str, np.ndarray] = field(default_factory=dict)
    #: slot length (from the index)
    step: pd.Timedelta = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        try:
            step = check_index(self.index, name="Inputs.index")
        except ValueError as exc:
            raise ConfigError("Inputs.index", str(exc).split(": ", 1)[-1]) from exc
        # checked once: the model reads the step many times per solve
        object.__setattr__(self, "step", step)
        n = len(self.index)
        for name in INPUT_COLUMNS:
            value = getattr(self, name)
            if value is not None:
                arr = _series(name, value, n, allow_nan=name == "import_cap_kw")
                object.__setattr__(self, name, arr)
        if (self.pv_kw < 0).any():
            raise ConfigError("Inputs.pv_kw", "must be >= 0")
        if (self.load_kw < 0).any():
            raise ConfigError("Inputs.load_kw", "must be >= 0")
        demand = {k: _series(f"heat_demand_kw[{k}]", v, n) for k, v in self.heat_demand_kw.items()}
        object.__setattr__(self, "heat_demand_kw", demand)

    @classmethod
    def from_frame(
        cls, frame: pd.DataFrame, heat_demand_kw: Mapping[str, np.ndarray] | None = None
    ) -> Inputs:
        """Build inputs from a frame with the columns of :data:`INPUT_COLUMNS`."""
        missing = [c for c, required in INPUT_COLUMNS.items() if required and c not in frame]
        if missing:
            raise ConfigError("Inputs", f"missing column(s) {missing}")
        kwargs = {c: frame[c].to_numpy() for c in INPUT_COLUMNS if c in frame}
        return cls(index=frame.index, heat_demand_kw=heat_demand_kw or {}, **kwargs)  # type: ignore[arg-type]

    @property
    def n(self) -> int:
        return len(self.index)

    @property
    def dt_h(self) -> float:
        """Slot length [h]."""
        return float(self.step / pd.Timedelta(hours=1))


@dataclass(frozen=True)
class State:
    """Live state at the start of the horizon.

    Parameters
    ----------
    battery_soc : float
        Battery state of charge now [0-1].
    hp_temp_c : mapping
        Store temperature of each heat pump now [degC], by heat pump name.
    ev_sessions : tuple of EVSession
        Cars plugged in now or arriving within the horizon.
    """

    battery_soc: float = 0.5
    hp_temp_c: Mapping[str, float] = field(default_factory=dict)
    ev_sessions: tuple[EVSession, ...] = ()

    def __post_init__(self) -> None:
        if not 0 <= self.battery_soc <= 1:
            raise ConfigError("State.battery_soc", "must be in [0, 1]")
        # a private copy (not a MappingProxy: problems must pickle to worker processes)
        object.__setattr__(self, "hp_temp_c", dict(self.hp_temp_c))
        object.__setattr__(self, "ev_sessions", tuple(self.ev_sessions))


@dataclass(frozen=True)
class Problem:
    """Everything one solve needs.

    ``battery_end_value``: the value of energy left in the battery at the horizon end as
    concave segments ``((kWh, EUR/kWh), ...)`` counted from the lowest allowed level up, the
    value per kWh falling from one segment to the next (what the energy is expected to save
    after the horizon, e.g. from :mod:`scheduler.end_value`). Empty: the flat
    ``Tuning.terminal_value_eur_per_kwh``.
    """

    site: Site
    inputs: Inputs
    state: State = field(default_factory=State)
    tuning: Tuning = field(default_factory=Tuning)
    battery_end_value: tuple[tuple[float, float], ...] = ()

    def __post_init__(self) -> None:
        if self.site.heat_pumps and self.inputs.t_out_c is None:
            raise ConfigError("Inputs.t_out_c", "required when the site has a heat pump")
        seen: set[str] = set()
        for session in self.state.ev_sessions:
            self.site.wallbox(session.wallbox)
            if session.wallbox in seen:
                raise ConfigError("State.ev_sessions", f"two cars at {session.wallbox!r}")
            seen.add(session.wallbox)
        object.__setattr__(self, "battery_end_value", tuple(map(tuple, self.battery_end_value)))
        for width, value in self.battery_end_value:
            if not (np.isfinite(width) and np.isfinite(value) and width >= 0):
                raise ConfigError("Problem.battery_end_value", "needs finite kWh >= 0 and prices")
        values = [v for _, v in self.battery_end_value]
        if any(b > a + 1e-9 for a, b in itertools.pairwise(values)):
            raise ConfigError("Problem.battery_end_value", "the price per kWh must not rise")
        for hp in self.site.heat_pumps:
            temp = self.state.hp_temp_c.get(hp.name)
            if temp is not None and not np.isfinite(temp):
                raise ConfigError(f"State.hp_temp_c[{hp.name}]", "must be finite")

    def session(self, wallbox: str) -> EVSession | None:
        for s in self.state.ev_sessions:
            if s.wallbox == wallbox:
                return s
        return None
