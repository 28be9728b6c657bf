"""Certificate document: RFC 8785 canonical form, content address, strict schema."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import random

import pytest
import rfc8785
from hypothesis import given, settings
from hypothesis import strategies as st

from devicemint.devices.document import (
    SCHEMA,
    CertificateDocument,
    DocumentError,
    luhn_check_digit,
    parse_iso_date,
)
from devicemint.devices.proof import ProofDomain, address_of_private_key, recover_signer, sign_proof

DEVICE_KEY = bytes.fromhex("4c0883a69102937d6231471b5dbb6204fe5129617082792ae468d01a3f362318")
DOMAIN = ProofDomain(31337, "0x5FbDB2315678afecb367f032d93F642f64180aa3")


def sample_document(**overrides) -> CertificateDocument:
    values = {
        "serial_number": "DM-AP2-20240101-000001",
        "imei": "356938035643809",
        "address": address_of_private_key(DEVICE_KEY),
        "manufacturer_name": "Acme Devices Ltd",
        "manufacturer_licence_id": 1,
        "manufacturing_date": "2024-01-01",
        "device_licence_id": 1,
        "hardware_model": "AP2",
        "hardware_revision": "B",
        "design_hash": "0x" + "5a" * 32,
        "ict_result": "pass",
        "ict_report_sha256": "11" * 32,
        "mechanical_result": "pass",
        "mechanical_report_sha256": "22" * 32,
        "qa_passed": True,
        "qa_inspection_date": "2024-01-03",
        "qa_inspector": "Zoë Müller",
        "firmware_version": "1.4.2",
        "firmware_sha256": "33" * 32,
        "provisioning_date": "2024-01-04",
        "device_signature": "0x" + "00" * 65,
    }
    values.update(overrides)
    doc = CertificateDocument(**values)
    if "device_signature" not in overrides:
        sig = sign_proof(DOMAIN, doc.proof_fields(), DEVICE_KEY)
        doc = dataclasses.replace(doc, device_signature="0x" + sig.hex())
    return doc


def test_canonical_json_is_rfc8785_of_the_schema_object() -> None:
    doc = sample_document()
    canonical = doc.to_canonical_json()
    assert canonical == rfc8785.dumps(doc.to_dict())
    assert json.loads(canonical)["schema"] == SCHEMA
    # Keys sorted at every level, no whitespace, non-ASCII as raw UTF-8.
    assert canonical.startswith(b'{"device":{"address":"0x')
    assert b'"inspector":"Zo\xc3\xab M\xc3\xbcller"' in canonical
    assert b" " not in canonical.replace(b"Acme Devices Ltd", b"").replace("Zoë Müller".encode(), b"")


def test_document_hash_is_sha256_of_canonical_bytes_and_is_pinned() -> None:
    doc = sample_document()
    assert doc.document_hash() == hashlib.sha256(doc.to_canonical_json()).digest()
    # Pinned: if this changes, every committed certificate would stop verifying.
    assert hashlib.sha256(doc.to_canonical_json()).hexdigest() == doc.document_hash().hex()
    fixed = dataclasses.replace(doc, device_signature="0x" + "ab" * 65)
    assert fixed.document_hash().hex() == PINNED_HASH


PINNED_HASH = "dabe58e142f6f7406712377abd37774105841951aadd41ba06257f05916bdd01"


def test_key_order_and_whitespace_of_the_input_do_not_change_the_hash() -> None:
    doc = sample_document()
    obj = doc.to_dict()

    def shuffled(value, rng):
        if isinstance(value, dict):
            items = list(value.items())
            rng.shuffle(items)
            return {k: shuffled(v, rng) for k, v in items}
        return value

    for seed in range(5):
        text = json.dumps(shuffled(obj, random.Random(seed)), indent=seed, ensure_ascii=bool(seed % 2))
        parsed = CertificateDocument.from_json(text.encode())
        assert parsed == doc
        assert parsed.to_canonical_json() == doc.to_canonical_json()
        assert parsed.document_hash() == doc.document_hash()


printable_text = st.text(alphabet=st.characters(exclude_categories=("Cs",)), min_size=0, max_size=30)


@settings(max_examples=200, deadline=None)
@given(
    serial=printable_text,
    name=printable_text,
    inspector=printable_text,
    version=printable_text,
    model=printable_text,
    licences=st.tuples(st.integers(0, 2**53 - 1), st.integers(0, 2**53 - 1)),
    passed=st.booleans(),
)
def test_fast_serialiser_equals_rfc8785_for_any_text(
    serial, name, inspector, version, model, licences, passed
):
    # Control characters, quotes, backslashes, U+2028, astral planes: all escaped exactly as RFC 8785.
    doc = sample_document(
        serial_number=serial,
        manufacturer_name=name,
        qa_inspector=inspector,
        firmware_version=version,
        hardware_model=model,
        manufacturer_licence_id=licences[0],
        device_licence_id=licences[1],
        qa_passed=passed,
        device_signature="0x" + "cd" * 65,
    )
    assert doc.to_canonical_json() == rfc8785.dumps(doc.to_dict())


def test_escapes_are_the_rfc8785_ones() -> None:
    doc = sample_document(qa_inspector='a"b\\c\n\x01\x7f\u2028😀', device_signature="0x" + "cd" * 65)
    assert b'"inspector":"a\\"b\\\\c\\n\\u0001\x7f\xe2\x80\xa8\xf0\x9f\x98\x80"' in doc.to_canonical_json()


def test_licence_ids_beyond_json_safe_integers_are_refused() -> None:
    doc = sample_document(device_licence_id=2**53, device_signature="0x" + "cd" * 65)
    with pytest.raises(DocumentError, match="2\\*\\*53-1"):
        doc.to_canonical_json()


def test_from_json_round_trip_and_signature_recovers() -> None:
    doc = sample_document()
    parsed = CertificateDocument.from_json(doc.to_canonical_json())
    assert parsed == doc
    assert recover_signer(DOMAIN, parsed.proof_fields(), parsed.device_signature) == doc.address
    assert recover_signer(DOMAIN, parsed.proof_fields(), parsed.signature_bytes) == doc.address


def _mutated(path: list[str], value=None, *, delete: bool = False) -> bytes:
    obj = sample_document().to_dict()
    node = obj
    for key in path[:-1]:
        node = node[key]
    if delete:
        del node[path[-1]]
    else:
        node[path[-1]] = value
    return json.dumps(obj).encode()


@pytest.mark.parametrize(
    ("data", "fragment"),
    [
        (_mutated(["colour"], "red"), "unknown field colour"),
        (_mutated(["tests", "qa", "signature"], "x"), "unknown field tests.qa.signature"),
        (_mutated(["device", "imei"], delete=True), "missing field device.imei"),
        (_mutated(["firmware"], delete=True), "missing field firmware"),
        (_mutated(["schema"], "devicemint/certificate/v2"), 'schema must be "devicemint/certificate/v1"'),
        (_mutated(["device", "imei"], "356938035643808"), "device.imei must be 15 digits with a valid Luhn"),
        (_mutated(["device", "address"], "0x" + "ab" * 20), "EIP-55"),
        (_mutated(["manufacturing", "device_licence_id"], "1"), "device_licence_id must be an integer"),
        (_mutated(["manufacturing", "device_licence_id"], True), "device_licence_id must be an integer"),
        (
            _mutated(["manufacturing", "manufacturer_licence_id"], 0),
            "manufacturer_licence_id must be an integer",
        ),
        (
            _mutated(["manufacturing", "design_hash"], "0x" + "AB" * 32),
            "design_hash must be 0x and 64 lowercase",
        ),
        (_mutated(["manufacturing", "manufacturing_date"], "20240101"), "manufacturing_date must be a date"),
        (_mutated(["tests", "ict", "result"], "PASS"), 'tests.ict.result must be "pass" or "fail"'),
        (_mutated(["tests", "qa", "passed"], 1), "tests.qa.passed must be true or false"),
        (_mutated(["tests", "qa", "inspector"], ""), "tests.qa.inspector must be non-empty"),
        (
            _mutated(["firmware", "image_sha256"], "0x" + "33" * 32),
            "firmware.image_sha256 must be 64 lowercase",
        ),
        (_mutated(["device_signature"], "0x1234"), "device_signature must be 0x and 130"),
        (_mutated(["tests"], []), "tests must be a JSON object, found an array"),
        (b"[]", "document must be a JSON object"),
        (b"{not json", "not valid JSON"),
        (b'{"schema": NaN}', "NaN is not allowed"),
        (b'{"schema": "a", "schema": "b"}', "duplicated key 'schema'"),
    ],
)
def test_from_json_refuses_with_a_clear_error(data: bytes, fragment: str) -> None:
    with pytest.raises(DocumentError) as excinfo:
        CertificateDocument.from_json(data)
    assert fragment in str(excinfo.value)


def test_from_json_lists_every_problem_at_once() -> None:
    obj = sample_document().to_dict()
    obj["extra"] = 1
    del obj["device"]["serial_number"]
    obj["tests"]["ict"]["result"] = "ok"
    message = str(pytest.raises(DocumentError, CertificateDocument.from_json, json.dumps(obj)).value)
    assert "unknown field extra" in message
    assert "missing field device.serial_number" in message
    assert 'tests.ict.result must be "pass" or "fail", found "ok"' in message


def test_luhn_known_imeis() -> None:
    assert luhn_check_digit("35693803564380") == 9  # 356938035643809, the classic example
    assert luhn_check_digit("49015420323751") == 8  # 490154203237518
    assert luhn_check_digit("00000000000000") == 0


def textbook_luhn_valid(number: str) -> bool:
    """The Luhn check as ISO/IEC 7812 states it, written independently of the module."""
    total = 0
    for i, ch in enumerate(reversed(number)):
        d = int(ch) * (2 if i % 2 else 1)
        total += d - 9 if d > 9 else d
    return total % 10 == 0


@given(st.text(alphabet="0123456789", min_size=14, max_size=14), st.integers(0, 9))
def test_luhn_property_exactly_one_check_digit_is_valid(payload: str, candidate: int) -> None:
    digit = luhn_check_digit(payload)
    assert 0 <= digit <= 9
    assert textbook_luhn_valid(payload + str(digit))
    assert textbook_luhn_valid(payload + str(candidate)) == (candidate == digit)


@given(st.text(alphabet="0123456789", min_size=14, max_size=14), st.integers(0, 13), st.integers(1, 9))
def test_luhn_property_any_single_digit_change_is_detected(payload: str, position: int, delta: int) -> None:
    changed = payload[:position] + str((int(payload[position]) + delta) % 10) + payload[position + 1 :]
    assert luhn_check_digit(changed) != luhn_check_digit(payload)


def test_luhn_refuses_non_digits() -> None:
    with pytest.raises(ValueError, match="digits only"):
        luhn_check_digit("3569380356438A")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2024-02-29", (2024, 2, 29)),
        ("2023-02-29", None),
        ("20240229", None),
        ("2024-W09-4", None),
        ("2024-2-9", None),
        ("２０２４-01-01", None),  # full-width digits
        ("2024-01-01T00:00", None),
    ],
)
def test_parse_iso_date_is_strict(text: str, expected) -> None:
    result = parse_iso_date(text)
    assert (result.timetuple()[:3] if result else None) == expected
