"""The certificate document: the static facts of one device, as canonical JSON.

Schema ``devicemint/certificate/v1`` (DESIGN section 5)::

    {"schema": "devicemint/certificate/v1",
     "device": {"serial_number", "imei", "address"},
     "manufacturing": {"manufacturer_name", "manufacturer_licence_id", "manufacturing_date",
                       "device_licence_id", "hardware_model", "hardware_revision", "design_hash"},
     "tests": {"ict": {"result", "report_sha256"}, "mechanical": {"result", "report_sha256"},
               "qa": {"passed", "inspection_date", "inspector"}},
     "firmware": {"initial_version", "image_sha256"},
     "provisioning_date": "YYYY-MM-DD",
     "device_signature": "0x" + 130 hex (r || s || v)}

The document is serialised with RFC 8785 (JSON Canonicalization Scheme), so
its bytes, and therefore its SHA-256, are a function of its content alone:
that SHA-256 is the document's content address and the ``bytes32`` in its
batch's Merkle leaf.

:class:`CertificateDocument` holds each value in its JSON form (hashes and
dates as the strings that appear in the document), so a document read back
from storage is byte-for-byte the document that was committed. The typed
values of a factory row live in :class:`devicemint.devices.batchfile.FactoryRow`.

Serialisation is on the minting hot path (one document per device), so
:meth:`CertificateDocument.to_canonical_json` fills a fixed template instead of
calling the generic ``rfc8785`` serialiser (~10x faster); the unit tests prove
it produces exactly ``rfc8785.dumps`` of :meth:`CertificateDocument.to_dict`.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable
from dataclasses import dataclass, fields
from datetime import date
from json.encoder import encode_basestring as _json_str  # C-accelerated; escapes exactly as RFC 8785
from typing import Any

from devicemint.devices.proof import DeviceProofFields, is_checksum_address
from devicemint.errors import DevicemintError

__all__ = [
    "MAX_SAFE_INTEGER",
    "SCHEMA",
    "CertificateDocument",
    "DocumentError",
    "luhn_check_digit",
    "parse_iso_date",
]

SCHEMA = "devicemint/certificate/v1"
# RFC 8785 serialises numbers as IEEE-754 doubles: integers beyond 2**53 - 1 are not exact.
MAX_SAFE_INTEGER = 2**53 - 1
SERIAL_MAX_LENGTH = 64
TEST_RESULTS = ("pass", "fail")


class DocumentError(DevicemintError, ValueError):
    """A certificate document does not follow schema ``devicemint/certificate/v1``."""


# --------------------------------------------------------------------------- #
# Field rules shared with the batch file reader
# --------------------------------------------------------------------------- #

_DATE_RE = re.compile(r"\d{4}-\d{2}-\d{2}", re.ASCII)
_SHA256_RE = re.compile(r"[0-9a-f]{64}", re.ASCII)
_BYTES32_RE = re.compile(r"0x[0-9a-f]{64}", re.ASCII)
_SIGNATURE_RE = re.compile(r"0x[0-9a-f]{130}", re.ASCII)
_IMEI_RE = re.compile(r"\d{15}", re.ASCII)
_SERIAL_RE = re.compile(r"[\x21-\x7e](?:[\x20-\x7e]*[\x21-\x7e])?", re.ASCII)


def luhn_check_digit(payload: str) -> int:
    """The Luhn check digit that completes ``payload`` (the first 14 digits of an IMEI).

    Counting from the right of the payload, every first, third, ... digit is
    doubled (its digits summed) and the rest are added as they are.
    """
    if not (payload.isascii() and payload.isdigit()):
        raise ValueError("a Luhn payload is ASCII digits only")
    digits = payload.encode("ascii")[::-1]
    # bytes.translate maps each ASCII digit to its (doubled) value; sum() of bytes is C speed.
    total = sum(digits[0::2].translate(_LUHN_DOUBLED)) + sum(digits[1::2].translate(_LUHN_PLAIN))
    return (10 - total % 10) % 10


_LUHN_DOUBLED = bytes.maketrans(b"0123456789", bytes((0, 2, 4, 6, 8, 1, 3, 5, 7, 9)))
_LUHN_PLAIN = bytes.maketrans(b"0123456789", bytes(range(10)))


def parse_iso_date(text: str) -> date | None:
    """A strict ``YYYY-MM-DD`` calendar date, or None.

    ``date.fromisoformat`` alone also accepts ``20240105`` and week dates; the
    signed proof covers the exact string, so only one spelling is allowed.
    """
    if len(text) != 10 or not _DATE_RE.fullmatch(text):
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        return None


def is_serial_number(text: str) -> bool:
    """1..64 printable ASCII characters, no leading or trailing space."""
    return 0 < len(text) <= SERIAL_MAX_LENGTH and _SERIAL_RE.fullmatch(text) is not None


def is_imei(text: str) -> bool:
    return _IMEI_RE.fullmatch(text) is not None and luhn_check_digit(text[:14]) == ord(text[14]) - 48


def is_free_text(text: str) -> bool:
    """Non-empty, printable (no control characters or lone surrogates), not padded with spaces."""
    return bool(text) and text.isprintable() and text == text.strip()


# --------------------------------------------------------------------------- #
# The document
# --------------------------------------------------------------------------- #

# Keys in RFC 8785 order (sorted by UTF-16 code units; all ASCII here).
_TEMPLATE = (
    '{"device":{"address":%s,"imei":%s,"serial_number":%s},'
    '"device_signature":%s,'
    '"firmware":{"image_sha256":%s,"initial_version":%s},'
    '"manufacturing":{"design_hash":%s,"device_licence_id":%d,"hardware_model":%s,'
    '"hardware_revision":%s,"manufacturer_licence_id":%d,"manufacturer_name":%s,'
    '"manufacturing_date":%s},'
    '"provisioning_date":%s,'
    '"schema":"devicemint/certificate/v1",'
    '"tests":{"ict":{"report_sha256":%s,"result":%s},'
    '"mechanical":{"report_sha256":%s,"result":%s},'
    '"qa":{"inspection_date":%s,"inspector":%s,"passed":%s}}}'
)


@dataclass(frozen=True, slots=True)
class CertificateDocument:
    """One device's certificate document, each value in its JSON form.

    Build one with :func:`devicemint.devices.batchfile.build_document` (from a
    validated factory row) or :meth:`from_json` (validates everything). The
    constructor itself does not validate: it is on the minting hot path and is
    fed validated values; use :meth:`from_dict` for untrusted input.
    """

    serial_number: str
    imei: str
    address: str  # EIP-55 checksummed
    manufacturer_name: str
    manufacturer_licence_id: int
    manufacturing_date: str  # YYYY-MM-DD
    device_licence_id: int
    hardware_model: str
    hardware_revision: str
    design_hash: str  # 0x + 64 lowercase hex
    ict_result: str  # "pass" | "fail"
    ict_report_sha256: str  # 64 lowercase hex
    mechanical_result: str
    mechanical_report_sha256: str
    qa_passed: bool
    qa_inspection_date: str
    qa_inspector: str
    firmware_version: str  # firmware.initial_version
    firmware_sha256: str  # firmware.image_sha256
    provisioning_date: str
    device_signature: str  # 0x + 130 lowercase hex

    # -- serialisation -------------------------------------------------------

    def to_canonical_json(self) -> bytes:
        """RFC 8785 canonical JSON bytes (UTF-8): the committed form of the document."""
        s = _json_str
        return (
            _TEMPLATE
            % (
                s(self.address),
                s(self.imei),
                s(self.serial_number),
                s(self.device_signature),
                s(self.firmware_sha256),
                s(self.firmware_version),
                s(self.design_hash),
                _safe_int(self.device_licence_id),
                s(self.hardware_model),
                s(self.hardware_revision),
                _safe_int(self.manufacturer_licence_id),
                s(self.manufacturer_name),
                s(self.manufacturing_date),
                s(self.provisioning_date),
                s(self.ict_report_sha256),
                s(self.ict_result),
                s(self.mechanical_report_sha256),
                s(self.mechanical_result),
                s(self.qa_inspection_date),
                s(self.qa_inspector),
                "true" if self.qa_passed else "false",
            )
        ).encode("utf-8")

    def document_hash(self) -> bytes:
        """SHA-256 of the canonical bytes: the content address and the Merkle leaf's bytes32."""
        return hashlib.sha256(self.to_canonical_json()).digest()

    def to_dict(self) -> dict[str, Any]:
        """The nested JSON object of the schema."""
        return {
            "schema": SCHEMA,
            "device": {
                "serial_number": self.serial_number,
                "imei": self.imei,
                "address": self.address,
            },
            "manufacturing": {
                "manufacturer_name": self.manufacturer_name,
                "manufacturer_licence_id": self.manufacturer_licence_id,
                "manufacturing_date": self.manufacturing_date,
                "device_licence_id": self.device_licence_id,
                "hardware_model": self.hardware_model,
                "hardware_revision": self.hardware_revision,
                "design_hash": self.design_hash,
            },
            "tests": {
                "ict": {"result": self.ict_result, "report_sha256": self.ict_report_sha256},
                "mechanical": {
                    "result": self.mechanical_result,
                    "report_sha256": self.mechanical_report_sha256,
                },
                "qa": {
                    "passed": self.qa_passed,
                    "inspection_date": self.qa_inspection_date,
                    "inspector": self.qa_inspector,
                },
            },
            "firmware": {
                "initial_version": self.firmware_version,
                "image_sha256": self.firmware_sha256,
            },
            "provisioning_date": self.provisioning_date,
            "device_signature": self.device_signature,
        }

    # -- the device proof ----------------------------------------------------

    def proof_fields(self) -> DeviceProofFields:
        """What the device signed, to check :attr:`device_signature` with ``proof.recover_signer``."""
        return DeviceProofFields(
            device=self.address,
            serial_number=self.serial_number,
            imei=self.imei,
            device_licence_id=self.device_licence_id,
            manufacturing_date=self.manufacturing_date,
            ict_result=self.ict_result,
            ict_report_sha256=bytes.fromhex(self.ict_report_sha256),
            mechanical_result=self.mechanical_result,
            mechanical_report_sha256=bytes.fromhex(self.mechanical_report_sha256),
            qa_passed=self.qa_passed,
            qa_inspection_date=self.qa_inspection_date,
            qa_inspector=self.qa_inspector,
            firmware_version=self.firmware_version,
            firmware_sha256=bytes.fromhex(self.firmware_sha256),
            provisioning_date=self.provisioning_date,
        )

    @property
    def signature_bytes(self) -> bytes:
        return bytes.fromhex(self.device_signature[2:])

    # -- parsing -------------------------------------------------------------

    @classmethod
    def from_json(cls, data: bytes | str) -> CertificateDocument:
        """Parse and validate a document; refuses unknown, missing, duplicated or malformed fields.

        Any JSON spelling is accepted (the content address is always recomputed
        from the canonical form); compare ``to_canonical_json()`` with the input
        if you need to know that it was canonical.
        """
        try:
            obj = json.loads(data, object_pairs_hook=_no_duplicates, parse_constant=_no_constants)
        except (ValueError, UnicodeDecodeError) as exc:
            raise DocumentError(f"certificate document is not valid JSON: {exc}") from None
        return cls.from_dict(obj)

    @classmethod
    def from_dict(cls, obj: Any) -> CertificateDocument:
        """Validate the nested JSON object of the schema; every problem is listed in one error."""
        problems: list[str] = []
        flat = _Flattener(problems).flatten(obj)
        if problems:
            raise DocumentError("certificate document is invalid: " + "; ".join(problems))
        return cls(**flat)


