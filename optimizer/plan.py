"""Solve a problem and turn the solution into a plan: per-slot frame, summary, setpoints."""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import overload

import numpy as np
import pandas as pd

from optimizer.config import HeatPump, Wallbox
from optimizer.devices.grid import effective_prices
from optimizer.devices.heatpump import cop, initial_temp_c
from optimizer.formulate import Formulation, formulate
from optimizer.lazy import solve_lazily
from optimizer.model import Block, CanonicalProblem
from optimizer.problem import Problem
from optimizer.solvers import SolveOptions, Solver, SolveResult, SolveStatus, get_solver

#: Flows below this are numerical noise [kW].
TOL_KW = 1e-6


class SGReady:
    """SG-Ready states (BWP numbering), derived from the planned heat-pump power.

    1 block: the plan keeps the heat pump off; 2 normal: it runs below half power;
    3 recommend-on: at least half power; 4 force-on: (nearly) full power while the store ends
    the slot above its comfort midpoint, i.e. the plan stores heat ahead of need.
    """

    BLOCK = 1
    NORMAL = 2
    RECOMMEND_ON = 3
    FORCE_ON = 4


@dataclass(frozen=True)
class Violation:
    """A soft target the plan misses: ``name`` as ``device-quantity``, amount in ``unit``."""

    name: str
    amount: float
    unit: str


@dataclass(frozen=True)
class PlanSummary:
    """Totals of a plan over its horizon.

    ``cost_eur`` is what the energy bill says: import cost - export revenue [EUR]. The
    objective adds battery wear, penalties and the CO2 price and subtracts the value of energy
    left in the battery.
    """

    cost_eur: float
    objective_eur: float
    battery_wear_eur: float
    penalty_eur: float
    terminal_value_eur: float
    import_kwh: float
    export_kwh: float
    pv_kwh: float
    pv_curtailed_kwh: float
    self_consumption: float
    co2_kg: float | None
    violations: tuple[Violation, ...]
    status: str
    mip_gap: float
    build_ms: float
    solve_ms: float
    num_vars: int
    num_integers: int
    integers_imposed: int
    solver: str
    #: proven lower bound of ``objective_eur`` (the LP's or the MIP's dual bound) [EUR]
    bound_eur: float = float("-inf")
    #: which step of :mod:`optimizer.lazy` made the plan: lp, rounded, fixed or mip
    stage: str = ""


@dataclass(frozen=True)
class WallboxSetpoint:
    power_kw: float
    current_a: float | None
    phases: int


@dataclass(frozen=True)
class HeatPumpSetpoint:
    power_kw: float
    sgready: int


@dataclass(frozen=True)
class Setpoints:
    """What the box should do in one slot. Battery power + = discharge [kW]."""

    start: pd.Timestamp
    end: pd.Timestamp
    battery_kw: float | None
    wallboxes: Mapping[str, WallboxSetpoint]
    heat_pumps: Mapping[str, HeatPumpSetpoint]


@dataclass(frozen=True)
class Plan:
    """The result of one solve. ``slots`` has one row per slot; units in the column names."""

    problem: Problem
    slots: pd.DataFrame
    summary: PlanSummary
    #: the integer columns of the solution, per-slot blocks by name (a start for the next cycle)
    pattern: Mapping[str, np.ndarray] = field(default_factory=dict)
    #: the LP relaxation's basis and the model's blocks (a start for the next cycle's LP)
    basis: tuple[object, tuple[Block, ...], tuple[Block, ...]] | None = None

    def setpoints(self, slot: int = 0) -> Setpoints:
        """Setpoints of slot ``slot`` (0 = the current slot)."""
        if not 0 <= slot < len(self.slots):
            raise IndexError(f"slot {slot} outside the plan's {len(self.slots)} slots")
        return schedule_from_slots(self.problem, self.slots.iloc[slot:], 1)[0]

    def schedule(self, count: int | None = None) -> Schedule:
        """Setpoints of the first ``count`` slots (all by default): the box schedule."""
        return schedule_from_slots(self.problem, self.slots, count or len(self.slots))

    @property
    def violations(self) -> tuple[Violation, ...]:
        return self.summary.violations


