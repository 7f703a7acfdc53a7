"""The service's control loop under load: N paired sites in one process, every site planned
every 15 minutes, on the local process pool and on a 2-worker Dask cluster.

What runs is the service's own path (:class:`hbopt.service.ControlLoop`): the account
database with N sites (box paired, equipment entered, a Modbus address recorded), the
supervisor starting one :class:`~scheduler.controller.SiteController` per site, solves on the
pool, plans and telemetry in SQLite. Only the boxes are in-process
(:class:`simulation.box_inprocess.InProcessClient` on a twin per site), so the network is not
measured. The clock is accelerated ``--speed`` times; the watchdog and the box poll period are
scaled by the same factor, so the box I/O per real second is that of a live fleet (heartbeat
every 20 s, a read every 60 s per site). Timer cycles start up to ``HBOPT_CYCLE_LEAD_S``
(``--lead`` real seconds, at most 600 s simulated) before their slot, spread by site, and
apply the plan when the slot begins; the cycle
latency is the wall time from a cycle's start to its setpoints written and plan stored,
queueing for the pool included, the wait for the slot left out.

The second table is how the event loop kept up: its lag (a task that sleeps 0.1 s real and
measures how late it wakes; median, p99 and max after start-up, and the max during start-up),
timer cycles that applied their plan more than a minute (simulated) after their slot began,
the longest heartbeat gap of any box (real s), lease renewals that came more than half a renew
period late, leases found expired while still held, and boxes whose watchdog expired with
live setpoints (FALLBACK: with one process every such expiry is a ``held`` one). The leases run
on the account SQLite file as in a single-process service; watchdog, lease and renew period are
``--watchdog`` real seconds (60), half and a twelfth of it, all scaled by the clock speed.
``--stress K`` runs K busy Python processes beside it (load on a shared machine).

Run from the repository root (as a module: ``benchmarks/api.py`` would shadow the ``api``
package): ``nice .venv/bin/python -m benchmarks.service [--sites 1000] [--windows 2]
[--speed 7.5] [--lead 80] [--watchdog 60] [--stress 0] [--backends process dask]``. Target:
1,000 sites, each planned once per 15-minute window, p99 cycle latency < 60 s, on 2 cores.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import multiprocessing
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd
import psutil

from api.accounts_store import AccountStore, EquipmentDoc
from api.settings import Settings
from hbopt.service import ControlLoop, ControlSettings
from scheduler.clock import ScaledRealClock
from scheduler.links import BoxLink
from scheduler.runtime import SiteSpec
from scheduler.site_model import SiteEquipment
from simulation.box import BoxConfig, HeartbeatBox
from simulation.box_inprocess import InProcessClient
from simulation.twin import SiteParams, Twin, bundled_profiles

START = pd.Timestamp("2024-06-12T08:00Z")
SLOT_S = 900.0
#: Period of the loop-lag probe [s, real].
LAG_PROBE_S = 0.1
#: The busy processes of ``--stress`` (not counted as the service's CPU or memory).
_STRESS_PIDS: set[int] = set()
#: A timer cycle applying its plan this long after its slot began is late [s, simulated].
LATE_S = 60.0


def fleet_database(path: Path, n: int) -> list[str]:
    """N sites of one owner, each with a paired box, the typical home and a box address."""
    accounts = AccountStore(path)
    now = datetime.now(UTC)
    user = accounts.create_user("fleet@example.org", "x", "customer", now, confirmed=True)
    equipment = SiteEquipment().model_dump_json()
    ids = []
    for i in range(n):
        site = accounts.create_site(user.id, f"home {i}", "Europe/Berlin", "default", now)
        serial = f"SN-{i:06d}"
        accounts.register_starter_code(serial, "x", now)
        accounts.pair_box(serial, site.id, f"token-{i}", now)
        accounts.set_equipment(EquipmentDoc(site.id, equipment, now, user.id))
        accounts.set_box_link(serial, "in-process", i + 1, 1, now)
        ids.append(site.id)
    accounts.close()
    return ids


async def run_backend(args: argparse.Namespace, backend: str, tmp: Path) -> dict[str, float]:
    site_ids = fleet_database(tmp / "accounts.sqlite3", args.sites)
    # start a little before a boundary; the windows measured are the ones after start-up
    clock = ScaledRealClock((START - pd.Timedelta(minutes=1)).timestamp(), args.speed)
    profiles = bundled_profiles(START.floor("D"), 2, SiteParams())
    boxes = {
        sid: HeartbeatBox(
            Twin(SiteParams(), profiles),
            clock,
            BoxConfig(sid, watchdog_timeout_s=int(args.watchdog * args.speed)),
        )
        for sid in site_ids
    }

    def links(spec: SiteSpec, _clock: object) -> BoxLink:
        return InProcessClient(boxes[spec.site_id], controller_id=1)

    settings = Settings(
        database_path=tmp / "accounts.sqlite3",
        telemetry_path=tmp / "telemetry.sqlite3",
        log_requests=False,
        input_jobs=False,  # bundled inputs: loopback only
    )
    control = ControlSettings(
        solver_backend=backend,  # type: ignore[arg-type]
        solver_workers=2,
        watchdog_timeout_s=min(3600, int(args.watchdog * args.speed)),
        poll_s=60 * args.speed,
        cycle_lead_s=min(600.0, args.lead * args.speed),
        lease_ttl_s=args.watchdog / 2 * args.speed,
        lease_renew_s=args.watchdog / 12 * args.speed,
    )
    process = psutil.Process()
    rss0 = process.memory_info().rss
    loop = ControlLoop(settings, control, clock, links=links)
    task = asyncio.create_task(loop.run())
    lags: list[tuple[float, float]] = []
    probe = asyncio.create_task(_probe_lag(lags))
    t0 = time.perf_counter()
    # start-up: every site started and through its first cycle
    while True:
        await asyncio.sleep(1.0)
        sup = loop.supervisor
        running = {} if sup is None else sup.running
        if len(running) == args.sites and all(c.reports for c in running.values()):
            break
    startup_s = time.perf_counter() - t0
    t_steady = time.perf_counter()
    first = (np.floor(clock.now() / SLOT_S) + 1) * SLOT_S
    end = first + args.windows * SLOT_S
    while clock.now() < first - SLOT_S / 3:  # the first timer cycles start up to 600 s early
        await asyncio.sleep(0.2)
    cpu0 = _cpu_s(process)
    while clock.now() < end - SLOT_S / 3:
        await asyncio.sleep(0.2)
    cpu = _cpu_s(process) - cpu0  # the CPU the measured windows' cycles (and I/O) took
    while clock.now() < end + 0.5 * SLOT_S:  # half a window for the last cycles to finish
        await asyncio.sleep(1.0)
    rss = process.memory_info().rss
    workers = sum(c.memory_info().rss for c in _children(process))
    assert loop.supervisor is not None
    reports = [r for c in loop.supervisor.running.values() for r in c.reports]
    leases = loop.supervisor.lease_stats
    probe.cancel()
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    timed = [r for r in reports if r.slot is not None and first <= r.slot.timestamp() < end]
    beats = [
        np.diff([t for t in b.beat_times if first - SLOT_S / 3 <= t < end]) for b in boxes.values()
    ]
    steady = np.array([lag for t, lag in lags if t >= t_steady] or [np.nan]) * 1e3
    late = [
        r for r in timed
        if r.ok and "timer" in r.reasons and r.slot is not None
        and r.time.timestamp() + r.cycle_ms / 1e3 * args.speed - r.slot.timestamp() > LATE_S
    ]  # fmt: skip
    ok = [r for r in timed if r.ok]
    ms = np.array([r.cycle_ms for r in ok]) if ok else np.array([np.nan])
    return {
        "sites": args.sites,
        "windows": args.windows,
        "cycles_per_window": len(ok) / args.windows,
        "failed": len(timed) - len(ok),
        "p50_s": float(np.quantile(ms, 0.5)) / 1e3,
        "p90_s": float(np.quantile(ms, 0.9)) / 1e3,
        "p99_s": float(np.quantile(ms, 0.99)) / 1e3,
        "max_s": float(ms.max()) / 1e3,
        "startup_s": startup_s,
        "mib_per_site": (rss - rss0) / args.sites / 2**20,
        "worker_mib": workers / 2**20,
        "cpu_ms_per_cycle": cpu / max(len(ok), 1) * 1e3,
        "lag_p50_ms": float(np.median(steady)),
        "lag_p99_ms": float(np.quantile(steady, 0.99)),
        "lag_max_ms": float(steady.max()),
        "startup_lag_max_ms": max((lag for t, lag in lags if t < t_steady), default=0.0) * 1e3,
        "late_cycles": len(late),
        "beat_gap_max_s": max((float(g.max()) for g in beats if g.size), default=np.nan)
        / args.speed,
        "renew_late_max_s": leases.max_late_s / args.speed,
        "late_renewals": leases.late_ticks,
        "renewals": leases.ticks,
        "expired_held": leases.expired_held,
        "fallbacks": sum(b.fallback_entries for b in boxes.values()),
    }


async def _probe_lag(lags: list[tuple[float, float]]) -> None:
    """Sleep :data:`LAG_PROBE_S` over and over; keep (wall time, how late the wake-up was)."""
    while True:
        t = time.perf_counter()
        await asyncio.sleep(LAG_PROBE_S)
        now = time.perf_counter()
        lags.append((now, now - t - LAG_PROBE_S))


def _children(process: psutil.Process) -> list[psutil.Process]:
    return [c for c in process.children(recursive=True) if c.pid not in _STRESS_PIDS]


def _busy() -> None:
    while True:
        pass


@contextlib.contextmanager
def _stress(k: int) -> Iterator[None]:
    """K busy Python processes for the duration (the load of other jobs on a shared host)."""
    procs = [multiprocessing.Process(target=_busy, daemon=True) for _ in range(k)]
    for proc in procs:
        proc.start()
        assert proc.pid is not None
        _STRESS_PIDS.add(proc.pid)
    try:
        yield
    finally:
        for proc in procs:
            proc.terminate()
            proc.join()


def _cpu_s(process: psutil.Process) -> float:
    """CPU seconds of the process and its children (pool or Dask workers) so far."""
    total = sum(process.cpu_times()[:2])
    for child in _children(process):
        with contextlib.suppress(psutil.Error):
            total += sum(child.cpu_times()[:2])
    return total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sites", type=int, default=1000)
    parser.add_argument("--windows", type=int, default=2)
    parser.add_argument("--speed", type=float, default=7.5, help="clock speed-up")
    parser.add_argument("--backends", nargs="+", default=["process", "dask"])
    parser.add_argument(
        "--lead", type=float, default=80.0, help="cycle lead spread, real seconds (default 80)"
    )
    parser.add_argument("--watchdog", type=float, default=60.0, help="box watchdog, real s")
    parser.add_argument("--stress", type=int, default=0, help="busy processes beside the run")
    args = parser.parse_args()
    cores = psutil.cpu_count()
    load = psutil.getloadavg()[0]
    print(
        f"{args.sites} sites, {args.windows} windows of 15 min at x{args.speed:g}, {cores} cores "
        f"(load average {load:.1f} at start: the CPU is shared with other jobs)"
    )
    head = (
        f"{'backend':8} {'sites':>6} {'cycles/window':>13} {'failed':>6} {'p50 s':>6} "
        f"{'p90 s':>6} {'p99 s':>6} {'max s':>6} {'start-up s':>10} {'MiB/site':>8} "
        f"{'workers MiB':>11} {'CPU ms/cycle':>12} {'sites/2 cores':>13}"
    )
    print(head)
    print("-" * len(head))
    results = []
    for backend in args.backends:
        with tempfile.TemporaryDirectory(prefix="hbopt-bench-") as tmp, _stress(args.stress):
            r = asyncio.run(run_backend(args, backend, Path(tmp)))
        results.append((backend, r))
        print(
            f"{backend:8} {r['sites']:>6.0f} {r['cycles_per_window']:>13.0f} {r['failed']:>6.0f} "
            f"{r['p50_s']:>6.1f} {r['p90_s']:>6.1f} {r['p99_s']:>6.1f} {r['max_s']:>6.1f} "
            f"{r['startup_s']:>10.0f} {r['mib_per_site']:>8.2f} {r['worker_mib']:>11.0f} "
            f"{r['cpu_ms_per_cycle']:>12.0f} {2 * SLOT_S / (r['cpu_ms_per_cycle'] / 1e3):>13.0f}",
            flush=True,
        )
    _print_loop_table(results, args.stress)


def _print_loop_table(results: list[tuple[str, dict[str, float]]], stress: int) -> None:
    load = psutil.getloadavg()[0]
    print(
        f"\nthe event loop ({stress} busy processes beside it; load average {load:.1f} at the end)"
    )
    head = (
        f"{'backend':8} {'lag p50 ms':>10} {'p99 ms':>7} {'max ms':>7} {'start-up max ms':>15} "
        f"{'late cycles':>11} {'beat gap max s':>14} {'renewal late max s':>18} "
        f"{'late renewals':>13} {'expired held':>12} {'FALLBACK':>8}"
    )
    print(head)
    print("-" * len(head))
    for backend, r in results:
        print(
            f"{backend:8} {r['lag_p50_ms']:>10.1f} {r['lag_p99_ms']:>7.0f} {r['lag_max_ms']:>7.0f} "
            f"{r['startup_lag_max_ms']:>15.0f} {r['late_cycles']:>11.0f} "
            f"{r['beat_gap_max_s']:>14.1f} {r['renew_late_max_s']:>18.2f} "
            f"{r['late_renewals']:>6.0f}/{r['renewals']:<6.0f} {r['expired_held']:>12.0f} "
            f"{r['fallbacks']:>8.0f}",
            flush=True,
        )


if __name__ == "__main__":
    main()