def _safe_int(n: int) -> int:
    if isinstance(n, bool) or not isinstance(n, int) or not 0 <= n <= MAX_SAFE_INTEGER:
        raise DocumentError(f"licence ids must be integers in 0..2**53-1 to be exact in JSON, got {n!r}")
    return n


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise ValueError(f"duplicated key {key!r}")
        result[key] = value
    return result


def _no_constants(name: str) -> Any:
    raise ValueError(f"{name} is not allowed in a certificate document")


def _is_str(check: Callable[[str], Any]) -> Callable[[Any], bool]:
    return lambda v: isinstance(v, str) and bool(check(v))


def _is_licence_id(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and 1 <= v <= MAX_SAFE_INTEGER


_RESULT = (_is_str(lambda v: v in TEST_RESULTS), '"pass" or "fail"')
_SHA256 = (_is_str(_SHA256_RE.fullmatch), "64 lowercase hex digits (SHA-256)")
_DATE = (_is_str(parse_iso_date), "a date YYYY-MM-DD")
_TEXT = (_is_str(is_free_text), "non-empty printable text without surrounding spaces")

_LAYOUT: dict[str, Any] = {
    "schema": ("schema", (lambda v: v == SCHEMA, f'"{SCHEMA}"')),
    "device": {
        "serial_number": ("serial_number", (_is_str(is_serial_number), "1 to 64 printable ASCII characters")),
        "imei": ("imei", (_is_str(is_imei), "15 digits with a valid Luhn check digit")),
        "address": ("address", (_is_str(is_checksum_address), "an EIP-55 checksummed 0x address")),
    },
    "manufacturing": {
        "manufacturer_name": ("manufacturer_name", _TEXT),
        "manufacturer_licence_id": ("manufacturer_licence_id", (_is_licence_id, "an integer 1..2**53-1")),
        "manufacturing_date": ("manufacturing_date", _DATE),
        "device_licence_id": ("device_licence_id", (_is_licence_id, "an integer 1..2**53-1")),
        "hardware_model": ("hardware_model", _TEXT),
        "hardware_revision": ("hardware_revision", _TEXT),
        "design_hash": ("design_hash", (_is_str(_BYTES32_RE.fullmatch), "0x and 64 lowercase hex digits")),
    },
    "tests": {
        "ict": {"result": ("ict_result", _RESULT), "report_sha256": ("ict_report_sha256", _SHA256)},
        "mechanical": {
            "result": ("mechanical_result", _RESULT),
            "report_sha256": ("mechanical_report_sha256", _SHA256),
        },
        "qa": {
            "passed": ("qa_passed", (lambda v: isinstance(v, bool), "true or false")),
            "inspection_date": ("qa_inspection_date", _DATE),
            "inspector": ("qa_inspector", _TEXT),
        },
    },
    "firmware": {
        "initial_version": ("firmware_version", _TEXT),
        "image_sha256": ("firmware_sha256", _SHA256),
    },
    "provisioning_date": ("provisioning_date", _DATE),
    "device_signature": (
        "device_signature",
        (_is_str(_SIGNATURE_RE.fullmatch), "0x and 130 lowercase hex digits (65-byte r || s || v)"),
    ),
}


def _layout_fields(layout: dict[str, Any]) -> set[str]:
    names: set[str] = set()
    for spec in layout.values():
        names |= _layout_fields(spec) if isinstance(spec, dict) else {spec[0]}
    return names


if _layout_fields(_LAYOUT) - {"schema"} != {f.name for f in fields(CertificateDocument)}:
    raise RuntimeError("document layout and CertificateDocument fields disagree")


class _Flattener:
    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        self.flat: dict[str, Any] = {}

    def flatten(self, obj: Any) -> dict[str, Any]:
        self._walk(obj, _LAYOUT, "")
        return self.flat

    def _walk(self, obj: Any, layout: dict[str, Any], path: str) -> None:
        where = path[:-1] or "document"
        if not isinstance(obj, dict):
            self.problems.append(f"{where} must be a JSON object, found {_json_type(obj)}")
            return
        for key in obj:
            if key not in layout:
                expected = ", ".join(layout)
                self.problems.append(f"unknown field {path}{key} (expected only: {expected})")
        for key, spec in layout.items():
            name = path + key
            if key not in obj:
                self.problems.append(f"missing field {name}")
                continue
            value = obj[key]
            if isinstance(spec, dict):
                self._walk(value, spec, name + ".")
                continue
            flat_name, (check, expected) = spec
            if not check(value):
                self.problems.append(
                    f"{name} must be {expected}, found {json.dumps(value, ensure_ascii=False)}"
                )
                continue
            if flat_name != "schema":
                self.flat[flat_name] = value


def _json_type(value: Any) -> str:
    if isinstance(value, list):
        return "an array"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, bool):
        return "a boolean"
    if value is None:
        return "null"
    return "a number"
