"""Several control processes on PostgreSQL: one killed with SIGKILL, its sites taken over.

Real parts: three ``python -m hbopt control`` processes sharing the account database, the
telemetry store and the site leases on a real PostgreSQL; six box simulators (pymodbus servers
on 127.0.0.1) in this process. The clock runs x10 (lease 30 s = 3 s real). The watchdog is
120 s here so that a slow, shared test machine still takes over before it expires;
``benchmarks/scale_out.py`` measures the 60 s watchdog with a 30 s lease.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from hbopt.failover import FleetTiming, run_failover
from tests.pg_server import PgServer

TIMING = FleetTiming(speed=10.0, watchdog_s=120, lease_ttl_s=30.0, lease_renew_s=5.0,
                     horizon_slots=48)  # fmt: skip


def test_a_killed_control_process_hands_its_sites_over_and_no_box_has_two_writers(
    tmp_path: Path, pg_server: PgServer
) -> None:
    name = pg_server.create_database()
    try:
        result = asyncio.run(run_failover(tmp_path, pg_server.url(name), 6, 3, TIMING))
    finally:
        pg_server.drop_database(name)
    logs = "\n".join(f"--- {k}\n{v}" for k, v in result.logs.items())
    print(result)
    # the fair share: 6 sites over 3 processes, then over the 2 left
    assert sorted(result.sites_before.values()) == [2, 2, 2], logs
    assert result.victim_sites == 2
    assert sorted(result.sites_after.values()) == [3, 3] and result.victim not in result.sites_after
    # taken over within one lease period after the last renewal, then one renew tick (+ slack
    # for a busy host): the leases in the database, and the boxes written by their new owner
    bound_s = TIMING.real(TIMING.lease_ttl_s + 2 * TIMING.lease_renew_s) + 1.0
    assert result.lease_takeover_s <= bound_s, result
    assert max(result.box_takeover_s) <= bound_s + 1.0, result
    # no box written by two processes at once, none refused by its lock, none fell back
    assert result.interleaved_boxes == 0, logs
    assert result.busy_rejections == 0, logs
    assert result.fallback_boxes == 0, logs
