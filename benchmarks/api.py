"""Polling boxes against a local ``hbopt serve``: requests/s and latency percentiles.

N simulated Heartbeat boxes, each paired to its own site with a stored 24-hour plan, poll
``GET /v1/gateway/schedule`` with ``If-None-Match`` every ``interval`` seconds (jittered) and
post a telemetry batch (one sample per device) every ``telemetry_every``-th poll, for a bounded
``warmup + duration``. Steady-state rows count requests begun after the warm-up; a box's first
poll (cold: no ETag, plan not yet cached) is reported on its own. The server runs as its own
process (uvicorn, one worker, production settings: argon2 defaults, request log on) on a free
loopback port; each box is one httpx ``AsyncClient`` with its own keep-alive connection, all in
one asyncio loop in this process, so client and server compete for the same cores.

A poll that fails in transport (a keep-alive connection closed under it, a timeout) or answers
other than 200/304 is *lost*. Each scenario runs once quietly and once next to ``--guessers``
parallel sign-in guessers (each from its own loopback address, each guess a new unknown email:
the case that costs the server an argon2 hash per guess unless the throttles stop it); the
server's memory high-water mark (``VmHWM``) is read after each row, on a fresh server per row.
The last row restarts the server and lets ``--burst`` boxes send their first poll at once.

``--workers 1 2 4`` repeats each row for ``hbopt serve --workers N`` (N > 1 with the counters in
a Redis server this script starts on a free loopback port; ``redis-server`` must be installed,
``scripts/install-test-servers``), reports how the polls spread over the workers (their
``X-Worker-Pid``) and the memory of parent and workers together.

Usage::

    .venv/bin/python -m benchmarks.api --boxes 1000 --warmup 10 --duration 30 10 5
    nice .venv/bin/python -m benchmarks.api --workers 1 2 4 --guessers 0 --burst 0 \
        --warmup 10 --duration 60 5
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import random
import shutil
import socket
import ssl
import subprocess
import sys
import tempfile
import time
from collections import Counter, defaultdict
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import numpy as np
import pandas as pd

from adapters.store import Plan, PlanSummary
from api.accounts_store import AccountStore
from api.security import new_token, password_hasher, token_digest
from scheduler.plan_store import SqlPlanStore

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
    owner_hash = password_hasher().hash(new_token())
    owner = accounts.create_user("bench@example.org", owner_hash, "customer", now, confirmed=True)
    store = SqlPlanStore(accounts.engine)
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
    return tokens


@contextlib.contextmanager
def redis_server() -> Iterator[str]:
    """The test suite's throw-away ``redis-server`` (``tests/redis_server.py``); yields its URL."""
    if shutil.which("redis-server") is None:
        raise SystemExit("benchmarks.api: --workers > 1 needs redis-server (install-test-servers)")
    from tests.redis_server import running_redis  # the test suite's server, on demand

    with running_redis() as server:
        yield server.url()


def start_server(
    directory: Path, port: int, workers: int = 1, storage: str = "memory://"
) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "HBOPT_DATABASE_PATH": str(directory / "api.sqlite3"),
        "HBOPT_TELEMETRY_PATH": str(directory / "telemetry.sqlite3"),
        "HBOPT_JWT_SECRET": new_token(),
        "HBOPT_RATE_LIMIT_STORAGE": storage,
        "HBOPT_WORKER_HEADER": "true",
    }
    command = [sys.executable, "-m", "hbopt", "serve", "--port", str(port), "--log-level", "error",
               "--workers", str(workers)]  # fmt: skip
    process = subprocess.Popen(command, env=env)
    deadline = time.monotonic() + 240  # imports take a while on a busy machine
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                return process
        except httpx.TransportError:
            time.sleep(0.1)
    process.kill()
    raise RuntimeError("server did not start")


