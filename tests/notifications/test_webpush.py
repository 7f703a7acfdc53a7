"""Web Push end to end without the internet: a real VAPID-signed, RFC 8291-encrypted request
to a push service on 127.0.0.1, decrypted with the browser's keys as a browser would."""

from __future__ import annotations

import base64
import json
import os
from datetime import UTC, datetime

import http_ece
import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from py_vapid import Vapid

from notifications import ChannelName, EventKind, NotificationStore, PushSubscription, UserSettings
from notifications.channels import Recipient
from notifications.channels.webpush import WebPushChannel
from notifications.events import DEFAULT_CHANNELS

from .conftest import Receiver
from .test_delivery import event_of


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def browser_keys() -> tuple[ec.EllipticCurvePrivateKey, str, bytes]:
    """What a browser makes when it subscribes: an ECDH P-256 key pair and a 16-byte secret."""
    key = ec.generate_private_key(ec.SECP256R1())
    public = key.public_key().public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
    )
    return key, b64(public), os.urandom(16)


def test_push_message_is_encrypted_for_the_browser_and_signed_by_the_service(
    push_service: Receiver, store: NotificationStore
) -> None:
    vapid = Vapid()
    vapid.generate_keys()
    private_pem = vapid.private_pem().decode()
    key, p256dh, auth = browser_keys()
    sub = PushSubscription(f"{push_service.url}/sub-1", p256dh, b64(auth))
    store.add_subscription("u-1", sub, datetime(2026, 12, 5, tzinfo=UTC))
    channel = WebPushChannel.from_pem(
        private_pem, "mailto:ops@example.test", store.remove_subscription
    )
    event = event_of(EventKind.EV_TARGET_AT_RISK)
    recipient = Recipient("u-1", None, UserSettings(dict(DEFAULT_CHANNELS)), (sub,))

    channel.deliver(recipient, event)

    assert len(push_service.posts) == 1
    headers, body = push_service.posts[0]
    assert headers["content-encoding"] == "aes128gcm" and int(headers["ttl"]) > 0
    # VAPID: a JWT for the push service's origin, signed with the service's key
    scheme, params = headers["authorization"].split(" ", 1)
    assert scheme == "vapid"
    fields = dict(p.strip().split("=", 1) for p in params.split(","))
    public_pem = vapid.public_key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    claims = jwt.decode(
        fields["t"], public_pem, algorithms=["ES256"], audience=push_service.url.rsplit("/", 1)[0]
    )
    assert claims["sub"] == "mailto:ops@example.test"
    # the browser decrypts it with its own keys
    plain = http_ece.decrypt(body, private_key=key, auth_secret=auth, version="aes128gcm")
    message = json.loads(plain)
    assert message["title"] == event.title and message["body"] == event.body
    assert message["tag"] == event.key


def test_a_subscription_the_push_service_dropped_is_forgotten(
    push_service: Receiver, store: NotificationStore
) -> None:
    push_service.status = 410  # Gone: the browser unsubscribed
    vapid = Vapid()
    vapid.generate_keys()
    _, p256dh, auth = browser_keys()
    sub = PushSubscription(f"{push_service.url}/sub-2", p256dh, b64(auth))
    store.add_subscription("u-1", sub, datetime(2026, 12, 5, tzinfo=UTC))
    channel = WebPushChannel.from_pem(
        vapid.private_pem().decode(), "mailto:ops@example.test", store.remove_subscription
    )
    recipient = Recipient("u-1", None, UserSettings(dict(DEFAULT_CHANNELS)), (sub,))
    channel.deliver(recipient, event_of(EventKind.BOX_BACK))
    assert store.subscriptions("u-1") == []
    assert ChannelName.PUSH in DEFAULT_CHANNELS[EventKind.BOX_BACK]