def optimize(problem: Problem, solver: str = "highs", previous: Plan | None = None) -> Plan:
    """Build, solve and read back the plan of ``problem``.

    Parameters
    ----------
    problem : Problem
        Site, state, per-slot inputs and tuning.
    solver : str
        A registered backend: ``highs`` (default) or ``pulp`` / ``pulp:<PuLP solver>``.
    previous : Plan, optional
        The previous cycle's plan of the same site: its LP basis, shifted to this plan's
        start, starts the relaxation, and its on/off pattern, shifted likewise, is tried as
        a fixed pattern (warm starts; they never change the result beyond the gap).

    Returns
    -------
    Plan
        Within the MIP gap of the optimum; ``summary.mip_gap`` and ``summary.bound_eur`` say
        by how much at most (one definition, docs/optimizer.md). ``Tuning.time_limit_s`` is
        the whole plan's.
    """
    backend = get_solver(solver)
    tuning = problem.tuning
    options = SolveOptions(tuning.mip_gap, tuning.mip_abs_gap_eur, tuning.time_limit_s)
    t0 = time.perf_counter()
    formulation = formulate(problem)
    build_ms = (time.perf_counter() - t0) * 1e3
    start = None if previous is None else shifted_pattern(previous, problem, formulation.problem)
    if previous is not None:
        basis = shifted_basis(backend, previous, problem, formulation.problem)
        options = replace(options, basis=basis)
    result, imposed = _solve(backend, formulation, options, start)
    both = simultaneous_battery_slots(formulation.problem, result.x)
    if len(both):
        # The LP used both flows where it must not: forbid it there and solve again.
        t1 = time.perf_counter()
        formulation = formulate(problem, extra_burn_slots=both)
        build_ms += (time.perf_counter() - t1) * 1e3
        left = max(tuning.time_limit_s - (time.perf_counter() - t0), 0.05)
        again, imposed = _solve(
            backend, formulation, replace(options, time_limit_s=left, basis=None)
        )
        result = replace(again, solve_ms=again.solve_ms + result.solve_ms)
    canonical = formulation.problem
    slots = read_slots(problem, canonical, result.x)
    summary = summarize(problem, canonical, result, slots, (build_ms, imposed))
    pattern = integer_pattern(canonical, result.x, problem.inputs.n)
    basis = None
    if result.basis is not None:
        basis = (result.basis, canonical.variables, canonical.constraints)
    return Plan(problem, slots, summary, pattern, basis)


def _solve(
    backend: Solver,
    formulation: Formulation,
    options: SolveOptions,
    start: np.ndarray | None = None,
) -> tuple[SolveResult, int]:
    """Solve within the gap; report objective, bound and gap without the tie-break."""
    slack = formulation.tiebreak_max_eur
    search = formulation.search if formulation.searches else None
    result, imposed = solve_lazily(
        backend,
        formulation.problem,
        options,
        formulation.round,
        slack=slack,
        start=start,
        search=search,
        neighbours=formulation.neighbours if formulation.moves else None,
        consolidate=formulation.consolidate if formulation.consolidators else None,
    )
    if not len(formulation.tiebreak):
        return result, imposed
    objective = result.objective - float(formulation.tiebreak @ result.x)
    bound = result.bound - slack
    gap = max(objective - bound, 0.0) / max(result.gross, 1e-9)
    return replace(result, objective=objective, bound=bound, mip_gap=gap), imposed


def integer_pattern(canonical: CanonicalProblem, x: np.ndarray, n: int) -> dict[str, np.ndarray]:
    """The per-slot (``n`` entries) integer blocks of ``x`` by name, rounded."""
    return {
        b.name: np.round(x[b.slice])
        for b in canonical.variables
        if b.size == n and canonical.integrality[b.slice].all()
    }


