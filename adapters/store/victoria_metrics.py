"""Run a local VictoriaMetrics server: the InfluxDB-v2-write-compatible server of tests and
benchmarks (Debian package ``victoria-metrics``; no InfluxDB 2.x server installs here)."""

from __future__ import annotations

import shutil
import socket
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
from tenacity import Retrying, retry_if_exception_type, stop_after_delay, wait_fixed

BINARY = "victoria-metrics"


def free_port() -> int:
    """A free TCP port on 127.0.0.1."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def binary_path() -> str | None:
    """Path of the installed server binary, or None."""
    return shutil.which(BINARY)


@contextmanager
def run_victoria_metrics(data_dir: Path, binary: str | None = None) -> Iterator[str]:
    """Start VictoriaMetrics on 127.0.0.1 (free port, ``data_dir`` storage); yield its URL.

    Started with ``-dedup.minScrapeInterval=1ms`` so a re-sent point overwrites like InfluxDB
    does (VictoriaMetrics otherwise keeps both). Waits up to 30 s for ``/health``.
    """
    binary = binary or binary_path()
    if binary is None:
        raise FileNotFoundError(f"{BINARY} not installed (Debian package {BINARY})")
    port = free_port()
    args = [
        binary,
        f"-httpListenAddr=127.0.0.1:{port}",
        f"-storageDataPath={data_dir}",
        # InfluxDB keeps one value per series and time; VictoriaMetrics only with dedup on.
        "-dedup.minScrapeInterval=1ms",
        "-retentionPeriod=100y",
        "-loggerLevel=ERROR",
    ]
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        for attempt in Retrying(
            stop=stop_after_delay(30),
            wait=wait_fixed(0.05),
            retry=retry_if_exception_type(httpx.HTTPError),
            reraise=True,
        ):
            with attempt:
                httpx.get(f"{url}/health", timeout=1).raise_for_status()
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=30)
