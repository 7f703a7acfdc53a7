"""Heat pump and its thermal store (a building or a hot-water tank) as one thermal node.

``C (T_t - T_{t-1}) = dt (COP_t P_t - H (T_{t-1} - T_out_t) - Q_t)``: explicit Euler, written
as a first difference over the horizon. The comfort band is soft (slack with a penalty per
kelvin-hour), so a cold start or a small heat pump never makes the problem infeasible.
"""

from __future__ import annotations

import numpy as np

from optimizer.config import HeatPump
from optimizer.devices.context import CHEAPEST, CONSERVE, Context, Neighbours, Rounder, Search
from optimizer.devices.runs import StoreModel, best_runs, run_moves
from optimizer.model import Block, CanonicalProblem, diag, lag, pick
from optimizer.problem import Problem


def cop(hp: HeatPump, t_out_c: np.ndarray) -> np.ndarray:
    """Coefficient of performance at outdoor temperature ``t_out_c`` [degC], >= 1 [-]."""
    return np.maximum(1.0, hp.cop_at_7c + hp.cop_slope_per_k * (np.asarray(t_out_c) - 7.0))


def initial_temp_c(problem: Problem, hp: HeatPump) -> float:
    """Store temperature now [degC]; the comfort midpoint when the box did not report one."""
    temp = problem.state.hp_temp_c.get(hp.name)
    return (hp.comfort_min_c + hp.comfort_max_c) / 2 if temp is None else float(temp)


def stored_heat_value(ctx: Context, hp: HeatPump) -> float:
    """Value of one kelvin of store temperature left at the horizon end [EUR/K].

    Heat in the store displaces heating later: capacity x median import price / median COP.
    Without it a plan lets the store drain in its last slots, where heating no longer pays
    back inside the horizon.
    """
    inputs = ctx.problem.inputs
    assert inputs.t_out_c is not None
    price = max(0.0, float(np.median(inputs.import_eur_per_kwh)))
    return hp.capacity_kwh_per_k * price / float(np.median(cop(hp, inputs.t_out_c)))


def add_heat_pumps(ctx: Context) -> None:
    """Add ``{hp}-power`` [kW], ``{hp}-temp`` [degC] and comfort slacks for every heat pump."""
    for hp in ctx.problem.site.heat_pumps:
        _add_heat_pump(ctx, hp)


def _add_heat_pump(ctx: Context, hp: HeatPump) -> None:
    m, n, dt = ctx.m, ctx.n, ctx.dt_h
    inputs = ctx.problem.inputs
    assert inputs.t_out_c is not None
    t_out = inputs.t_out_c
    demand = inputs.heat_demand_kw.get(hp.name, np.zeros(n))
    cap, loss = hp.capacity_kwh_per_k, hp.loss_kw_per_k
    power = m.var(f"{hp.name}-power", 0.0, hp.max_kw)
    end_value = np.zeros(n)
    end_value[-1] = -stored_heat_value(ctx, hp)
    temp = m.var(f"{hp.name}-temp", -60.0, 200.0, end_value)
    rhs = dt * (loss * t_out - demand)
    rhs[0] += (cap - dt * loss) * initial_temp_c(ctx.problem, hp)
    m.rows(
        f"{hp.name}-heat_balance",
        [
            (temp, diag(n, cap)),
            (temp, lag(n, dt * loss - cap)),
            (power, diag(n, -dt * cop(hp, t_out))),
        ],
        rhs,
        rhs,
    )
    penalty = ctx.problem.tuning.comfort_penalty_eur_per_kh * dt
    under = m.var(f"{hp.name}-comfort_low", 0.0, np.inf, penalty)
    over = m.var(f"{hp.name}-comfort_high", 0.0, np.inf, penalty)
    m.rows(f"{hp.name}-comfort_min", [(temp, diag(n)), (under, diag(n))], lb=hp.comfort_min_c)
    m.rows(f"{hp.name}-comfort_max", [(temp, diag(n)), (over, diag(n, -1.0))], ub=hp.comfort_max_c)
    if hp.needs_integers:
        _add_on_off(ctx, hp, power)
    ctx.hp_power.append(power)
    ctx.balance.append((power, -1.0))