def shifted_pattern(
    previous: Plan, problem: Problem, canonical: CanonicalProblem
) -> np.ndarray | None:
    """``previous``'s integer pattern moved to ``problem``'s start: a point with NaN where
    it says nothing (other columns, the new slots at the end take the last value)."""
    index, old = problem.inputs.index, previous.problem.inputs.index
    shift = int((index[0] - old[0]) / problem.inputs.step)
    if shift < 0 or not previous.pattern:
        return None
    start = np.full(canonical.num_cols, np.nan)
    for name, values in previous.pattern.items():
        if not canonical.has_variable(name) or shift >= len(values):
            continue
        block = canonical.variable(name)
        moved = values[shift:][: block.size]
        filled = np.concatenate((moved, np.full(block.size - len(moved), moved[-1])))
        start[block.slice] = filled
    return start


def shifted_basis(
    backend: Solver, previous: Plan, problem: Problem, canonical: CanonicalProblem
) -> object | None:
    """``previous``'s LP basis moved to ``problem``'s start, where the backend can shift one
    and the model has the same blocks (else ``None``: a cold start)."""
    shift_basis = getattr(backend, "shift_basis", None)
    if previous.basis is None or shift_basis is None:
        return None
    basis, variables, constraints = previous.basis
    if variables != canonical.variables or constraints != canonical.constraints:
        return None
    index, old = problem.inputs.index, previous.problem.inputs.index
    shift = int((index[0] - old[0]) / problem.inputs.step)
    if not 0 <= shift < problem.inputs.n:
        return None
    return shift_basis(basis, canonical, problem.inputs.n, shift)


def simultaneous_battery_slots(canonical: CanonicalProblem, x: np.ndarray) -> np.ndarray:
    if not canonical.has_variable("battery-charge"):
        return np.zeros(0, dtype=np.int64)
    charge = x[canonical.variable("battery-charge").slice]
    discharge = x[canonical.variable("battery-discharge").slice]
    return np.flatnonzero((charge > TOL_KW) & (discharge > TOL_KW))


def _values(canonical: CanonicalProblem, x: np.ndarray, name: str, n: int) -> np.ndarray:
    if canonical.has_variable(name):
        return x[canonical.variable(name).slice]
    return np.zeros(n)


def read_slots(problem: Problem, canonical: CanonicalProblem, x: np.ndarray) -> pd.DataFrame:
    """Per-slot results in project units; column names carry the unit.

    Columns are computed as arrays and the frame is built once (assigning pandas columns one
    by one cost more than the solve).
    """
    inputs, site = problem.inputs, problem.site
    n = inputs.n

    def v(name: str) -> np.ndarray:
        return _values(canonical, x, name, n)

    export_price = effective_prices(problem)[1]
    net = v("grid-import") - v("grid-export")
    cols: dict[str, np.ndarray] = {
        "import_eur_per_kwh": inputs.import_eur_per_kwh,
        "export_eur_per_kwh": export_price,
    }
    if inputs.spot_eur_per_kwh is not None:
        cols["spot_eur_per_kwh"] = inputs.spot_eur_per_kwh
    if inputs.co2_g_per_kwh is not None:
        cols["co2_g_per_kwh"] = inputs.co2_g_per_kwh
    pv = v("pv-power") if site.pv is not None else np.zeros(n)
    cols |= {
        "load_kw": inputs.load_kw,
        "pv_forecast_kw": inputs.pv_kw,
        "pv_kw": pv,
        "pv_curtailed_kw": inputs.pv_kw - pv,
        # Where import and export cost the same, both at once is a tie; report the net flow.
        "grid_import_kw": np.maximum(net, 0.0),
        "grid_export_kw": np.maximum(-net, 0.0),
        "grid_kw": net,
        "grid_unserved_kw": v("grid-unserved"),
    }
    if site.battery is not None:
        charge, discharge = v("battery-charge"), v("battery-discharge")
        cols |= {
            "battery_charge_kw": charge,
            "battery_discharge_kw": discharge,
            "battery_kw": discharge - charge,
            "battery_soc": v("battery-energy") / site.battery.capacity_kwh,
        }
    for wb in site.wallboxes:
        cols |= _wallbox_columns(problem, canonical, x, wb)
    for hp in site.heat_pumps:
        cols |= _heat_pump_columns(problem, canonical, x, hp)
    for name, values in cols.items():
        if name.endswith("_kw"):
            cols[name] = np.where(np.abs(values) > TOL_KW, values, 0.0)
    cols["cost_eur"] = (
        cols["grid_import_kw"] * inputs.import_eur_per_kwh - cols["grid_export_kw"] * export_price
    ) * inputs.dt_h
    return pd.DataFrame(cols, index=inputs.index)


