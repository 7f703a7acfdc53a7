"""Clocks the control loop sleeps on: real time, or simulated time advanced by a driver.

The controller's tasks (cycle loop, heartbeat keeper, event watcher, price refresher) never call
``asyncio.sleep`` for time that is *modelled*: they call :meth:`LoopClock.sleep_until` with a
UNIX time and an optional :class:`Wakeup` that events set. With :class:`RealClock` this is a
timer on the event loop. With :class:`SteppedClock` time only moves when a driver (backtest,
demo, tests) calls :meth:`SteppedClock.advance_to`; that wakes every sleeper that is due and
returns only when each task spawned on the clock is asleep again or finished. A solve running
in a worker process therefore takes no simulated time, and a simulated day costs what its
solves and Modbus round trips cost, not 24 hours.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Coroutine
from dataclasses import dataclass, field
from typing import Any, Protocol

from adapters.clock import SimClock


class Wakeup:
    """A flag an event sets to wake a sleeping task early (EV plugged in, new prices...)."""

    def __init__(self) -> None:
        self.pending = False
        self.future: asyncio.Future[None] | None = None


class LoopClock(Protocol):
    """Time source and sleeper of the control loop (UNIX seconds, UTC)."""

    def now(self) -> float:
        """Current time [UNIX s]."""
        ...

    async def sleep_until(self, t: float, wake: Wakeup | None = None) -> None:
        """Return at time ``t`` [UNIX s] or as soon as ``wake`` is set, whichever is first."""
        ...

    def wake(self, wake: Wakeup) -> None:
        """Set ``wake`` (from inside the event loop)."""
        ...

    def spawn(self, coro: Coroutine[Any, Any, None], name: str) -> asyncio.Task[None]:
        """Start a task whose sleeping the clock tracks."""
        ...


class RealClock:
    """The wall clock: sleeping is an event-loop timer."""

    def now(self) -> float:
        """Wall-clock time [UNIX s]."""
        return time.time()

    async def sleep_until(self, t: float, wake: Wakeup | None = None) -> None:
        """Sleep until ``t`` [UNIX s] or until ``wake`` is set."""
        if wake is not None and wake.pending:
            wake.pending = False
            return
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[None] = loop.create_future()
        if wake is not None:
            wake.future = fut
        handle = loop.call_later(max(t - self.now(), 0.0), _resolve, fut)
        try:
            await fut
        finally:
            handle.cancel()
            if wake is not None:
                wake.future, wake.pending = None, False

    def wake(self, wake: Wakeup) -> None:
        """Set ``wake``; a task sleeping on it returns."""
        wake.pending = True
        if wake.future is not None:
            _resolve(wake.future)

    def spawn(self, coro: Coroutine[Any, Any, None], name: str) -> asyncio.Task[None]:
        """An ordinary task."""
        return asyncio.get_running_loop().create_task(coro, name=name)


class ScaledRealClock(RealClock):
    """Wall time running ``speed`` times faster from ``start`` (accelerated demos and tests).

    Simulated time is ``start + (time.time() - anchor) * speed``: two processes given the same
    ``start``, ``anchor`` and ``speed`` (a service and the box simulators it controls) agree on
    the time without talking to each other. Sleeping is an event-loop timer of the scaled-down
    real duration, so solves and round trips cost real time, as they would live.

    Parameters
    ----------
    start : float
        Simulated time at ``anchor`` [UNIX s].
    speed : float
        Simulated seconds per real second (> 0).
    anchor : float, optional
        Wall-clock time at which the simulated time is ``start`` [UNIX s]; default: now.
    """

    def __init__(self, start: float, speed: float, anchor: float | None = None) -> None:
        if not speed > 0:
            raise ValueError(f"speed: must be > 0, got {speed}")
        self.start, self.speed = float(start), float(speed)
        self.anchor = time.time() if anchor is None else float(anchor)

    def now(self) -> float:
        """Simulated time [UNIX s]."""
        return self.start + (time.time() - self.anchor) * self.speed

    async def sleep_until(self, t: float, wake: Wakeup | None = None) -> None:
        """Sleep until simulated ``t`` [UNIX s] (``(t - now) / speed`` real seconds) or ``wake``."""
        if wake is not None and wake.pending:
            wake.pending = False
            return
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[None] = loop.create_future()
        if wake is not None:
            wake.future = fut
        handle = loop.call_later(max((t - self.now()) / self.speed, 0.0), _resolve, fut)
        try:
            await fut
        finally:
            handle.cancel()
            if wake is not None:
                wake.future, wake.pending = None, False


@dataclass
class _Sleeper:
    t: float
    future: asyncio.Future[None]
    task: asyncio.Task[Any] | None
    wake: Wakeup | None = None


@dataclass
class SteppedClock:
    """Simulated time that a driver advances; shares its :class:`SimClock` with the box.

    ``advance_to(t)`` moves the time to the earliest due sleeper (or ``t``), wakes it, waits
    until every spawned task sleeps again, and repeats until ``t``.
    """

    sim: SimClock
    _sleepers: list[_Sleeper] = field(default_factory=list)
    _tasks: set[asyncio.Task[None]] = field(default_factory=set)

    def now(self) -> float:
        """Simulated time [UNIX s]."""
        return self.sim.now()

    async def sleep_until(self, t: float, wake: Wakeup | None = None) -> None:
        """Sleep until the driver reaches ``t`` [UNIX s] or ``wake`` is set."""
        if wake is not None and wake.pending:
            wake.pending = False
            return
        if t <= self.now():
            await asyncio.sleep(0)
            return
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        entry = _Sleeper(t, fut, asyncio.current_task(), wake)
        self._sleepers.append(entry)
        try:
            await fut
        finally:
            if entry in self._sleepers:
                self._sleepers.remove(entry)
            if wake is not None:
                wake.pending = False

    def wake(self, wake: Wakeup) -> None:
        """Set ``wake``; a task sleeping on it becomes runnable at once."""
        wake.pending = True
        for entry in list(self._sleepers):
            if entry.wake is wake:
                self._sleepers.remove(entry)
                _resolve(entry.future)

    def spawn(self, coro: Coroutine[Any, Any, None], name: str) -> asyncio.Task[None]:
        """Start a task the driver waits for."""
        task = asyncio.get_running_loop().create_task(coro, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    def next_deadline(self) -> float | None:
        """Earliest time a sleeper waits for [UNIX s], if any."""
        return min((s.t for s in self._sleepers), default=None)

    async def settle(self) -> None:
        """Return when every spawned task is asleep on this clock or done."""
        while True:
            await asyncio.sleep(0)
            sleeping = {s.task for s in self._sleepers}
            if all(t.done() or t in sleeping for t in self._tasks):
                # one more pass: a task woken by another may not have run yet
                await asyncio.sleep(0)
                sleeping = {s.task for s in self._sleepers}
                if all(t.done() or t in sleeping for t in self._tasks):
                    return
            await asyncio.sleep(0.0005)

    async def advance_to(self, t: float) -> None:
        """Move time to ``t`` [UNIX s], stopping at each sleeper's deadline on the way."""
        await self.settle()
        while True:
            due = self.next_deadline()
            step_to = t if due is None or due > t else due
            if step_to > self.now():
                self.sim.set(step_to)
            for entry in [s for s in self._sleepers if s.t <= self.now()]:
                self._sleepers.remove(entry)
                _resolve(entry.future)
            await self.settle()
            if self.now() >= t and (self.next_deadline() or t + 1) > t:
                return


def _resolve(fut: asyncio.Future[None]) -> None:
    if not fut.done():
        fut.set_result(None)
