"""A control process for the lease tests: ticks its LeaseManager on the wall clock and prints the
sites it holds (JSON, one line per tick) until it is killed.

    python tests/scheduler/lease_worker.py URL HOLDER TTL_S TICK_S N_SITES
"""

from __future__ import annotations

import json
import sys
import time
from datetime import UTC, datetime

from api import migrations
from scheduler.leases import LeaseManager, make_engine


def main(url: str, holder: str, ttl_s: str, tick_s: str, n_sites: str) -> None:
    engine = make_engine(url)
    migrations.upgrade(engine)  # what a control process's start does
    manager = LeaseManager(engine, holder, float(ttl_s))
    sites = [f"site-{i:03d}" for i in range(int(n_sites))]
    while True:
        manager.tick(sites, datetime.now(UTC))
        held = {s: lease.version for s, lease in manager.held().items()}
        print(json.dumps(held), flush=True)
        time.sleep(float(tick_s))


if __name__ == "__main__":
    main(*sys.argv[1:])
