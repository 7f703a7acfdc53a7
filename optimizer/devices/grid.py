"""Grid connection: import and export with limits, the feed-in rules and §14a dimming.

Rules the block encodes:

* export is capped by the connection and the PV feed-in cap (e.g. 60 % of PV peak);
* under the negative-price rule, export earns nothing in slots with a negative spot price;
* §14a dimming caps what the controllable devices draw from the grid in the given slots:
  ``import - household load <= cap``, where the cap is never below 4.2 kW per device;
* ``grid-unserved`` is the only way out when physics cannot cover the load; it costs the value
  of lost load and is reported, so a plan always exists.
"""

from __future__ import annotations

import numpy as np

from optimizer.config import DIMMING_MIN_KW_PER_DEVICE, FeedInRule
from optimizer.devices.context import Context
from optimizer.model import diag, pick
from optimizer.problem import Problem

G_PER_T = 1e6


def effective_prices(problem: Problem) -> tuple[np.ndarray, np.ndarray]:
    """(import cost incl. CO2 price, export revenue after the feed-in rule) [EUR/kWh]."""
    inputs, site, tuning = problem.inputs, problem.site, problem.tuning
    import_cost = inputs.import_eur_per_kwh.copy()
    if tuning.co2_price_eur_per_t > 0 and inputs.co2_g_per_kwh is not None:
        import_cost += tuning.co2_price_eur_per_t * inputs.co2_g_per_kwh / G_PER_T
    export = inputs.export_eur_per_kwh.copy()
    if (
        site.grid.feed_in_rule == FeedInRule.NO_PAYMENT_AT_NEGATIVE_SPOT
        and inputs.spot_eur_per_kwh is not None
    ):
        export[inputs.spot_eur_per_kwh < 0] = np.minimum(export[inputs.spot_eur_per_kwh < 0], 0.0)
    return import_cost, export


def import_upper_kw(ctx: Context) -> np.ndarray:
    """Import limit per slot, with §14a dimming applied [kW]."""
    inputs, site = ctx.problem.inputs, ctx.problem.site
    upper = np.full(ctx.n, site.grid.import_limit_kw)
    if inputs.import_cap_kw is not None:
        floor = DIMMING_MIN_KW_PER_DEVICE * max(1, site.controllable_devices)
        cap = np.maximum(inputs.import_cap_kw, floor)
        dimmed = np.isfinite(cap)
        upper[dimmed] = np.minimum(upper[dimmed], inputs.load_kw[dimmed] + cap[dimmed])
    return upper


def export_upper_kw(ctx: Context) -> float:
    grid = ctx.problem.site.grid
    cap = grid.feed_in_cap_kw
    return grid.export_limit_kw if cap is None else min(grid.export_limit_kw, cap)


def add_grid(ctx: Context) -> None:
    """Add ``grid-import``, ``grid-export`` and ``grid-unserved`` [kW]."""
    m, dt = ctx.m, ctx.dt_h
    import_cost, export_price = effective_prices(ctx.problem)
    imp_ub, exp_ub = import_upper_kw(ctx), export_upper_kw(ctx)
    imp = m.var("grid-import", 0.0, imp_ub, import_cost * dt)
    exp = m.var("grid-export", 0.0, exp_ub, -export_price * dt)
    penalty = ctx.problem.tuning.unserved_penalty_eur_per_kwh * dt
    unserved = m.var("grid-unserved", 0.0, ctx.problem.inputs.load_kw, penalty)
    ctx.balance += [(imp, 1.0), (exp, -1.0), (unserved, 1.0)]
    # Where export pays more than import costs, importing to export would pay: only
    # there a binary forbids both at once.
    slots = np.flatnonzero(export_price > import_cost)
    if len(slots) == 0:
        return
    k, rows = len(slots), np.arange(len(slots))
    importing = m.var("grid-importing", 0.0, 1.0, integer=True, size=k)
    m.rows(
        "grid-import_mode",
        [(imp, pick(rows, slots)), (importing, pick(rows, rows, -imp_ub[slots]))],
        ub=0.0,
        size=k,
    )
    m.rows(
        "grid-export_mode",
        [(exp, pick(rows, slots)), (importing, pick(rows, rows, exp_ub))],
        ub=exp_ub,
        size=k,
    )


def add_balance(ctx: Context) -> None:
    """One row per slot: everything into the bus - everything out = household load."""
    load = ctx.problem.inputs.load_kw
    terms = [(block, diag(ctx.n, sign)) for block, sign in ctx.balance]
    ctx.m.rows("site-power_balance", terms, load, load)