def _wallbox_columns(
    problem: Problem, canonical: CanonicalProblem, x: np.ndarray, wb: Wallbox
) -> dict[str, np.ndarray]:
    n = problem.inputs.n
    total = _values(canonical, x, f"{wb.name}-power", n)
    phases = np.zeros(n, dtype=int)
    for k in (1, 3):
        on = _values(canonical, x, f"{wb.name}-on_{k}p", n)
        phases[(on > 0.5) & (total > TOL_KW)] = k
    cols = {f"{wb.name}_kw": total, f"{wb.name}_phases": phases}
    session = problem.session(wb.name)
    if session is not None:
        energy = np.full(n, session.energy_kwh)
        if canonical.has_variable(f"{wb.name}-energy"):
            energy = _values(canonical, x, f"{wb.name}-energy", n)
        cols[f"{wb.name}_energy_kwh"] = energy
        cols[f"{wb.name}_soc"] = energy / session.capacity_kwh
    return cols


def _heat_pump_columns(
    problem: Problem, canonical: CanonicalProblem, x: np.ndarray, hp: HeatPump
) -> dict[str, np.ndarray]:
    n = problem.inputs.n
    assert problem.inputs.t_out_c is not None
    power = _values(canonical, x, f"{hp.name}-power", n)
    temp = _values(canonical, x, f"{hp.name}-temp", n)
    return {
        f"{hp.name}_kw": power,
        f"{hp.name}_heat_kw": power * cop(hp, problem.inputs.t_out_c),
        f"{hp.name}_temp_c": temp,
        f"{hp.name}_sgready": sgready_states(hp, power, temp),
    }


def sgready_states(hp: HeatPump, power_kw: np.ndarray, temp_c: np.ndarray) -> np.ndarray:
    """SG-Ready state per slot from planned power [kW] and store temperature [degC]."""
    share = power_kw / hp.max_kw
    midpoint = (hp.comfort_min_c + hp.comfort_max_c) / 2
    return np.select(
        [share < 0.01, (share >= 0.95) & (temp_c > midpoint), share >= 0.5],
        [SGReady.BLOCK, SGReady.FORCE_ON, SGReady.RECOMMEND_ON],
        SGReady.NORMAL,
    )


def _violations(problem: Problem, canonical: CanonicalProblem, x: np.ndarray) -> list[Violation]:
    dt, n = problem.inputs.dt_h, problem.inputs.n
    found: list[tuple[str, str, str, float]] = [("grid-unserved", "grid-unserved_load", "kWh", dt)]
    if problem.site.battery is not None:
        found.append(("battery-reserve_shortfall", "battery-reserve", "kWh*h", dt))
        found.append(("battery-final_shortfall", "battery-final_soc", "kWh", 1.0))
    for wb in problem.site.wallboxes:
        found.append((f"{wb.name}-target_shortfall", f"{wb.name}-target_energy", "kWh", 1.0))
    for hp in problem.site.heat_pumps:
        found.append((f"{hp.name}-comfort_low", f"{hp.name}-comfort_low", "K*h", dt))
        found.append((f"{hp.name}-comfort_high", f"{hp.name}-comfort_high", "K*h", dt))
    out = []
    for var, name, unit, scale in found:
        amount = float(_values(canonical, x, var, n).sum() * scale)
        if amount > 1e-4:
            out.append(Violation(name, round(amount, 6), unit))
    return out


def _end_value(canonical: CanonicalProblem, x: np.ndarray, name: str, start: float) -> float:
    """Value the objective gives the change of block ``name`` from ``start`` to its end [EUR]."""
    block = canonical.variable(name).slice
    return float(-canonical.cost[block][-1] * (x[block][-1] - start))


