"""Box link speed: Modbus round trips against the simulator and simulated-day cost.

Run: ``.venv/bin/python benchmarks/box_link.py`` (prints a table; small repetition counts).
"""

from __future__ import annotations

import asyncio
import time

import pandas as pd

from adapters.clock import SimClock
from adapters.heartbeat.client import HeartbeatClient
from adapters.heartbeat.esi_types import BatteryMode, Schedule, ScheduleSlot, Setpoints
from simulation.box import HeartbeatBox
from simulation.box_sim import start_box_simulator
from simulation.twin import Twin


async def main() -> None:
    t = time.perf_counter()
    twin = Twin.from_bundled_data("2024-06-10T00:00:00Z", days=2)
    rows = [("build twin from bundled data (2 days)", time.perf_counter() - t, 1)]
    clock = SimClock("2024-06-10T00:00:00Z")
    box = HeartbeatBox(twin, clock)
    sim = await start_box_simulator(box)
    async with HeartbeatClient("127.0.0.1", sim.port, clock=clock) as c:
        await c.discover()
        n = 200
        t = time.perf_counter()
        for _ in range(n):
            await c.read_measurements()
        rows.append(("read_measurements (FC3, 50 regs)", (time.perf_counter() - t) / n, n))
        t = time.perf_counter()
        for i in range(n):
            await c.write_setpoints(Setpoints(battery_kw=i % 5, battery_mode=BatteryMode.SETPOINT))
        rows.append(("write_setpoints + confirm", (time.perf_counter() - t) / n, n))
        sch = Schedule(1, pd.Timestamp("2024-06-10T00:00:00Z"), 900,
                       tuple(ScheduleSlot(battery_kw=1.0) for _ in range(192)))  # fmt: skip
        t = time.perf_counter()
        await c.upload_schedule(sch)
        rows.append(("upload_schedule (192 slots, 11 FC16)", time.perf_counter() - t, 1))
        t = time.perf_counter()
        clock.advance(86400)
        box.tick()
        rows.append(("simulate one day (1440 steps)", time.perf_counter() - t, 1))
    await sim.stop()
    print(f"{'operation':45s} {'seconds':>10s} {'n':>5s}")
    for name, sec, k in rows:
        print(f"{name:45s} {sec:10.4f} {k:5d}")


if __name__ == "__main__":
    asyncio.run(main())
