"""Injectable clocks, so the box simulator and its twin can run a day in seconds.

The box's watchdog, schedule execution and physical twin all read the same :class:`Clock`.
"""

from __future__ import annotations

import time
from typing import Protocol

import pandas as pd


class Clock(Protocol):
    """Anything with ``now()`` returning UNIX seconds (UTC) as float."""

    def now(self) -> float:
        """Current time [UNIX s, UTC]."""
        ...


class SystemClock:
    """The wall clock."""

    def now(self) -> float:
        """Current wall-clock time [UNIX s]."""
        return time.time()


class SimClock:
    """A clock that only moves when told to (tests advance it)."""

    def __init__(self, start: float | str | pd.Timestamp) -> None:
        self._t = _to_unix(start)

    def now(self) -> float:
        """Simulated time [UNIX s]."""
        return self._t

    def advance(self, seconds: float) -> None:
        """Move forward by ``seconds`` [s] (>= 0)."""
        if seconds < 0:
            raise ValueError(f"seconds: clock cannot go back ({seconds})")
        self._t += seconds

    def set(self, t: float | str | pd.Timestamp) -> None:
        """Jump to ``t`` (not before the current time)."""
        self.advance(_to_unix(t) - self._t)


class ScaledClock:
    """Wall clock running ``speed`` times faster from ``start`` (for ``hbopt box-sim``)."""

    def __init__(self, start: float | str | pd.Timestamp, speed: float = 1.0) -> None:
        if speed <= 0:
            raise ValueError(f"speed: must be > 0, got {speed}")
        self._t0 = _to_unix(start)
        self._wall0 = time.monotonic()
        self.speed = speed

    def now(self) -> float:
        """Scaled time [UNIX s]."""
        return self._t0 + (time.monotonic() - self._wall0) * self.speed


def _to_unix(t: float | str | pd.Timestamp) -> float:
    if isinstance(t, int | float):
        return float(t)
    ts = pd.Timestamp(t)
    if ts.tzinfo is None:
        raise ValueError(f"clock start {t!r}: naive timestamp; give a UTC offset")
    return ts.timestamp()
