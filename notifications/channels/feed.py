"""The in-app feed: the message becomes an unread item in the user's feed."""

from __future__ import annotations

from dataclasses import dataclass

from notifications.channels import Recipient
from notifications.events import ChannelName, Event
from notifications.store import NotificationStore


@dataclass(frozen=True)
class FeedChannel:
    store: NotificationStore
    name: ChannelName = ChannelName.FEED

    def deliver(self, recipient: Recipient, event: Event) -> None:
        self.store.add_feed_item(recipient.user_id, event)