def _segment_values(
    problem: Problem, canonical: CanonicalProblem, x: np.ndarray
) -> tuple[float, float]:
    """Value of the battery's end-value segments at the end and of the start's energy [EUR]
    (the segments counted from the battery's lowest allowed level)."""
    battery = problem.site.battery
    assert battery is not None
    widths = np.array([w for w, _ in problem.battery_end_value])
    values = np.array([v for _, v in problem.battery_end_value])
    e0 = problem.state.battery_soc * battery.capacity_kwh
    lower = min(battery.soc_min * battery.capacity_kwh, e0)
    filled = np.clip(e0 - lower - np.concatenate([[0.0], np.cumsum(widths)[:-1]]), 0, widths)
    end = float(values @ x[canonical.variable("battery-end_segment").slice])
    return end, float(values @ filled)


def _start_levels(problem: Problem) -> list[tuple[str, float]]:
    levels = [(f"{hp.name}-temp", initial_temp_c(problem, hp)) for hp in problem.site.heat_pumps]
    if problem.site.battery is not None:
        levels.append(
            ("battery-energy", problem.state.battery_soc * problem.site.battery.capacity_kwh)
        )
    return levels


def summarize(
    problem: Problem,
    canonical: CanonicalProblem,
    result: SolveResult,
    slots: pd.DataFrame,
    work: tuple[float, int],
) -> PlanSummary:
    """Totals of a plan; ``work`` is (build time [ms], integer columns imposed)."""
    build_ms, integers_imposed = work

    def col(name: str) -> np.ndarray:  # sums over arrays: pandas arithmetic cost ~0.3 ms a plan
        return slots[name].to_numpy()

    dt = problem.inputs.dt_h
    tuning = problem.tuning
    x = result.x
    wear = 0.0
    terminal = 0.0
    segments_start = 0.0  # the end-value segments' worth of the start's energy [EUR]
    for hp in problem.site.heat_pumps:
        terminal += _end_value(canonical, x, f"{hp.name}-temp", initial_temp_c(problem, hp))
    if problem.site.battery is not None:
        throughput = (col("battery_charge_kw") + col("battery_discharge_kw")).sum() * dt / 2
        wear = float(throughput * tuning.battery_wear_eur_per_kwh)
        e0 = problem.state.battery_soc * problem.site.battery.capacity_kwh
        terminal += _end_value(canonical, x, "battery-energy", e0)
        if problem.battery_end_value:
            segments_end, segments_start = _segment_values(problem, canonical, x)
            terminal += segments_end - segments_start
    cost = float(col("cost_eur").sum())
    import_kwh = float(col("grid_import_kw").sum() * dt)
    export_kwh = float(col("grid_export_kw").sum() * dt)
    pv_kwh = float(col("pv_kw").sum() * dt)
    co2 = None
    if problem.inputs.co2_g_per_kwh is not None:
        co2 = float((col("grid_import_kw") * problem.inputs.co2_g_per_kwh).sum() * dt / 1000)
    co2_cost = (co2 or 0.0) * tuning.co2_price_eur_per_t / 1000
    end_offset = sum(  # the objective values the end level; the summary its change
        float(-canonical.cost[canonical.variable(b).slice][-1]) * level
        for b, level in _start_levels(problem)
    )
    end_offset += segments_start
    rewards_and_penalties = result.objective - cost - wear + terminal + end_offset - co2_cost
    return PlanSummary(
        cost_eur=cost,
        objective_eur=result.objective,
        battery_wear_eur=wear,
        penalty_eur=float(rewards_and_penalties),
        terminal_value_eur=terminal,
        import_kwh=import_kwh,
        export_kwh=export_kwh,
        pv_kwh=pv_kwh,
        pv_curtailed_kwh=float(col("pv_curtailed_kw").sum() * dt),
        self_consumption=(pv_kwh - export_kwh) / pv_kwh if pv_kwh > 1e-9 else 0.0,
        co2_kg=co2,
        violations=tuple(_violations(problem, canonical, x)),
        status=SolveStatus(result.status).value,
        mip_gap=result.mip_gap,
        build_ms=build_ms,
        solve_ms=result.solve_ms,
        num_vars=canonical.num_cols,
        num_integers=canonical.num_integers,
        integers_imposed=integers_imposed,
        solver=result.solver,
        bound_eur=result.bound,
        stage=result.stage,
    )