#: kind, status, latency [s], start (monotonic) [s], answering worker's pid ("" if lost)
Record = tuple[str, int, float, float, str]


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
        # The first poll of a box (no ETag yet, plan not yet cached) is reported on its own.
        kind = "schedule" if etag is not None else "schedule, first"
        try:
            response = await client.get("/v1/gateway/schedule", headers=poll_headers)
        except httpx.TransportError:
            records.append((kind, 0, time.monotonic() - started, started, ""))  # a lost poll
        else:
            pid = response.headers.get("x-worker-pid", "")
            records.append((kind, response.status_code, time.monotonic() - started, started, pid))
            etag = response.headers.get("etag", etag)
        polls += 1
        if polls % telemetry_every == 0:
            ts = datetime.now(UTC).isoformat()
            batch = {"samples": [{"ts": ts, "device": d, "fields": f} for d, f in DEVICES.items()]}
            sent = time.monotonic()
            pid = ""
            try:
                response = await client.post("/v1/gateway/telemetry", json=batch, headers=headers)
                status, pid = response.status_code, response.headers.get("x-worker-pid", "")
            except httpx.TransportError:
                status = 0
            records.append(("telemetry", status, time.monotonic() - sent, sent, pid))
        elapsed = time.monotonic() - started
        await asyncio.sleep(max(0.0, interval * random.uniform(0.9, 1.1) - elapsed))


async def guesser(number: int, port: int, stop_at: float, statuses: list[int]) -> None:
    """Wrong passwords for new unknown emails, back to back, from 127.0.0.<10 + number>."""
    transport = httpx.AsyncHTTPTransport(local_address=f"127.0.0.{10 + number}")
    async with httpx.AsyncClient(
        base_url=f"http://127.0.0.1:{port}", timeout=30.0, transport=transport
    ) as client:
        while time.monotonic() < stop_at:
            body = {"email": f"{new_token()[:12]}@example.org", "password": "guess-123"}
            try:
                response = await client.post("/v1/auth/token", json=body)
                statuses.append(response.status_code)
                if response.status_code == 429:
                    await asyncio.sleep(min(5.0, float(response.headers["Retry-After"])))
            except httpx.TransportError:
                statuses.append(0)


async def run_scenario(
    port: int,
    tokens: list[str],
    interval: float,
    duration: float,
    telemetry_every: int,
    *,
    guessers: int = 0,
) -> tuple[list[Record], float, list[int]]:
    """Run the boxes (and guessers) for ``duration`` seconds: records, start, guess statuses."""
    records: list[Record] = []
    guesses: list[int] = []
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
            ),
            *(guesser(i, port, stop_at, guesses) for i in range(guessers)),
        )
        return records, started, guesses
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


def high_water_mb(pid: int) -> float:
    """Peak resident memory [MB] (Linux ``VmHWM``) of the process and its children, summed
    (the worker processes of ``--workers N``, the control loop's solver pool)."""
    total = 0.0
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            total += int(line.split()[1]) / 1024
    with contextlib.suppress(OSError):
        for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split():
            with contextlib.suppress(OSError):
                total += high_water_mb(int(child))
    return total


