"""Site leases on SQLite and PostgreSQL: fair shares, take-over of a killed process within one
lease period, fencing of a late holder, and rebalancing when a process joins."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from hbopt.failover import lease_holders
from scheduler.leases import LeaseManager, fair_share, make_engine, site_leases

ROOT = Path(__file__).resolve().parents[2]
T0 = datetime(2026, 12, 5, 9, 0, tzinfo=UTC)
TTL_S = 30.0
SITES = [f"site-{i:03d}" for i in range(10)]


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    engine = make_engine(db_url)
    yield engine
    engine.dispose()


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def owners(engine: Engine, now: datetime) -> dict[str, str]:
    """Site -> holder of a valid lease, read from the database."""
    return lease_holders(engine, now.timestamp())


def test_fair_share() -> None:
    assert [fair_share(10, n) for n in (0, 1, 2, 3, 4, 10, 11)] == [10, 10, 5, 4, 3, 1, 1]


def test_three_processes_share_the_sites_and_each_site_has_one_holder(engine: Engine) -> None:
    managers = [LeaseManager(engine, f"p{i}", TTL_S) for i in range(3)]
    for rnd in range(4):  # ticks every 10 s; the first one to start grabs all, then rebalances
        for m in managers:
            m.tick(SITES, at(10 * rnd))
    held = [set(m.held()) for m in managers]
    assert sorted(len(h) for h in held) == [2, 4, 4]  # ceil(10/3) = 4 at most each
    assert set.union(*held) == set(SITES) and sum(map(len, held)) == len(SITES)
    assert owners(engine, at(30)) == {s: m.holder for m in managers for s in m.held()}


def test_a_late_holder_cannot_renew_or_write_after_a_take_over(engine: Engine) -> None:
    a, b = LeaseManager(engine, "a", TTL_S), LeaseManager(engine, "b", TTL_S)
    assert a.acquire(SITES, at(0)) == set(SITES)
    old = a.held()["site-000"].version
    # a stalls (a long GC pause, a frozen VM) past its lease; b takes everything over
    assert b.acquire(SITES, at(TTL_S + 1)) == set(SITES)
    new = b.held()["site-000"].version
    assert new > old

    writes = sa.Table("writes", sa.MetaData(), sa.Column("by", sa.String(8)))
    writes.create(engine)
    with engine.begin() as conn:
        for m in (a, b):  # both try a fenced write for site-000
            select = sa.select(sa.literal(m.holder)).where(m.guard("site-000", at(TTL_S + 2)))
            conn.execute(sa.insert(writes).from_select(["by"], select))
        assert conn.execute(sa.select(writes.c.by)).scalars().all() == ["b"]

    renewal = a.renew(at(TTL_S + 2))
    assert renewal.lost == frozenset(SITES) and a.held() == {}
    assert owners(engine, at(TTL_S + 2)) == dict.fromkeys(SITES, "b")
    # a's renew was also its heartbeat: it is live again, so b hands back half at its renew
    renewal = b.renew(at(TTL_S + 3))
    assert len(renewal.held) == 5 and renewal.lost == frozenset() and len(renewal.released) == 5


def test_a_joining_process_gets_its_share_without_a_restart(engine: Engine) -> None:
    a = LeaseManager(engine, "a", TTL_S)
    assert len(a.tick(SITES, at(0)).held) == 10
    b = LeaseManager(engine, "b", TTL_S)
    assert b.tick(SITES, at(5)).held == frozenset()  # nothing free yet, but b is now live
    released = a.tick(SITES, at(10)).released
    assert len(released) == 5 and len(a.held()) == 5
    assert b.tick(SITES, at(11)).held == released  # taken at once, no TTL wait
    c = LeaseManager(engine, "c", TTL_S)
    c.tick(SITES, at(12))
    for m in (a, b, c):
        m.tick(SITES, at(15))
    assert sorted(len(m.held()) for m in (a, b, c)) == [2, 4, 4]
    # a clean shutdown hands its sites over at once
    a.close()
    for m in (b, c):
        m.tick(SITES, at(16))
    assert sorted(len(m.held()) for m in (b, c)) == [5, 5]
    assert set(owners(engine, at(16))) == set(SITES)


def _worker(db_url: str, n_sites: int, ttl_s: float, tick_s: float) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    script = str(ROOT / "tests" / "scheduler" / "lease_worker.py")
    args = [db_url, "killed", str(ttl_s), str(tick_s), str(n_sites)]
    return subprocess.Popen(
        [sys.executable, script, *args], stdout=subprocess.PIPE, text=True, env=env
    )


def test_the_sites_of_a_killed_process_are_taken_over_within_one_lease_period(
    engine: Engine, db_url: str
) -> None:
    ttl_s, tick_s, n = 1.0, 0.1, 12
    sites = [f"site-{i:03d}" for i in range(n)]
    worker = _worker(db_url, n, ttl_s, tick_s)
    try:
        assert worker.stdout is not None
        # the worker starts first and takes everything; two in-process peers join
        first = json.loads(worker.stdout.readline())
        assert len(first) == n
        peers = [LeaseManager(engine, f"peer-{i}", ttl_s) for i in range(2)]
        deadline = time.monotonic() + 15
        held: dict[str, int] = first
        while time.monotonic() < deadline:
            for p in peers:
                p.tick(sites, datetime.now(UTC))
            held = json.loads(worker.stdout.readline())
            if all(len(p.held()) == 4 for p in peers) and len(held) == 4:
                break
            time.sleep(tick_s / 2)
        assert len(held) == 4, held

        worker.send_signal(signal.SIGKILL)
        killed_at = time.monotonic()
        worker.wait()
        with engine.connect() as conn:  # when the dead process's leases run out [epoch ms]
            expiry_ms = conn.execute(
                sa.select(sa.func.max(site_leases.c.expires_at_ms)).where(
                    site_leases.c.holder == "killed"
                )
            ).scalar_one()
        peer_names = {p.holder for p in peers}
        while set(owners(engine, datetime.now(UTC)).values()) != peer_names or any(
            len(p.held()) < n // 2 for p in peers
        ):
            assert time.monotonic() - killed_at < 3 * ttl_s, "no take-over"
            for p in peers:
                p.tick(sites, datetime.now(UTC))
            time.sleep(tick_s / 5)
        takeover_s = time.monotonic() - killed_at
        after_expiry_s = time.time() - expiry_ms / 1000
    finally:
        worker.kill()
        worker.wait()
    print(
        f"take-over: {takeover_s:.2f} s after SIGKILL, {after_expiry_s:.2f} s after the leases "
        f"expired (TTL {ttl_s} s, tick {tick_s} s)"
    )
    # one lease period after the last renewal, then the peers' next tick (slack for a busy host)
    assert takeover_s <= 1.5 * ttl_s and after_expiry_s <= 3 * tick_s
    mine = {s: lease.version for p in peers for s, lease in p.held().items()}
    assert sorted(len(p.held()) for p in peers) == [6, 6]
    assert all(mine[s] > v for s, v in held.items())  # every taken lease has a new token


def test_the_fence_holds_only_for_the_current_holder_and_token(engine: Engine) -> None:
    a, b = LeaseManager(engine, "a", TTL_S), LeaseManager(engine, "b", TTL_S)
    a.acquire(SITES, at(0))
    lease = a.held()["site-000"]
    assert a.check(lease, at(1)) and not b.check(lease, at(1))
    assert not a.check(lease, at(TTL_S + 1))  # expired: nobody may write on it
    b.acquire(SITES, at(TTL_S + 1))
    assert not a.check(lease, at(TTL_S + 2))  # taken over: a new version
    assert b.check(b.held()["site-000"], at(TTL_S + 2))


def test_a_surplus_kept_until_its_sites_are_stopped_is_not_taken(engine: Engine) -> None:
    a = LeaseManager(engine, "a", TTL_S)
    a.tick(SITES, at(0))
    b = LeaseManager(engine, "b", TTL_S)
    b.tick(SITES, at(1))  # b is live: a's share is 5
    renewal = a.renew(at(2), give_up=False)
    assert len(renewal.released) == 5 and len(a.held()) == 10  # chosen, still held
    assert b.acquire(SITES, at(3)) == set()  # nothing free while a stops those sites
    a.release(renewal.released)
    assert b.acquire(SITES, at(4)) == set(renewal.released)


def test_a_process_knows_when_a_silent_peer_expires_and_takes_its_sites_then(
    engine: Engine,
) -> None:
    a, b = LeaseManager(engine, "a", TTL_S), LeaseManager(engine, "b", TTL_S)
    for now in (0, 5):
        a.tick(SITES, at(now))
        b.tick(SITES, at(now))
    assert len(a.held()) == len(b.held()) == 5
    # each sees the other's heartbeat expire a TTL after that one's last tick (b ticked last)
    assert (a.peer_expiry, b.peer_expiry) == (at(TTL_S).timestamp(), at(5 + TTL_S).timestamp())
    b.tick(SITES, at(10))  # a goes silent after 5 s
    assert b.peer_expiry == at(5 + TTL_S).timestamp()
    # just before it, nothing moves; just after it, b holds every site
    b.tick(SITES, at(5 + TTL_S - 0.01))
    assert len(b.held()) == 5
    b.tick(SITES, at(5 + TTL_S + 0.01))
    assert set(b.held()) == set(SITES) and b.peer_expiry is None
