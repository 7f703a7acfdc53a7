"""The dispatcher: events in, messages out, without ever holding up the control loop.

:meth:`Notifier.publish` only puts the event on a bounded queue and returns. One intake thread
finds the recipients (the site's owner) and their settings, drops what a user switched off,
applies the per-kind rate limit, and claims each (user, channel, event key) in the store — the
claim is the de-duplication, so an event published twice, or again after a restart, is sent
once. Each channel then delivers on its own small thread pool, retried with exponential
back-off (tenacity); a channel that fails or hangs delays only its own messages.

Rate limit: at most ``per_kind_per_hour`` messages of one kind per user and site in a moving
hour window (``limits``, the library behind slowapi); beyond it the event stays in the feed only.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime

from limits import RateLimitItemPerHour
from limits.storage import MemoryStorage
from limits.strategies import MovingWindowRateLimiter
from tenacity import (
    RetryError,
    Retrying,
    retry_if_exception,
    stop_after_attempt,
    wait_exponential,
)

from notifications.channels import Channel, DeliveryError, Recipient
from notifications.events import ChannelName, Event
from notifications.store import NotificationStore

logger = logging.getLogger("notifications")

#: Site id -> (user id, e-mail) of everyone to tell (the owner).
Recipients = Callable[[str], list[tuple[str, str | None]]]


@dataclass(frozen=True)
class DispatchPolicy:
    """How hard to try and how much to send.

    Attributes
    ----------
    attempts : int
        Deliveries per message and channel before it is recorded as failed.
    backoff_s, backoff_max_s : float
        First wait between attempts and its cap [s]; the wait doubles each time.
    per_kind_per_hour : int
        Messages of one kind per user and site per moving hour, beyond which only the feed
        gets them.
    queue_size : int
        Events waiting for the intake thread; beyond it new events are dropped and logged.
    """

    attempts: int = 5
    backoff_s: float = 2.0
    backoff_max_s: float = 300.0
    per_kind_per_hour: int = 4
    queue_size: int = 10_000


class Notifier:
    """Delivers events to their recipients' channels in the background."""

    def __init__(
        self,
        store: NotificationStore,
        channels: Mapping[ChannelName, Channel],
        recipients: Recipients,
        policy: DispatchPolicy | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.store = store
        self.channels = dict(channels)
        self.recipients = recipients
        self.policy = policy or DispatchPolicy()
        self.clock = clock
        self._queue: queue.Queue[Event | None] = queue.Queue(self.policy.queue_size)
        self._limiter = MovingWindowRateLimiter(MemoryStorage())
        self._limit = RateLimitItemPerHour(self.policy.per_kind_per_hour)
        self._pools = {
            name: ThreadPoolExecutor(max_workers=4, thread_name_prefix=f"notify-{name}")
            for name in self.channels
        }
        self._intake = threading.Thread(target=self._run, name="notify-intake", daemon=True)
        self._intake.start()

    def publish(self, event: Event) -> None:
        """Queue ``event`` for delivery; never blocks, never raises."""
        try:
            self._queue.put_nowait(event)
        except queue.Full:
            logger.error(
                "notification queue full; dropped %s for site %s", event.key, event.site_id
            )

    def close(self, timeout: float = 5.0) -> None:
        """Stop taking events, deliver what is queued (retries cut short), wait ``timeout``."""
        self._queue.put(None)
        self._intake.join(timeout)
        for pool in self._pools.values():
            pool.shutdown(wait=True, cancel_futures=False)

    def drain(self, timeout: float = 10.0) -> None:
        """Wait until every published event has been handed to its channels (tests, shutdown)."""
        done = threading.Event()
        self._queue.put_nowait(_Marker(done))  # type: ignore[arg-type]
        done.wait(timeout)

    # ------------------------------------------------------------------ intake
    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            if isinstance(item, _Marker):
                item.done.set()
                continue
            try:
                self._route(item)
            except Exception:  # a bad event or a store hiccup must not stop the intake thread
                logger.exception("could not route notification %s", item.key)

    def _route(self, event: Event) -> None:
        for user_id, email in self.recipients(event.site_id):
            settings = self.store.settings(user_id)
            wanted = settings.channels.get(event.kind, frozenset())
            limited = not self._limiter.hit(self._limit, user_id, event.site_id, event.kind.value)
            if limited:
                logger.info("rate limit: %s for %s goes to the feed only", event.kind, user_id)
            recipient = Recipient(
                user_id, email, settings, tuple(self.store.subscriptions(user_id))
            )
            for name in wanted:
                if name not in self.channels or (limited and name != ChannelName.FEED):
                    continue
                if not self.store.claim(user_id, name, event.key, self.clock()):
                    continue  # sent (or being sent) before
                self._pools[name].submit(self._deliver, self.channels[name], recipient, event)

    # ---------------------------------------------------------------- delivery
    def _deliver(self, channel: Channel, recipient: Recipient, event: Event) -> None:
        attempts = 0

        def once() -> None:
            nonlocal attempts
            attempts += 1
            channel.deliver(recipient, event)

        retrying = Retrying(
            stop=stop_after_attempt(self.policy.attempts),
            wait=wait_exponential(multiplier=self.policy.backoff_s, max=self.policy.backoff_max_s),
            retry=retry_if_exception(_retryable),
            reraise=False,
        )
        error: str | None = None
        try:
            retrying(once)
        except RetryError as exc:
            error = str(exc.last_attempt.exception())
        except Exception as exc:  # permanent: not retried
            error = str(exc)
        if error:
            logger.warning(
                "%s to %s failed after %d attempt(s): %s",
                channel.name,
                recipient.user_id,
                attempts,
                error,
            )
        self.store.finish(recipient.user_id, channel.name, event.key, attempts, error)


@dataclass(frozen=True)
class _Marker:
    done: threading.Event


def _retryable(exc: BaseException) -> bool:
    return not (isinstance(exc, DeliveryError) and exc.permanent)
