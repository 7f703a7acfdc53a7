"""EV sessions learned from a site's own telemetry: when the car comes, leaves, and what it takes.

The box reports per poll whether a car is plugged in (``wallbox.connected``) and the charging
power [kW]. :func:`sessions_from_telemetry` turns the per-slot means of both into completed
sessions (plug-in, plug-out, AC energy delivered); :class:`SessionModel` keeps them and answers,
for a car plugged in now, when it will *reliably* still be there and how much it will want:

* **departure**: an early quantile (:data:`DEPARTURE_QUANTILE`) of the time the similar past
  sessions stayed, among those that stayed at least as long as this car has already;
* **energy**: a high quantile (:data:`ENERGY_QUANTILE`) of the AC energy the similar past
  sessions took, among those that took more than this car has already had.

"Similar" is by weekday and time of day of the plug-in, widened step by step until at least
:data:`MIN_NEIGHBOURS` sessions qualify: the same weekday within :data:`WINDOW_H` hours of the
plug-in's time of day, then the same kind of day (Monday to Friday, or the weekend), then any
day within ``1.5 x WINDOW_H``, then every session. With fewer than :data:`MIN_SESSIONS`
completed sessions the model says nothing and the controller keeps its configured departure.

Energies are AC energy delivered by the wallbox [kWh] (what the box measures), so a session
that ended early because the car was full counts its real need; one cut short by its departure
counts less than it wanted, which the high quantile absorbs.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

#: Completed sessions needed before learned estimates replace the configured departure.
MIN_SESSIONS = 10
#: Similar sessions needed at one level of the neighbourhood before it is used.
MIN_NEIGHBOURS = 4
#: Quantile of the stay of similar sessions used as the departure (early: reliable) [-].
DEPARTURE_QUANTILE = 0.1
#: Quantile of the energy of similar sessions used as the need (high: enough) [-].
ENERGY_QUANTILE = 0.9
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
        Reliable departure (UTC); ``None`` when no similar session stayed this long.
    energy_kwh : float or None
        AC energy the session will want in total [kWh]; ``None`` when no similar session
        took more than the car has had.
    neighbours : int
        Similar sessions the departure was taken from.
    """

    departure: pd.Timestamp | None
    energy_kwh: float | None
    neighbours: int


@dataclass(frozen=True)
class SessionModel:
    """Completed sessions of one wallbox and the quantiles drawn from them.

    Parameters
    ----------
    sessions : pandas.DataFrame
        Columns ``plugin_utc``, ``plugout_utc`` (tz-aware UTC), ``energy_kwh`` [kWh AC].
    tz : str
        The site's time zone: weekdays and times of day are local.
    """

    sessions: pd.DataFrame
    tz: str = "Europe/Berlin"

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
        stay_h = ((s["plugout_utc"] - s["plugin_utc"]) / _HOUR).to_numpy(float)
        energy = s["energy_kwh"].to_numpy(float)
        elapsed_h = max((now - plugged_at) / _HOUR, 0.0)
        levels = neighbourhoods(pd.DatetimeIndex(s["plugin_utc"]), plugged_at, self.tz)
        stays = _first_enough(levels, stay_h > elapsed_h)
        departure = None
        if stays is not None:
            hours = float(np.quantile(stay_h[stays], DEPARTURE_QUANTILE))
            departure = plugged_at + pd.Timedelta(hours=hours)
        needs = _first_enough(levels, energy > delivered_kwh + 1e-6)
        need = None if needs is None else float(np.quantile(energy[needs], ENERGY_QUANTILE))
        return Expectation(departure, need, 0 if stays is None else int(stays.sum()))


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
    known = np.isfinite(share)
    plugged = known & (np.nan_to_num(share) > 0)
    energy = np.nan_to_num(power_kw.reindex(index).to_numpy(float)) * (step / _HOUR)
    edges = np.diff(np.concatenate([[0], plugged.astype(int), [0]]))
    starts, ends = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)
    rows = []
    for a, b in zip(starts, ends, strict=True):
        cut = a == 0 or b == len(index) or not known[a - 1] or not known[b]
        if cut:
            continue
        plugin = index[a] + step * (1 - share[a])
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
    t0, t1 = index.asi8, (index + step).asi8
    for a, b, kwh in sessions[list(SESSION_COLUMNS)].itertuples(index=False):
        on = np.clip((np.minimum(t1, b.value) - np.maximum(t0, a.value)) / step.value, 0, 1)
        connected += on
        full_kwh = np.cumsum(on * power_kw * step_h)
        delivered = np.minimum(full_kwh, kwh)
        power += np.diff(delivered, prepend=0.0) / step_h
    return pd.DataFrame({"connected": np.clip(connected, 0, 1), "power_kw": power}, index=index)
