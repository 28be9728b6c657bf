"""Signing webhook requests, and checking them on the receiving end.

The header reads `Devicemint-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256>` over
f"{t}.{body}", as Stripe does: the timestamp is inside the MAC, so a receiver that refuses
old timestamps cannot be fed a captured request again later. Several `v1=` entries may
appear (a receiver accepts any that matches), which leaves room for rotating secrets.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

from devicemint.webhooks.errors import InvalidSignature

SIGNATURE_HEADER = "Devicemint-Signature"
IDEMPOTENCY_HEADER = "Idempotency-Key"
EVENT_HEADER = "Devicemint-Event"
SECRET_PREFIX = "whsec_"
#: How far a receiver should let the signed time be from its own clock, in seconds.
DEFAULT_TOLERANCE = 300


def new_secret() -> str:
    """A fresh signing secret (256 random bits)."""
    return SECRET_PREFIX + secrets.token_urlsafe(32)


def _mac(secret: str, timestamp: int, body: bytes) -> str:
    signed = f"{timestamp}.".encode() + body
    return hmac.new(secret.encode("utf-8"), signed, hashlib.sha256).hexdigest()


def sign(secret: str, body: bytes, *, timestamp: int) -> str:
    """The `Devicemint-Signature` header value for `body` sent at `timestamp`."""
    return f"t={timestamp},v1={_mac(secret, timestamp, body)}"


def _parse(header: str) -> tuple[int, list[str]]:
    timestamp: int | None = None
    macs = []
    for part in header.split(","):
        key, sep, value = part.strip().partition("=")
        if not sep:
            raise InvalidSignature(f"malformed signature header: {part.strip()!r} is not key=value")
        if key == "t":
            if not value.isdigit():
                raise InvalidSignature(f"malformed signature header: t={value!r} is not a unix time")
            timestamp = int(value)
        elif key == "v1":
            macs.append(value)
        # Other schemes are ignored, so a receiver keeps working when one is added.
    if timestamp is None:
        raise InvalidSignature("malformed signature header: no timestamp (t=...)")
    if not macs:
        raise InvalidSignature("malformed signature header: no v1 signature")
    return timestamp, macs


def verify_signature(
    secret: str, header: str, body: bytes, *, now: int, tolerance: int = DEFAULT_TOLERANCE
) -> int:
    """Check a webhook request as its receiver; the signed timestamp, or `InvalidSignature`.

    `body` must be the raw bytes received (re-serialised JSON will not match); `now` is the
    receiver's unix time, and a timestamp more than `tolerance` seconds away from it is refused
    as a possible replay.
    """
    timestamp, macs = _parse(header)
    if abs(now - timestamp) > tolerance:
        raise InvalidSignature(
            f"the signature's timestamp is {now - timestamp} s from now (tolerance {tolerance} s): "
            "a replay or a wrong clock"
        )
    expected = _mac(secret, timestamp, body)
    if not any(hmac.compare_digest(expected, mac) for mac in macs):
        raise InvalidSignature("the signature does not match the body and the secret")
    return timestamp
