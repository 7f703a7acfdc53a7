"""Web Push (RFC 8030) with VAPID (RFC 8292) through ``pywebpush``, to every subscribed browser.

The payload is encrypted to the browser's keys (RFC 8291, aes128gcm) by pywebpush; the push
service (the browser vendor's, or any endpoint the subscription names) only relays it. A 404 or
410 answer means the browser dropped the subscription: it is removed and not retried.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass

from py_vapid import Vapid
from pywebpush import WebPushException, webpush

from notifications.channels import DeliveryError, Recipient
from notifications.events import ChannelName, Event

#: TTL the push service keeps an undelivered message [s]: a day, then it is stale news.
TTL_S = 24 * 3600


@dataclass(frozen=True)
class WebPushChannel:
    """Parameters: the service's VAPID key, the ``sub`` claim (``mailto:`` of the operator),
    and a callback that forgets a dead subscription (user id, endpoint)."""

    vapid: Vapid
    vapid_subject: str
    forget: Callable[[str, str], object]
    name: ChannelName = ChannelName.PUSH

    @classmethod
    def from_pem(
        cls, private_pem: str, subject: str, forget: Callable[[str, str], object]
    ) -> WebPushChannel:
        """A channel signing with the EC P-256 private key in ``private_pem``."""
        return cls(Vapid.from_pem(private_pem.encode()), subject, forget)

    def deliver(self, recipient: Recipient, event: Event) -> None:
        if not recipient.subscriptions:
            raise DeliveryError("no browser subscribed to push messages", permanent=True)
        payload = json.dumps(
            {
                "title": event.title,
                "body": event.body,
                "kind": event.kind.value,
                "site_id": event.site_id,
                "tag": event.key,
            }
        )
        failures, delivered = [], 0
        for sub in recipient.subscriptions:
            try:
                webpush(
                    sub.info(),
                    data=payload,
                    vapid_private_key=self.vapid,
                    vapid_claims={"sub": self.vapid_subject},
                    ttl=TTL_S,
                    timeout=10,
                )
            except WebPushException as exc:
                status = getattr(exc.response, "status_code", None)
                if status in (404, 410):
                    self.forget(recipient.user_id, sub.endpoint)
                    continue
                failures.append(f"{sub.endpoint[:60]}: {exc}")
                continue
            delivered += 1
        # Retry only when no browser got it: a retry goes to all of them again, and one
        # phone that is off must not make the others show the message twice.
        if failures and not delivered:
            raise DeliveryError("; ".join(failures))
