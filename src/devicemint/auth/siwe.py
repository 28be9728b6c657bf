"""Sign-In with Ethereum (EIP-4361) for people, and the sessions it opens.

A sign-in is accepted only for a message bound to this server: our domain (and origin, when
given), our chain id, a nonce we issued that is unused and unexpired, a message inside its own
validity window, and an EOA signature that recovers to the message's address. The nonce is
consumed with one conditional UPDATE, so of two concurrent uses of the same message only one
can succeed (a replay is refused).

Sessions are opaque 256-bit bearer tokens; only their SHA-256 is stored.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit

import siwe
from eth_keys.exceptions import BadSignature
from eth_utils.exceptions import ValidationError as EthValidationError
from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from devicemint.auth.errors import MalformedSignIn, SignInRefused
from devicemint.auth.models import AuthSession, SiweNonce

NONCE_TTL = timedelta(minutes=10)
SESSION_TTL = timedelta(hours=12)
# Tolerated difference between the signer's clock and ours for Issued At / Not Before.
CLOCK_SKEW = timedelta(seconds=60)
# Longer than any message we accept, so a stray very large body is refused before parsing.
MAX_MESSAGE_LENGTH = 4096

_SIGNATURE = re.compile(r"^(0x)?[0-9a-fA-F]{130}$")


def utc(value: datetime) -> datetime:
    """The same instant as an aware UTC datetime (SQLite hands back naive UTC values)."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def issue_nonce(session: Session, *, now: datetime, ttl: timedelta = NONCE_TTL) -> tuple[str, datetime]:
    """A fresh single-use nonce (128 bits, alphanumeric as EIP-4361 requires) and its expiry.

    Expired nonces are dropped here: a message carrying one is refused as unknown either way.
    """
    session.execute(delete(SiweNonce).where(SiweNonce.expires_at < now))
    nonce = secrets.token_hex(16)
    expires_at = now + ttl
    session.add(SiweNonce(nonce=nonce, created_at=now, expires_at=expires_at))
    session.flush()
    return nonce, expires_at


def verify_sign_in(
    session: Session,
    message: str,
    signature: str,
    *,
    domain: str,
    chain_id: int,
    now: datetime,
    uri: str | None = None,
) -> str:
    """Check a signed EIP-4361 message and consume its nonce; returns the checksummed address.

    `uri`, when given, is our origin (scheme://host[:port]): the message's URI must be on it.
    Raises MalformedSignIn for what is not a sign-in at all, SignInRefused for everything else.
    The nonce is marked used in `session`; the caller's commit makes that final.
    """
    parsed = _parse(message, signature)
    if parsed.domain != domain:
        raise SignInRefused(f"this message is for {parsed.domain!r}; this server is {domain!r}")
    if uri is not None and _origin(parsed.uri) != _origin(uri):
        raise SignInRefused(f"this message is for {parsed.uri!r}; this server is {uri!r}")
    if parsed.chain_id != chain_id:
        raise SignInRefused(
            f"this message is for chain {parsed.chain_id}; this server is on chain {chain_id}"
        )
    issued_at = utc(siwe.siwe.datetime_from_iso8601_string(parsed.issued_at))
    if issued_at > now + CLOCK_SKEW:
        raise SignInRefused("the message's Issued At is in the future; check your clock")
    try:
        # Checks the message's Expiration Time / Not Before against `now`, then the signature.
        parsed.verify(signature, domain=domain, timestamp=now)
    except siwe.ExpiredMessage as exc:
        raise SignInRefused("the message has expired; sign in again") from exc
    except siwe.NotYetValidMessage as exc:
        raise SignInRefused("the message is not valid yet (Not Before is in the future)") from exc
    except (siwe.VerificationError, BadSignature, EthValidationError) as exc:
        raise SignInRefused(f"the signature is not by {parsed.address}") from exc
    _consume_nonce(session, parsed.nonce, now=now)
    return str(parsed.address)


def _parse(message: str, signature: str) -> siwe.SiweMessage:
    if not isinstance(message, str) or len(message) > MAX_MESSAGE_LENGTH:
        raise MalformedSignIn(
            f"the message must be an EIP-4361 text of at most {MAX_MESSAGE_LENGTH} characters"
        )
    if not isinstance(signature, str) or not _SIGNATURE.match(signature):
        raise MalformedSignIn("the signature must be 65 bytes in hex (0x followed by 130 hex digits)")
    try:
        parsed = siwe.SiweMessage.from_message(message)
    except ValueError as exc:  # the ABNF parser's and pydantic's errors are both ValueErrors
        raise MalformedSignIn("the message is not a valid EIP-4361 (Sign-In with Ethereum) message") from exc
    if parsed.prepare_message() != message:
        # What would be verified must be exactly what was signed and shown to the person.
        raise MalformedSignIn("the message is not in canonical EIP-4361 form")
    return parsed


def _origin(url: str) -> tuple[str, str]:
    parts = urlsplit(url)
    return parts.scheme.lower(), parts.netloc.lower()


def _consume_nonce(session: Session, nonce: str, *, now: datetime) -> None:
    result = session.execute(
        update(SiweNonce)
        .where(SiweNonce.nonce == nonce, SiweNonce.used_at.is_(None), SiweNonce.expires_at > now)
        .values(used_at=now)
        .execution_options(synchronize_session=False)
    )
    if result.rowcount == 1:  # type: ignore[attr-defined]
        return
    row = session.get(SiweNonce, nonce)
    if row is None:
        raise SignInRefused("the nonce was not issued by this server; ask for a new one")
    if row.used_at is not None:
        raise SignInRefused("the nonce has been used already; ask for a new one")
    raise SignInRefused("the nonce has expired; ask for a new one")


def create_session(session: Session, address: str, *, now: datetime, ttl: timedelta = SESSION_TTL) -> str:
    """Open a session for `address`; the token is returned once and stored only hashed."""
    token = secrets.token_urlsafe(32)
    session.add(
        AuthSession(token_sha256=token_hash(token), address=address, created_at=now, expires_at=now + ttl)
    )
    session.flush()
    return token


def session_address(session: Session, token: str, *, now: datetime) -> str | None:
    """The address signed in with `token`, or None if unknown, expired or revoked."""
    row = session.execute(
        select(AuthSession).where(AuthSession.token_sha256 == token_hash(token))
    ).scalar_one_or_none()
    if row is None or row.revoked_at is not None or utc(row.expires_at) <= now:
        return None
    return row.address


def revoke_session(session: Session, token: str, *, now: datetime) -> bool:
    """End the session of `token` (sign-out); True if it was open."""
    result = session.execute(
        update(AuthSession)
        .where(AuthSession.token_sha256 == token_hash(token), AuthSession.revoked_at.is_(None))
        .values(revoked_at=now)
        .execution_options(synchronize_session=False)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]
