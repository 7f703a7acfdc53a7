"""Blocking store calls off the event loop: each store gets threads of its own.

A control process runs every site's heartbeat, polls and cycles on one event loop; a store
call on it (a plan write waiting for SQLite's file lock, a PostgreSQL row lock, a slow disk)
stops every box's heartbeat for as long. The controllers hand their store calls to a
:class:`StoreIO` instead and await the result, so only the site that writes waits.

SQLite has one writer per file: its store gets one thread, which keeps the writes of the
process in the order they were made (they would queue on the file lock anyway). A server
database (PostgreSQL, InfluxDB) gets a few, so one site waiting on a row lock does not hold
the others' writes. Each site awaits its own writes one after another, so a site's writes land
in its order either way.

Not chosen: the event loop's default executor (``asyncio.to_thread``). It also builds the
problems of a fleet's cycles (seconds of CPU each), so a write would queue behind them, and it
has no order.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from adapters.store.sqlite import SqliteStore

T = TypeVar("T")

#: Threads for a store on a database server (PostgreSQL, InfluxDB, VictoriaMetrics).
SERVER_THREADS = 4


class StoreIO:
    """Runs a store's blocking calls on a thread pool of its own (or the loop's default one).

    Parameters
    ----------
    name : str
        Thread name prefix (stack dumps, logs).
    threads : int
        Pool size; 0: the event loop's default executor (backtests, tests without a service).
    """

    def __init__(self, name: str = "store", threads: int = 0) -> None:
        self.name = name
        self._pool = None if threads == 0 else ThreadPoolExecutor(threads, thread_name_prefix=name)

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        """``fn(*args)`` on the store's threads; the event loop runs meanwhile."""
        return await asyncio.get_running_loop().run_in_executor(self._pool, fn, *args)

    def close(self) -> None:
        """Wait for the calls queued and stop the threads."""
        if self._pool is not None:
            self._pool.shutdown(wait=True)


def store_threads(store: object) -> int:
    """How many threads a store gets: 1 on SQLite (one writer per file, writes in order),
    :data:`SERVER_THREADS` on a database server."""
    sqlite = isinstance(store, SqliteStore) or getattr(store, "dialect", None) == "sqlite"
    return 1 if sqlite else SERVER_THREADS
