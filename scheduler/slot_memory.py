"""What a feed said of each 15-minute slot over a rolling window, in two numpy arrays.

A controller remembers, per site, the outdoor temperature and the raw PV forecast of every slot
of the last 14 days (the heat-store fit and the PV bias). As a ``dict`` of
:class:`pandas.Timestamp` keys that took ~190 bytes per slot, ~0.5 MB per site for the two, and
a fleet process keeps a thousand sites; here it is 16 bytes per slot (~43 kB per site), and
reading it back is one vectorised lookup instead of a Series built from a dict every cycle.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

STEP = pd.Timedelta(minutes=15)


class SlotMemory:
    """The newest value said of each slot within ``window`` of the newest slot ever said.

    A ring of ``window / step + 1`` cells indexed by slot number (UTC epoch // step): a cell
    holds one slot's number and value, so a newer slot simply overwrites the one a window
    older. Slots older than the newest minus ``window`` are forgotten.

    Parameters
    ----------
    window : pandas.Timedelta
        How far back from the newest slot values are kept (inclusive).
    step : pandas.Timedelta
        The slot length; timestamps are floored to it.
    """

    def __init__(self, window: pd.Timedelta, step: pd.Timedelta = STEP) -> None:
        self._step_ns = int(step.value)
        self._span = int(window.value // self._step_ns)  # slots behind the newest still kept
        size = self._span + 1
        self._slot = np.full(size, np.iinfo(np.int64).min, dtype=np.int64)
        self._value = np.full(size, np.nan)
        self._newest: int | None = None

    def update(self, index: pd.DatetimeIndex, values: np.ndarray | pd.Series) -> None:
        """Remember ``values`` [any unit] of the slots of ``index`` (the newest word wins)."""
        if len(index) == 0:
            return
        slots = self._slots(index)
        vals = np.asarray(values, dtype=float)
        newest = int(slots.max())
        self._newest = newest if self._newest is None else max(self._newest, newest)
        keep = slots >= self._oldest()
        cells = slots[keep] % len(self._slot)
        self._slot[cells] = slots[keep]
        self._value[cells] = vals[keep]

    def on(self, index: pd.DatetimeIndex) -> pd.Series:
        """The remembered values on ``index``; NaN where nothing is remembered."""
        slots = self._slots(index)
        cells = slots % len(self._slot)
        hit = (self._slot[cells] == slots) & (slots >= self._oldest())
        return pd.Series(np.where(hit, self._value[cells], np.nan), index=index, dtype=float)

    def known(self) -> pd.Series:
        """Every remembered slot and its value, oldest first (a UTC index at slot starts)."""
        live = self._slot >= self._oldest()
        order = np.argsort(self._slot[live])
        slots = self._slot[live][order]
        index = pd.DatetimeIndex(pd.to_datetime(slots * self._step_ns, utc=True))
        return pd.Series(self._value[live][order], index=index, dtype=float)

    def __len__(self) -> int:
        return int(np.count_nonzero(self._slot >= self._oldest()))

    def _oldest(self) -> int:
        """The oldest slot number still remembered (beyond every slot before the first word)."""
        return np.iinfo(np.int64).max if self._newest is None else self._newest - self._span

    def _slots(self, index: pd.DatetimeIndex) -> np.ndarray:
        naive = pd.DatetimeIndex(index).tz_convert("UTC").tz_localize(None).as_unit("ns")
        ns = naive.to_numpy().view(np.int64)
        return np.floor_divide(ns, self._step_ns)
