"""Scoped API keys for automation (a factory line minting, a script reading).

A key reads `dmk_<id>_<secret>`: the id finds the row, the whole key is checked against the
stored SHA-256 with a constant-time comparison. The secret is 256 random bits, so a fast hash
is enough: nobody can guess their way back from a leaked hash, which is what scrypt or a
peppered HMAC would add for low-entropy passwords, and a slow hash would cost every request.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from sqlalchemy import select
from sqlalchemy.orm import Session

from devicemint.auth.models import ApiKey
from devicemint.auth.siwe import utc
from devicemint.errors import NotFound

KEY_PREFIX = "dmk"
# last_used_at is written at most this often per key, so a busy factory line is not a write per call.
LAST_USED_RESOLUTION = timedelta(minutes=1)


class Scope(StrEnum):
    """What a key may be used for; a route names the scope it needs."""

    MINT = "mint"
    READ = "read"
    ONBOARDING_WRITE = "onboarding:write"


@dataclass(frozen=True, kw_only=True)
class ApiKeyPrincipal:
    key_id: str
    owner: str
    scopes: frozenset[Scope]


@dataclass(frozen=True, kw_only=True)
class ApiKeyInfo:
    """What its owner may see of a key: never the secret."""

    id: str
    prefix: str
    owner: str
    scopes: tuple[Scope, ...]
    created_at: datetime
    revoked_at: datetime | None
    last_used_at: datetime | None


def _hash(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def _scopes(raw: str) -> tuple[Scope, ...]:
    # A scope retired from the code grants nothing any more, rather than failing the request.
    known = {s.value for s in Scope}
    return tuple(Scope(s) for s in raw.split() if s in known)


def create_api_key(
    session: Session, *, owner: str, scopes: Iterable[Scope], now: datetime
) -> tuple[str, str]:
    """A new key for `owner`: returns (key id, the key), the key being shown this once only."""
    wanted = sorted({Scope(s) for s in scopes})
    if not wanted:
        raise ValueError("an API key needs at least one scope")
    key_id = secrets.token_hex(8)
    key = f"{KEY_PREFIX}_{key_id}_{secrets.token_urlsafe(32)}"
    session.add(
        ApiKey(
            id=key_id,
            prefix=f"{KEY_PREFIX}_{key_id}",
            secret_sha256=_hash(key),
            owner=owner,
            scopes=" ".join(wanted),
            created_at=now,
        )
    )
    session.flush()
    return key_id, key


def authenticate_api_key(session: Session, key: str, *, now: datetime) -> ApiKeyPrincipal | None:
    """The principal a key stands for, or None if it is malformed, unknown or revoked."""
    prefix, _, rest = key.partition("_")
    key_id, _, secret = rest.partition("_")
    if prefix != KEY_PREFIX or not key_id or not secret or len(key) > 128:
        return None
    row = session.get(ApiKey, key_id)
    expected = row.secret_sha256 if row is not None else _hash("")
    matches = hmac.compare_digest(_hash(key), expected)
    if row is None or not matches or row.revoked_at is not None:
        return None
    if row.last_used_at is None or utc(row.last_used_at) + LAST_USED_RESOLUTION <= now:
        row.last_used_at = now
    return ApiKeyPrincipal(key_id=row.id, owner=row.owner, scopes=frozenset(_scopes(row.scopes)))


def list_api_keys(session: Session, *, owner: str) -> list[ApiKeyInfo]:
    rows = session.execute(select(ApiKey).where(ApiKey.owner == owner).order_by(ApiKey.created_at, ApiKey.id))
    return [
        ApiKeyInfo(
            id=row.id,
            prefix=row.prefix,
            owner=row.owner,
            scopes=_scopes(row.scopes),
            created_at=utc(row.created_at),
            revoked_at=utc(row.revoked_at) if row.revoked_at else None,
            last_used_at=utc(row.last_used_at) if row.last_used_at else None,
        )
        for row in rows.scalars()
    ]


def revoke_api_key(
    session: Session, *, key_id: str, by: str, by_foundation: bool = False, now: datetime
) -> None:
    """Revoke a key; only its owner or the foundation may.

    Someone else is told the key does not exist, so key ids cannot be probed. Revoking a
    revoked key changes nothing.
    """
    row = session.get(ApiKey, key_id)
    if row is None or (row.owner != by and not by_foundation):
        raise NotFound(f"no API key {key_id!r} of yours")
    if row.revoked_at is None:
        row.revoked_at = now
    session.flush()


__all__ = [
    "ApiKeyInfo",
    "ApiKeyPrincipal",
    "Scope",
    "authenticate_api_key",
    "create_api_key",
    "list_api_keys",
    "revoke_api_key",
]
