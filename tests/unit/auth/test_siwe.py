from __future__ import annotations

from datetime import timedelta

import pytest
from eth_account import Account
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from devicemint.auth.errors import MalformedSignIn, SignInRefused
from devicemint.auth.models import AuthSession, SiweNonce
from devicemint.auth.siwe import (
    NONCE_TTL,
    create_session,
    issue_nonce,
    revoke_session,
    session_address,
    verify_sign_in,
)
from devicemint.db.session import transaction

from .support import CHAIN_ID, DOMAIN, T0, URI, sign, signed


def _nonce(sessions: sessionmaker[Session]) -> str:
    with transaction(sessions) as s:
        nonce, expires_at = issue_nonce(s, now=T0)
    assert expires_at == T0 + NONCE_TTL
    return nonce


def _verify(sessions: sessionmaker[Session], text: str, sig: str, **overrides: object) -> str:
    kwargs: dict[str, object] = {
        "domain": DOMAIN,
        "uri": URI,
        "chain_id": CHAIN_ID,
        "now": T0 + timedelta(seconds=5),
    }
    kwargs.update(overrides)
    with transaction(sessions) as s:
        return verify_sign_in(s, text, sig, **kwargs)  # type: ignore[arg-type]


def test_a_signed_message_with_our_nonce_signs_in_its_address(sessions: sessionmaker[Session]) -> None:
    account = Account.create()
    text, sig = signed(account, _nonce(sessions))
    assert _verify(sessions, text, sig) == account.address


def test_a_replayed_message_is_refused(sessions: sessionmaker[Session]) -> None:
    account = Account.create()
    text, sig = signed(account, _nonce(sessions))
    _verify(sessions, text, sig)
    with pytest.raises(SignInRefused, match="used already"):
        _verify(sessions, text, sig)


def test_a_nonce_we_never_issued_is_refused(sessions: sessionmaker[Session]) -> None:
    text, sig = signed(Account.create(), "0123456789abcdef0123456789abcdef")
    with pytest.raises(SignInRefused, match="not issued by this server"):
        _verify(sessions, text, sig)


def test_an_expired_nonce_is_refused(sessions: sessionmaker[Session]) -> None:
    text, sig = signed(Account.create(), _nonce(sessions))
    with pytest.raises(SignInRefused, match="nonce has expired"):
        _verify(sessions, text, sig, now=T0 + NONCE_TTL + timedelta(seconds=1))


def test_an_expired_message_is_refused(sessions: sessionmaker[Session]) -> None:
    text, sig = signed(Account.create(), _nonce(sessions), expiration_time=T0 + timedelta(seconds=1))
    with pytest.raises(SignInRefused, match="message has expired"):
        _verify(sessions, text, sig, now=T0 + timedelta(seconds=2))


def test_a_message_before_its_not_before_is_refused(sessions: sessionmaker[Session]) -> None:
    text, sig = signed(Account.create(), _nonce(sessions), not_before=T0 + timedelta(minutes=5))
    with pytest.raises(SignInRefused, match="not valid yet"):
        _verify(sessions, text, sig)


def test_a_message_issued_in_the_future_is_refused(sessions: sessionmaker[Session]) -> None:
    text, sig = signed(Account.create(), _nonce(sessions), issued_at=T0 + timedelta(hours=1))
    with pytest.raises(SignInRefused, match="in the future"):
        _verify(sessions, text, sig)


def test_a_message_for_another_domain_is_refused(sessions: sessionmaker[Session]) -> None:
    text, sig = signed(Account.create(), _nonce(sessions), domain="evil.example")
    with pytest.raises(SignInRefused, match="evil.example"):
        _verify(sessions, text, sig)


def test_a_message_for_another_origin_is_refused(sessions: sessionmaker[Session]) -> None:
    text, sig = signed(Account.create(), _nonce(sessions), uri="https://evil.example/login")
    with pytest.raises(SignInRefused, match="evil.example"):
        _verify(sessions, text, sig)


