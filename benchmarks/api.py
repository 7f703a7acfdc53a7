"""Polling boxes against a local ``hbopt serve``: requests/s and latency percentiles.

N simulated Heartbeat boxes, each paired to its own site with a stored 24-hour plan, poll
``GET /v1/gateway/schedule`` with ``If-None-Match`` every ``interval`` seconds (jittered) and
post a telemetry batch (one sample per device) every ``telemetry_every``-th poll, for a bounded
``warmup + duration``. Steady-state rows count requests begun after the warm-up; a box's first
poll (cold: no ETag, plan not yet cached) is reported on its own. The server runs as its own
process (uvicorn, one worker, production settings: argon2 defaults, request log on) on a free
loopback port; each box is one httpx ``AsyncClient`` with its own keep-alive connection, all in
one asyncio loop in this process, so client and server compete for the same cores.

Usage::

    .venv/bin/python benchmarks/api.py --boxes 1000 --warmup 10 --duration 30 10 2
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import socket
import ssl
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from datetime import UTC, datetime
from pathlib import Path

import httpx
import numpy as np
import pandas as pd

from adapters.store import Plan, PlanSummary, StoreSettings, make_store
from api.accounts_sqlite import AccountStore
from api.security import new_token, token_digest

DEVICES = {
    "grid": {"power_kw": 0.4},
    "pv": {"power_kw": 3.1},
    "battery": {"power_kw": -1.2, "soc": 0.55},
    "house": {"power_kw": 0.9},
    "wallbox": {"power_kw": 0.0, "connected": 0.0},
    "heatpump": {"power_kw": 0.8},
}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def populate(directory: Path, boxes: int) -> list[str]:
    """N sites with one paired box and a 96-slot plan each; returns the box tokens."""
    now = datetime.now(UTC)
    accounts = AccountStore(directory / "api.sqlite3")
    owner = accounts.create_user("bench@example.org", "not-a-hash", "customer", now, confirmed=True)
    store = make_store(StoreSettings(data_dir=directory, sqlite_file="telemetry.sqlite3"))
    index = pd.date_range(pd.Timestamp(now).floor("15min"), periods=96, freq="15min")
    rng = np.random.default_rng(0)
    tokens = []
    for i in range(boxes):
        site = accounts.create_site(owner.id, f"site {i}", "Europe/Berlin", "default", now)
        serial = f"HB-BENCH-{i:05d}"
        accounts.register_starter_code(serial, "unused", now)
        token = new_token("hbb_")
        accounts.pair_box(serial, site.id, token_digest(token), now)
        tokens.append(token)
        slots = pd.DataFrame(
            {
                "battery-power_kw": rng.uniform(-5, 5, 96),
                "battery-soc": rng.uniform(0.1, 0.9, 96),
                "wallbox-power_kw": rng.choice([0.0, 4.1, 11.0], 96),
            },
            index=index,
        )
        summary = PlanSummary(status="optimal", objective_eur=1.0)
        store.save_plan(Plan(site.id, now, slots, summary))
    accounts.close()
    store.close()
    return tokens


def start_server(directory: Path, port: int) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "HBOPT_DATABASE_PATH": str(directory / "api.sqlite3"),
        "HBOPT_TELEMETRY_PATH": str(directory / "telemetry.sqlite3"),
        "HBOPT_JWT_SECRET": new_token(),
    }
    command = [sys.executable, "-m", "hbopt", "serve", "--port", str(port), "--log-level", "error"]
    process = subprocess.Popen(command, env=env)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                return process
        except httpx.TransportError:
            time.sleep(0.1)
    process.kill()
    raise RuntimeError("server did not start")


Record = tuple[str, int, float, float]  # kind, status, latency [s], start (monotonic) [s]


async def box(
    client: httpx.AsyncClient,
    token: str,
    *,
    interval: float,
    telemetry_every: int,
    stop_at: float,
    records: list[Record],
) -> None:
    headers = {"Authorization": f"Bearer {token}"}
    etag: str | None = None
    polls = random.randrange(telemetry_every)  # telemetry phases spread like start times
    await asyncio.sleep(random.uniform(0, interval))  # boxes do not start in lockstep
    while time.monotonic() < stop_at:
        started = time.monotonic()
        poll_headers = headers if etag is None else {**headers, "If-None-Match": etag}
        response = await client.get("/v1/gateway/schedule", headers=poll_headers)
        # The first poll of a box (no ETag yet, plan not yet cached) is reported on its own.
        kind = "schedule" if etag is not None else "schedule, first"
        records.append((kind, response.status_code, time.monotonic() - started, started))
        etag = response.headers.get("etag", etag)
        polls += 1
        if polls % telemetry_every == 0:
            ts = datetime.now(UTC).isoformat()
            batch = {"samples": [{"ts": ts, "device": d, "fields": f} for d, f in DEVICES.items()]}
            sent = time.monotonic()
            response = await client.post("/v1/gateway/telemetry", json=batch, headers=headers)
            records.append(("telemetry", response.status_code, time.monotonic() - sent, sent))
        elapsed = time.monotonic() - started
        await asyncio.sleep(max(0.0, interval * random.uniform(0.9, 1.1) - elapsed))


async def run_scenario(
    port: int, tokens: list[str], interval: float, duration: float, telemetry_every: int
) -> tuple[list[Record], float]:
    """Run the boxes for ``duration`` seconds; returns the records and the start time."""
    records: list[Record] = []
    # One client (one keep-alive connection) per box, as real boxes have: a single httpx
    # pool shared by a thousand connections spends its time scanning the pool, and would
    # measure the client instead of the server. One TLS context for all (plain HTTP here).
    tls = ssl.create_default_context()
    clients = [
        httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=30.0, verify=tls)
        for _ in tokens
    ]
    try:
        started = time.monotonic()
        stop_at = started + duration
        await asyncio.gather(
            *(
                box(
                    client,
                    token,
                    interval=interval,
                    telemetry_every=telemetry_every,
                    stop_at=stop_at,
                    records=records,
                )
                for client, token in zip(clients, tokens, strict=True)
            )
        )
        return records, started
    finally:
        await asyncio.gather(*(client.aclose() for client in clients))


def report(label: str, records: list[Record], started: float, warmup: float) -> list[str]:
    """Table rows: first polls (cold), then steady state (requests begun after ``warmup``)."""
    end = max(r[3] + r[2] for r in records)
    groups: dict[str, list[Record]] = defaultdict(list)
    for record in records:
        if record[0] == "schedule, first":
            groups["schedule, first (cold)"].append(record)
        elif record[3] >= started + warmup:
            groups[record[0]].append(record)
    steady = [r for r in records if r[3] >= started + warmup and r[0] != "schedule, first"]
    groups["steady state, all"] = steady
    rows = []
    for kind, items in groups.items():
        if not items:
            continue
        span = end - (started if kind.startswith("schedule, first") else started + warmup)
        latencies = np.array([r[2] for r in items]) * 1000.0
        statuses = [r[1] for r in items]
        ok = sum(s in (200, 304) for s in statuses)
        not_modified = sum(s == 304 for s in statuses)
        rows.append(
            f"| {label} | {kind} | {len(items)} | {len(items) / span:.0f} | "
            f"{np.percentile(latencies, 50):.1f} | {np.percentile(latencies, 99):.1f} | "
            f"{latencies.max():.1f} | {not_modified / len(items):.0%} | {len(items) - ok} |"
        )
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--boxes", type=int, default=1000)
    parser.add_argument("--duration", type=float, default=30.0, help="seconds per scenario")
    parser.add_argument(
        "intervals", type=float, nargs="*", default=[10.0, 2.0], help="poll intervals [s]"
    )
    parser.add_argument("--telemetry-every", type=int, default=6, help="polls per telemetry post")
    parser.add_argument(
        "--warmup", type=float, default=10.0, help="seconds before steady-state counting starts"
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="hbopt-bench-") as tmp:
        directory = Path(tmp)
        t0 = time.monotonic()
        tokens = populate(directory, args.boxes)
        print(f"populated {args.boxes} sites/boxes/plans in {time.monotonic() - t0:.1f} s")
        port = _free_port()
        server = start_server(directory, port)
        lines = [
            f"{args.boxes} boxes, {args.warmup:.0f} s warm-up + {args.duration:.0f} s counted per "
            f"scenario, telemetry every "
            f"{args.telemetry_every} polls (6 samples), 1 uvicorn worker, loopback, "
            f"{os.cpu_count()} cores shared by client and server",
            "",
            "| poll interval | request | count | req/s | p50 ms | p99 ms | max ms | 304 | errors |",
            "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
        ]
        try:
            for interval in args.intervals:
                records, started = asyncio.run(
                    run_scenario(
                        port, tokens, interval, args.warmup + args.duration, args.telemetry_every
                    )
                )
                lines += report(f"{interval:g} s", records, started, args.warmup)
        finally:
            server.terminate()
            server.wait(timeout=10)
        print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
