"""VAPID keys (RFC 8292): the service's Web Push identity, without the push sender itself."""

from __future__ import annotations

import base64

from cryptography.hazmat.primitives import serialization
from py_vapid import Vapid


def application_server_key(private_pem: str) -> str:
    """The public key a browser subscribes with (``applicationServerKey``): the uncompressed
    P-256 point of the VAPID key, base64url without padding."""
    public = Vapid.from_pem(private_pem.encode()).public_key
    raw = public.public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
    )
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def new_vapid_key() -> str:
    """A new VAPID private key as PEM (``hbopt`` prints one for the operator's settings)."""
    vapid = Vapid()
    vapid.generate_keys()
    return str(vapid.private_pem().decode())
