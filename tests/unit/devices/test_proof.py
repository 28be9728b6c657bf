"""EIP-712 proof of possession: our fast digest against eth_account, signing, recovery, refusals."""

from __future__ import annotations

import os

import pytest
from eth_account import Account
from eth_account.messages import SignableMessage, encode_typed_data
from eth_hash.auto import keccak
from eth_utils import to_checksum_address
from hypothesis import given, settings
from hypothesis import strategies as st

from devicemint.devices.proof import (
    DEVICE_PROOF_TYPE,
    DeviceProofFields,
    ProofDomain,
    SignatureError,
    address_of_private_key,
    checksum_address,
    is_checksum_address,
    proof_digest,
    recover_signer,
    recover_signer_bytes,
    sign_proof,
    typed_data,
)

SECP256K1_N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
CONTRACT = "0x5FbDB2315678afecb367f032d93F642f64180aa3"


def eip191_digest(message: SignableMessage) -> bytes:
    return keccak(b"\x19" + message.version + message.header + message.body)


def sample_fields(device: str = "0x" + "ab" * 20, **overrides) -> DeviceProofFields:
    values = {
        "device": device,
        "serial_number": "DM-AP2-20240101-000001",
        "imei": "356938035643809",
        "device_licence_id": 1,
        "manufacturing_date": "2024-01-01",
        "ict_result": "pass",
        "ict_report_sha256": bytes.fromhex("11" * 32),
        "mechanical_result": "pass",
        "mechanical_report_sha256": bytes.fromhex("22" * 32),
        "qa_passed": True,
        "qa_inspection_date": "2024-01-03",
        "qa_inspector": "Zoë Müller",
        "firmware_version": "1.4.2",
        "firmware_sha256": bytes.fromhex("33" * 32),
        "provisioning_date": "2024-01-04",
    }
    values.update(overrides)
    return DeviceProofFields(**values)


DOMAIN = ProofDomain(31337, CONTRACT)

text = st.text(alphabet=st.characters(exclude_categories=("Cs",)), max_size=40)
bytes32 = st.binary(min_size=32, max_size=32)
addresses = st.binary(min_size=20, max_size=20).map(lambda b: "0x" + b.hex())

fields_strategy = st.builds(
    DeviceProofFields,
    device=addresses,
    serial_number=text,
    imei=text,
    device_licence_id=st.integers(min_value=0, max_value=2**256 - 1),
    manufacturing_date=text,
    ict_result=text,
    ict_report_sha256=bytes32,
    mechanical_result=text,
    mechanical_report_sha256=bytes32,
    qa_passed=st.booleans(),
    qa_inspection_date=text,
    qa_inspector=text,
    firmware_version=text,
    firmware_sha256=bytes32,
    provisioning_date=text,
)
domains = st.builds(
    ProofDomain,
    chain_id=st.integers(min_value=1, max_value=2**64),
    verifying_contract=addresses,
)


def test_type_string_is_the_documented_one() -> None:
    assert DEVICE_PROOF_TYPE == (
        "DeviceProof(address device,string serialNumber,string imei,uint256 deviceLicenceId,"
        "string manufacturingDate,string ictResult,bytes32 ictReportSha256,string mechanicalResult,"
        "bytes32 mechanicalReportSha256,bool qaPassed,string qaInspectionDate,string qaInspector,"
        "string firmwareVersion,bytes32 firmwareSha256,string provisioningDate)"
    )


@settings(max_examples=150, deadline=None)
@given(domain=domains, fields=fields_strategy)
def test_fast_digest_equals_eth_account_encode_typed_data(
    domain: ProofDomain, fields: DeviceProofFields
) -> None:
    message = encode_typed_data(full_message=typed_data(domain, fields))
    assert proof_digest(domain, fields) == eip191_digest(message)


@settings(max_examples=25, deadline=None)
@given(domain=domains, fields=fields_strategy, key=st.integers(min_value=1, max_value=SECP256K1_N - 1))
def test_our_signature_recovers_in_eth_account_and_theirs_in_ours(
    domain: ProofDomain, fields: DeviceProofFields, key: int
) -> None:
    private_key = key.to_bytes(32, "big")
    account = Account.from_key(private_key)
    message = encode_typed_data(full_message=typed_data(domain, fields))

    ours = sign_proof(domain, fields, private_key)
    assert len(ours) == 65 and ours[64] in (27, 28)
    assert Account.recover_message(message, signature=ours) == account.address
    assert recover_signer(domain, fields, ours) == account.address

    theirs = Account.sign_message(message, private_key).signature
    assert bytes(theirs) == ours  # both RFC 6979 deterministic, low-s
    assert recover_signer(domain, fields, bytes(theirs)) == account.address


def test_domain_separator_matches_eth_account_domain_hash() -> None:
    fields = sample_fields()
    message = encode_typed_data(full_message=typed_data(DOMAIN, fields))
    assert message.header == DOMAIN.separator
    assert DOMAIN.verifying_contract == CONTRACT


def test_domain_normalises_contract_to_checksum_and_refuses_nonsense() -> None:
    assert ProofDomain(1, CONTRACT.lower()).verifying_contract == CONTRACT
    assert ProofDomain(1, CONTRACT.lower()) == ProofDomain(1, CONTRACT)
    with pytest.raises(ValueError, match="chain id"):
        ProofDomain(0, CONTRACT)
    with pytest.raises(ValueError, match="chain id"):
        ProofDomain(True, CONTRACT)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="40 hex digits"):
        ProofDomain(1, "0x1234")


