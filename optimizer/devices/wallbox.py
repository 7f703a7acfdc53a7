"""EV wallboxes: semi-continuous charging power, phase choice, charging modes, soft targets.

Per wallbox there is one power ``{ev}-power`` and per phase option ``k`` (1 or 3 phases) a binary
``{ev}-on_{k}p``: the power is 0 or between the IEC minimum (6 A) and the maximum of the option
that is on; with phase switching at most one option is on per slot. Binaries exist only in
plugged-in slots (elsewhere their upper bound is 0 and presolve removes them).

Charging modes (the owner's choice):

``now``
    As fast as allowed from plug-in until the target (or full); the fastest profile is
    computed in closed form and every kWh up to it is rewarded with the target penalty.
``smart``
    Reach the target by departure at least cost; grid and battery allowed.
``solar``
    PV surplus only: in a slot where the car charges, car + household + heat pump <= PV used,
    so no kWh of the car comes from the grid or the battery.
``min_solar``
    The minimum power whenever plugged until the car is full, more only from PV surplus (the
    part above the minimum <= PV - household - HP).
``after_battery``
    ``solar``, and only in slots that start with the home battery full.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import pandas as pd

from core.timeindex import check_index
from optimizer.config import ChargingMode, ConfigError, EVSession, Wallbox
from optimizer.devices.context import (
    CHEAPEST,
    CONSERVE,
    Consolidate,
    Context,
    Neighbours,
    Rounder,
)
from optimizer.devices.grid import effective_prices, import_upper_kw
from optimizer.model import Block, CanonicalProblem, Coeffs, diag, lag, pick

SOLAR_MODES = (ChargingMode.SOLAR, ChargingMode.AFTER_BATTERY)
#: A battery counts as full from this fraction of its SOC window below ``soc_max``.
FULL_TOLERANCE = 0.01


def _timestamp(value: object, field_name: str) -> pd.Timestamp:
    ts = pd.Timestamp(value)  # type: ignore[arg-type]
    if ts.tzinfo is None:
        raise ConfigError(f"EVSession.{field_name}", "naive timestamp; give a time zone")
    return ts.tz_convert("UTC")


def plugged_mask(index: pd.DatetimeIndex, session: EVSession) -> np.ndarray:
    """Slots the car is plugged in for their whole length (bool per slot)."""
    step = check_index(index)
    mask = np.ones(len(index), dtype=bool)
    if session.arrival is not None:
        mask &= index >= _timestamp(session.arrival, "arrival")
    if session.departure is not None:
        mask &= (index + step) <= _timestamp(session.departure, "departure")
    return mask


def horizon_target_kwh(
    index: pd.DatetimeIndex, session: EVSession, mask: np.ndarray, max_kw: float, eff: float
) -> tuple[float, int] | None:
    """Energy the car must hold at the end of its last plugged slot [kWh], and that slot.

    A departure after the horizon asks only for what cannot be charged after the horizon
    ends at full power, in the whole slots that end by the departure (the same rule as
    :func:`plugged_mask`: a part-slot before the departure charges nothing, so counting it
    would leave the car short). ``None`` when nothing is required within the horizon.
    """
    if session.departure is None or not mask.any():
        return None
    step = check_index(index)
    horizon_end = index[-1] + step
    departure = _timestamp(session.departure, "departure")
    need = session.target
    if departure > horizon_end:
        whole_slots = (departure - horizon_end) // step
        need -= max_kw * eff * whole_slots * step / pd.Timedelta(hours=1)
    if need <= session.energy_kwh + 1e-9:
        return None
    return min(need, session.capacity_kwh), int(np.flatnonzero(mask)[-1])


def now_profile_kw(
    mask: np.ndarray, need_kwh: float, max_kw: float, eff: float, dt: float
) -> np.ndarray:
    """Charging power of "as fast as allowed until ``need_kwh`` is in the car" [kW]."""
    cumulative = np.cumsum(mask * max_kw * eff * dt)
    delivered = np.minimum(cumulative, max(need_kwh, 0.0))
    return np.diff(delivered, prepend=0.0) / (eff * dt)


@dataclass
class _Charger:
    """Blocks of one wallbox: total power, and per phase option ``k`` an on/off binary."""

    power: Block
    options: tuple[int, ...]
    on: tuple[Block, ...]
    min_kw: tuple[float, ...]
    max_kw: tuple[float, ...]
    #: energy the car can still take [kWh], and per kW of one slot [kWh/kW]
    room_kwh: float = np.inf
    kwh_per_kw: float = 0.0


def add_wallboxes(ctx: Context) -> None:
    """Add the blocks of every wallbox with a car plugged in (or arriving) and not ``off``."""
    for wallbox in ctx.problem.site.wallboxes:
        session = ctx.problem.session(wallbox.name)
        if session is None or session.mode == ChargingMode.OFF:
            continue
        mask = plugged_mask(ctx.problem.inputs.index, session)
        if session.mode in SOLAR_MODES:
            # a slot whose forecast surplus cannot reach the minimum power cannot charge
            inputs = ctx.problem.inputs
            low = min(wallbox.power_range_kw(k)[0] for k in wallbox.phase_options)
            mask &= (inputs.pv_kw - inputs.load_kw >= low) & (ctx.pv_used is not None)
        if mask.any():
            _add_session(ctx, wallbox, session, mask)


def _add_session(ctx: Context, wb: Wallbox, session: EVSession, mask: np.ndarray) -> None:
    m, n, dt = ctx.m, ctx.n, ctx.dt_h
    tuning = ctx.problem.tuning
    fastest = max(wb.phase_options)
    options = (fastest,) if session.mode == ChargingMode.NOW else wb.phase_options
    max_kw = wb.power_range_kw(fastest)[1]
    target = horizon_target_kwh(ctx.problem.inputs.index, session, mask, max_kw, wb.efficiency)
    upper = max_kw * mask
    reward = 0.0
    if session.mode == ChargingMode.NOW:
        need = (target[0] if target else session.target) - session.energy_kwh
        ceiling = now_profile_kw(mask, need, max_kw, wb.efficiency, dt)
        low = min(wb.power_range_kw(k)[0] for k in options)
        # a last partial slot below the minimum rounds up to it (the car stops when full)
        upper = np.where(ceiling > 0, np.maximum(ceiling, low), 0.0)
        reward = tuning.ev_target_penalty_eur_per_kwh
    elif session.mode in SOLAR_MODES:
        reward = tuning.ev_solar_value_eur_per_kwh
    lower, energy_ub = np.zeros(n), np.full(n, session.capacity_kwh)
    if session.mode == ChargingMode.MIN_SOLAR:
        reward = tuning.ev_solar_value_eur_per_kwh
        lower, energy_ub = forced_min_power(wb, session, mask, dt)
    charger = _add_charger(ctx, wb, options, (lower, upper), reward)
    energy_lb = np.zeros(n)
    if session.mode in (ChargingMode.SMART, ChargingMode.NOW):
        promise = promised_kwh(ctx, wb, session, mask, upper)
        if promise is not None:
            energy_lb[promise[1]] = promise[0]
    energy = m.var(f"{wb.name}-energy", energy_lb, energy_ub)
    rhs = np.zeros(n)
    rhs[0] = session.energy_kwh
    m.rows(
        f"{wb.name}-energy_balance",
        [
            (energy, diag(n)),
            (energy, lag(n, -1.0)),
            (charger.power, diag(n, -wb.efficiency * dt)),
        ],
        rhs,
        rhs,
    )
    if session.mode in (ChargingMode.SMART, ChargingMode.NOW):
        if target is not None:
            _add_energy_floors(ctx, wb, energy, [(*target, None)], "target")
        steps = milestone_targets(ctx.problem.inputs.index, session, mask, max_kw, wb.efficiency)
        if steps:
            _add_energy_floors(ctx, wb, energy, steps, "milestone")
    if session.mode in SOLAR_MODES:
        _add_solar_rule(ctx, wb, charger)
    if session.mode == ChargingMode.AFTER_BATTERY:
        _add_after_battery_rule(ctx, wb, charger)
    if session.mode == ChargingMode.MIN_SOLAR:
        _add_min_solar_rule(ctx, wb, charger, mask)
    charger.room_kwh = float(energy_ub.max() - session.energy_kwh)
    charger.kwh_per_kw = wb.efficiency * dt
    import_cost = effective_prices(ctx.problem)[0]
    ctx.rounders.append(_phase_rounder(charger, lower > 0, import_cost))
    if ctx.problem.site.heat_pumps:  # the local search of the heat pumps' runs (lazy.py)
        ctx.neighbours.append(_charger_moves(charger, upper > 0))
        ctx.consolidators.append(_trickle_off(charger, lower > 0))
    ctx.balance.append((charger.power, -1.0))


def _add_charger(
    ctx: Context,
    wb: Wallbox,
    options: tuple[int, ...],
    bounds: tuple[np.ndarray, np.ndarray],
    reward: float,
) -> _Charger:
    """Power in ``{0} U [min_k, max_k]`` for the phase options ``k``, within ``bounds`` [kW];
    ``reward`` per kWh charged [EUR/kWh]."""
    m, n, dt = ctx.m, ctx.n, ctx.dt_h
    lower, upper = bounds
    power = m.var(f"{wb.name}-power", lower, upper, -reward * dt)
    ranges = [wb.power_range_kw(k) for k in options]
    on = tuple(
        m.var(f"{wb.name}-on_{k}p", 0.0, (upper >= low - 1e-9) * 1.0, integer=True)
        for k, (low, _) in zip(options, ranges, strict=True)
    )
    m.rows(
        f"{wb.name}-power_max",
        [(power, diag(n))] + [(b, diag(n, -high)) for b, (_, high) in zip(on, ranges, strict=True)],
        ub=0.0,
    )
    m.rows(
        f"{wb.name}-power_min",
        [(power, diag(n))] + [(b, diag(n, -low)) for b, (low, _) in zip(on, ranges, strict=True)],
        lb=0.0,
    )
    if len(options) > 1:
        m.rows(f"{wb.name}-phase_choice", [(b, diag(n)) for b in on], ub=1.0)
    lows = tuple(r[0] for r in ranges)
    highs = tuple(r[1] for r in ranges)
    return _Charger(power, options, on, lows, highs)


def _charger_moves(ch: _Charger, plugged: np.ndarray) -> Neighbours:
    """Moves of the charger's on/off columns: in one slot where the car is plugged, off to on
    at the phase option with the lowest minimum, on to off, or one option to another."""
    slowest = int(np.argmin(ch.min_kw))
    cols = np.array([np.arange(b.start, b.start + b.size) for b in ch.on])  # option x slot
    options = len(ch.on)

    def apply(
        canonical: CanonicalProblem, x: np.ndarray, free: np.ndarray
    ) -> list[tuple[np.ndarray, np.ndarray]]:
        if not free[cols].all():
            return []
        on = np.round(x[cols]) > 0.5
        moves = []
        for t in np.flatnonzero(plugged):
            now = np.flatnonzero(on[:, t])
            targets = [-1, *range(options)] if len(now) else [slowest]
            for target in targets:
                if len(now) and target == now[0]:
                    continue
                moves.append((cols[:, t], (np.arange(options) == target) * 1.0))
        return moves

    return apply


def _trickle_off(ch: _Charger, forced: np.ndarray) -> Consolidate:
    """The charger's slots (its power and on/off columns) where it charges below its lowest
    minimum and neither neighbouring slot charges at or above it, forced slots excepted.

    Around a heat pump's fixed runs the relaxation spreads the car's PV trickle over many
    slots below its minimum. The exact car (a MIP over its binaries) puts that energy into
    the gaps and edges of the blocks it charges at or above the minimum, at no cost on the
    slow days of the hard heat-pump row; the repair rules, which switch on slots the trickle
    was in, lost 0.002-0.037 EUR there (docs/optimizer.md). Switched off, the LP moves the
    scattered trickle next to those blocks first.
    """
    low = min(ch.min_kw)
    cols = [ch.power.slice] + [b.slice for b in ch.on]

    def apply(x: np.ndarray) -> np.ndarray:
        p = x[ch.power.slice]
        on = p >= low - 1e-7
        near = on.copy()
        near[1:] |= on[:-1]
        near[:-1] |= on[1:]
        off = (p > 1e-7) & ~near & ~forced
        out = np.zeros(len(x), dtype=bool)
        for c in cols:
            out[c] = off
        return out

    return apply


def _phase_rounder(ch: _Charger, forced: np.ndarray, import_cost: np.ndarray) -> Rounder:
    """Round the on/off binaries from the relaxed power.

    Exact rounding: the option whose range holds the power. Repair (for a slot no range holds):
    off below ``repair`` x the lowest minimum, else the option whose range is nearest; with
    :data:`CONSERVE`, of the slots below the minimum as many as their energy fills at the
    minimum (largest power first), with :data:`CHEAPEST` as many, the lowest ``import_cost``
    [EUR/kWh] first. Never more slots on than the car has room for at their
    minimum power (the car's capacity is a hard bound). The LP re-solve then moves the power
    into the ranges.
    """
    fastest_first = sorted(range(len(ch.options)), key=lambda i: -ch.options[i])
    low, high = np.array(ch.min_kw), np.array(ch.max_kw)

    def apply(x: np.ndarray, relaxed: np.ndarray, repair: float | None) -> None:
        p = x[ch.power.slice]
        taken = np.zeros(len(p), dtype=bool)
        choice = np.full(len(p), -1)
        # the fastest option first: where ranges overlap, fewer amps per kW
        for i in fastest_first:
            fits = (p >= low[i] - 1e-7) & (p <= high[i] + 1e-7) & ~taken
            choice[fits] = i
            taken |= fits
        if repair is not None:
            taken = _repair(p, choice, taken, repair, (low, high), import_cost=import_cost)
            _trim_to_room(p, choice, forced, low * ch.kwh_per_kw, ch.room_kwh)
        for i in range(len(ch.options)):
            cols = ch.on[i].slice
            decided = taken if repair is not None else np.ones(len(p), dtype=bool)
            value = np.where(decided, (choice == i) * 1.0, x[cols])
            x[cols] = np.where(relaxed[cols], value, x[cols])

    return apply


def _repair(
    p: np.ndarray,
    choice: np.ndarray,
    taken: np.ndarray,
    repair: float,
    ranges: tuple[np.ndarray, np.ndarray],
    *,
    import_cost: np.ndarray,
) -> np.ndarray:
    """Set ``choice`` (in place) where no range holds ``p``; return the decided slots (all)."""
    low, high = ranges
    distance = np.maximum(low[None, :] - p[:, None], p[:, None] - high[None, :])
    nearest = np.argmin(distance, axis=1)
    loose = ~taken & (p > 1e-7)
    if repair in (CONSERVE, CHEAPEST):
        wanted = loose & (p >= low.min())
        below = np.flatnonzero(loose & (p < low.min()))
        count = int(np.round(p[below].sum() / low.min()))
        # ties (an hourly price's four quarter-hours) by the larger relaxed power
        key = (
            np.lexsort((-p[below], import_cost[below]))
            if repair == CHEAPEST
            else np.argsort(-p[below])
        )
        wanted[below[key[:count]]] = True
    else:
        wanted = loose & (p > max(repair * low.min(), 1e-7))
    choice[wanted] = nearest[wanted]
    choice[~(taken | wanted)] = -1
    return np.ones(len(p), dtype=bool)


def _trim_to_room(
    p: np.ndarray,
    choice: np.ndarray,
    forced: np.ndarray,
    min_kwh: np.ndarray,
    room_kwh: float,
) -> None:
    """Switch off the smallest-power slots (in place) until the slots on fit in the car."""
    on = np.flatnonzero(choice >= 0)
    need = min_kwh[choice[on]]
    if need.sum() <= room_kwh + 1e-9:
        return
    order = np.argsort(np.where(forced[on], np.inf, p[on]))
    total = need.sum()
    for k in order:
        if total <= room_kwh + 1e-9 or forced[on[k]]:
            break
        choice[on[k]] = -1
        total -= need[k]


def promised_kwh(
    ctx: Context, wb: Wallbox, session: EVSession, mask: np.ndarray, upper_kw: np.ndarray
) -> tuple[float, int] | None:
    """The hard part of the owner's minimum: energy the car must hold at the end of its last
    plugged slot [kWh], and that slot; ``None`` without a minimum due in the horizon.

    It is the minimum (the part due within the horizon, as for the target) capped at what the
    wallbox can deliver by then: in every plugged slot the most power that fits ``upper_kw``,
    the phase options' ranges and the grid's headroom (import limit + PV forecast - household,
    shared by the cars with a minimum; the battery is not counted). A plan with the hard part
    met therefore always exists; the rest of the minimum stays soft with the target.
    """
    if session.min_kwh is None:
        return None
    index = ctx.problem.inputs.index
    fastest = wb.max_power_kw
    due = horizon_target_kwh(
        index, replace(session, target_kwh=session.min_kwh), mask, fastest, wb.efficiency
    )
    if due is None:
        return None
    need, slot = due
    inputs = ctx.problem.inputs
    cars = sum(
        1
        for s in ctx.problem.state.ev_sessions
        if s.min_kwh is not None and s.mode in (ChargingMode.SMART, ChargingMode.NOW)
    )
    headroom = (import_upper_kw(ctx) + inputs.pv_kw - inputs.load_kw) / max(cars, 1)
    power, least = np.zeros(ctx.n), np.full(ctx.n, np.inf)
    for k in wb.phase_options:
        low, high = wb.power_range_kw(k)
        p = np.minimum(np.minimum(high, upper_kw), headroom)
        fits = p >= low - 1e-9
        power = np.maximum(power, np.where(fits, p, 0.0))
        least = np.where(fits, np.minimum(least, low), least)
    usable = mask & (power > 0)
    usable[slot + 1 :] = False
    kwh = wb.efficiency * ctx.dt_h
    wanted = min(need, session.capacity_kwh) - session.energy_kwh
    hard = session.energy_kwh + deliverable_kwh(power[usable] * kwh, least[usable] * kwh, wanted)
    hard -= 1e-6
    return (hard, slot) if hard > session.energy_kwh else None


def deliverable_kwh(most: np.ndarray, least: np.ndarray, wanted: float) -> float:
    """The most energy up to ``wanted`` [kWh] that slots each giving 0 or between ``least`` and
    ``most`` [kWh] can deliver exactly.

    A wallbox cannot run below its minimum power, so not every amount is deliverable: a car
    1 kWh from full takes nothing from a slot whose minimum is 1.04 kWh (the model's car
    never goes above its capacity), and a wallbox whose minimum is its maximum delivers
    multiples of one slot. The ``j`` slots that give most deliver every amount between their
    minima and their maxima, so the answer is the best of those ranges.
    """
    if wanted <= 0 or most.size == 0:
        return 0.0
    order = np.argsort(-most)
    top, low = np.cumsum(most[order]), np.cumsum(least[order])
    fits = low <= wanted + 1e-9
    return float(max(np.minimum(top[fits], wanted), default=0.0))


def target_penalty_eur_per_kwh(ctx: Context, wb: Wallbox, need_kwh: float) -> float:
    """Cost of each kWh the car ends short of ``need_kwh`` [EUR/kWh].

    The wallbox cannot deliver less than its minimum power for a slot: a car that lacks less
    than one slot at the minimum gets either nothing or at least that slot's energy. A penalty
    per kWh of the small remainder alone then costs less than the slot that meets it (e.g.
    0.12 kWh x 2 EUR against 1 kWh at the minimum of 4.1 kW), and the optimum leaves a
    reachable target short. So the remainder is charged as short by the whole minimum slot:
    meeting the target is traded at the penalty per kWh the wallbox must deliver for it, as
    for larger remainders (any energy above one minimum slot can be spread over slots).
    """
    penalty = ctx.problem.tuning.ev_target_penalty_eur_per_kwh
    session = ctx.problem.session(wb.name)
    if session is None:
        return penalty
    low = min(wb.power_range_kw(k)[0] for k in wb.phase_options)
    min_slot_kwh = low * wb.efficiency * ctx.dt_h
    missing = need_kwh - session.energy_kwh
    room = session.capacity_kwh - session.energy_kwh
    if 1e-9 < missing < min_slot_kwh <= room + 1e-9:
        return penalty * min_slot_kwh / missing
    return penalty


def milestone_targets(
    index: pd.DatetimeIndex, session: EVSession, mask: np.ndarray, max_kw: float, eff: float
) -> list[tuple[float, int, float | None]]:
    """Energy the car must hold at the end of a slot for each of its milestones [kWh], and
    that slot: the last plugged slot that ends by the milestone (:func:`horizon_target_kwh`'s
    rule, so one beyond the horizon asks only for what cannot be charged after it; one due
    before the first plugged slot ends asks for it in that slot). Milestones the car already
    holds, or that are past, ask nothing."""
    out = []
    first = np.flatnonzero(mask)[:1]
    for when, kwh, penalty in session.milestones:  # type: ignore[misc]
        part = replace(session, target_kwh=min(kwh, session.capacity_kwh), departure=when,
                       milestones=())  # fmt: skip
        ahead = mask & plugged_mask(index, part)
        if not ahead.any() and first.size and _timestamp(when, "milestones") > index[0]:
            ahead[first] = True  # due within the first plugged slot: as much as it can
        found = horizon_target_kwh(index, part, ahead, max_kw, eff)
        if found is not None:
            out.append((*found, penalty))
    return out


def _add_energy_floors(
    ctx: Context,
    wb: Wallbox,
    energy: Block,
    steps: list[tuple[float, int, float | None]],
    kind: str,
) -> None:
    """Soft floors on the car's energy: per ``(kWh, slot, penalty)`` a ``{kind}_shortfall``
    [kWh] at the penalty [EUR/kWh] (None: :func:`target_penalty_eur_per_kwh`) and a
    ``{kind}_energy`` row, energy at the end of the slot + shortfall >= kWh."""
    k = len(steps)
    need = np.array([kwh for kwh, _, _ in steps])
    slots = np.array([slot for _, slot, _ in steps], dtype=np.int64)
    penalty = np.array([target_penalty_eur_per_kwh(ctx, wb, kwh) if p is None else p
                        for kwh, _, p in steps])  # fmt: skip
    short = ctx.m.var(f"{wb.name}-{kind}_shortfall", 0.0, need, penalty, size=k)
    one = np.arange(k, dtype=np.int64)
    ctx.m.rows(
        f"{wb.name}-{kind}_energy",
        [(energy, pick(one, slots)), (short, pick(one, one))],
        lb=need,
        size=k,
    )


def _surplus_terms(ctx: Context) -> tuple[list[tuple[Block, Coeffs]], np.ndarray]:
    """Terms of ``HP - PV`` per slot and the big-M that switches a surplus row off [kW]."""
    n = ctx.n
    assert ctx.pv_used is not None
    terms = [(ctx.pv_used, diag(n, -1.0))]
    big_m = ctx.problem.inputs.load_kw + ctx.hp_max_kw
    return terms + ctx.hp_terms(), big_m


def _add_solar_rule(ctx: Context, wb: Wallbox, ch: _Charger) -> None:
    """While on: car + household + heat pumps <= PV used (so the car takes PV only)."""
    terms, big_m = _surplus_terms(ctx)
    terms += [(ch.power, diag(ctx.n))] + [(on, diag(ctx.n, big_m)) for on in ch.on]
    ctx.m.rows(f"{wb.name}-solar_only", terms, ub=big_m - ctx.problem.inputs.load_kw)


def _add_after_battery_rule(ctx: Context, wb: Wallbox, ch: _Charger) -> None:
    """Charge only in slots that start with the home battery full."""
    bat, cfg = ctx.battery, ctx.problem.site.battery
    if bat is None or cfg is None:
        return
    n = ctx.n
    lowest = min(cfg.soc_min * bat.capacity_kwh, bat.energy_now_kwh)
    full = (cfg.soc_max - FULL_TOLERANCE * (cfg.soc_max - cfg.soc_min)) * bat.capacity_kwh
    # energy_{t-1} >= lowest + (full - lowest) * on_t: the tightest big-M the SOC range allows
    lb = np.full(n, lowest)
    lb[0] = lowest - bat.energy_now_kwh
    ctx.m.rows(
        f"{wb.name}-after_battery",
        [(bat.energy, lag(n, 1.0))] + [(on, diag(n, -(full - lowest))) for on in ch.on],
        lb=lb,
    )


def forced_min_power(
    wb: Wallbox, session: EVSession, mask: np.ndarray, dt: float
) -> tuple[np.ndarray, np.ndarray]:
    """``min_solar``: the lowest minimum power in every plugged slot until the car is full.

    Returns the lower bound of the charging power [kW] and the upper bound of the car's
    energy [kWh] per slot. The slots are computed in closed form from the car's energy now;
    the car keeps room for the minimum charging still due after each slot, so extra solar
    energy never makes the forced minimum impossible.
    """
    low = min(wb.power_range_kw(k)[0] for k in wb.phase_options)
    step_kwh = low * wb.efficiency * dt
    room = session.capacity_kwh - session.energy_kwh
    forced = mask & (np.cumsum(mask * step_kwh) <= room + 1e-9)
    due = forced * step_kwh
    still_due = due[::-1].cumsum()[::-1] - due
    return forced * low, session.capacity_kwh - still_due


def _add_min_solar_rule(ctx: Context, wb: Wallbox, ch: _Charger, mask: np.ndarray) -> None:
    """The part above the minimum power only from PV surplus.

    ``w`` is a binary per slot where the forecast shows a surplus: with ``w = 1`` the power above
    the minimum is at most PV - household - heat pumps, with ``w = 0`` it is zero. Slots
    without a forecast surplus get no binary: the power there is at most the minimum.
    """
    m, n = ctx.m, ctx.n
    inputs = ctx.problem.inputs
    # "the minimum" is the lowest the wallbox can do; charging faster on three phases is
    # already extra power and must come from the surplus
    lowest = min(ch.min_kw)
    extra = [(ch.power, diag(n))] + [(on, diag(n, -lowest)) for on in ch.on]
    surplus = mask & (inputs.pv_kw > inputs.load_kw) & (ctx.pv_used is not None)
    none = np.flatnonzero(~surplus)
    if len(none):
        m.rows(f"{wb.name}-min_only", _restrict(extra, none), ub=0.0, size=len(none))
    slots = np.flatnonzero(surplus)
    if len(slots) == 0:
        return
    k = len(slots)
    rows = np.arange(k)
    w = m.var(f"{wb.name}-surplus_on", 0.0, 1.0, integer=True, size=k)
    terms, big_m = _surplus_terms(ctx)
    big_m = big_m[slots]
    sub = _restrict(extra + terms, slots)
    m.rows(
        f"{wb.name}-surplus_only",
        [*sub, (w, pick(rows, rows, big_m))],
        ub=big_m - inputs.load_kw[slots],
        size=k,
    )
    top = max(ch.max_kw)
    m.rows(
        f"{wb.name}-surplus_switch",
        [*_restrict(extra, slots), (w, pick(rows, rows, -top))],
        ub=0.0,
        size=k,
    )


def _restrict(terms: list[tuple[Block, Coeffs]], slots: np.ndarray) -> list[tuple[Block, Coeffs]]:
    """Keep the rows of per-slot (diagonal) terms at ``slots``, renumbered ``0..k-1``."""
    out = []
    for block, c in terms:
        vals = np.broadcast_to(c.vals, c.rows.shape)
        out.append((block, Coeffs(np.arange(len(slots)), c.cols[slots], vals[slots])))
    return out