def schedule_from_slots(problem: Problem, slots: pd.DataFrame, count: int) -> Schedule:
    """Setpoints of the first ``count`` slots of a plan frame, read column-wise.

    The columns are taken out as arrays once (a pandas row lookup per slot cost more than the
    solve); a :class:`Setpoints` is made only for the slots that are read.
    """
    site = problem.site
    count = min(count, len(slots))

    def column(name: str) -> np.ndarray:  # a copy: the plan's frame stays the plan's
        return slots[name].to_numpy()[:count].copy()

    battery = column("battery_kw") if site.battery is not None else None
    wallboxes = {}
    for wb in site.wallboxes:
        power, phases = column(f"{wb.name}_kw"), column(f"{wb.name}_phases")
        with np.errstate(divide="ignore", invalid="ignore"):
            current = np.where(phases > 0, power * 1000 / (phases * wb.voltage_v), np.nan)
        wallboxes[wb.name] = (power, current, phases)
    heat_pumps = {
        hp.name: (column(f"{hp.name}_kw"), column(f"{hp.name}_sgready")) for hp in site.heat_pumps
    }
    return Schedule(slots.index[0], problem.inputs.step, count, battery, wallboxes, heat_pumps)


@dataclass(frozen=True, eq=False)
class Schedule(Sequence[Setpoints]):
    """The setpoints of consecutive slots, held as arrays; ``schedule[i]`` is slot ``i``'s.

    A fleet returns thousands of schedules per cycle: arrays pickle in a few hundred bytes and
    a microsecond, where a tuple of :class:`Setpoints` cost the collecting process more than a
    millisecond per site. Equal to any sequence with the same setpoints.

    Parameters
    ----------
    start : pandas.Timestamp
        Start of the first slot (UTC).
    step : pandas.Timedelta
        Slot length.
    n : int
        Number of slots.
    battery_kw : array or None
        Battery power [kW], + = discharge; ``None`` without a battery.
    wallboxes : mapping
        Per wallbox: power [kW], current per phase [A] (NaN = off) and phases.
    heat_pumps : mapping
        Per heat pump: electric power [kW] and SG-Ready state.
    """

    start: pd.Timestamp
    step: pd.Timedelta
    n: int
    battery_kw: np.ndarray | None
    wallboxes: Mapping[str, tuple[np.ndarray, np.ndarray, np.ndarray]]
    heat_pumps: Mapping[str, tuple[np.ndarray, np.ndarray]]

    def __len__(self) -> int:
        return self.n

    @overload
    def __getitem__(self, i: int) -> Setpoints: ...
    @overload
    def __getitem__(self, i: slice) -> tuple[Setpoints, ...]: ...
    def __getitem__(self, i: int | slice) -> Setpoints | tuple[Setpoints, ...]:
        if isinstance(i, slice):
            return tuple(self[k] for k in range(*i.indices(self.n)))
        if i < 0:
            i += self.n
        if not 0 <= i < self.n:
            raise IndexError(f"slot {i} outside the schedule's {self.n} slots")
        start = self.start + i * self.step
        return Setpoints(
            start=start,
            end=start + self.step,
            battery_kw=None if self.battery_kw is None else float(self.battery_kw[i]),
            wallboxes={
                name: WallboxSetpoint(
                    float(power[i]),
                    None if np.isnan(current[i]) else float(current[i]),
                    int(phases[i]),
                )
                for name, (power, current, phases) in self.wallboxes.items()
            },
            heat_pumps={
                name: HeatPumpSetpoint(float(power[i]), int(state[i]))
                for name, (power, state) in self.heat_pumps.items()
            },
        )

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Sequence) or isinstance(other, str):
            return NotImplemented
        return len(self) == len(other) and all(a == b for a, b in zip(self, other, strict=True))

    __hash__ = None  # type: ignore[assignment]  # holds arrays, like a tuple of dicts
