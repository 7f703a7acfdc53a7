"""A generic webhook: one HTTP POST per message to the URL the owner set.

Two body formats cover the common receivers:

* ``json`` (default): ``{"title", "message", "kind", "site_id", "at", "data"}`` — Gotify's
  ``/message`` route reads ``title`` and ``message``, a Home Assistant webhook trigger gets the
  whole object as ``trigger.json``;
* ``ntfy``: the body as plain text with ``Title`` and ``Tags`` headers, posted to a ntfy topic
  URL.

Any 2xx answer counts as delivered; a 4xx other than 408/429 is permanent (a wrong URL or
token will not heal by retrying), everything else is retried by the dispatcher.
"""

from __future__ import annotations

from dataclasses import dataclass
from email.header import Header

import httpx

from notifications.channels import DeliveryError, Recipient
from notifications.events import ChannelName, Event

FORMATS = ("json", "ntfy")


@dataclass(frozen=True)
class WebhookChannel:
    timeout_s: float = 5.0
    name: ChannelName = ChannelName.WEBHOOK

    def deliver(self, recipient: Recipient, event: Event) -> None:
        url = recipient.settings.webhook_url
        if not url:
            raise DeliveryError("no webhook URL is set", permanent=True)
        try:
            response = self._post(url, recipient.settings.webhook_format, event)
        except httpx.HTTPError as exc:
            raise DeliveryError(f"webhook {url}: {type(exc).__name__}: {exc}") from exc
        if response.is_success:
            return
        permanent = 400 <= response.status_code < 500 and response.status_code not in (408, 429)
        raise DeliveryError(f"webhook {url} answered {response.status_code}", permanent)

    def _post(self, url: str, fmt: str, event: Event) -> httpx.Response:
        with httpx.Client(timeout=self.timeout_s, follow_redirects=False) as client:
            if fmt == "ntfy":
                # header values are ASCII; ntfy decodes RFC 2047 words for the rest
                title = (
                    Header(event.title, "utf-8").encode()
                    if not event.title.isascii()
                    else event.title
                )
                headers = {"Title": title, "Tags": event.kind.value}
                return client.post(url, content=event.body.encode(), headers=headers)
            body = {
                "title": event.title,
                "message": event.body,
                "kind": event.kind.value,
                "site_id": event.site_id,
                "at": event.at.isoformat(),
                "data": event.data,
            }
            return client.post(url, json=body)
