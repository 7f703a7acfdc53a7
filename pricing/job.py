"""The price job of one bidding zone: fetch day-ahead prices, store them, announce new ones.

It runs once at start and again after each day-ahead publication (the auction clears around
12:45 CET; the job starts at ``publication`` local time). An attempt asks the sources in order
(ENTSO-E when a token is set, else SMARD, else the bundled series) and keeps the first one that
delivers; when tomorrow is still missing it retries with exponential back-off (tenacity) for a
bounded number of attempts, then waits for the next publication. Whatever happens, nothing
raises out of :meth:`PriceJob.run`: without any price the sites run on flagged estimates.

When the stored prices reach further than before, ``on_new_prices(zone)`` is called on the
event loop's thread, so the caller can trigger a replan of the zone's sites.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

import pandas as pd
from tenacity import (
    AsyncRetrying,
    RetryError,
    retry_if_result,
    stop_after_attempt,
    wait_exponential,
)

from pricing.sources import BundledPriceSource, EntsoePriceSource, PriceSource, SmardPriceSource
from pricing.store import PriceStore

log = logging.getLogger(__name__)
MARKET_TZ = "Europe/Berlin"
#: SMARD publishes day-ahead prices only for these zones (filter 4169 is DE-LU).
SMARD_REGIONS = {"DE_LU": "DE-LU"}
#: The bundled series is real DE-LU data; other zones have no bundled prices.
BUNDLED_ZONES = frozenset({"DE_LU"})
#: Each fetch reaches this far back before today (fills the store after an outage).
LOOKBACK = pd.Timedelta(days=2)


def _utc_now() -> pd.Timestamp:
    return pd.Timestamp.now(tz="UTC")


def published_until(now: pd.Timestamp, publication_hour: int = 13) -> pd.Timestamp:
    """End of the day-ahead prices that are published at ``now`` (UTC).

    Before ``publication_hour`` local (Europe/Berlin) prices are known to the end of today,
    from then on to the end of tomorrow.
    """
    local = now.tz_convert(MARKET_TZ)
    days = 2 if local.hour >= publication_hour else 1
    end = (local.normalize().tz_localize(None) + pd.Timedelta(days=days)).tz_localize(MARKET_TZ)
    return end.tz_convert("UTC")


def next_publication(now: pd.Timestamp, publication: str = "13:00") -> pd.Timestamp:
    """The first ``publication`` time (local ``HH:MM``, Europe/Berlin) after ``now`` (UTC)."""
    local = now.tz_convert(MARKET_TZ)
    day = local.normalize().tz_localize(None)
    for k in range(3):
        at = (day + pd.Timedelta(days=k) + pd.Timedelta(f"{publication}:00")).tz_localize(MARKET_TZ)
        if at > now:
            return at.tz_convert("UTC")
    raise AssertionError("unreachable")  # pragma: no cover


@dataclass(frozen=True)
class NamedSource:
    """A price source with the name recorded in the store (``entsoe``, ``smard``, ``bundled``)."""

    name: str
    source: PriceSource


def zone_sources(
    zone: str,
    *,
    entsoe_token: str = "",
    smard_enabled: bool = True,
    smard_base_url: str | None = None,
    timeout_s: float = 30.0,
    smard_attempts: int = 4,
) -> list[NamedSource]:
    """The source order of a zone: ENTSO-E (with a token), SMARD (DE-LU), bundled (DE-LU)."""
    sources: list[NamedSource] = []
    if entsoe_token:
        sources.append(NamedSource("entsoe", EntsoePriceSource(entsoe_token, zone, timeout_s)))
    if smard_enabled and zone in SMARD_REGIONS:
        smard = SmardPriceSource(
            SMARD_REGIONS[zone], "quarterhour", timeout_s, smard_base_url, smard_attempts
        )
        sources.append(NamedSource("smard", smard))
    if zone in BUNDLED_ZONES:
        sources.append(NamedSource("bundled", BundledPriceSource()))
    return sources


@dataclass(frozen=True)
class FetchOutcome:
    """One attempt: which source delivered (None: none), how far prices now reach, errors."""

    source: str | None
    known_until: pd.Timestamp | None
    complete: bool
    errors: tuple[str, ...] = ()


class PriceJob:
    """Fetches, stores and announces the day-ahead prices of one zone.

    Parameters
    ----------
    zone : str
        Bidding zone (entsoe-py area name, e.g. ``DE_LU``).
    sources : sequence of NamedSource
        Asked in order; see :func:`zone_sources`.
    store : PriceStore
    on_new_prices : callable
        ``on_new_prices(zone)``, called when stored prices reach further than before.
    clock : callable
        Current UTC time; injected for tests and accelerated runs.
    sleep : callable
        ``await sleep(seconds)``; the runtime may pass its clock's sleep.
    publication : str
        Local time (``HH:MM``, Europe/Berlin) after which tomorrow's prices are expected.
    retry_initial_s, retry_max_s : float
        Back-off of the retries while tomorrow is missing [s].
    attempts : int
        Attempts per publication (the first included).
    lookback : pandas.Timedelta
        How far back each fetch reaches (fills the store after an outage).
    """

    def __init__(
        self,
        zone: str,
        sources: Sequence[NamedSource],
        store: PriceStore,
        on_new_prices: Callable[[str], None],
        *,
        clock: Callable[[], pd.Timestamp] = _utc_now,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        publication: str = "13:05",
        retry_initial_s: float = 300.0,
        retry_max_s: float = 1800.0,
        attempts: int = 12,
        lookback: pd.Timedelta = LOOKBACK,
    ) -> None:
        self.zone = zone
        self.sources = tuple(sources)
        self.store = store
        self.on_new_prices = on_new_prices
        self.clock = clock
        self.sleep = sleep
        self.publication = publication
        self.retry_initial_s = retry_initial_s
        self.retry_max_s = retry_max_s
        self.attempts = attempts
        self.lookback = lookback
        self.last: FetchOutcome | None = None
        self._announced: pd.Timestamp | None = None

    def fetch_once(self) -> FetchOutcome:
        """One attempt over the sources in order (blocking: run it in a thread); never raises."""
        now = self.clock()
        start = now.tz_convert(MARKET_TZ).normalize().tz_convert("UTC") - self.lookback
        end = published_until(now) + pd.Timedelta(days=1)
        errors: list[str] = []
        delivered: str | None = None
        for named in self.sources:
            try:
                prices = named.source.spot_prices(start, end)
            except Exception as exc:  # any source failure: try the next one
                errors.append(f"{named.name}: {type(exc).__name__}: {exc}")
                continue
            if prices.dropna().empty:
                errors.append(f"{named.name}: no prices for {start:%Y-%m-%d}..{end:%Y-%m-%d}")
                continue
            self.store.write(self.zone, prices, named.name)
            delivered = named.name
            break
        self.store.record_attempt(self.zone, now, delivered, "; ".join(errors))
        until = self.store.known_until(self.zone)
        complete = until is not None and until >= published_until(now)
        return FetchOutcome(delivered, until, complete, tuple(errors))

    async def refresh(self) -> FetchOutcome:
        """One attempt in a worker thread; calls ``on_new_prices`` when the stored prices reach
        further than this job last announced (the first time: whenever any are stored)."""
        outcome = await asyncio.to_thread(self.fetch_once)
        self.last = outcome
        if outcome.errors:
            log.warning("prices %s: %s", self.zone, "; ".join(outcome.errors))
        # compared with what this job announced, not with the store before the fetch: another
        # process sharing the store (API and control loop apart) may have written them first
        until, announced = outcome.known_until, self._announced
        if until is not None and (announced is None or until > announced):
            self._announced = until
            try:
                self.on_new_prices(self.zone)
            except Exception:  # a failing hook must not stop the job
                log.exception("prices %s: on_new_prices failed", self.zone)
        return outcome

    async def refresh_until_complete(self) -> FetchOutcome:
        """Attempts with back-off until the published prices are stored or attempts run out."""
        retrying = AsyncRetrying(
            retry=retry_if_result(lambda outcome: not outcome.complete),
            wait=wait_exponential(multiplier=self.retry_initial_s, max=self.retry_max_s),
            stop=stop_after_attempt(self.attempts),
            sleep=self.sleep,
        )
        try:
            outcome: FetchOutcome = await retrying(self.refresh)
        except RetryError as exc:
            outcome = exc.last_attempt.result()
        return outcome

    async def run(self) -> None:
        """At start and after every publication: :meth:`refresh_until_complete`. Runs forever."""
        while True:
            try:
                await self.refresh_until_complete()
            except Exception:  # the job must outlive any one day's failure
                log.exception("prices %s: refresh failed", self.zone)
            wait = (next_publication(self.clock(), self.publication) - self.clock()).total_seconds()
            await self.sleep(max(wait, 1.0))
