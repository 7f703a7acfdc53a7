"""Telemetry store benchmark: write throughput and read latency, printed as a table.

Writes ``--sites`` sites x 1 day of 1-minute samples (grid, pv, battery with SOC, house,
wallbox, heat pump: 8,640 samples per site) to SQLite in batches of one site x ``--batch-min``
minutes, runs the aggregation, then times "latest sample" and "last 14 days at 15 min" reads
for random sites. The same samples (first ``--vm-sites`` sites) are written to a local
VictoriaMetrics through the InfluxDB store when the ``victoria-metrics`` binary is installed.

    python benchmarks/store.py                # 1,000 sites (a few minutes on 2 cores)
    python benchmarks/store.py --sites 20     # quick run
"""

from __future__ import annotations

import argparse
import random
import statistics
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

from tqdm import tqdm

from adapters.store import StoreSettings, TelemetryStore, make_store
from adapters.store.telemetry import Sample
from adapters.store.victoria_metrics import binary_path, run_victoria_metrics

DAY_START = datetime(2024, 6, 10, tzinfo=UTC)
NOW = DAY_START + timedelta(days=1)


def site_batches(site: str, batch_min: int) -> Iterator[list[Sample]]:
    """One day of a site's 1-minute samples in batches of ``batch_min`` minutes."""
    rng = random.Random(site)
    for first in range(0, 1440, batch_min):
        batch = []
        for minute in range(first, min(first + batch_min, 1440)):
            ts = DAY_START + timedelta(minutes=minute)
            pv = max(0.0, 6 * (1 - abs(minute - 780) / 420))
            house = 0.3 + rng.random()
            battery = rng.uniform(-3, 3)
            batch += [
                Sample(site, "pv", ts, {"power_kw": pv}),
                Sample(site, "house", ts, {"power_kw": house}),
                Sample(site, "battery", ts, {"power_kw": battery, "soc": rng.random()}),
                Sample(site, "wallbox", ts, {"power_kw": 0.0, "connected": 0, "state": 1}),
                Sample(site, "heatpump", ts, {"power_kw": 1.2, "sgready": 2}),
                Sample(site, "grid", ts, {"power_kw": house - pv - battery + 1.2}),
            ]
        yield batch


def time_writes(store: TelemetryStore, sites: int, batch_min: int, label: str) -> dict[str, float]:
    latencies, total = [], 0
    for number in tqdm(range(sites), desc=label, unit="site", leave=False):
        for batch in site_batches(f"site-{number:05d}", batch_min):
            began = time.perf_counter()
            total += store.write(batch).accepted
            latencies.append(time.perf_counter() - began)
    return {"samples": total, "seconds": sum(latencies), "batch_ms": _median_ms(latencies)}


def time_reads(store: TelemetryStore, sites: int, repeats: int) -> dict[str, list[float]]:
    rng = random.Random(1)
    chosen = [f"site-{rng.randrange(sites):05d}" for _ in range(repeats)]
    result: dict[str, list[float]] = {"latest": [], "window": []}
    for site in chosen:
        began = time.perf_counter()
        assert store.latest(site)
        result["latest"].append(time.perf_counter() - began)
        began = time.perf_counter()
        frame = store.window(site, NOW - timedelta(days=14), NOW)
        assert len(frame) == 14 * 96
        result["window"].append(time.perf_counter() - began)
    return result


def _median_ms(values: list[float]) -> float:
    return 1000 * statistics.median(values)


def _p95_ms(values: list[float]) -> float:
    return 1000 * sorted(values)[int(0.95 * (len(values) - 1))]


@contextmanager
def victoria_metrics(data_dir: Path) -> Iterator[str | None]:
    """A local VictoriaMetrics like the test fixture's, or ``None`` if not installed."""
    if binary_path() is None:
        yield None
        return
    with run_victoria_metrics(data_dir) as url:
        yield url


def run(args: argparse.Namespace) -> list[tuple[str, str, str]]:
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        sqlite = make_store(StoreSettings(data_dir=Path(tmp) / "sqlite"), clock=lambda: NOW)
        writes = time_writes(sqlite, args.sites, args.batch_min, "sqlite writes")
        rows.append(_write_row("SQLite", writes))
        began = time.perf_counter()
        sqlite.maintain(NOW)
        rows.append(
            ("SQLite maintain (15-min aggregates)", f"{time.perf_counter() - began:.2f} s", "")
        )
        reads = time_reads(sqlite, args.sites, args.repeats)
        for name, label in (("latest", "latest sample"), ("window", "last 14 days at 15 min")):
            values = reads[name]
            rows.append(
                (
                    f"SQLite read: {label}",
                    f"{_median_ms(values):.2f} ms",
                    f"{_p95_ms(values):.2f} ms",
                )
            )
        sqlite.close()
        if args.vm_sites > 0:
            with victoria_metrics(Path(tmp) / "vm") as url:
                if url is None:
                    rows.append(("VictoriaMetrics writes", "skipped: binary not installed", ""))
                else:
                    settings = StoreSettings(
                        backend="influxdb", influx_url=url, data_dir=Path(tmp) / "influx"
                    )
                    store = make_store(settings, clock=lambda: NOW)
                    sites = min(args.vm_sites, args.sites)
                    writes = time_writes(store, sites, args.batch_min, "vm writes")
                    rows.append(
                        _write_row(f"VictoriaMetrics via InfluxStore ({sites} sites)", writes)
                    )
                    store.close()
    return rows


def _write_row(name: str, writes: dict[str, float]) -> tuple[str, str, str]:
    rate = writes["samples"] / writes["seconds"]
    return (
        f"{name} writes ({int(writes['samples']):,} samples)",
        f"{rate:,.0f} samples/s",
        f"batch median {writes['batch_ms']:.1f} ms",
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sites", type=int, default=1000, help="sites x 1 day of 1-min data")
    parser.add_argument(
        "--vm-sites", type=int, help="sites written to VM (default --sites; 0 skips)"
    )
    parser.add_argument("--batch-min", type=int, default=60, help="minutes per write batch")
    parser.add_argument("--repeats", type=int, default=200, help="reads per read benchmark")
    args = parser.parse_args()
    if args.vm_sites is None:
        args.vm_sites = args.sites
    rows = run(args)
    header = ("measurement", "median / rate", "p95 / note")
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(3)]
    for row in [header, tuple("-" * w for w in widths), *rows]:
        print(" | ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)))


if __name__ == "__main__":
    main()
