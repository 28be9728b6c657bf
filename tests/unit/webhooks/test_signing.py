"""The Stripe-style signature: what a receiver checks, and every way a forgery fails."""

from __future__ import annotations

import hashlib
import hmac

import pytest

from devicemint.webhooks.errors import InvalidSignature
from devicemint.webhooks.signing import new_secret, sign, verify_signature

SECRET = "whsec_test"
BODY = b'{"id":"0xab:1","removed":false}'
T = 1_800_000_000


def test_the_header_is_the_hmac_of_timestamp_dot_body() -> None:
    header = sign(SECRET, BODY, timestamp=T)
    expected = hmac.new(SECRET.encode(), f"{T}.".encode() + BODY, hashlib.sha256).hexdigest()
    assert header == f"t={T},v1={expected}"
    assert verify_signature(SECRET, header, BODY, now=T) == T


def test_a_wrong_secret_or_a_changed_body_is_refused() -> None:
    header = sign(SECRET, BODY, timestamp=T)
    with pytest.raises(InvalidSignature, match="does not match"):
        verify_signature("whsec_other", header, BODY, now=T)
    with pytest.raises(InvalidSignature, match="does not match"):
        verify_signature(SECRET, header, BODY.replace(b"false", b"true"), now=T)


def test_the_timestamp_is_inside_the_mac() -> None:
    """Moving t forward to pass the freshness check breaks the signature."""
    mac = sign(SECRET, BODY, timestamp=T).split("v1=")[1]
    with pytest.raises(InvalidSignature, match="does not match"):
        verify_signature(SECRET, f"t={T + 1000},v1={mac}", BODY, now=T + 1000)


@pytest.mark.parametrize("offset", [301, -301, 86_400])
def test_a_stale_or_future_timestamp_is_refused(offset: int) -> None:
    header = sign(SECRET, BODY, timestamp=T)
    with pytest.raises(InvalidSignature, match="tolerance 300 s"):
        verify_signature(SECRET, header, BODY, now=T + offset)
    assert verify_signature(SECRET, header, BODY, now=T + offset, tolerance=abs(offset)) == T


def test_any_matching_v1_is_accepted_so_secrets_can_rotate() -> None:
    old = sign("whsec_old", BODY, timestamp=T).split("v1=")[1]
    header = f"{sign(SECRET, BODY, timestamp=T)},v1={old}"
    assert verify_signature("whsec_old", header, BODY, now=T) == T
    assert verify_signature(SECRET, header, BODY, now=T) == T


@pytest.mark.parametrize(
    ("header", "reason"),
    [
        ("", "not key=value"),
        ("v1=abcd", "no timestamp"),
        (f"t={T}", "no v1 signature"),
        ("t=yesterday,v1=ab", "not a unix time"),
        (f"t={T};v1=ab", "not a unix time"),
    ],
)
def test_malformed_headers_are_refused_with_the_reason(header: str, reason: str) -> None:
    with pytest.raises(InvalidSignature, match=reason):
        verify_signature(SECRET, header, BODY, now=T)


def test_secrets_are_fresh_and_long() -> None:
    first, second = new_secret(), new_secret()
    assert first != second and first.startswith("whsec_") and len(first) >= 6 + 43
