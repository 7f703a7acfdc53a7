"""The box simulator: a pymodbus Modbus TCP server in front of :class:`HeartbeatBox`.

The datastore is pymodbus' ``SimDevice``/``SimData`` with an ``action`` callback that hands
every request to the box logic (validation, commit semantics, watchdog, rendering of the
read-only registers). ``SimDevice`` can express all of it: the action sees the request's
values before pymodbus stores them and may answer with an exception code.

What ``SimDevice`` cannot tell is *which connection* sent a request, which the single-writer
lock needs. :class:`_BoxServer` therefore uses a request handler that stores its own identity in
a context variable while it serves a request; the action reads it.

Use :func:`start_box_simulator` / :meth:`BoxSimulator.stop` in tests (a fixture in any
package), or ``hbopt box-sim --port N`` from the shell.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pandas as pd
from pymodbus.constants import ExcCodes
from pymodbus.server import ModbusTcpServer
from pymodbus.server.requesthandler import ServerRequestHandler
from pymodbus.simulator import DataType, SimData, SimDevice

from adapters.clock import Clock, SimClock
from adapters.heartbeat import esi_map as m
from adapters.heartbeat.backlog import BacklogSink
from simulation.box import REG_BASE, BoxConfig, HeartbeatBox
from simulation.twin import SiteParams, Twin

_PEER: contextvars.ContextVar[object] = contextvars.ContextVar("esi_peer", default=None)


class _PeerHandler(ServerRequestHandler):
    async def handle_request(self) -> None:
        token = _PEER.set(self)
        try:
            await super().handle_request()
        finally:
            _PEER.reset(token)


class _BoxServer(ModbusTcpServer):
    def callback_new_connection(self) -> ServerRequestHandler:
        return _PeerHandler(self, self.trace_packet, self.trace_pdu, self.trace_connect)


def sim_device(box: HeartbeatBox, device_id: int = 1) -> SimDevice:
    """A pymodbus ``SimDevice`` exposing the whole ESI v1 map, driven by ``box``."""
    data = []
    for block in m.BLOCKS:
        covered: set[int] = set()
        for f in block.fields:
            data.append(_simdata(f.addr, f.kind.width, readonly=not f.writable))
            covered.update(range(f.addr, f.end))
        for a in range(block.base, block.base + block.length):
            if a not in covered:  # reserved registers read as 0 and are not writable
                data.append(_simdata(a, 1, readonly=True))
    data.append(_simdata(m.SLOT_BASE, m.MAX_SLOTS * m.SLOT_REGS, readonly=False))
    data.sort(key=lambda d: d.address)

    async def action(  # noqa: PLR0917 - signature fixed by pymodbus
        fc: int,
        start: int,
        address: int,
        count: int,
        regs: list[int],
        values: list[int] | list[bool] | None,
    ) -> ExcCodes | None:
        if start != REG_BASE:
            raise RuntimeError(f"register image starts at {start}, expected {REG_BASE}")
        vals = None if values is None else [int(v) for v in values]
        code = box.on_request(address, vals, regs, _PEER.get())
        return None if code is None else ExcCodes(code)

    return SimDevice(id=device_id, simdata=data, action=action)


def _simdata(addr: int, count: int, readonly: bool) -> SimData:
    return SimData(addr, count=count, values=0, datatype=DataType.REGISTERS, readonly=readonly)


@dataclass
class BoxSimulator:
    """A running box simulator: ``host``/``port`` to connect to, ``box`` to inspect/drive."""

    box: HeartbeatBox
    host: str
    port: int
    device_id: int
    server: Any = None
    ticker: asyncio.Task[None] | None = None

    async def stop(self) -> None:
        """Stop serving (connections are closed); the box state stays in ``box``."""
        if self.ticker is not None:
            self.ticker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.ticker
            self.ticker = None
        if self.server is not None:
            await self.server.shutdown()
            self.server = None

    async def restart(self) -> None:
        """Simulate a box reboot: stop, reset volatile state, serve again on the same port."""
        await self.stop()
        self.box.reboot()
        await self._serve(self.port)

    async def _serve(self, port: int, tick_interval_s: float | None = None) -> None:
        server = _BoxServer(sim_device(self.box, self.device_id), address=(self.host, port))
        await server.serve_forever(background=True)
        self.server = server
        self.port = server.transport.sockets[0].getsockname()[1]  # type: ignore[attr-defined]
        if tick_interval_s:
            self.ticker = asyncio.create_task(self._tick_forever(tick_interval_s))

    async def _tick_forever(self, interval_s: float) -> None:
        """Keep the twin and watchdog moving without requests; upload the backlog."""
        while True:
            self.box.tick()
            await asyncio.to_thread(self.box.upload_backlog)
            await asyncio.sleep(interval_s)


async def start_box_simulator(
    box: HeartbeatBox,
    host: str = "127.0.0.1",
    port: int = 0,
    device_id: int = 1,
    tick_interval_s: float | None = None,
) -> BoxSimulator:
    """Serve ``box`` on ``host:port`` (0 = ephemeral) inside the running event loop.

    ``tick_interval_s`` starts a background task that advances the box every so many real
    seconds (for real-time or scaled clocks); tests with a :class:`~adapters.clock.SimClock`
    leave it None and call ``box.tick()`` themselves (every request ticks, too).
    """
    sim = BoxSimulator(box, host, port, device_id)
    await sim._serve(port, tick_interval_s)
    return sim


@contextlib.asynccontextmanager
async def running_box(
    start: str | pd.Timestamp,
    *,
    days: int = 2,
    clock: Clock | None = None,
    site: SiteParams | None = None,
    load: str = "bdew",
    config: BoxConfig | None = None,
    sink: BacklogSink | None = None,
) -> AsyncIterator[BoxSimulator]:
    """A box with a twin from the bundled data, served on 127.0.0.1 (ephemeral port).

    For tests of any package::

        async with running_box("2024-06-10T00:00Z") as sim:
            client = HeartbeatClient("127.0.0.1", sim.port, clock=sim.box.clock)
            sim.box.clock.advance(900)  # a SimClock at ``start`` unless ``clock`` is given

    Profiles cover ``days`` days from ``start``'s UTC midnight (and repeat after).
    """
    t0 = pd.Timestamp(start)
    if t0.tzinfo is None:
        raise ValueError("start: naive timestamp; use tz-aware UTC")
    twin = Twin.from_bundled_data(t0.tz_convert("UTC").floor("D"), days, site, load)
    box = HeartbeatBox(twin, clock or SimClock(t0), config, sink)
    sim = await start_box_simulator(box)
    try:
        yield sim
    finally:
        await sim.stop()
