"""Checking a device's chain of trust: path, CRLs and the binding to the device's identity."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from cryptography import x509
from cryptography.x509.oid import NameOID

from devicemint.pki.profiles import DeviceIssuer, RevocationReason, device_public_key
from devicemint.pki.trust import TrustPath, binding_problems, crl_problems, path_problems

from .helpers import (
    IMEI,
    PROVISIONED,
    SERIAL,
    Chain,
    Device,
    MemoryHsm,
    issue_device,
    make_chain,
    make_foundation,
    make_manufacturer,
)

LATER = datetime(2025, 6, 1, tzinfo=UTC)


def subject(certificate: x509.Certificate) -> str:
    return certificate.subject.rfc4514_string()


def current_crls(chain: Chain, *, now: datetime = LATER, device_revoked: RevocationReason | None = None):
    revoked = [] if device_revoked is None else [(chain.device_cert.serial_number, now, device_revoked)]
    return [
        chain.foundation.crl([], number=1, now=now),
        chain.manufacturer.crl(revoked, number=1, now=now),
    ]


@pytest.fixture
def chain() -> Chain:
    return make_chain()


# -- path_problems -------------------------------------------------------------------------------


def test_good_path_verifies(chain: Chain) -> None:
    assert path_problems(chain.path, at=LATER) == []


def test_links_are_each_certificate_with_its_issuer(chain: Chain) -> None:
    path = chain.path
    assert path.links() == (
        (chain.manufacturer.certificate, chain.foundation.certificate),
        (chain.device_cert, chain.manufacturer.certificate),
    )


def test_another_foundation_root_is_not_a_trust_anchor(chain: Chain) -> None:
    impostor = make_foundation(organisation="Test Foundation")  # same name, another key
    path = TrustPath(chain.device_cert, chain.manufacturer.certificate, impostor.certificate)
    problems = path_problems(path, at=LATER)
    assert len(problems) == 1
    assert problems[0].startswith("the X.509 chain does not verify")


def test_before_the_device_was_provisioned(chain: Chain) -> None:
    before = datetime(2025, 2, 2, 23, 59, tzinfo=UTC)
    problems = path_problems(chain.path, at=before)
    assert len(problems) == 1
    assert "not valid" in problems[0]
    assert path_problems(chain.path, at=datetime(2025, 2, 3, 0, 1, tzinfo=UTC)) == []


def test_after_the_manufacturer_root_expired(chain: Chain) -> None:
    expired = chain.manufacturer.certificate.not_valid_after_utc + timedelta(seconds=1)
    assert path_problems(chain.path, at=expired) != []


def test_device_signed_by_another_manufacturer_key(chain: Chain) -> None:
    # A forger with its own key, its own CA certificate under the same name: its devices do not
    # verify under the licensed manufacturer root.
    forger = make_manufacturer(chain.foundation)
    forged = issue_device(DeviceIssuer(forger, chain_id=31337), Device.new())
    path = TrustPath(forged, chain.manufacturer.certificate, chain.foundation.certificate)
    assert forged.issuer == chain.manufacturer.certificate.subject
    problems = path_problems(path, at=LATER)
    assert len(problems) == 1
    assert "does not verify" in problems[0]


def test_manufacturer_root_not_signed_by_the_foundation(chain: Chain) -> None:
    rogue_hsm = MemoryHsm()
    rogue_foundation = make_foundation(organisation="Test Foundation")
    rogue_root = make_manufacturer(rogue_foundation, rogue_hsm)
    device_cert = issue_device(DeviceIssuer(rogue_root, chain_id=31337), Device.new())
    path = TrustPath(device_cert, rogue_root.certificate, chain.foundation.certificate)
    assert path_problems(path, at=LATER) != []


# -- crl_problems --------------------------------------------------------------------------------


def test_current_crls_without_revocations(chain: Chain) -> None:
    assert crl_problems(chain.path, current_crls(chain), at=LATER) == []


def test_missing_manufacturer_crl_names_the_manufacturer(chain: Chain) -> None:
    crls = [chain.foundation.crl([], number=1, now=LATER)]
    assert crl_problems(chain.path, crls, at=LATER) == [
        f"no CRL signed by {subject(chain.manufacturer.certificate)}, so its revocations cannot be checked"
    ]


def test_missing_foundation_crl_names_the_foundation(chain: Chain) -> None:
    crls = [chain.manufacturer.crl([], number=1, now=LATER)]
    problems = crl_problems(chain.path, crls, at=LATER)
    assert len(problems) == 1
    assert subject(chain.foundation.certificate) in problems[0]
    assert problems[0].startswith("no CRL signed by")


def test_no_crls_at_all(chain: Chain) -> None:
    assert len(crl_problems(chain.path, [], at=LATER)) == 2


def test_lapsed_crl(chain: Chain) -> None:
    crls = current_crls(chain, now=LATER)
    lapse = LATER + timedelta(days=7)
    assert crl_problems(chain.path, crls, at=lapse) == []  # still current at next_update
    problems = crl_problems(chain.path, crls, at=lapse + timedelta(seconds=1))
    assert len(problems) == 2
    assert all("lapsed at 2025-06-08 00:00 UTC" in problem for problem in problems)


def test_revoked_device_reported_with_reason(chain: Chain) -> None:
    crls = current_crls(chain, device_revoked=RevocationReason.KEY_COMPROMISE)
    problems = crl_problems(chain.path, crls, at=LATER)
    assert len(problems) == 1
    assert problems[0] == (
        f"{subject(chain.device_cert)} was revoked by {subject(chain.manufacturer.certificate)} "
        "on 2025-06-01 (keyCompromise)"
    )


def test_revoked_device_without_reason_is_unspecified(chain: Chain) -> None:
    crls = current_crls(chain, device_revoked=RevocationReason.UNSPECIFIED)
    problems = crl_problems(chain.path, crls, at=LATER)
    assert len(problems) == 1
    assert problems[0].endswith("(unspecified)")


def test_revoked_manufacturer_root_reported(chain: Chain) -> None:
    serial = chain.manufacturer.certificate.serial_number
    crls = [
        chain.foundation.crl([(serial, LATER, RevocationReason.PRIVILEGE_WITHDRAWN)], number=2, now=LATER),
        chain.manufacturer.crl([], number=1, now=LATER),
    ]
    problems = crl_problems(chain.path, crls, at=LATER)
    assert len(problems) == 1
    assert problems[0].startswith(f"{subject(chain.manufacturer.certificate)} was revoked by")
    assert "privilegeWithdrawn" in problems[0]


def test_crl_signed_by_the_wrong_key_is_ignored(chain: Chain) -> None:
    # Same issuer name, but signed by a key that is not the manufacturer root's.
    impostor = make_manufacturer(chain.foundation)
    assert impostor.certificate.subject == chain.manufacturer.certificate.subject
    forged = impostor.crl([], number=99, now=LATER)
    crls = [chain.foundation.crl([], number=1, now=LATER), forged]
    problems = crl_problems(chain.path, crls, at=LATER)
    assert problems == [
        f"no CRL signed by {subject(chain.manufacturer.certificate)}, so its revocations cannot be checked"
    ]


def test_forged_crl_does_not_hide_a_revocation(chain: Chain) -> None:
    impostor = make_manufacturer(chain.foundation)
    genuine = chain.manufacturer.crl(
        [(chain.device_cert.serial_number, LATER, RevocationReason.KEY_COMPROMISE)], number=1, now=LATER
    )
    newer_forged_clean = impostor.crl([], number=2, now=LATER + timedelta(days=1))
    crls = [chain.foundation.crl([], number=1, now=LATER), genuine, newer_forged_clean]
    problems = crl_problems(chain.path, crls, at=LATER + timedelta(days=1))
    assert len(problems) == 1
    assert "was revoked" in problems[0]


def test_crl_of_another_issuer_name_is_ignored(chain: Chain) -> None:
    other = make_manufacturer(chain.foundation, name="Other Corp")
    crls = [chain.foundation.crl([], number=1, now=LATER), other.crl([], number=1, now=LATER)]
    problems = crl_problems(chain.path, crls, at=LATER)
    assert len(problems) == 1
    assert "no CRL signed by" in problems[0]


def test_newest_crl_decides(chain: Chain) -> None:
    serial = chain.device_cert.serial_number
    older = chain.manufacturer.crl([], number=1, now=LATER)
    newer = chain.manufacturer.crl(
        [(serial, LATER, RevocationReason.CESSATION_OF_OPERATION)], number=2, now=LATER + timedelta(hours=1)
    )
    foundation_crl = chain.foundation.crl([], number=1, now=LATER)
    at = LATER + timedelta(hours=2)
    for order in ([older, newer], [newer, older]):
        problems = crl_problems(chain.path, [foundation_crl, *order], at=at)
        assert len(problems) == 1
        assert "cessationOfOperation" in problems[0]


# -- binding_problems ----------------------------------------------------------------------------


def bind(chain: Chain, **changes: object) -> list[str]:
    arguments: dict = {
        "serial_number": SERIAL,
        "imei": IMEI,
        "address": chain.device.address,
        "chain_id": 31337,
    }
    arguments.update(changes)
    return binding_problems(chain.device_cert, **arguments)


def test_binding_matches(chain: Chain) -> None:
    assert bind(chain) == []


def test_binding_address_is_case_insensitive(chain: Chain) -> None:
    assert bind(chain, address=chain.device.address.lower()) == []


def test_binding_wrong_address(chain: Chain) -> None:
    other = Device.new().address
    problems = bind(chain, address=other)
    assert f"the device certificate certifies the key of {chain.device.address}, not {other}" in problems
    # The CAIP-10 account id in the SAN is not the other device's either.
    assert f"the device certificate's subjectAltName lacks eip155:31337:{other}" in problems
    assert len(problems) == 2


def test_binding_wrong_serial(chain: Chain) -> None:
    assert bind(chain, serial_number="SN-999") == [
        f"the device certificate names serial ['{SERIAL}'], not 'SN-999'"
    ]


def test_binding_wrong_imei(chain: Chain) -> None:
    assert bind(chain, imei="356938035643809") == [
        "the device certificate's subjectAltName lacks urn:imei:35693803-564380-9"
    ]


def test_binding_wrong_chain(chain: Chain) -> None:
    assert bind(chain, chain_id=137) == [
        f"the device certificate's subjectAltName lacks eip155:137:{chain.device.address}"
    ]


def test_binding_everything_wrong_reports_each(chain: Chain) -> None:
    problems = bind(chain, serial_number="X", imei="356938035643809", address=Device.new().address)
    assert len(problems) == 4


def test_binding_refuses_a_certificate_of_another_key_type(chain: Chain) -> None:
    assert binding_problems(
        chain.manufacturer.certificate,
        serial_number=SERIAL,
        imei=IMEI,
        address=chain.device.address,
        chain_id=31337,
    ) == ["the device certificate does not certify a secp256k1 key"]


def test_binding_certificate_without_san(chain: Chain) -> None:
    # A certificate for the right key, serial and name but no subjectAltName at all.
    device = chain.device

    name = x509.Name(
        [
            x509.NameAttribute(NameOID.SERIAL_NUMBER, SERIAL),
            x509.NameAttribute(NameOID.COMMON_NAME, device.address),
        ]
    )
    bare = chain.manufacturer.sign(
        x509.CertificateBuilder()
        .subject_name(name)
        .public_key(device_public_key(device.public_key))
        .serial_number(x509.random_serial_number())
        .not_valid_before(datetime.combine(PROVISIONED, datetime.min.time(), tzinfo=UTC))
        .not_valid_after(LATER)
    )
    problems = binding_problems(bare, serial_number=SERIAL, imei=IMEI, address=device.address, chain_id=31337)
    assert len(problems) == 2
    assert all("subjectAltName lacks" in problem for problem in problems)