def tree_cpu_s(pid: int) -> float:
    """CPU time [s] (user + system) the process and its live children have used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    total = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    with contextlib.suppress(OSError):
        for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split():
            with contextlib.suppress(OSError):
                total += tree_cpu_s(int(child))
    return total


def spread(records: list[Record]) -> str:
    """Share of the answered requests per worker, largest first ("52/48 %")."""
    counts = Counter(r[4] for r in records if r[4])
    total = sum(counts.values()) or 1
    return "/".join(f"{100 * n / total:.0f}" for _, n in counts.most_common()) + " %"


async def burst(port: int, tokens: list[str]) -> list[float]:
    """Every box sends its first poll at the same instant; returns the waits [s] (nan: lost)."""
    clients = [httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=60.0) for _ in tokens]
    go = asyncio.Event()

    async def first_poll(client: httpx.AsyncClient, token: str) -> float:
        await go.wait()
        started = time.monotonic()
        try:
            response = await client.get(
                "/v1/gateway/schedule", headers={"Authorization": f"Bearer {token}"}
            )
        except httpx.TransportError:
            return float("nan")
        return time.monotonic() - started if response.status_code == 200 else float("nan")

    try:
        tasks = [
            asyncio.create_task(first_poll(c, t)) for c, t in zip(clients, tokens, strict=True)
        ]
        await asyncio.sleep(0.1)
        go.set()
        return list(await asyncio.gather(*tasks))
    finally:
        await asyncio.gather(*(client.aclose() for client in clients))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--boxes", type=int, default=1000)
    parser.add_argument("--duration", type=float, default=30.0, help="seconds per scenario")
    parser.add_argument(
        "intervals", type=float, nargs="*", default=[10.0, 5.0], help="poll intervals [s]"
    )
    parser.add_argument("--guessers", type=int, default=40, help="parallel sign-in guessers")
    parser.add_argument("--burst", type=int, default=500, help="boxes polling at once at start")
    parser.add_argument("--telemetry-every", type=int, default=6, help="polls per telemetry post")
    parser.add_argument(
        "--warmup", type=float, default=10.0, help="seconds before steady-state counting starts"
    )
    parser.add_argument(
        "--workers", type=int, nargs="+", default=[1], help="API worker processes per row"
    )
    args = parser.parse_args()
    with contextlib.ExitStack() as stack:
        tmp = stack.enter_context(tempfile.TemporaryDirectory(prefix="hbopt-bench-"))
        storage = "memory://"
        if max(args.workers) > 1:
            storage = stack.enter_context(redis_server())
        directory = Path(tmp)
        t0 = time.monotonic()
        tokens = populate(directory, args.boxes)
        print(f"populated {args.boxes} sites/boxes/plans in {time.monotonic() - t0:.1f} s")
        print("\n".join(run_rows(args, directory, tokens, storage)))
    return 0


def run_rows(
    args: argparse.Namespace, directory: Path, tokens: list[str], storage: str
) -> list[str]:
    """Every (workers, interval, guessers) row on a fresh server, then the burst."""
    lines = [
        f"{args.boxes} boxes, {args.warmup:.0f} s warm-up + {args.duration:.0f} s counted per "
        f"scenario, telemetry every {args.telemetry_every} polls (6 samples), loopback, "
        f"{os.cpu_count()} cores shared by client and server (load at start "
        f"{os.getloadavg()[0]:.1f}); counters {storage.partition(':')[0]} (several "
        "workers: Redis); lost = transport errors and answers other than 200/304; a fresh "
        "server per row",
        "",
        "| workers | poll interval | request | count | req/s | p50 ms | p99 ms | max ms | 304 "
        "| lost |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    memory = [
        "",
        "| workers | row | server VmHWM MB (all processes) | server CPU ms/request | polls per "
        "worker | guesses | 401 | 429 | other |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for workers in args.workers:
        for interval in args.intervals:
            for guessers in sorted({0, args.guessers}):
                label = f"{interval:g} s" + (f" + {guessers} guessers" if guessers else "")
                port = _free_port()
                server = start_server(directory, port, workers, storage)
                try:
                    cpu_before = tree_cpu_s(server.pid)
                    records, started, guesses = asyncio.run(
                        run_scenario(
                            port,
                            tokens,
                            interval,
                            args.warmup + args.duration,
                            args.telemetry_every,
                            guessers=guessers,
                        )
                    )
                    peak = high_water_mb(server.pid)
                    cpu_ms = 1000 * (tree_cpu_s(server.pid) - cpu_before) / len(records)
                finally:
                    server.terminate()
                    server.wait(timeout=60)
                lines += [
                    f"| {workers} {row}" for row in report(label, records, started, args.warmup)
                ]
                codes = [guesses.count(401), guesses.count(429)]
                memory.append(
                    f"| {workers} | {label} | {peak:.0f} | {cpu_ms:.2f} | {spread(records)} | "
                    f"{len(guesses)} | "
                    f"{codes[0]} | {codes[1]} | {len(guesses) - sum(codes)} |"
                )
    lines += memory
    if args.burst > 0:
        port = _free_port()
        server = start_server(directory, port, args.workers[0], storage)
        try:
            waits = np.array(asyncio.run(burst(port, tokens[: args.burst])))
        finally:
            server.terminate()
            server.wait(timeout=60)
        done = waits[~np.isnan(waits)] * 1000.0
        lines += [
            "",
            f"After a restart, {args.burst} boxes polling at once ({args.workers[0]} workers): "
            f"median wait {np.median(done):.0f} ms, p90 {np.percentile(done, 90):.0f} ms, max "
            f"{done.max():.0f} ms, lost {int(np.isnan(waits).sum())}",
        ]
    return lines


if __name__ == "__main__":
    raise SystemExit(main())