@pytest.mark.parametrize(
    ("domain", "fields"),
    [
        (ProofDomain(1, CONTRACT), sample_fields()),  # other chain
        (ProofDomain(31337, "0x" + "99" * 20), sample_fields()),  # other contract
        (DOMAIN, sample_fields(device_licence_id=2)),  # other device licence
        (DOMAIN, sample_fields(serial_number="DM-AP2-20240101-000002")),
        (DOMAIN, sample_fields(qa_passed=False)),
        (DOMAIN, sample_fields(firmware_sha256=bytes(32))),
        (DOMAIN, sample_fields(provisioning_date="2024-01-05")),
    ],
)
def test_signature_does_not_carry_over_to_other_domain_or_facts(domain: ProofDomain, fields) -> None:
    private_key = bytes.fromhex("01" * 32)
    signer = address_of_private_key(private_key)
    original = sample_fields(device=signer)
    signature = sign_proof(DOMAIN, original, private_key)
    assert recover_signer(DOMAIN, original, signature) == signer
    changed = DeviceProofFields(**{**_as_dict(fields), "device": signer})
    assert recover_signer(domain, changed, signature) != signer


def _as_dict(fields: DeviceProofFields) -> dict:
    return {name: getattr(fields, name) for name in DeviceProofFields.__slots__}


def test_v_0_1_accepted_like_27_28() -> None:
    private_key = os.urandom(32)
    fields = sample_fields()
    sig = sign_proof(DOMAIN, fields, private_key)
    raw_v = sig[:64] + bytes((sig[64] - 27,))
    assert recover_signer(DOMAIN, fields, raw_v) == recover_signer(DOMAIN, fields, sig)
    assert recover_signer_bytes(DOMAIN, fields, sig) == bytes.fromhex(address_of_private_key(private_key)[2:])


def _with(sig: bytes, *, r: int | None = None, s: int | None = None, v: int | None = None) -> bytes:
    r_bytes = sig[:32] if r is None else r.to_bytes(32, "big")
    s_bytes = sig[32:64] if s is None else s.to_bytes(32, "big")
    v_byte = sig[64:] if v is None else bytes((v,))
    return r_bytes + s_bytes + v_byte


@pytest.mark.parametrize(
    ("mutate", "fragment"),
    [
        (lambda sig: sig[:64], "65 bytes"),
        (lambda sig: sig + b"\x00", "65 bytes"),
        (lambda sig: _with(sig, v=29), "v is 29, expected 27 or 28"),
        (lambda sig: _with(sig, r=0), "r is out of range"),
        (lambda sig: _with(sig, r=SECP256K1_N), "r is out of range"),
        (lambda sig: _with(sig, s=0), "s is out of range"),
        (lambda sig: _with(sig, s=SECP256K1_N), "s is out of range"),
        (
            lambda sig: _with(sig, s=SECP256K1_N - int.from_bytes(sig[32:64], "big"), v=55 - sig[64]),
            "upper half",
        ),
    ],
)
def test_malformed_signatures_raise_clear_errors(mutate, fragment: str) -> None:
    fields = sample_fields()
    sig = sign_proof(DOMAIN, fields, bytes.fromhex("02" * 32))
    with pytest.raises(SignatureError, match=fragment):
        recover_signer(DOMAIN, fields, mutate(sig))


def test_high_s_twin_is_a_valid_ecdsa_signature_that_we_still_refuse() -> None:
    # The malleable twin recovers to the same key in eth_account; we refuse it so one
    # device proof has exactly one byte representation (document hash stability).
    key = bytes.fromhex("03" * 32)
    fields = sample_fields()
    sig = sign_proof(DOMAIN, fields, key)
    twin = _with(sig, s=SECP256K1_N - int.from_bytes(sig[32:64], "big"), v=55 - sig[64])
    message = encode_typed_data(full_message=typed_data(DOMAIN, fields))
    assert Account.recover_message(message, signature=twin) == Account.from_key(key).address
    with pytest.raises(SignatureError, match="low-s"):
        recover_signer(DOMAIN, fields, twin)


def test_tampered_signature_recovers_someone_else_or_fails() -> None:
    key = bytes.fromhex("04" * 32)
    fields = sample_fields()
    sig = bytearray(sign_proof(DOMAIN, fields, key))
    sig[5] ^= 0x01
    try:
        signer = recover_signer(DOMAIN, fields, bytes(sig))
    except SignatureError:
        return
    assert signer != Account.from_key(key).address


def test_malformed_fields_are_refused() -> None:
    with pytest.raises(ValueError, match="ICT report sha256 must be 32 bytes"):
        proof_digest(DOMAIN, sample_fields(ict_report_sha256=b"\x00" * 31))
    with pytest.raises(ValueError, match="uint256"):
        proof_digest(DOMAIN, sample_fields(device_licence_id=-1))
    with pytest.raises(ValueError, match="device address"):
        proof_digest(DOMAIN, sample_fields(device="0x1234"))
    with pytest.raises(ValueError, match="32 bytes"):
        sign_proof(DOMAIN, sample_fields(), b"\x01" * 31)


@given(st.binary(min_size=20, max_size=20))
def test_checksum_address_equals_eth_utils(raw: bytes) -> None:
    expected = to_checksum_address(raw)
    assert checksum_address(raw) == expected
    assert is_checksum_address(expected)
    assert is_checksum_address(expected.lower()) == (expected.lower() == expected)


def test_is_checksum_address_refuses_non_addresses() -> None:
    assert not is_checksum_address("0x1234")
    assert not is_checksum_address("0X" + "ab" * 20)
    assert not is_checksum_address("0x" + "zz" * 20)