def _add_on_off(ctx: Context, hp: HeatPump, p: Block) -> None:
    """Minimum power while on and minimum run time once started (binary ``{hp}-on``)."""
    m, n = ctx.m, ctx.n
    on = m.var(f"{hp.name}-on", 0.0, 1.0, integer=True)
    m.rows(f"{hp.name}-power_max", [(p, diag(n)), (on, diag(n, -hp.max_kw))], ub=0.0)
    m.rows(f"{hp.name}-power_min", [(p, diag(n)), (on, diag(n, -hp.min_kw))], lb=0.0)
    k = hp.min_run_slots
    ctx.rounders.append(_on_rounder(hp, p, on))
    ctx.searches.append(run_search(ctx, hp))
    ctx.neighbours.append(run_neighbours(hp))
    if k <= 1:
        return
    # start_t >= on_t - on_{t-1}; the heat pump is taken as off before the horizon.
    start = m.var(f"{hp.name}-start", 0.0, 1.0)
    m.rows(
        f"{hp.name}-start_def",
        [(start, diag(n)), (on, diag(n, -1.0)), (on, lag(n, 1.0))],
        lb=0.0,
    )
    # sum of starts in the last k slots <= on_t  (a start keeps it on for k slots)
    rows = np.repeat(np.arange(n), k)
    cols = rows - np.tile(np.arange(k), n)
    keep = cols >= 0
    m.rows(
        f"{hp.name}-min_run",
        [(start, pick(rows[keep], cols[keep])), (on, diag(n, -1.0))],
        ub=0.0,
    )


def store_model(ctx: Context, hp: HeatPump, canonical: CanonicalProblem) -> StoreModel:
    """``hp`` and its store as :func:`optimizer.devices.runs.best_runs` takes them; the costs
    of temperature and comfort slacks read from ``canonical`` (end value, penalties)."""
    inputs, dt = ctx.problem.inputs, ctx.dt_h
    assert inputs.t_out_c is not None
    cap, loss = hp.capacity_kwh_per_k, hp.loss_kw_per_k
    demand = inputs.heat_demand_kw.get(hp.name, np.zeros(ctx.n))
    cost = canonical.cost
    low = float(cost[canonical.variable(f"{hp.name}-comfort_low").slice][0])
    high = float(cost[canonical.variable(f"{hp.name}-comfort_high").slice][0])
    return StoreModel(
        a=1.0 - dt * loss / cap,
        b=dt * cop(hp, inputs.t_out_c) / cap,
        c=dt * (loss * np.asarray(inputs.t_out_c) - demand) / cap,
        t0_c=initial_temp_c(ctx.problem, hp),
        band_c=(hp.comfort_min_c, hp.comfort_max_c),
        penalty_eur_per_k=(low, high),
        temp_cost_eur_per_k=cost[canonical.variable(f"{hp.name}-temp").slice],
        power_kw=(hp.min_kw, hp.max_kw),
        min_run_slots=hp.min_run_slots,
    )


def run_search(ctx: Context, hp: HeatPump) -> Search:
    """Search for ``hp``'s on/off columns: the runs :func:`~optimizer.devices.runs.best_runs`
    finds against the relaxation's marginal prices of its power.

    The price of one kW in slot ``t`` is the power column's cost minus what the rows outside
    the heat pump's own (the site's balance, a dimming cap, a solar-only wallbox) charge for
    it at the row duals: the Lagrangian price, at which the relaxed heat pump's plan is
    optimal for it alone. With the balance rows' ``room`` the price holds only for that much
    more power than the relaxation's; beyond it the DP pays the import price (when dearer):
    a whole run at the minimum power is not marginal (it takes the PV surplus a slot has and
    more), and one price per slot made the DP pile runs onto slots that cannot carry them.
    """
    own = (f"{hp.name}-heat_balance", f"{hp.name}-power_max", f"{hp.name}-power_min")

    def apply(
        canonical: CanonicalProblem, x: np.ndarray, row_dual: np.ndarray, room: np.ndarray | None
    ) -> np.ndarray:
        power = canonical.variable(f"{hp.name}-power").slice
        mask = np.ones(canonical.num_rows)
        for block in canonical.constraints:
            if block.name in own:
                mask[block.slice] = 0.0
        price = canonical.cost[power] - canonical.A[:, power].T @ (row_dual * mask)
        surcharge = None
        if room is not None:
            surcharge = _balance_surcharge(canonical, x[power], row_dual, room)
        runs = best_runs(store_model(ctx, hp, canonical), price, surcharge)
        on = canonical.variable(f"{hp.name}-on").slice
        x[on] = runs * 1.0
        owned = np.zeros(canonical.num_cols, dtype=bool)
        owned[on] = True
        return owned

    return apply