def test_a_message_for_another_chain_is_refused(sessions: sessionmaker[Session]) -> None:
    text, sig = signed(Account.create(), _nonce(sessions), chain_id=1)
    with pytest.raises(SignInRefused, match="chain 1"):
        _verify(sessions, text, sig)


def test_a_signature_by_another_key_is_refused(sessions: sessionmaker[Session]) -> None:
    account, other = Account.create(), Account.create()
    text, _ = signed(account, _nonce(sessions))
    with pytest.raises(SignInRefused, match="signature is not by"):
        _verify(sessions, text, sign(other, text))


def test_a_refused_sign_in_leaves_the_nonce_usable(sessions: sessionmaker[Session]) -> None:
    account, other = Account.create(), Account.create()
    nonce = _nonce(sessions)
    text, sig = signed(account, nonce)
    with pytest.raises(SignInRefused):
        _verify(sessions, text, sign(other, text))
    assert _verify(sessions, text, sig) == account.address


@pytest.mark.parametrize(
    ("text", "sig", "reason"),
    [
        ("hello", "0x" + "11" * 65, "not a valid EIP-4361"),
        (None, "0x" + "11" * 65, "EIP-4361 text"),
        ("x", "0x1234", "65 bytes"),
        ("x", "not hex at all", "65 bytes"),
    ],
)
def test_malformed_input_is_refused_as_such(
    sessions: sessionmaker[Session], text: str, sig: str, reason: str
) -> None:
    with pytest.raises(MalformedSignIn, match=reason):
        _verify(sessions, text, sig)


def test_a_zero_signature_is_refused(sessions: sessionmaker[Session]) -> None:
    text, _ = signed(Account.create(), _nonce(sessions))
    with pytest.raises(SignInRefused):
        _verify(sessions, text, "0x" + "00" * 65)


def test_a_message_not_in_canonical_form_is_refused(sessions: sessionmaker[Session]) -> None:
    account = Account.create()
    text, _ = signed(account, _nonce(sessions))
    altered = text.replace("Chain ID: 31337", "Chain ID: 031337")
    with pytest.raises(MalformedSignIn):
        _verify(sessions, altered, sign(account, altered))


def test_sessions_expire_and_can_be_revoked(sessions: sessionmaker[Session]) -> None:
    account = Account.create()
    with transaction(sessions) as s:
        token = create_session(s, account.address, now=T0, ttl=timedelta(hours=1))
    with transaction(sessions) as s:
        assert session_address(s, token, now=T0 + timedelta(minutes=59)) == account.address
        assert session_address(s, token, now=T0 + timedelta(hours=1)) is None
        assert session_address(s, token + "x", now=T0) is None
        assert revoke_session(s, token, now=T0)
        assert not revoke_session(s, token, now=T0)
    with transaction(sessions) as s:
        assert session_address(s, token, now=T0) is None
        stored = s.execute(select(AuthSession.token_sha256)).scalars().all()
    assert token not in stored and len(stored) == 1


def test_issuing_a_nonce_drops_expired_ones(sessions: sessionmaker[Session]) -> None:
    old = _nonce(sessions)
    with transaction(sessions) as s:
        fresh, _ = issue_nonce(s, now=T0 + NONCE_TTL + timedelta(seconds=1))
    with transaction(sessions) as s:
        assert set(s.execute(select(SiweNonce.nonce)).scalars()) == {fresh}
    assert old != fresh


def test_of_concurrent_uses_of_one_message_exactly_one_succeeds(sessions: sessionmaker[Session]) -> None:
    from concurrent.futures import ThreadPoolExecutor

    account = Account.create()
    text, sig = signed(account, _nonce(sessions))

    def attempt(_: int) -> str:
        try:
            return _verify(sessions, text, sig)
        except SignInRefused:
            return "refused"

    with ThreadPoolExecutor(max_workers=4) as pool:
        outcomes = sorted(pool.map(attempt, range(8)))
    assert outcomes == [account.address] + ["refused"] * 7
