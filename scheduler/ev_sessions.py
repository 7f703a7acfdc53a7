"""EV sessions learned from a site's own telemetry: when the car comes, leaves, and what it takes.

The box reports per poll whether a car is plugged in (``wallbox.connected``) and the charging
power [kW]. :func:`sessions_from_telemetry` turns the per-slot means of both into completed
sessions (plug-in, plug-out, AC energy delivered); :class:`SessionModel` keeps them and answers,
for a car plugged in now, by when it must have had how much, and how much it will want:

* **milestones and departure** (:func:`staircase`, with :data:`MILESTONES`): per similar past
  session still ahead, when this car would leave if it behaved the same
  (:func:`departures_like`) and what it took; the running maximum of these energies over
  these departures asks each similar session's energy by its own departure, and the
  departure is where it reaches the need. A guard milestone asks :data:`GUARD_KWH` soon after
  plug-in at the expected shortfall price of a stay shorter than all of them. Without
  :data:`MILESTONES`, the departure is an early quantile (:data:`DEPARTURE_QUANTILE`) of the
  latest times by which the whole need must be in the car so that, charged at full power as
  late as possible, each similar session would still have had its own energy when it left;
* **energy**: the most (:data:`ENERGY_QUANTILE` = 1) AC energy a similar past session took,
  among those that took more than this car has already had. A car stops drawing when it is
  full, so a need above the real one costs nothing in the car; a need below it leaves the car
  short when it leaves (a 90 % quantile left one in ten similar sessions short).

"Similar" is by weekday and time of day of the plug-in, widened step by step until at least
:data:`MIN_NEIGHBOURS` sessions qualify: the same weekday within :data:`WINDOW_H` hours of the
plug-in's time of day, then the same kind of day (Monday to Friday, or the weekend), then any
day within ``1.5 x WINDOW_H``, then every session. With fewer than :data:`MIN_SESSIONS`
completed sessions the model says nothing and the controller keeps its configured departure.

Energies are AC energy delivered by the wallbox [kWh] (what the box measures), so a session
that ended early because the car was full counts its real need; one cut short by its departure
counts less than it wanted, which the largest of the similar ones absorbs.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from adapters.store.telemetry import Sample
from optimizer import Milestone

#: Completed sessions needed before learned estimates replace the configured departure.
MIN_SESSIONS = 10
#: Similar sessions needed at one level of the neighbourhood before it is used.
MIN_NEIGHBOURS = 5
#: Quantile of the stay of similar sessions used as the departure (early: reliable) [-].
DEPARTURE_QUANTILE = 0.05
#: Departure and milestones from the staircase of the similar sessions (every one of them
#: would have had its energy by its own departure) instead of the early quantile alone.
MILESTONES = True
#: Price of EV energy a car lacks when it leaves (public charging) [EUR/kWh].
REPLACEMENT_EUR_PER_KWH = 0.55
#: A guard milestone this long after plug-in [-] asks :data:`GUARD_KWH` [kWh AC] at the
#: expected shortfall price of a stay shorter than every similar one seen.
GUARD_AFTER = pd.Timedelta(minutes=15)
GUARD_KWH = 1.0
#: Quantile of the energy of similar sessions used as the need (the largest: every similar
#: session's energy; a full car stops drawing, so more costs nothing in the car) [-].
ENERGY_QUANTILE = 1.0
#: History the controller learns from [days]: within the stores' raw retention (35 days),
#: where the plug state is kept per poll.
LEARN_DAYS = 34
#: Half-width of the time-of-day neighbourhood of a plug-in [h].
WINDOW_H = 2.0
SESSION_COLUMNS = ("plugin_utc", "plugout_utc", "energy_kwh")
_HOUR = pd.Timedelta(hours=1)


@dataclass(frozen=True)
class Expectation:
    """What a plugged-in car will likely do.

    Parameters
    ----------
    departure : pandas.Timestamp or None
        When the whole need is due (UTC); ``None`` when no similar session stayed this long.
    energy_kwh : float or None
        AC energy the session will want in total [kWh]; ``None`` when no similar session
        took more than the car has had.
    neighbours : int
        Similar sessions the departure was taken from.
    milestones : tuple of Milestone
        AC energy the session should have had by earlier times [kWh] (UTC times before
        ``departure``): what the similar sessions that left by then took (:func:`staircase`),
        at the target penalty; and a guard for a stay shorter than all of them, at the
        expected shortfall price.
    """

    departure: pd.Timestamp | None
    energy_kwh: float | None
    neighbours: int
    milestones: tuple[Milestone, ...] = ()


@dataclass(frozen=True)
class SessionModel:
    """Completed sessions of one wallbox and the quantiles drawn from them.

    Parameters
    ----------
    sessions : pandas.DataFrame
        Columns ``plugin_utc``, ``plugout_utc`` (tz-aware UTC), ``energy_kwh`` [kWh AC].
    tz : str
        The site's time zone: weekdays and times of day are local.
    power_kw : float
        The wallbox's charging power [kW AC], for the departure that keeps every similar
        session's energy (see :meth:`expect`).
    """

    sessions: pd.DataFrame
    tz: str = "Europe/Berlin"
    power_kw: float = 11.0

    @property
    def usable(self) -> bool:
        """Enough history (:data:`MIN_SESSIONS`) to replace the configured departure."""
        return len(self.sessions) >= MIN_SESSIONS

    def expect(
        self, plugged_at: pd.Timestamp, now: pd.Timestamp, delivered_kwh: float
    ) -> Expectation | None:
        """Reliable departure and total energy of a car plugged in at ``plugged_at``.

        Parameters
        ----------
        plugged_at, now : pandas.Timestamp
            Plug-in and the current time (tz-aware).
        delivered_kwh : float
            AC energy the car has had in this session so far [kWh].

        Returns
        -------
        Expectation or None
            ``None`` with too little history (:attr:`usable`).
        """
        if not self.usable:
            return None
        s = self.sessions
        leaves = departures_like(s, plugged_at, self.tz)
        energy = s["energy_kwh"].to_numpy(float)
        levels = neighbourhoods(pd.DatetimeIndex(s["plugin_utc"]), plugged_at, self.tz)
        needs = _first_enough(levels, energy > delivered_kwh + 1e-6)
        need = None if needs is None else float(np.quantile(energy[needs], ENERGY_QUANTILE))
        stays = _first_enough(levels, leaves > now.value)
        if stays is None:
            return Expectation(None, need, 0)
        if MILESTONES:
            steps = staircase(leaves[stays], energy[stays], need)
            n = int(stays.sum())
            guard_at = plugged_at + GUARD_AFTER
            top = steps[-1][1] if need is None else need
            kept = tuple(Milestone(t, kwh) for t, kwh in steps[:-1])
            if now < guard_at < steps[0][0] and top > delivered_kwh:
                # a stay shorter than every similar one: as likely as 1 in n + 2 (Laplace)
                guard = Milestone(guard_at, min(GUARD_KWH, top), REPLACEMENT_EUR_PER_KWH / (n + 2))
                kept = (guard, *kept)
            return Expectation(steps[-1][0], need, n, kept)
        # "need by d" met at full power as late as possible still gives session k its
        # e_k by its d_k when d <= d_k + (need - e_k) / power: the departure that keeps
        # the similar sessions whole, not only the one that sees them leave
        spare_h = np.clip((need or 0.0) - energy, 0.0, None) / self.power_kw
        deadline = leaves + spare_h * _HOUR.value
        ns = float(np.quantile(deadline[stays], DEPARTURE_QUANTILE))
        return Expectation(pd.Timestamp(int(ns), tz="UTC"), need, int(stays.sum()))


def staircase(
    leaves: np.ndarray, energy: np.ndarray, need: float | None
) -> tuple[tuple[pd.Timestamp, float], ...]:
    """Energy the car must have had by each time so that every similar session would have had
    its own energy (at most ``need``) by its own departure: the running maximum of the
    energies over the departures [UNIX ns], one step where it rises [(UTC time, kWh AC)].
    The last step is where it reaches its top."""
    order = np.argsort(leaves, kind="stable")
    top = np.inf if need is None else need
    run = np.maximum.accumulate(np.minimum(energy[order], top))
    rises = np.flatnonzero(np.r_[True, run[1:] > run[:-1] + 1e-6])
    at = leaves[order]
    return tuple((pd.Timestamp(int(at[k]), tz="UTC"), float(run[k])) for k in rises)


def departures_like(sessions: pd.DataFrame, plugged_at: pd.Timestamp, tz: str) -> np.ndarray:
    """Per past session, when a car plugged in at ``plugged_at`` would leave if it behaved the
    same [UNIX ns]: the earlier of "after the same stay" and "at the same local time of day,
    the same number of days after plug-in" (cars leave for work at a time, not after a
    duration; the earlier of the two is the reliable one)."""
    plugin = pd.DatetimeIndex(sessions["plugin_utc"])
    plugout = pd.DatetimeIndex(sessions["plugout_utc"])
    by_stay = plugged_at.value + (plugout - plugin).to_numpy("timedelta64[ns]").astype(np.int64)
    pin, pout = plugin.tz_convert(tz), plugout.tz_convert(tz)
    days = pout.normalize().tz_localize(None) - pin.normalize().tz_localize(None)
    time_of_day = pout.tz_localize(None) - pout.normalize().tz_localize(None)
    day0 = plugged_at.tz_convert(tz).normalize().tz_localize(None)
    wall = pd.DatetimeIndex(day0 + days + time_of_day)
    anchored = wall.tz_localize(
        tz, ambiguous=np.ones(len(wall), dtype=bool), nonexistent="shift_forward"
    )
    by_clock = anchored.tz_convert("UTC").to_numpy("datetime64[ns]").astype(np.int64)
    usable = by_clock > plugged_at.value
    return np.where(usable, np.minimum(by_stay, by_clock), by_stay)


def neighbourhoods(plugins: pd.DatetimeIndex, at: pd.Timestamp, tz: str) -> list[np.ndarray]:
    """Masks of past plug-ins similar to ``at``, narrowest first (see the module notes)."""
    local = plugins.tz_convert(tz)
    here = at.tz_convert(tz)
    hours = local.hour + local.minute / 60
    now_h = here.hour + here.minute / 60
    gap = np.abs(((hours - now_h) + 12) % 24 - 12)
    weekday = local.weekday.to_numpy()
    weekend = weekday >= 5
    near = np.asarray(gap <= WINDOW_H)
    return [
        near & (weekday == here.weekday()),
        near & (weekend == (here.weekday() >= 5)),
        np.asarray(gap <= 1.5 * WINDOW_H),
        np.ones(len(plugins), dtype=bool),
    ]


def _first_enough(levels: list[np.ndarray], keep: np.ndarray) -> np.ndarray | None:
    for mask in levels:
        if (mask & keep).sum() >= MIN_NEIGHBOURS:
            return mask & keep
    return None


def plug_in_from_shares(share: pd.Series) -> pd.Timestamp | None:
    """Start of the plugged run that reaches the end of ``share`` (per slot, the plugged share
    [0-1] on a fixed-step index; NaN: no reading): the first slot of the run moved by its
    unplugged share. ``None`` when the last slot is not plugged; the window's start when the
    whole window is."""
    s = share.to_numpy(float)
    plugged = _plugged(s)
    if len(s) < 2 or not plugged[-1]:
        return None
    off = np.flatnonzero(~plugged)
    index = pd.DatetimeIndex(share.index)
    if not off.size:
        return index[0]
    return _plug_in(index, index[1] - index[0], s, int(off[-1]) + 1)


def _plugged(share: np.ndarray) -> np.ndarray:
    """Slots with a reading in which a car was plugged in for some of the time."""
    return np.isfinite(share) & (np.nan_to_num(share) > 0)


def _plug_in(
    index: pd.DatetimeIndex, step: pd.Timedelta, share: np.ndarray, a: int
) -> pd.Timestamp:
    """The plug-in within slot ``a``, the first of a plugged run: its unplugged share later."""
    return index[a] + step * (1 - share[a])


def sessions_from_telemetry(connected: pd.Series, power_kw: pd.Series) -> pd.DataFrame:
    """Completed sessions from per-slot telemetry of one wallbox.

    Parameters
    ----------
    connected : pandas.Series
        Per slot on a fixed-step UTC index, the share of the slot a car was plugged in [0-1]
        (the mean of the box's ``connected`` readings); NaN where nothing was reported.
    power_kw : pandas.Series
        Mean charging power per slot on the same index [kW AC].

    Returns
    -------
    pandas.DataFrame
        ``plugin_utc``, ``plugout_utc`` (the slot boundary moved by the unplugged share of
        the first and last slot), ``energy_kwh`` [kWh AC]. Sessions cut by the start or the end
        of the data, or by a gap in it, are left out (their stay and energy are unknown).
    """
    index = pd.DatetimeIndex(connected.index)
    if len(index) < 2:
        return pd.DataFrame({c: [] for c in SESSION_COLUMNS})
    step = index[1] - index[0]
    share = connected.to_numpy(float)
    known, plugged = np.isfinite(share), _plugged(share)
    energy = np.nan_to_num(power_kw.reindex(index).to_numpy(float)) * (step / _HOUR)
    edges = np.diff(np.concatenate([[0], plugged.astype(int), [0]]))
    starts, ends = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)
    rows = []
    for a, b in zip(starts.tolist(), ends.tolist(), strict=True):
        cut = a == 0 or b == len(index) or not known[a - 1] or not known[b]
        if cut:
            continue
        plugin = _plug_in(index, step, share, a)
        plugout = index[b - 1] + step * share[b - 1]
        if b - a == 1:  # one slot: the share is the stay, centred on nothing better
            plugin, plugout = index[a], index[a] + step * share[a]
        rows.append((plugin, plugout, float(energy[a:b].sum())))
    return pd.DataFrame(rows, columns=list(SESSION_COLUMNS))


def session_slots(sessions: pd.DataFrame, index: pd.DatetimeIndex, power_kw: float) -> pd.DataFrame:
    """Per-slot telemetry of ``sessions`` charged at ``power_kw`` [kW] from plug-in until their
    energy is in: columns ``connected`` (share of the slot plugged in [0-1]) and ``power_kw``.

    The box's own logic (charge at full power from plug-in) as the history of a site before
    the service controlled it; the inverse of :func:`sessions_from_telemetry`.
    """
    step = index[1] - index[0]
    step_h = step / _HOUR
    connected = np.zeros(len(index))
    power = np.zeros(len(index))
    t0 = index.to_numpy("datetime64[ns]").astype(np.int64)
    t1 = t0 + step.value
    for a, b, kwh in sessions[list(SESSION_COLUMNS)].itertuples(index=False):
        on = np.clip((np.minimum(t1, b.value) - np.maximum(t0, a.value)) / step.value, 0, 1)
        connected += on
        full_kwh = np.cumsum(on * power_kw * step_h)
        delivered = np.minimum(full_kwh, kwh)
        power += np.diff(delivered, prepend=0.0) / step_h
    return pd.DataFrame({"connected": np.clip(connected, 0, 1), "power_kw": power}, index=index)


@dataclass(frozen=True)
class ChargeGoal:
    """What the controller charges a plugged-in car toward.

    Parameters
    ----------
    departure : pandas.Timestamp
        When the target is due (UTC): the learned departure, the owner's, or the configured one.
    target_kwh : float
        Energy wanted in the car then [kWh] (soft, with the target penalty).
    min_kwh : float or None
        The owner's minimum then [kWh]: hard where reachable.
    source : str
        ``configured``, ``learned``, ``owner`` or ``owner+learned``.
    milestones : tuple of Milestone
        Energy wanted in the car by earlier times [kWh] (soft).
    """

    departure: pd.Timestamp
    target_kwh: float
    min_kwh: float | None
    source: str
    milestones: tuple[Milestone, ...] = ()


@dataclass(frozen=True)
class CarState:
    """The car now: plug-in time, AC energy delivered since [kWh], energy assumed at plug-in
    [kWh], battery capacity [kWh] and the wallbox's efficiency (AC to battery) [-]."""

    plugged_at: pd.Timestamp
    delivered_kwh: float
    arrival_kwh: float
    capacity_kwh: float
    efficiency: float


def charge_goal(
    car: CarState,
    now: pd.Timestamp,
    configured: tuple[pd.Timestamp, float],
    owner: tuple[pd.Timestamp | None, float | None] | None,
    expected: Expectation | None,
) -> ChargeGoal:
    """Departure, target and minimum of the car at ``now``.

    Parameters
    ----------
    car : CarState
    configured : (pandas.Timestamp, float)
        The configured daily departure after ``now`` and its target [kWh in the car].
    owner : (pandas.Timestamp or None, float or None) or None
        The owner's next departure and target [kWh in the car] (weekly plan or one-off), if set.
    expected : Expectation or None
        The learned session (:meth:`SessionModel.expect`); ``None``: too little history.

    Returns
    -------
    ChargeGoal
        Without an owner plan, the learned departure and need (each falling back to the
        configured one where the history says nothing); with one, the sooner of the owner's
        and the learned departure, the larger of the two targets, and the owner's target as
        the hard minimum.
    """
    departure, target = configured
    source = "configured"
    steps: tuple[Milestone, ...] = ()
    if expected is not None and (expected.departure or expected.energy_kwh) is not None:
        source = "learned"
        if expected.departure is not None:
            departure = expected.departure
            steps = tuple(m._replace(energy_kwh=min(car.arrival_kwh + m.energy_kwh
                                                    * car.efficiency, car.capacity_kwh))
                          for m in expected.milestones)  # fmt: skip
        if expected.energy_kwh is not None:
            need = car.arrival_kwh + expected.energy_kwh * car.efficiency
            target = min(need, car.capacity_kwh)
    if owner is None or (owner[0] is None and owner[1] is None):
        return ChargeGoal(departure, target, None, source, steps)
    owner_departure, owner_target = owner
    if owner_departure is not None:
        learned = source == "learned" and expected is not None and expected.departure is not None
        departure = min(owner_departure, departure) if learned else owner_departure
    if owner_target is not None:
        target = max(target, owner_target) if source == "learned" else owner_target
    both = "owner+learned" if source == "learned" else "owner"
    steps = tuple(m for m in steps if pd.Timestamp(m.when) < departure)  # type: ignore[arg-type]
    return ChargeGoal(departure, target, owner_target, both, steps)


def history_samples(
    site_id: str, sessions: pd.DataFrame, index: pd.DatetimeIndex, power_kw: float
) -> list[Sample]:
    """Wallbox telemetry of ``sessions`` on the slots ``index`` as the box would have stored it
    (:func:`session_slots` at ``power_kw`` [kW]): one sample per slot where the plug state does
    not change within it, one per minute where it does (so the slot's mean plug state is its
    plugged share, as from a box polled every minute)."""
    slots = session_slots(sessions, index, power_kw)
    samples = []
    for ts, share, kw in slots[["connected", "power_kw"]].itertuples():
        if 0 < share < 1:
            plugged = round(share * 15)
            samples += [
                Sample(site_id, "wallbox", (ts + pd.Timedelta(minutes=k)).to_pydatetime(),
                       {"power_kw": float(kw), "connected": float(k < plugged)})
                for k in range(15)
            ]  # fmt: skip
        else:
            samples.append(
                Sample(site_id, "wallbox", ts.to_pydatetime(),
                       {"power_kw": float(kw), "connected": float(share >= 1)})
            )  # fmt: skip
    return samples


#: A car drawing less than this while offered at least the minimum current is full [kW].
FULL_BELOW_KW = 0.05
#: A session is met when it is short by less than this [kWh] (as in the backtest's score).
MET_TOLERANCE_KWH = 0.05


@dataclass(frozen=True)
class SlotSeries:
    """Per-slot series on one fixed-step UTC index for :func:`session_report`.

    Parameters
    ----------
    ev_kw, grid_kw : pandas.Series
        Mean wallbox and grid (+ import) power [kW].
    import_eur, export_eur : pandas.Series
        Import and feed-in price [EUR/kWh].
    offered_a : pandas.Series
        Charging current the service offered the car [A] (NaN: none sent).
    """

    ev_kw: pd.Series
    grid_kw: pd.Series
    import_eur: pd.Series
    export_eur: pd.Series
    offered_a: pd.Series


def session_report(sessions: pd.DataFrame, targets_kwh: np.ndarray, s: SlotSeries) -> pd.DataFrame:
    """Per session: target, delivered, average price paid, full, met.

    Parameters
    ----------
    sessions : pandas.DataFrame
        ``plugin_utc``, ``plugout_utc`` (from :func:`sessions_from_telemetry`).
    targets_kwh : numpy.ndarray
        AC energy each session was to get [kWh].
    s : SlotSeries

    Returns
    -------
    pandas.DataFrame
        ``plugin_utc``, ``plugout_utc``, ``target_kwh``, ``delivered_kwh`` [kWh AC],
        ``cost_eur``, ``avg_price_eur_per_kwh`` (energy from the grid at the import price, in
        slots that export at the feed-in price it forgoes; NaN without energy), ``full`` (the
        car stopped drawing while offered at least 6 A) and ``met`` (full, or short by less
        than :data:`MET_TOLERANCE_KWH`).
    """
    index = pd.DatetimeIndex(s.ev_kw.index)
    step_h = (index[1] - index[0]) / _HOUR if len(index) > 1 else 0.25
    energy = np.nan_to_num(s.ev_kw.to_numpy(float)) * step_h
    exporting = np.nan_to_num(s.grid_kw.to_numpy(float)) < 0
    price = np.where(exporting, s.export_eur.to_numpy(float), s.import_eur.to_numpy(float))
    # the controller sends a current every cycle: one older than an hour says nothing
    offered = s.offered_a.reindex(index).ffill(limit=4).to_numpy(float) >= 6.0
    idle = np.nan_to_num(s.ev_kw.to_numpy(float)) < FULL_BELOW_KW
    rows = []
    for k, (a, b) in enumerate(zip(sessions["plugin_utc"], sessions["plugout_utc"], strict=True)):
        inside = (index >= pd.Timestamp(a).floor("15min")) & (index < b)
        delivered = float(energy[inside].sum())
        cost = float((energy * price)[inside].sum())
        seen = np.cumsum(energy * inside) > 0.1
        full = bool((inside & seen & offered & idle).any())
        target = float(targets_kwh[k])
        average = cost / delivered if delivered > 1e-9 else float("nan")
        met = full or delivered >= target - MET_TOLERANCE_KWH
        rows.append((a, b, target, delivered, cost, average, full, met))
    columns = ["plugin_utc", "plugout_utc", "target_kwh", "delivered_kwh", "cost_eur",
               "avg_price_eur_per_kwh", "full", "met"]  # fmt: skip
    return pd.DataFrame(rows, columns=columns)
