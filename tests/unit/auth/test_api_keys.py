from __future__ import annotations

from datetime import timedelta

import pytest
from eth_account import Account
from sqlalchemy import text
from sqlalchemy.orm import Session, sessionmaker

from devicemint.auth.api_keys import (
    LAST_USED_RESOLUTION,
    Scope,
    authenticate_api_key,
    create_api_key,
    list_api_keys,
    revoke_api_key,
)
from devicemint.db.session import transaction
from devicemint.errors import NotFound

from .support import T0


def test_a_key_authenticates_its_owner_with_its_scopes(sessions: sessionmaker[Session]) -> None:
    owner = Account.create().address
    with transaction(sessions) as s:
        key_id, key = create_api_key(s, owner=owner, scopes=[Scope.MINT, Scope.READ, Scope.MINT], now=T0)
    assert key.startswith(f"dmk_{key_id}_")
    with transaction(sessions) as s:
        principal = authenticate_api_key(s, key, now=T0)
    assert principal is not None
    assert (principal.key_id, principal.owner, principal.scopes) == (key_id, owner, {Scope.MINT, Scope.READ})


def test_the_database_holds_no_key_in_clear(sessions: sessionmaker[Session]) -> None:
    with transaction(sessions) as s:
        _, key = create_api_key(s, owner=Account.create().address, scopes=[Scope.READ], now=T0)
    secret = key.split("_", 2)[2]
    with transaction(sessions) as s:
        rows = s.execute(text("SELECT * FROM api_keys")).all()
    dumped = repr(rows)
    assert secret not in dumped and key not in dumped


@pytest.mark.parametrize(
    "mangle", [lambda k: k[:-1] + ("A" if k[-1] != "A" else "B"), lambda k: "x" + k, lambda k: ""]
)
def test_a_wrong_key_is_refused(sessions: sessionmaker[Session], mangle) -> None:  # type: ignore[no-untyped-def]
    with transaction(sessions) as s:
        _, key = create_api_key(s, owner=Account.create().address, scopes=[Scope.READ], now=T0)
        assert authenticate_api_key(s, mangle(key), now=T0) is None
        assert authenticate_api_key(s, "dmk_0000000000000000_" + key.split("_", 2)[2], now=T0) is None


def test_a_revoked_key_is_refused(sessions: sessionmaker[Session]) -> None:
    owner = Account.create().address
    with transaction(sessions) as s:
        key_id, key = create_api_key(s, owner=owner, scopes=[Scope.MINT], now=T0)
    with transaction(sessions) as s:
        revoke_api_key(s, key_id=key_id, by=owner, now=T0)
    with transaction(sessions) as s:
        assert authenticate_api_key(s, key, now=T0) is None
        [info] = list_api_keys(s, owner=owner)
    assert info.revoked_at == T0


def test_only_the_owner_or_the_foundation_can_revoke(sessions: sessionmaker[Session]) -> None:
    owner, stranger, foundation = (Account.create().address for _ in range(3))
    with transaction(sessions) as s:
        key_id, key = create_api_key(s, owner=owner, scopes=[Scope.MINT], now=T0)
    with pytest.raises(NotFound), transaction(sessions) as s:
        revoke_api_key(s, key_id=key_id, by=stranger, now=T0)
    with transaction(sessions) as s:
        assert authenticate_api_key(s, key, now=T0) is not None
    with transaction(sessions) as s:
        revoke_api_key(s, key_id=key_id, by=foundation, by_foundation=True, now=T0)
    with transaction(sessions) as s:
        assert authenticate_api_key(s, key, now=T0) is None


def test_listing_shows_own_keys_without_secrets_and_when_they_were_used(
    sessions: sessionmaker[Session],
) -> None:
    owner, other = Account.create().address, Account.create().address
    with transaction(sessions) as s:
        mine, key = create_api_key(s, owner=owner, scopes=[Scope.READ], now=T0)
        create_api_key(s, owner=other, scopes=[Scope.READ], now=T0)
    with transaction(sessions) as s:
        authenticate_api_key(s, key, now=T0 + timedelta(seconds=1))
    with transaction(sessions) as s:
        authenticate_api_key(s, key, now=T0 + timedelta(seconds=2))  # within the resolution: not written
    with transaction(sessions) as s:
        [info] = list_api_keys(s, owner=owner)
    assert info.id == mine and info.prefix == f"dmk_{mine}" and info.scopes == (Scope.READ,)
    assert info.last_used_at == T0 + timedelta(seconds=1)
    assert key not in repr(info)
    with transaction(sessions) as s:
        authenticate_api_key(s, key, now=T0 + timedelta(seconds=1) + LAST_USED_RESOLUTION)
        [info] = list_api_keys(s, owner=owner)
    assert info.last_used_at == T0 + timedelta(seconds=1) + LAST_USED_RESOLUTION


def test_a_key_needs_a_scope(sessions: sessionmaker[Session]) -> None:
    with pytest.raises(ValueError, match="at least one scope"), transaction(sessions) as s:
        create_api_key(s, owner=Account.create().address, scopes=[], now=T0)
