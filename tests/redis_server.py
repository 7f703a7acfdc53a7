"""A real Redis server for the suite: Debian's ``redis-server`` on 127.0.0.1 (free port, no
persistence), started once per session. Without the binary the tests that need it are skipped
with the reason -- except under ``CI=true``, where a missing server fails the run."""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import redis


@dataclass(frozen=True)
class RedisServer:
    port: int

    def url(self, db: int = 0) -> str:
        return f"redis://127.0.0.1:{self.port}/{db}"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _unavailable(reason: str) -> None:
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"Redis is required in CI: {reason}", pytrace=False)
    pytest.skip(f"Redis not available: {reason} (run scripts/install-test-servers as root)")


@contextlib.contextmanager
def running_redis() -> Iterator[RedisServer]:
    """A throw-away ``redis-server`` on a free loopback port, stopped on exit."""
    binary = shutil.which("redis-server")
    if binary is None:
        _unavailable("no redis-server on the PATH")
        raise AssertionError("unreachable")
    port = _free_port()
    workdir = tempfile.mkdtemp(prefix="hbopt-redis-")
    proc = subprocess.Popen(
        [binary, "--bind", "127.0.0.1", "--port", str(port), "--save", "", "--appendonly", "no",
         "--dir", workdir],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )  # fmt: skip
    client = redis.Redis(host="127.0.0.1", port=port)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                client.ping()
                break
            except redis.ConnectionError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    out = proc.stdout.read().decode() if proc.stdout else ""
                    _unavailable(f"redis-server did not start: {out[-2000:]}")
                time.sleep(0.05)
        yield RedisServer(port)
    finally:
        client.close()
        proc.terminate()
        proc.wait(10)
        shutil.rmtree(Path(workdir), ignore_errors=True)


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    """One Redis server for the whole session."""
    with running_redis() as server:
        yield server
