"""On/off runs of one heat pump by dynamic programming against given electricity prices.

The relaxation lets a heat pump trickle at a fraction of its minimum power for hours (holding
the store at the bottom of its comfort band), which no integer plan can do. Rounding that
trickle into runs by rules misses when a run's heat is more than the store can take (summer
days, a store near the top of its band) or when the runs should wait for cheaper slots. This
module decides the runs for the heat pump on its own, given a price per slot (the LP's
marginal prices, see :func:`optimizer.devices.heatpump.run_search`); the LP re-solve with the
pattern fixed then sets the powers and proves the result against the bound.

The store is one thermal node, ``T_t = a T_{t-1} + b_t P_t + c_t``. Write ``T_t = D_t + h_t``
with ``D`` the store's drift with the heat pump off and ``h`` the heat added, decaying by
``a`` per slot. The state is ``u_t = h_t / a^t`` on a grid: off, it stays where it is (no
interpolation error piles up over the slots); a run adds ``b_t P_t / a^t``, any grid point
in the reach of [min, max] power. The other part of the state is how many slots the current
run has lasted (capped at the minimum run).
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import pairwise

import numpy as np
from scipy.ndimage import minimum_filter1d

#: Grid step of the added heat ``u`` [K]: a minimum run of 1 kW for 1 h heats a 10 kWh/K store
#: by ~0.35 K.
GRID_STEP_K = 0.02
#: The grid of each slot covers the comfort band and this much beyond [K].
GRID_MARGIN_K = 1.0
#: Most grid points per slot: over a long horizon ``a^t`` shrinks and the grid of the last
#: slots would grow (a week of 15-minute slots: ``a^672 ~ 0.08``), so the step is coarsened.
MAX_CELLS = 800
#: Value of a state outside the grid's top (hotter than the band plus the margin) [EUR].
TOO_HOT_EUR = 1e6


@dataclass(frozen=True)
class StoreModel:
    """A heat pump and its store over the horizon, in the DP's terms.

    Attributes
    ----------
    a : float
        Share of the store's temperature kept over one slot (``1 - dt H / C``) [-].
    b : np.ndarray
        Temperature rise per kW of electric power over slot ``t`` (``dt COP_t / C``) [K/kW].
    c : np.ndarray
        Temperature change over slot ``t`` from outdoor gains and demand [K].
    t0_c : float
        Store temperature now [degC].
    band_c : tuple[float, float]
        Comfort band [degC].
    penalty_eur_per_k : tuple[float, float]
        Cost per kelvin below / above the band at the end of a slot [EUR/K].
    temp_cost_eur_per_k : np.ndarray
        Cost per kelvin of the temperature at the end of slot ``t`` (the end value) [EUR/K].
    power_kw : tuple[float, float]
        Minimum and maximum electric power while running [kW].
    min_run_slots : int
        Minimum run length [slots]; the heat pump is off before the horizon.
    """

    a: float
    b: np.ndarray
    c: np.ndarray
    t0_c: float
    band_c: tuple[float, float]
    penalty_eur_per_k: tuple[float, float]
    temp_cost_eur_per_k: np.ndarray
    power_kw: tuple[float, float]
    min_run_slots: int


def best_runs(
    store: StoreModel,
    price_eur_per_kw: np.ndarray,
    surcharge: tuple[np.ndarray, np.ndarray] | None = None,
) -> np.ndarray:
    """On/off per slot of the cheapest plan of ``store`` alone at ``price_eur_per_kw``.

    Parameters
    ----------
    store : StoreModel
        The heat pump and its store.
    price_eur_per_kw : np.ndarray
        Cost of one kW of electric power over slot ``t`` (price x slot length) [EUR/kW].
    surcharge : tuple of np.ndarray, optional
        ``(knee_kw, eur_per_kw)``: power above ``knee_kw[t]`` costs ``eur_per_kw[t]`` more
        per kW in slot ``t`` (a convex cost: the price holds only so far, e.g. while PV that
        would be exported covers the power).

    Returns
    -------
    np.ndarray
        bool per slot; every run at least ``min_run_slots`` long (one cut by the horizon's
        end excepted).
    """
    grid = _Grid.of(store, np.asarray(price_eur_per_kw, dtype=float), surcharge)
    n, size = grid.landing.shape
    values = np.zeros((n + 1, grid.runs + 1, size))
    for t in range(n - 1, 0, -1):
        _backward_step(grid, t, values[t + 1], values[t])
    first = np.empty((grid.runs + 1, 1))  # one start point (index 0): keep the shape
    _backward_step(grid, 0, values[1], first)
    values[0] = first
    return _forward(grid, values)


@dataclass(frozen=True)
class _Grid:
    """Per slot ``t``: the grid's first index after the slot (all have ``size`` points), the
    cost of ending the slot at each (comfort penalties and end value) [EUR], the grid steps a
    run can add (at least ``lo``, at most ``hi``) and the cost of one step of heat [EUR];
    with a surcharge, the cost of ``k`` steps (``step_cost[t, k]``) [EUR]."""

    first: np.ndarray
    landing: np.ndarray
    lo: np.ndarray
    hi: np.ndarray
    step_eur: np.ndarray
    runs: int
    #: 0, 1, ... per grid index (float), for the cost of the steps to an index
    index: np.ndarray
    step_cost: np.ndarray | None = None
    #: with a surcharge: the most steps at the plain price, and the cost per step beyond
    #: (price and surcharge) [EUR]
    kink: np.ndarray | None = None
    slope: np.ndarray | None = None

    @classmethod
    def of(
        cls,
        store: StoreModel,
        price: np.ndarray,
        surcharge: tuple[np.ndarray, np.ndarray] | None = None,
    ) -> _Grid:
        n = len(price)
        drift = np.empty(n)
        temp = store.t0_c
        for t in range(n):  # a recurrence: D_t depends on D_{t-1}
            temp = store.a * temp + store.c[t]
            drift[t] = temp
        span = store.band_c[1] - store.band_c[0] + 2 * GRID_MARGIN_K
        step = max(GRID_STEP_K, span / (MAX_CELLS * store.a ** (n - 1)))
        kelvin = store.a ** np.arange(n) * step  # per grid step after slot t
        lo = np.ceil(store.b * store.power_kw[0] / kelvin - 1e-9).astype(np.int64)
        hi = np.maximum(np.floor(store.b * store.power_kw[1] / kelvin + 1e-9), lo)
        reach = np.cumsum(hi).astype(np.int64)
        first = np.floor((store.band_c[0] - GRID_MARGIN_K - drift) / kelvin).astype(np.int64)
        first = np.clip(first, 0, np.maximum(reach - 1, 0))
        last = np.ceil((store.band_c[1] + GRID_MARGIN_K - drift) / kelvin).astype(np.int64)
        size = int(np.max(np.maximum(last, first + hi + 1) - first)) + 1
        temps = drift[:, None] + kelvin[:, None] * (first[:, None] + np.arange(size))
        low, high = store.penalty_eur_per_k
        landing = (
            low * np.maximum(store.band_c[0] - temps, 0.0)
            + high * np.maximum(temps - store.band_c[1], 0.0)
            + store.temp_cost_eur_per_k[:, None] * temps
        )
        step_eur = price * kelvin / store.b
        runs = max(store.min_run_slots, 1)
        step_cost = kink = slope = None
        if surcharge is not None:
            steps = np.arange(int(hi.max()) + 1)
            kw = steps * (kelvin / store.b)[:, None]
            knee, extra = surcharge
            over = np.maximum(kw - knee[:, None], 0.0)
            step_cost = step_eur[:, None] * steps + extra[:, None] * over
            kink = (over <= 0.0).sum(axis=1) - 1  # over rises with the steps
            slope = step_eur + extra * kelvin / store.b
        hi = hi.astype(np.int64)
        index = np.arange(size, dtype=float)
        return cls(first, landing, lo, hi, step_eur, runs, index, step_cost, kink, slope)

    def run_costs(self) -> np.ndarray:
        """Per slot ``t``: the cost of the ``lo[t] + k`` grid steps of heat a run adds
        (``k = 0, 1, ...``; past ``hi[t]``, that of ``hi[t]``) [EUR]."""
        steps = self.lo[:, None] + np.arange(int((self.hi - self.lo).max()) + 1)
        if self.step_cost is None:
            return self.step_eur[:, None] * steps
        rows = np.arange(len(self.lo))[:, None]
        return self.step_cost[rows, np.minimum(steps, self.hi[:, None])]


def _backward_step(grid: _Grid, t: int, after: np.ndarray, out: np.ndarray) -> None:
    """Value to go before slot ``t`` per run state (rows: 0 off, k = ran k slots, capped at
    the minimum run) and grid index before it, into ``out``; ``after`` is that of slot
    ``t + 1``. Runs once per slot of every search: numpy calls on whole rows only, slices
    where they stay inside the grid (the DP's time is the calls' overhead, not the rows)."""
    f = grid.landing[t] + after  # value of ending slot t at each grid index
    count = out.shape[1]  # grid indices before slot t (consecutive; one at the start)
    base = int(grid.first[t - 1] - grid.first[t]) if t else -int(grid.first[0])
    runs: np.ndarray
    if grid.step_cost is None:  # linear: a sliding-window minimum
        step_eur = grid.step_eur[t]
        g = f[1:] + step_eur * grid.index  # into run states 1 .. k
        width = int(grid.hi[t] - grid.lo[t]) + 1
        window = _window_min(g, width)
        heat = step_eur * (grid.index[:count] + base)
        runs = _columns(window, base + int(grid.lo[t]), count)
        runs -= heat  # window is this step's own
    else:  # convex: every reachable step count
        runs = _convex_runs(grid, t, f[1:], base + np.arange(count))
    out[: grid.runs] = runs
    out[grid.runs] = runs[-1]
    off = _columns(f[:1], base, count)[0]
    np.minimum(out[0], off, out=out[0])
    np.minimum(out[-1], off, out=out[-1])


def _window_min(g: np.ndarray, width: int) -> np.ndarray:
    """Per row of ``g``, the minimum of each window of ``width`` columns starting at a
    column (past the last column, the last column's value). The output is allocated here:
    scipy then skips naming the dtype, a third of its call's overhead at a DP's row sizes."""
    out = np.empty(g.shape)
    return minimum_filter1d(g, width, axis=1, output=out, origin=-(width // 2), mode="nearest")


def _columns(a: np.ndarray, first: int, count: int) -> np.ndarray:
    """Columns ``first .. first + count - 1`` of ``a``, those left of it as its first column
    and those right of it as :data:`TOO_HOT_EUR`: indices beyond the grid's top count as too
    hot, below its bottom as the bottom (a colder store only costs more, so this is
    optimistic). Inside ``a`` it is a view of ``a``."""
    size = a.shape[1]
    if first >= 0 and first + count <= size:
        return a[:, first : first + count]
    out = np.empty((a.shape[0], count))
    left = min(max(-first, 0), count)
    right = min(max(first + count - size, 0), count - left)
    out[:, :left] = a[:, :1]
    out[:, left : count - right] = a[:, first + left : first + count - right]
    out[:, count - right :] = TOO_HOT_EUR
    return out


def _convex_runs(grid: _Grid, t: int, f: np.ndarray, base: np.ndarray) -> np.ndarray:
    """Cheapest value per run state of running in slot ``t`` from each grid index ``base``
    (consecutive, relative to the slot's grid) into ``f`` (per run state and grid index),
    any reachable step count at its convex cost. The cost is linear up to the surcharge's
    knee and beyond it, so each piece is a sliding-window minimum, as for a linear cost.
    Indices beyond the grid's top count as too hot, below its bottom as the bottom
    (:func:`_columns`)."""
    assert grid.kink is not None and grid.slope is not None and grid.step_cost is not None
    lo, hi, kink = int(grid.lo[t]), int(grid.hi[t]), int(grid.kink[t])
    step_eur, steeper = grid.step_eur[t], float(grid.slope[t])
    pieces = []
    for first, last, slope in ((lo, min(hi, kink), step_eur), (max(lo, kink + 1), hi, steeper)):
        if first > last:
            continue
        # cost(k) = slope k + const on this piece; min over k of f[base + k] + cost(k) is
        # min over m of (f[m] + slope m) - slope base + const, m in [base + first, base + last]
        const = float(grid.step_cost[t, first]) - slope * first
        start, count = int(base[0]) + first, len(base) + last - first
        g = _columns(f, start, count) + slope * np.arange(start, start + count)
        width = last - first + 1
        window = _window_min(g, width)
        piece = window[:, : len(base)] - slope * base
        if const:  # 0 on the first piece (the plain price)
            piece += const
        pieces.append(piece)
    if len(pieces) == 1:
        return pieces[0]
    return np.minimum(pieces[0], pieces[1])


def _forward(grid: _Grid, values: np.ndarray) -> np.ndarray:
    """Follow the cheapest decisions from the start, heat pump off; ``values[t]`` is the
    value to go before slot ``t``. Indices beyond the grid's top count as too hot, below its
    bottom as the bottom (:func:`_columns`)."""
    n, size = grid.landing.shape
    on = np.zeros(n, dtype=bool)
    state, at = 0, 0
    firsts, los, his = grid.first.tolist(), grid.lo.tolist(), grid.hi.tolist()
    run_costs = grid.run_costs()
    for t in range(n):
        first = firsts[t]
        run_to = min(state + 1, grid.runs)
        low, high = at + los[t] - first, at + his[t] - first  # landing grid indices
        if low >= 0 and high < size:  # only the entries needed, as views
            costs = grid.landing[t, low : high + 1] + values[t + 1, run_to, low : high + 1]
        else:
            rel = np.arange(low, high + 1)
            pos = np.minimum(np.maximum(rel, 0), size - 1)
            costs = grid.landing[t, pos] + values[t + 1, run_to, pos]
            costs[rel >= size] = TOO_HOT_EUR
        costs += run_costs[t, : high - low + 1]
        best = int(np.argmin(costs))
        here = min(max(at - first, 0), size)
        stay = TOO_HOT_EUR
        if here < size:
            stay = float(grid.landing[t, here] + values[t + 1, 0, here])
        if state in (0, grid.runs) and stay <= costs[best]:
            state = 0
        else:
            state, at, on[t] = run_to, max(at + los[t] + best, first), True
    return on


def run_moves(on: np.ndarray, min_slots: int) -> list[np.ndarray]:
    """On/off patterns one move away from ``on``, each run still at least ``min_slots`` long
    (one cut by the horizon's end excepted).

    The moves: a run extended, shortened or shifted by one slot at either end, dropped, or
    merged with the next run when at most ``min_slots - 1`` slots lie between them. A run
    heuristic priced at marginal prices misses the optimum by such moves: the exact plans of
    the hard heat-pump days differ from the DP's by runs shifted by a slot or two, stretched
    by one, or two runs merged (docs/optimizer.md).
    """
    on = np.asarray(on, dtype=bool)
    n = len(on)
    runs = _runs(on)
    out = []
    for s, e in runs:
        for a, b in (
            (s - 1, e),
            (s, e + 1),
            (s + 1, e),
            (s, e - 1),
            (s - 1, e - 1),
            (s + 1, e + 1),
        ):
            if a < 0 or b > n or b - a < min(min_slots, n - a) or (a, b) == (s, e):
                continue
            moved = on.copy()
            moved[s:e] = False
            moved[a:b] = True  # touching the next run merges them: still long enough
            out.append(moved)
        dropped = on.copy()
        dropped[s:e] = False
        out.append(dropped)
    for (_, e1), (s2, _) in pairwise(runs):
        if s2 - e1 < max(min_slots, 1):
            merged = on.copy()
            merged[e1:s2] = True
            out.append(merged)
    return out


def _runs(on: np.ndarray) -> list[tuple[int, int]]:
    """(first slot, end slot) of every run of ``on``."""
    edges = np.diff(np.concatenate(([0], on.astype(np.int8), [0])))
    return list(
        zip(np.flatnonzero(edges == 1).tolist(), np.flatnonzero(edges == -1).tolist(), strict=True)
    )