def _balance_surcharge(
    canonical: CanonicalProblem, power_kw: np.ndarray, row_dual: np.ndarray, room: np.ndarray
) -> tuple[np.ndarray, np.ndarray] | None:
    """(knee [kW], surcharge [EUR/kW] per slot) for :func:`~optimizer.devices.runs.best_runs`:
    the site balance's dual holds up to ``room`` kW more than the relaxed ``power_kw``, then
    power costs the import price (what the grid charges per kW and slot) where that is more.
    ``None`` for a site without a grid connection."""
    if not canonical.has_variable("grid-import"):
        return None
    balance = next(b for b in canonical.constraints if b.name == "site-power_balance").slice
    dual = row_dual[balance]
    import_cost = canonical.cost[canonical.variable("grid-import").slice]
    return power_kw + room[balance], np.maximum(import_cost - dual, 0.0)


def run_neighbours(hp: HeatPump) -> Neighbours:
    """Moves of ``hp``'s runs (:func:`~optimizer.devices.runs.run_moves`)."""

    def apply(
        canonical: CanonicalProblem, x: np.ndarray, free: np.ndarray
    ) -> list[tuple[np.ndarray, np.ndarray]]:
        on = canonical.variable(f"{hp.name}-on").slice
        if not free[on].all():
            return []
        now = x[on] > 0.5
        cols = np.arange(on.start, on.stop)
        moves = []
        for pattern in run_moves(now, hp.min_run_slots):
            changed = pattern != now
            moves.append((cols[changed], pattern[changed] * 1.0))
        return moves

    return apply


def _on_rounder(hp: HeatPump, power: Block, on: Block) -> Rounder:
    """Repair rule for the on/off binary: on above ``repair`` x the minimum power, every run
    stretched to the minimum run time (a run cut short makes the fixed pattern infeasible).
    With ``repair > 0`` runs placed by :func:`duty_cycle` once ``repair`` x a minimum run's
    heat is owed (no run the store cannot take), under
    :data:`~optimizer.devices.context.CONSERVE` (and ``CHEAPEST``) as soon as any is."""

    def apply(x: np.ndarray, relaxed: np.ndarray, repair: float | None) -> None:
        if repair is None:
            return
        p = x[power.slice]
        run_kw = hp.min_kw * max(hp.min_run_slots, 1)
        if repair in (CONSERVE, CHEAPEST):
            value = duty_cycle(p, hp.min_kw, hp.min_run_slots, 1e-7) * 1.0
        elif repair > 0:
            value = duty_cycle(p, hp.min_kw, hp.min_run_slots, repair * run_kw) * 1.0
        else:
            running = p > max(repair * hp.min_kw, 1e-7)
            value = stretch_runs(running, hp.min_run_slots) * 1.0
        cols = on.slice
        x[cols] = np.where(relaxed[cols], value, x[cols])

    return apply


def stretch_runs(running: np.ndarray, min_slots: int) -> np.ndarray:
    """``running`` with every run (and one starting in slot 0) at least ``min_slots`` long."""
    out = running.copy()
    if min_slots <= 1:
        return out
    starts = np.flatnonzero(running & ~np.concatenate(([False], running[:-1])))
    for s in starts:
        out[s : s + min_slots] = True
    return out


def duty_cycle(power_kw: np.ndarray, min_kw: float, min_slots: int, start_kw: float) -> np.ndarray:
    """On/off per slot that delivers the relaxed ``power_kw`` in runs of at least the minimum
    power and ``min_slots`` slots: a run starts once the relaxed heat not yet delivered
    reaches ``start_kw`` slot-kW (tiny: heat comes early rather than late, as a store below
    its comfort band costs a penalty and one above it only a little loss)."""
    on = np.zeros(len(power_kw), dtype=bool)
    owed, left = 0.0, 0
    for t, p in enumerate(power_kw):
        owed += p
        if left == 0 and (p >= min_kw - 1e-7 or owed >= start_kw):
            left = max(min_slots, 1)
        if left > 0:
            on[t] = True
            owed -= max(min_kw, p)
            left -= 1
    return on
