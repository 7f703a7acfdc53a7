"""Site leases: which control process runs which site, through the shared database.

Each site has one row in ``site_leases`` (holder, expiry, version). A control process is a
:class:`LeaseManager`; every few seconds it calls :meth:`LeaseManager.tick` (renew what it holds,
then acquire its fair share of what is free or expired). Each process also heartbeats a row in
``control_processes``; the live rows give the number of processes, and each takes at most
``ceil(sites / live processes)``. A process that dies stops renewing, so its leases expire
after at most one TTL; the others know when (:attr:`LeaseManager.peer_expiry`) and tick then. A
process above its share (because one joined) releases the surplus at renew, so load spreads
without a restart.

Mechanism: conditional UPDATEs, the same SQL on SQLite and PostgreSQL.

* take: ``UPDATE site_leases SET holder=me, expires=now+ttl, version=version+1
  WHERE site_id IN (...) AND (holder IS NULL OR expires < now) RETURNING site_id, version``.
  Two racing processes: PostgreSQL row-locks, and the second re-checks the WHERE on each
  committed row and matches nothing there; SQLite serialises writers on its database lock.
  Exactly one gets each row.
* renew: ``... SET expires=now+ttl WHERE holder=me AND (site_id, version) IN (held)``. A lease
  taken over has a new holder and a new version, so a late holder cannot renew it.
* fencing: the version rises at every take-over. :attr:`Lease.version` is the token a controller
  stamps on what it writes, and :meth:`LeaseManager.guard` is a SQL condition a write can carry
  (``INSERT ... SELECT ... WHERE guard``) so a controller whose lease was taken writes nothing.

Not chosen: ``SELECT ... FOR UPDATE SKIP LOCKED`` (PostgreSQL only, and a row lock lives only
as long as a transaction, not across control cycles); advisory locks (PostgreSQL only, they die
with their connection, and a pooled connection outlives or changes under the process that took
them, so ownership would follow connections, not processes).

Times are epoch milliseconds in the database: an integer compares the same on both databases.
Every process passes its own ``now``, so hosts need synchronised clocks (NTP, skew far below
the TTL).
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from adapters.sql import sql_engine

metadata = sa.MetaData()

site_leases = sa.Table(
    "site_leases",
    metadata,
    sa.Column("site_id", sa.String(64), primary_key=True),
    sa.Column("holder", sa.String(128)),  # NULL: free
    sa.Column("expires_at_ms", sa.BigInteger, nullable=False, default=0),  # epoch [ms]
    sa.Column("version", sa.BigInteger, nullable=False, default=0),  # fencing token
)
control_processes = sa.Table(
    "control_processes",
    metadata,
    sa.Column("holder", sa.String(128), primary_key=True),
    sa.Column("expires_at_ms", sa.BigInteger, nullable=False),  # heartbeat + TTL, epoch [ms]
)

#: A heartbeat row this many TTLs past its expiry is deleted (the process is long gone).
FORGET_AFTER_TTLS = 10


@dataclass(frozen=True)
class Lease:
    """A site this process holds.

    Attributes
    ----------
    site_id : str
    version : int
        Fencing token: rises at every take-over; stamp it on what the controller writes.
    expires_at : float
        Epoch seconds [s] after which the lease is no longer valid unless renewed.
    """

    site_id: str
    version: int
    expires_at: float


@dataclass(frozen=True)
class Renewal:
    """What a renew did: sites still held, lost to another process, given up for rebalance."""

    held: frozenset[str]
    lost: frozenset[str]
    released: frozenset[str]


def make_engine(url: str) -> Engine:
    """An engine for the lease tables (SQLite: WAL and a busy timeout for several processes)."""
    return sql_engine(url, ("busy_timeout=5000", "journal_mode=WAL"))


class LeaseManager:
    """One control process's side of the site leases.

    Parameters
    ----------
    engine : Engine
        The shared database (SQLite file or PostgreSQL), migrated by :mod:`api.migrations`
        (the composition root runs them before it opens this).
    holder : str
        This process's unique name (host and pid, say).
    ttl_s : float
        Lease period [s]: a lease not renewed for this long may be taken by another process.
        Call :meth:`tick` several times per period (a third of it, say).
    """

    def __init__(self, engine: Engine, holder: str, ttl_s: float) -> None:
        self.engine, self.holder, self.ttl_ms = engine, holder, round(ttl_s * 1000)
        self._held: dict[str, Lease] = {}
        self._rng = random.Random(holder)
        #: The earliest expiry [UNIX s] among the other live processes' heartbeats, as of the
        #: last call (None: none). A process that stopped renewing expires first: ticking
        #: then takes its sites at once instead of up to a renew period later.
        self.peer_expiry: float | None = None

    def held(self) -> dict[str, Lease]:
        """The leases this process holds, as of its last call."""
        return dict(self._held)

    def tick(self, site_ids: Iterable[str], now: datetime) -> Renewal:
        """One round of the lease loop: renew (and rebalance), then acquire the fair share."""
        renewal = self.renew(now)
        self.acquire(site_ids, now)
        return Renewal(frozenset(self._held), renewal.lost, renewal.released)

    def acquire(self, site_ids: Iterable[str], now: datetime) -> set[str]:
        """Takes free or expired leases among ``site_ids`` up to the fair share.

        Returns
        -------
        set of str
            The sites newly taken by this call.
        """
        ids = sorted(set(site_ids))
        now_ms = _ms(now)
        self._ensure_sites(ids)
        want = fair_share(self._site_count(), self._heartbeat(now_ms)) - len(self._held)
        if want <= 0:
            return set()
        taken: set[str] = set()
        candidates = self._candidates(ids, now_ms)
        while len(taken) < want and candidates:
            # one UPDATE for as many as still wanted: a fleet starts in a few statements
            batch, candidates = candidates[: want - len(taken)], candidates[want - len(taken) :]
            for lease in self._take(batch, now_ms):
                self._held[lease.site_id] = lease
                taken.add(lease.site_id)
        return taken

    def renew(self, now: datetime, give_up: bool = True) -> Renewal:
        """Extends every lease still ours; drops the lost ones; gives up any surplus.

        With ``give_up=False`` the surplus is only chosen (``Renewal.released``) and still
        held: the caller stops using those sites first, then calls :meth:`release`, so no
        other process can take a site this one still writes to.
        """
        now_ms = _ms(now)
        live = self._heartbeat(now_ms)
        lost: set[str] = set()
        if self._held:
            kept = self._extend(now_ms)
            lost = set(self._held) - kept
            for site_id in lost:
                del self._held[site_id]
        surplus = len(self._held) - fair_share(self._site_count(), live)
        released = set(sorted(self._held)[len(self._held) - surplus :]) if surplus > 0 else set()
        if give_up:
            self.release(released)
        return Renewal(frozenset(self._held), frozenset(lost), frozenset(released))

    def release(self, site_ids: Iterable[str]) -> None:
        """Gives up leases now (shutdown, rebalance) so another process need not wait a TTL."""
        mine = [self._held.pop(s) for s in list(site_ids) if s in self._held]
        if not mine:
            return
        with self.engine.begin() as conn:
            conn.execute(
                sa.update(site_leases)
                .where(
                    site_leases.c.holder == self.holder,
                    sa.tuple_(site_leases.c.site_id, site_leases.c.version).in_(
                        [(lease.site_id, lease.version) for lease in mine]
                    ),
                )
                .values(holder=None, expires_at_ms=0)
            )

    def close(self) -> None:
        """Releases every lease and leaves the set of live processes (clean shutdown)."""
        self.release(list(self._held))
        with self.engine.begin() as conn:
            conn.execute(
                sa.delete(control_processes).where(control_processes.c.holder == self.holder)
            )

    def check(self, lease: Lease, now: datetime) -> bool:
        """Is ``lease`` still this process's, unexpired, with the same fencing token (one
        SELECT: the check a controller makes before a batch of writes to the box)?"""
        with self.engine.connect() as conn:
            return bool(
                conn.execute(
                    sa.select(
                        sa.exists().where(
                            site_leases.c.site_id == lease.site_id,
                            site_leases.c.holder == self.holder,
                            site_leases.c.version == lease.version,
                            site_leases.c.expires_at_ms > _ms(now),
                        )
                    )
                ).scalar_one()
            )

    def guard(self, site_id: str, now: datetime) -> sa.ColumnElement[bool]:
        """A SQL condition, true only while this process's lease on ``site_id`` is current.

        A write made as ``INSERT ... SELECT ... WHERE guard`` or ``UPDATE ... WHERE guard``
        in one statement does nothing once the lease was taken over (new version) or expired.
        """
        lease = self._held.get(site_id)
        version = -1 if lease is None else lease.version
        return sa.exists().where(
            site_leases.c.site_id == site_id,
            site_leases.c.holder == self.holder,
            site_leases.c.version == version,
            site_leases.c.expires_at_ms > _ms(now),
        )

    # ------------------------------------------------------------------ SQL steps
    def _heartbeat(self, now_ms: int) -> int:
        """Marks this process alive for one TTL; returns the number of live processes."""
        with self.engine.begin() as conn:
            done = conn.execute(
                sa.update(control_processes)
                .where(control_processes.c.holder == self.holder)
                .values(expires_at_ms=now_ms + self.ttl_ms)
            ).rowcount
            if not done:
                conn.execute(
                    sa.insert(control_processes).values(
                        holder=self.holder, expires_at_ms=now_ms + self.ttl_ms
                    )
                )
            conn.execute(
                sa.delete(control_processes).where(
                    control_processes.c.expires_at_ms < now_ms - FORGET_AFTER_TTLS * self.ttl_ms
                )
            )
            live = conn.execute(
                sa.select(sa.func.count())
                .select_from(control_processes)
                .where(control_processes.c.expires_at_ms > now_ms)
            ).scalar_one()
            peer = conn.execute(
                sa.select(sa.func.min(control_processes.c.expires_at_ms)).where(
                    control_processes.c.holder != self.holder,
                    control_processes.c.expires_at_ms > now_ms,
                )
            ).scalar_one()
        self.peer_expiry = None if peer is None else peer / 1000
        return int(live)

    def _ensure_sites(self, ids: list[str]) -> None:
        with self.engine.connect() as conn:
            known = set(
                conn.execute(
                    sa.select(site_leases.c.site_id).where(site_leases.c.site_id.in_(ids))
                ).scalars()
            )
        new = [{"site_id": s, "expires_at_ms": 0, "version": 0} for s in ids if s not in known]
        if not new:
            return
        try:
            with self.engine.begin() as conn:
                conn.execute(sa.insert(site_leases), new)
            return
        except sa.exc.IntegrityError:
            pass  # another process added some first: one by one
        for row in new:
            try:
                with self.engine.begin() as conn:
                    conn.execute(sa.insert(site_leases).values(**row))
            except sa.exc.IntegrityError:
                pass

    def _site_count(self) -> int:
        with self.engine.connect() as conn:
            return int(
                conn.execute(sa.select(sa.func.count()).select_from(site_leases)).scalar_one()
            )

    def _candidates(self, ids: list[str], now_ms: int) -> list[str]:
        with self.engine.connect() as conn:
            free = list(
                conn.execute(
                    sa.select(site_leases.c.site_id).where(
                        site_leases.c.site_id.in_(ids), _takeable(now_ms)
                    )
                ).scalars()
            )
        self._rng.shuffle(free)  # racing processes mostly try different sites first
        return free

    def _take(self, site_ids: list[str], now_ms: int) -> list[Lease]:
        """Takes whichever of ``site_ids`` are still free or expired (the WHERE is re-checked
        on every row, so of two racing processes only one gets a site)."""
        expires = now_ms + self.ttl_ms
        with self.engine.begin() as conn:
            rows = conn.execute(
                sa.update(site_leases)
                .where(site_leases.c.site_id.in_(site_ids), _takeable(now_ms))
                .values(
                    holder=self.holder, expires_at_ms=expires, version=site_leases.c.version + 1
                )
                .returning(site_leases.c.site_id, site_leases.c.version)
            ).all()
        return [Lease(r.site_id, int(r.version), expires / 1000) for r in rows]

    def _extend(self, now_ms: int) -> set[str]:
        """Renews the held leases whose version is unchanged; returns their site ids."""
        expires = now_ms + self.ttl_ms
        with self.engine.begin() as conn:
            kept = set(
                conn.execute(
                    sa.update(site_leases)
                    .where(
                        site_leases.c.holder == self.holder,
                        sa.tuple_(site_leases.c.site_id, site_leases.c.version).in_(
                            [(lease.site_id, lease.version) for lease in self._held.values()]
                        ),
                    )
                    .values(expires_at_ms=expires)
                    .returning(site_leases.c.site_id)
                ).scalars()
            )
        for site_id in kept:
            self._held[site_id] = Lease(site_id, self._held[site_id].version, expires / 1000)
        return kept


def fair_share(n_sites: int, n_live: int) -> int:
    """The most sites one of ``n_live`` processes may hold: ``ceil(n_sites / n_live)``."""
    return math.ceil(n_sites / max(n_live, 1))


def _takeable(now_ms: int) -> sa.ColumnElement[bool]:
    return sa.or_(site_leases.c.holder.is_(None), site_leases.c.expires_at_ms < now_ms)


def _ms(now: datetime) -> int:
    if now.tzinfo is None:
        raise ValueError(f"naive datetime {now.isoformat()}: give a tz-aware instant")
    return round(now.timestamp() * 1000)
