"""Scale-out and fail-over: M ``hbopt control`` processes sharing N simulated boxes through site
leases on PostgreSQL; one is killed with SIGKILL.

What runs is the product (:mod:`hbopt.failover`): real control processes on one PostgreSQL
(leases), one SQLite account database and telemetry store; the boxes are real pymodbus servers
on 127.0.0.1 in this process (``--sites`` of them). The clock is accelerated ``--speed`` times
for processes and boxes alike, so every control timing keeps its proportion: the box watchdog
(60 s), the lease (30 s), the renew tick (5 s), the heartbeat (20 s) and the 15-minute window
are simulated seconds; at x6 a lease is 5 real seconds and a window 150.

It reports the sites per process before and after the kill, the cycles per box per 15-minute
window (schedules the boxes committed, before the kill), the take-over time (kill to the last
lease re-taken, and kill to each of the dead process's boxes written by its new owner) and the
boxes that went to FALLBACK (the watchdog expired) or were written by two processes at once.
Each watchdog expiry, and the longest heartbeat gap before the kill, is printed with its phase
(start-up, held, rebalance release or take, take-over) and the site's lease through the gap
(:class:`hbopt.failover.BoxGap`). ``--join-late 1`` starts the last process only once the
others run every box (a process joining a running fleet).

PostgreSQL: ``--url postgresql+psycopg://...`` (an empty database), else a throw-away cluster
started like the test suite's (``tests/pg_server.py``; needs ``scripts/install-test-servers``).

Run from the repository root: ``nice .venv/bin/python -m benchmarks.scale_out [--sites 300]
[--processes 3] [--speed 6] [--windows 1] [--watchdog 60] [--lease 30] [--renew 5]
[--join-late 0]``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import tempfile
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import psutil

from hbopt.failover import BoxGap, FailoverResult, FleetTiming, run_failover


@contextlib.contextmanager
def database(url: str | None) -> Iterator[str]:
    """``url``, or a fresh database on a throw-away PostgreSQL cluster."""
    if url:
        yield url
        return
    from tests.pg_server import running_postgres

    with running_postgres() as server:
        name = server.create_database()
        yield server.url(name)


def print_table(r: FailoverResult, args: argparse.Namespace, timing: FleetTiming) -> None:
    speed = timing.speed
    print(f"\nsites per process: {r.sites_before} -> after killing {r.victim}: {r.sites_after}")
    print(f"start-up (first process, others join, all boxes remote) {r.start_up_s:.0f} s real")
    cpu = ", ".join(f"{k} {v:.0f} s" for k, v in r.cpu_after_kill_s.items())
    print(f"CPU of the survivors in the {r.after_kill_s:.0f} s after the kill: {cpu}")
    box = np.array(r.box_takeover_s)
    per_box = r.cycles_per_window or 0.0
    spread = f"{_spread(r.sites_before)} / {_spread(r.sites_after)}"
    rows = [
        ("processes", f"{args.processes}"),
        ("sites (boxes)", f"{args.sites}"),
        ("sites per process before / after", spread),
        ("cycles per box per 15-min window", f"{per_box:.2f}"),
        ("cycles per 15-min window (fleet)", f"{per_box * args.sites:.0f}"),
        ("sites of the killed process", f"{r.victim_sites}"),
        ("take-over, leases (kill -> all re-taken)", _both(r.lease_takeover_s, speed)),
        ("take-over, boxes p50", _both(float(np.median(box)), speed)),
        ("take-over, boxes p90", _both(float(np.quantile(box, 0.9)), speed)),
        ("take-over, boxes max", _both(float(box.max()), speed)),
        ("boxes that went to FALLBACK after the kill", f"{r.fallback_boxes}"),
        ("... before it (start-up, rebalancing)", f"{r.fallback_boxes_before}"),
        ("longest heartbeat gap of a box before the kill", f"{r.max_gap_before_s:.1f} s simulated"),
        ("boxes written by two processes at once", f"{r.interleaved_boxes}"),
        ("writes refused by a box's lock (exc. 06)", f"{r.busy_rejections}"),
    ]  # fmt: skip
    width = max(len(k) for k, _ in rows)
    print(f"\n{'metric':<{width}}  value")
    print("-" * (width + 30))
    for key, value in rows:
        print(f"{key:<{width}}  {value}")


def print_timeline(r: FailoverResult, timing: FleetTiming) -> None:
    """Per box of the killed process, simulated seconds after the kill: min / p50 / p90 / max."""
    cols: dict[str, list[float | None]] = {
        "age of the box's last heartbeat at the kill": [t.beat_age_s for t in r.timeline],
        "its lease expired": [t.lease_expiry_s for t in r.timeline],
        "a survivor took the lease": [t.acquired_s for t in r.timeline],
        "the new owner's first write (lock claim)": [t.first_write_s for t in r.timeline],
        "the new owner's first heartbeat": [t.first_beat_s for t in r.timeline],
        f"watchdog left then ({timing.watchdog_s} s - age - beat)": [t.slack_s for t in r.timeline],
    }
    width = max(len(k) for k in cols)
    print(f"\nper box of the killed process [s simulated after the kill; / {timing.speed:g} real]")
    print(f"{'':<{width}}  {'min':>6} {'p50':>6} {'p90':>6} {'max':>6}  missing")
    for key, values in cols.items():
        seen = [v for v in values if v is not None]
        q = np.quantile(np.array(seen), [0, 0.5, 0.9, 1]) if seen else [np.nan] * 4
        cells = " ".join(f"{v:6.1f}" for v in q)
        print(f"{key:<{width}}  {cells}  {len(values) - len(seen)}")


def print_gaps(r: FailoverResult, most: int = 12) -> None:
    """Each watchdog expiry and the longest heartbeat gap before the kill: its phase, and the
    site's lease from the box's last heartbeat on."""
    if r.fallbacks:
        print(f"\nwatchdog expiries by phase: {dict(Counter(f.phase for f in r.fallbacks))}")
        print("per box [s simulated after its last heartbeat]")
        for gap in r.fallbacks[:most]:
            print(f"  {_gap_line(gap)}")
        if len(r.fallbacks) > most:
            print(f"  ... and {len(r.fallbacks) - most} more")
    if r.longest_gap is not None:
        print("\nthe longest heartbeat gap before the kill [s simulated after the beat before]")
        print(f"  {_gap_line(r.longest_gap)}")


def _gap_line(gap: BoxGap) -> str:
    steps = ", ".join(f"{what} {t:+.1f}" for what, t in gap.events)
    return f"{gap.site_id} {gap.phase}, {gap.length_s:.1f} s from {gap.at_s:.0f} s: {steps}"


def _both(real_s: float, speed: float) -> str:
    return f"{real_s * speed:.1f} s simulated ({real_s:.2f} s real)"


def _spread(counts: dict[str, int]) -> str:
    return "/".join(str(v) for v in counts.values())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sites", type=int, default=300)
    parser.add_argument("--processes", type=int, default=3)
    parser.add_argument("--speed", type=float, default=6.0, help="clock speed-up")
    parser.add_argument("--windows", type=float, default=1.0, help="15-min windows measured")
    parser.add_argument("--watchdog", type=int, default=60, help="box watchdog [s simulated]")
    parser.add_argument("--lease", type=float, default=30.0, help="lease period [s simulated]")
    parser.add_argument("--renew", type=float, default=5.0, help="renew tick [s simulated]")
    parser.add_argument(
        "--join-late", type=int, default=0, help="processes started once the others settled"
    )
    parser.add_argument("--url", default=None, help="PostgreSQL URL (default: a temporary one)")
    args = parser.parse_args()
    # a controller handing a box over closes its connection, at times with a reply in flight:
    # the server logs that as an error with a frame dump
    logging.getLogger("pymodbus").setLevel(logging.CRITICAL)
    timing = FleetTiming(args.speed, args.watchdog, args.lease, args.renew)
    print(
        f"{args.processes} control processes, {args.sites} boxes, clock x{args.speed:g}: "
        f"watchdog {args.watchdog} s, lease {args.lease:g} s, renew {args.renew:g} s simulated "
        f"({timing.real(args.watchdog):.1f}/{timing.real(args.lease):.1f}/"
        f"{timing.real(args.renew):.2f} s real); {psutil.cpu_count()} cores, load average "
        f"{psutil.getloadavg()[0]:.1f} at start (shared with other jobs)",
        flush=True,
    )
    with database(args.url) as url, tempfile.TemporaryDirectory(prefix="hbopt-scale-") as tmp:
        result = asyncio.run(
            run_failover(
                Path(tmp),
                url,
                args.sites,
                args.processes,
                timing,
                measure_windows=args.windows,
                join_late=args.join_late,
            )
        )
    print_table(result, args, timing)
    print_timeline(result, timing)
    print_gaps(result)
    for name, text in result.logs.items():  # the survivors' own account of the take-over
        for line in text.splitlines():
            if "took" in line:
                print(f"{name}: {line}")
    print(f"load average at the end {psutil.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
