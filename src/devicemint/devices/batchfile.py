"""Factory batch files: streaming reader, per-row validation, certificate documents.

A factory batch is a CSV file with a header row, or a JSON Lines file, with
exactly the fields of :data:`FIELDS` (DESIGN section 7). It is read one row at
a time and never held in memory whole: a factory sends tens of thousands of
devices in one file.

Every row is checked against every rule and *all* of its problems are
reported, each as a :class:`RowError` naming the row (the line number a person
sees in an editor), the field, what is wrong and what would be right. Rows are
never dropped silently: a row is either a :class:`FactoryRow` or a list of
errors.

Uniqueness within the file is tracked by :class:`BatchValidator`, which keeps
only the keys (serial, IMEI, address) and the row that first used each.
Uniqueness across the chain and the database is the caller's business, via the
``known`` hook.

With ``workers`` >= 2 the per-row checks (mostly signature recovery and
EIP-712 hashing, ~130 µs a row) run in forked worker processes; the reading,
the uniqueness tracking and the results stay in the calling process, and the
results are the same, in the same order, as without workers.
"""

from __future__ import annotations

import csv
import difflib
import gc
import io
import json
import multiprocessing
import multiprocessing.connection
import operator
import os
import signal
import threading
from collections import deque
from collections.abc import Callable, Generator, Iterable, Iterator, Mapping
from concurrent.futures import Future, ProcessPoolExecutor
from contextlib import closing
from dataclasses import dataclass, replace
from dataclasses import fields as dataclass_fields
from datetime import date
from itertools import chain, islice
from pathlib import Path
from typing import Any

from devicemint.devices.document import (
    MAX_SAFE_INTEGER,
    SERIAL_MAX_LENGTH,
    CertificateDocument,
    DocumentError,
    is_free_text,
    luhn_check_digit,
    parse_iso_date,
)
from devicemint.devices.proof import (
    DeviceProofFields,
    ProofDomain,
    SignatureError,
    address_of_public_key,
    checksum_address,
    recover_public_key,
)
from devicemint.errors import DevicemintError

__all__ = [
    "FIELDS",
    "BatchFileError",
    "BatchValidator",
    "FactoryRow",
    "Known",
    "RawRow",
    "RowError",
    "build_document",
    "detect_format",
    "iter_rows",
    "validate_row",
]

FIELDS: tuple[str, ...] = (
    "serial_number",
    "imei",
    "device_address",
    "manufacturing_date",
    "ict_result",
    "ict_report_sha256",
    "mechanical_result",
    "mechanical_report_sha256",
    "qa_passed",
    "qa_inspection_date",
    "qa_inspector",
    "firmware_version",
    "firmware_sha256",
    "provisioning_date",
    "device_signature",
)
_FIELD_SET = frozenset(FIELDS)
CSV_SUFFIXES = (".csv",)
JSONL_SUFFIXES = (".jsonl", ".ndjson")


# --------------------------------------------------------------------------- #
# Values
# --------------------------------------------------------------------------- #


@dataclass(frozen=True, slots=True)
class RowError:
    """One problem with one field of one row. ``field`` is empty for a row-level problem."""

    row: int
    field: str
    reason: str

    def __str__(self) -> str:
        if self.field:
            return f"row {self.row}, field {self.field}: {self.reason}"
        return f"row {self.row}: {self.reason}"


@dataclass(frozen=True, slots=True)
class FactoryRow:
    """A validated device row, with typed values.

    ``device_address`` is EIP-55 checksummed, hashes are 32 raw bytes, and
    ``device_signature`` is 65 bytes with ``v`` normalised to 27/28 (so one
    proof has one spelling in the certificate document); ``device_public_key`` is
    the 65-byte uncompressed secp256k1 key it recovers to.
    """

    row: int
    serial_number: str
    imei: str
    device_address: str
    manufacturing_date: date
    ict_result: str
    ict_report_sha256: bytes
    mechanical_result: str
    mechanical_report_sha256: bytes
    qa_passed: bool
    qa_inspection_date: date
    qa_inspector: str
    firmware_version: str
    firmware_sha256: bytes
    provisioning_date: date
    device_signature: bytes
    # Recovered from device_signature: the key the device's X.509 certificate certifies.
    device_public_key: bytes
    # The device's X.509 certificate (DER), when the validator was given an `issue` step.
    certificate: bytes = b""

    def __reduce__(self) -> tuple[type[FactoryRow], tuple[Any, ...]]:
        # Rows come back from the worker processes pickled. Rebuilt by the constructor they
        # pickle in about half the time of the slots-dataclass default, which looks up
        # fields() for every row.
        return FactoryRow, _factory_row_values(self)

    def proof_fields(self, device_licence_id: int) -> DeviceProofFields:
        """What the device signed, for ``device_licence_id``."""
        return DeviceProofFields(
            device=self.device_address,
            serial_number=self.serial_number,
            imei=self.imei,
            device_licence_id=device_licence_id,
            manufacturing_date=self.manufacturing_date.isoformat(),
            ict_result=self.ict_result,
            ict_report_sha256=self.ict_report_sha256,
            mechanical_result=self.mechanical_result,
            mechanical_report_sha256=self.mechanical_report_sha256,
            qa_passed=self.qa_passed,
            qa_inspection_date=self.qa_inspection_date.isoformat(),
            qa_inspector=self.qa_inspector,
            firmware_version=self.firmware_version,
            firmware_sha256=self.firmware_sha256,
            provisioning_date=self.provisioning_date.isoformat(),
        )


_factory_row_values = operator.attrgetter(*(f.name for f in dataclass_fields(FactoryRow)))


class RawRow(dict[str, Any]):
    """One row as read, field -> value (strings; JSON Lines may hold other JSON types).

    ``problem`` is set when the row could not be read into fields at all (a
    CSV row with the wrong number of values, a JSON line that is not an
    object); the row is then reported with that problem alone.
    """

    problem: str | None = None


class BatchFileError(DevicemintError):
    """The file as a whole cannot be read: no such file, bad encoding, bad header.

    ``errors`` holds the problems as :class:`RowError` (row 1 is the header of
    a CSV file), so they can be reported like row errors.
    """

    def __init__(self, message: str, errors: list[RowError] | None = None) -> None:
        self.errors = errors or []
        super().__init__(message)


# --------------------------------------------------------------------------- #
# Reading
# --------------------------------------------------------------------------- #


def detect_format(path: Path) -> str:
    """``"csv"`` or ``"jsonl"``: by extension, else by the first non-blank character (``{`` is JSON)."""
    suffix = path.suffix.lower()
    if suffix in CSV_SUFFIXES:
        return "csv"
    if suffix in JSONL_SUFFIXES:
        return "jsonl"
    with path.open("r", encoding="utf-8-sig", errors="replace") as handle:
        while chunk := handle.read(4096):
            stripped = chunk.lstrip()
            if stripped:
                return "jsonl" if stripped[0] == "{" else "csv"
    return "csv"


def iter_rows(path: str | Path) -> Iterator[tuple[int, RawRow]]:
    """Stream ``(row number, raw row)`` from a CSV or JSON Lines batch file.

    Row numbers are line numbers as an editor shows them: in CSV the header is
    row 1 and the first device is row 2; in JSON Lines each line is its own row.
    Blank lines are skipped. A bad header raises :class:`BatchFileError` before
    any row is yielded.
    """
    path = Path(path)
    if not path.is_file():
        raise BatchFileError(f"{path}: no such file")
    fmt = detect_format(path)
    try:
        with path.open("r", encoding="utf-8-sig", newline="" if fmt == "csv" else None) as handle:
            if fmt == "csv":
                yield from _iter_csv(handle, path)
            else:
                yield from _iter_jsonl(handle)
    except UnicodeDecodeError as exc:
        raise BatchFileError(
            f"{path}: not UTF-8 text (byte 0x{exc.object[exc.start]:02x} cannot be decoded); save it as UTF-8"
        ) from None


def _iter_csv(handle: io.TextIOBase, path: Path) -> Iterator[tuple[int, RawRow]]:
    reader = csv.reader(handle, strict=True)
    header: list[str] | None = None
    header_line = 0
    width = 0
    before = 0
    try:
        for record in reader:
            line = before + 1
            before = reader.line_num
            if not record or (len(record) == 1 and not record[0].strip()):
                continue  # blank line
            if header is None:
                header_line = line
                header = [name.strip() for name in record]
                _check_header(header, header_line, path)
                width = len(header)
                continue
            if len(record) != width:
                raw = RawRow()
                raw.problem = (
                    f"has {len(record)} values, expected {width} (one per header column); "
                    "a value containing a comma must be quoted"
                )
                yield line, raw
                continue
            yield line, RawRow(zip(header, record, strict=True))
    except csv.Error as exc:
        raise BatchFileError(f"{path}, line {reader.line_num}: malformed CSV: {exc}") from None
    if header is None:
        raise BatchFileError(
            f"{path}: the file is empty; expected a header row with: {', '.join(FIELDS)}",
            [RowError(1, "", "the file holds no header row and no device rows")],
        )


def _check_header(header: list[str], line: int, path: Path) -> None:
    if len(header) == 1:
        for separator, name in ((";", "semicolons"), ("\t", "tabs"), ("|", "bars")):
            if header[0].count(separator) >= 2:
                error = RowError(
                    line,
                    "",
                    f"the header is separated by {name}; a batch CSV file separates columns with commas",
                )
                raise BatchFileError(f"{path}: {error}", [error])
    errors: list[RowError] = []
    seen: set[str] = set()
    for name in header:
        if name in seen:
            errors.append(RowError(line, name, "column appears more than once in the header"))
        seen.add(name)
        if name not in _FIELD_SET:
            errors.append(RowError(line, name or "(empty)", _unknown_field_reason(name, "column")))
    for name in FIELDS:
        if name not in seen:
            errors.append(RowError(line, name, "missing column in the header"))
    if errors:
        details = "; ".join(str(e) for e in errors)
        raise BatchFileError(f"{path}: the header row is wrong: {details}", errors)


def _unknown_field_reason(name: str, kind: str) -> str:
    close = difflib.get_close_matches(name, FIELDS, n=1, cutoff=0.6)
    hint = f" (did you mean {close[0]}?)" if close else f" (expected only: {', '.join(FIELDS)})"
    return f"unknown {kind}{hint}"


def _no_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise ValueError(f"field {key!r} appears twice")
        result[key] = value
    return result


def _iter_jsonl(handle: io.TextIOBase) -> Iterator[tuple[int, RawRow]]:
    for line_no, line in enumerate(handle, start=1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line, object_pairs_hook=_no_duplicate_keys)
        except ValueError as exc:
            raw = RawRow()
            raw.problem = f"not valid JSON ({exc}); each line must be one JSON object"
            yield line_no, raw
            continue
        if not isinstance(obj, dict):
            raw = RawRow()
            raw.problem = f"is a JSON {type(obj).__name__}, expected an object with the device's fields"
            yield line_no, raw
            continue
        yield line_no, RawRow(obj)


# --------------------------------------------------------------------------- #
# Validating one row
# --------------------------------------------------------------------------- #

_HEX = frozenset("0123456789abcdefABCDEF")
_BOOLEANS = {"true": True, "false": False, "1": True, "0": False}
_RESULTS = ("pass", "fail")
_TEST_NAMES = {"ict_result": "ICT", "mechanical_result": "the mechanical test"}


def _describe_char(ch: str) -> str:
    return f"U+{ord(ch):04X}" if not ch.isprintable() or ch == " " else f"U+{ord(ch):04X} {ch!r}"


def _check_text(value: str, what: str) -> str | None:
    if not value:
        return f"is empty; expected {what}"
    if value.isprintable():
        return None
    for i, ch in enumerate(value, start=1):
        if not ch.isprintable():
            return f"contains a control or invisible character ({_describe_char(ch)}) at position {i}"
    return None


def _check_serial(value: str) -> str | None:
    if not value:
        return f"is empty; expected 1 to {SERIAL_MAX_LENGTH} printable ASCII characters"
    if len(value) > SERIAL_MAX_LENGTH:
        return f"is {len(value)} characters long; at most {SERIAL_MAX_LENGTH} are allowed"
    if value.isascii() and value.isprintable():
        return None
    for i, ch in enumerate(value, start=1):
        if not " " <= ch <= "~":
            return (
                f"contains {_describe_char(ch)} at position {i}; "
                "only printable ASCII characters (space to ~) are allowed"
            )
    return None


def _check_imei(value: str) -> str | None:
    if not value:
        return "is empty; an IMEI is exactly 15 digits"
    if not value.isascii() or not value.isdigit():
        bad = next((ch for ch in value if not ("0" <= ch <= "9")), "")
        return f"{value!r} contains {_describe_char(bad)}; an IMEI is exactly 15 digits"
    if len(value) != 15:
        return f"{value!r} has {len(value)} digits; an IMEI has exactly 15"
    expected = luhn_check_digit(value[:14])
    if ord(value[14]) - 48 != expected:
        return f"check digit is {value[14]}, expected {expected} (Luhn)"
    return None


def _parse_address(value: str) -> tuple[bytes | None, str | None, str | None]:
    """(raw bytes, checksummed form, problem)."""
    body = value[2:] if value[:2] in ("0x", "0X") else None
    if body is None or len(body) != 40 or not _HEX.issuperset(body):
        return None, None, f"{value!r} is not an address; expected 0x followed by 40 hex digits"
    raw = bytes.fromhex(body)
    checksummed = checksum_address(raw)
    if body != body.lower() and body != body.upper() and checksummed[2:] != body:
        return (
            raw,
            checksummed,
            "EIP-55 checksum does not match; mixed case must be exactly the checksummed form "
            f"({checksummed} for these digits), and a mismatch usually means a typo in the address",
        )
    return raw, checksummed, None


def _parse_hash(value: str) -> tuple[bytes | None, str | None]:
    body = value[2:] if value[:2] in ("0x", "0X") else value
    if not _HEX.issuperset(body):
        bad = next(ch for ch in body if ch not in _HEX)
        return None, f"contains {_describe_char(bad)}; expected 64 hex digits (a SHA-256, optional 0x)"
    if len(body) != 64:
        return None, f"has {len(body)} hex digits, expected 64 (a SHA-256, optional 0x)"
    return bytes.fromhex(body), None


def _parse_signature(value: str) -> tuple[bytes | None, str | None]:
    body = value[2:] if value[:2] in ("0x", "0X") else value
    if not _HEX.issuperset(body):
        bad = next(ch for ch in body if ch not in _HEX)
        return None, f"contains {_describe_char(bad)}; expected 0x followed by 130 hex digits (r || s || v)"
    if len(body) != 130:
        return None, f"has {len(body)} hex digits, expected 130 (65 bytes: r || s || v)"
    return bytes.fromhex(body), None


_DATE_FIELDS = ("manufacturing_date", "qa_inspection_date", "provisioning_date")
_DATE_WORDS = {
    "manufacturing_date": "manufacturing",
    "qa_inspection_date": "the QA inspection",
    "provisioning_date": "provisioning",
}


@dataclass(slots=True)
class _Keys:
    """The uniqueness keys of a row whose fields were well formed (None otherwise)."""

    serial: str | None = None
    imei: str | None = None
    address: str | None = None  # checksummed

    def __reduce__(self) -> tuple[type[_Keys], tuple[str | None, str | None, str | None]]:
        return _Keys, (self.serial, self.imei, self.address)  # as FactoryRow.__reduce__


def validate_row(
    row_no: int,
    raw: Mapping[str, Any],
    *,
    domain: ProofDomain,
    device_licence_id: int,
    today: date,
) -> FactoryRow | list[RowError]:
    """Check one row against every rule; return the typed row or *all* its errors.

    Uniqueness within the file is not checked here (see :class:`BatchValidator`).
    """
    return _validate(row_no, raw, domain, device_licence_id, today)[0]


def _validate(
    row_no: int,
    raw: Mapping[str, Any],
    domain: ProofDomain,
    device_licence_id: int,
    today: date,
) -> tuple[FactoryRow | list[RowError], _Keys]:
    keys = _Keys()
    problem = getattr(raw, "problem", None)
    if problem:
        return [RowError(row_no, "", problem)], keys

    errors: list[RowError] = []

    def err(field: str, reason: str) -> None:
        errors.append(RowError(row_no, field, reason))

    # Presence, unknown fields (JSON Lines) and JSON types.
    text: dict[str, str] = {}
    for name in raw:
        if name not in _FIELD_SET:
            err(str(name), _unknown_field_reason(str(name), "field"))
    for name in FIELDS:
        if name not in raw:
            err(name, "is missing")
            continue
        value = raw[name]
        if isinstance(value, str):
            if value != value.strip():
                err(name, f"has leading or trailing spaces ({value!r}); remove them")
                continue
            text[name] = value
        elif isinstance(value, bool) and name == "qa_passed":
            text[name] = "true" if value else "false"
        else:
            kind = "null" if value is None else type(value).__name__
            err(name, f"must be a JSON string, found {kind} {json.dumps(value)}; quote the value")

    # Free text and identifiers.
    serial = text.get("serial_number")
    if serial is not None:
        if reason := _check_serial(serial):
            err("serial_number", reason)
        else:
            keys.serial = serial
    imei = text.get("imei")
    if imei is not None:
        if reason := _check_imei(imei):
            err("imei", reason)
        else:
            keys.imei = imei
    address_raw: bytes | None = None
    address: str | None = None
    if (value := text.get("device_address")) is not None:
        address_raw, address, reason = _parse_address(value)
        if reason:
            err("device_address", reason)
            address_raw = None
        else:
            keys.address = address
    for name, what in (
        ("qa_inspector", "the name of the QA inspector"),
        ("firmware_version", "the initial firmware version"),
    ):
        if (value := text.get(name)) is not None and (reason := _check_text(value, what)):
            err(name, reason)

    # Dates, each on its own, then their order.
    dates: dict[str, date] = {}
    for name in _DATE_FIELDS:
        value = text.get(name)
        if value is None:
            continue
        parsed = parse_iso_date(value)
        if parsed is None:
            err(name, f"{value!r} is not a valid date; expected a calendar date written YYYY-MM-DD")
        else:
            dates[name] = parsed
    previous: str | None = None
    for name in _DATE_FIELDS:
        if name not in dates:
            continue
        if previous is not None and dates[name] < dates[previous]:
            err(
                name,
                f"{dates[name]} is before {previous} {dates[previous]}; "
                f"{_DATE_WORDS[name]} must be on or after {_DATE_WORDS[previous]}",
            )
        previous = name
    if previous is not None and dates[previous] > today:
        err(previous, f"{dates[previous]} is in the future (today is {today}); expected {today} or earlier")

    # Test results: well formed, and passed.
    for name in ("ict_result", "mechanical_result"):
        value = text.get(name)
        if value is None:
            continue
        if value not in _RESULTS:
            err(name, f"{value!r} is not a test result; expected 'pass' or 'fail' (lowercase)")
        elif value == "fail":
            err(
                name,
                f"the device failed {_TEST_NAMES[name]}; only devices that passed every test are certified",
            )
    qa_passed: bool | None = None
    if (value := text.get("qa_passed")) is not None:
        qa_passed = _BOOLEANS.get(value.lower())
        if qa_passed is None:
            err("qa_passed", f"{value!r} is not a boolean; expected true or false (or 1 or 0)")
        elif not qa_passed:
            err("qa_passed", "the device did not pass QA; only devices that passed every test are certified")

    hashes: dict[str, bytes] = {}
    for name in ("ict_report_sha256", "mechanical_report_sha256", "firmware_sha256"):
        value = text.get(name)
        if value is None:
            continue
        digest, reason = _parse_hash(value)
        if reason:
            err(name, reason)
        else:
            hashes[name] = digest  # type: ignore[assignment]

    # The proof of possession, whenever the signed values could be read.
    signature: bytes | None = None
    if (value := text.get("device_signature")) is not None:
        signature, reason = _parse_signature(value)
        if reason:
            err("device_signature", reason)
    signed_fields_readable = (
        signature is not None
        and address_raw is not None
        and qa_passed is not None
        and len(hashes) == 3
        and len(text) == len(FIELDS)
    )
    if signed_fields_readable:
        assert signature is not None and address is not None and qa_passed is not None
        fields = DeviceProofFields(
            device=address,
            serial_number=text["serial_number"],
            imei=text["imei"],
            device_licence_id=device_licence_id,
            manufacturing_date=text["manufacturing_date"],
            ict_result=text["ict_result"],
            ict_report_sha256=hashes["ict_report_sha256"],
            mechanical_result=text["mechanical_result"],
            mechanical_report_sha256=hashes["mechanical_report_sha256"],
            qa_passed=qa_passed,
            qa_inspection_date=text["qa_inspection_date"],
            qa_inspector=text["qa_inspector"],
            firmware_version=text["firmware_version"],
            firmware_sha256=hashes["firmware_sha256"],
            provisioning_date=text["provisioning_date"],
        )
        try:
            public_key = recover_public_key(domain, fields, signature)
            signer = address_of_public_key(public_key)
        except SignatureError as exc:
            err("device_signature", f"{exc}; it must be the device's EIP-712 proof of possession")
        else:
            if signer != address_raw:
                err(
                    "device_signature",
                    f"is signed by {checksum_address(signer)}, expected the device_address {address}: "
                    "the device key must sign this row's values as they are written, "
                    f"for chain id {domain.chain_id}, contract {domain.verifying_contract} "
                    f"and device licence {device_licence_id}",
                )
        if signature[64] < 27:
            signature = signature[:64] + bytes((signature[64] + 27,))

    if errors:
        return errors, keys
    return (
        FactoryRow(
            row=row_no,
            serial_number=text["serial_number"],
            imei=text["imei"],
            device_address=address,  # type: ignore[arg-type]
            manufacturing_date=dates["manufacturing_date"],
            ict_result=text["ict_result"],
            ict_report_sha256=hashes["ict_report_sha256"],
            mechanical_result=text["mechanical_result"],
            mechanical_report_sha256=hashes["mechanical_report_sha256"],
            qa_passed=True,
            qa_inspection_date=dates["qa_inspection_date"],
            qa_inspector=text["qa_inspector"],
            firmware_version=text["firmware_version"],
            firmware_sha256=hashes["firmware_sha256"],
            provisioning_date=dates["provisioning_date"],
            device_signature=signature,  # type: ignore[arg-type]
            device_public_key=public_key,
        ),
        keys,
    )


# --------------------------------------------------------------------------- #
# Validating a whole file
# --------------------------------------------------------------------------- #

Known = Callable[[dict[str, int], dict[str, int], dict[str, int]], Iterable[tuple[int, str, str]]]
"""``known(serials, imeis, addresses)`` -> conflicts ``(row, field, reason)``.

Each argument maps a value (addresses checksummed) to the row that holds it,
for one chunk of rows. The hook answers which of them already exist outside
the file (database, chain).
"""

RowResult = FactoryRow | list[RowError]
_Validated = tuple[int, RowResult, _Keys]
_Chunk = list[tuple[int, Mapping[str, Any]]]
# What a valid row is given where it was validated, in the worker processes when there are
# any: intake issues the device's X.509 certificate (DER) here, so signing certificates shares
# the cores with validation instead of queueing behind it in the parent.
Issue = Callable[[FactoryRow], bytes]
# Each worker's copy of the step, inherited through fork with the key it signs with: never
# pickled, so a signer need not be picklable (only fork-safe).
_WORKER_ISSUE: Issue | None = None

# Rows go to the worker processes in chunks: per row, pickling and queueing would
# cost a good part of the ~130 µs the row itself takes.
POOL_CHUNK_ROWS = 500
# Chunks handed to the workers and not yet yielded, per worker: enough to keep every
# worker busy while the caller consumes a chunk of results, and few enough that memory
# stays flat however long the file is.
POOL_CHUNKS_PER_WORKER = 2


class BatchValidator:
    """Validate a batch file (or any ``(row, raw)`` stream) row by row, in file order.

    Iterating yields, for every row, either a :class:`FactoryRow` or the list
    of its :class:`RowError`. A header problem is yielded as one list of errors
    on the header row, and nothing else follows. Counts are kept in
    :attr:`rows`, :attr:`valid`, :attr:`invalid` and :attr:`errors`.

    Memory stays flat: rows are not kept, only the uniqueness keys; with a
    ``known`` hook, at most ``chunk_size`` results wait for the hook's answer.

    ``workers`` >= 2 validates rows in that many forked processes (see
    :meth:`_validated_in_workers`), with the same results in the same order as
    the sequential path (0 or 1). The processes exist only while iterating;
    stopping early, or an error, shuts them down. A ``source`` other than a path
    must then yield picklable rows.
    """

    def __init__(
        self,
        source: str | Path | Iterable[tuple[int, Mapping[str, Any]]],
        *,
        domain: ProofDomain,
        device_licence_id: int,
        today: date,
        known: Known | None = None,
        chunk_size: int = 1000,
        workers: int = 0,
        issue: Issue | None = None,
    ) -> None:
        if isinstance(device_licence_id, bool) or not 1 <= device_licence_id <= MAX_SAFE_INTEGER:
            raise ValueError(f"device licence id must be a positive integer, got {device_licence_id!r}")
        if chunk_size < 1:
            raise ValueError("chunk_size must be at least 1")
        if isinstance(workers, bool) or not isinstance(workers, int) or workers < 0:
            raise ValueError(f"workers must be an integer >= 0, got {workers!r}")
        self.source = source
        self.domain = domain
        self.device_licence_id = device_licence_id
        self.today = today
        self.known = known
        self.chunk_size = chunk_size
        self.workers = workers
        self.issue = issue
        self.rows = 0
        self.valid = 0
        self.invalid = 0
        self.errors = 0

    def _rows(self) -> Iterator[tuple[int, Mapping[str, Any]]]:
        if isinstance(self.source, str | Path):
            return iter_rows(self.source)
        return iter(self.source)

    def __iter__(self) -> Iterator[RowResult]:
        self.rows = self.valid = self.invalid = self.errors = 0
        seen: dict[str, dict[str, int]] = {"serial_number": {}, "imei": {}, "device_address": {}}
        pending: list[tuple[int, RowResult, _Keys]] = []
        # closing(): a caller that stops early shuts the worker processes down now,
        # not whenever the abandoned generator happens to be collected.
        with closing(self._validated()) as validated:
            while True:
                try:
                    item = next(validated, None)
                except BatchFileError as exc:
                    if not exc.errors:
                        raise
                    yield from self._count([exc.errors])
                    return
                if item is None:
                    break
                row_no, result, keys = item
                duplicates = []
                for field, value in (
                    ("serial_number", keys.serial),
                    ("imei", keys.imei),
                    ("device_address", keys.address.lower() if keys.address else None),
                ):
                    if value is None:
                        continue
                    first = seen[field].setdefault(value, row_no)
                    if first != row_no:
                        shown = keys.address if field == "device_address" else value
                        duplicates.append(
                            RowError(
                                row_no,
                                field,
                                f"{shown} is also on row {first}; each device appears once per file",
                            )
                        )
                if duplicates:
                    result = (result if isinstance(result, list) else []) + duplicates
                if self.known is None:
                    yield from self._count([result])
                    continue
                pending.append((row_no, result, keys))
                if len(pending) >= self.chunk_size:
                    yield from self._count(self._ask_known(pending))
                    pending = []
            if pending:
                yield from self._count(self._ask_known(pending))

    def _validated(self) -> Generator[_Validated, None, None]:
        """``(row, result, keys)`` for every row in file order; a read error is raised where it happened."""
        rows = self._rows()
        if self.workers < 2:
            for row_no, raw in rows:
                yield _validate_issued(
                    row_no, raw, self.domain, self.device_licence_id, self.today, self.issue
                )
            return
        yield from self._validated_in_workers(rows)

    def _validated_in_workers(self, rows: Iterator[tuple[int, Mapping[str, Any]]]) -> Iterator[_Validated]:
        """As :meth:`_validated`, with the per-row checks in ``workers`` forked processes."""
        failure: list[Exception] = []
        chunks = _read_chunks(rows, POOL_CHUNK_ROWS, failure)
        # Read two chunks before anything is yielded. A file of one chunk or less is
        # validated here: its one chunk would keep one worker busy and leave the others
        # idle, so forking them (~20 ms, more in a big process) would only add. A longer
        # file gets its workers now, before the caller has seen a result and so before it
        # starts any threads of its own to handle them (fork copies only this thread; a
        # lock another thread holds at that moment stays held forever in the child).
        head = list(islice(chunks, 2))
        if len(head) < 2:
            for chunk in head:
                yield from _validate_chunk(chunk, self.domain, self.device_licence_id, self.today, self.issue)
        else:
            yield from self._in_pool(chain(head, chunks))
        # Rows read before a read error were all yielded above, as the sequential path does.
        if failure:
            raise failure[0]

    def _in_pool(self, chunks: Iterator[_Chunk]) -> Iterator[_Validated]:
        # A ProcessPoolExecutor rather than multiprocessing.Pool: when a worker dies (OOM
        # killer, a crash in native code) it fails the waiting futures with BrokenProcessPool,
        # where Pool would wait forever for the lost chunk. With fork it forks all the
        # workers at the first submit, before it starts its own manager thread.
        pool = ProcessPoolExecutor(
            self.workers,
            mp_context=multiprocessing.get_context("fork"),
            initializer=_init_worker,
            initargs=(self.issue,),
        )
        try:
            in_flight: deque[Future[list[_Validated]]] = deque()
            for chunk in chunks:
                in_flight.append(
                    pool.submit(
                        _validate_chunk_in_worker, chunk, self.domain, self.device_licence_id, self.today
                    )
                )
                # Reading the file stops here until the oldest chunk is back: bounded memory,
                # and results in file order.
                if len(in_flight) >= POOL_CHUNKS_PER_WORKER * self.workers:
                    yield from in_flight.popleft().result()
            while in_flight:
                yield from in_flight.popleft().result()
        finally:
            # Also on an early stop or an error: chunks not started are dropped, the ones
            # running finish (tens of ms), and every worker is joined.
            pool.shutdown(wait=True, cancel_futures=True)

    def _ask_known(self, pending: list[tuple[int, RowResult, _Keys]]) -> list[RowResult]:
        assert self.known is not None
        serials = {k.serial: row for row, _, k in pending if k.serial is not None}
        imeis = {k.imei: row for row, _, k in pending if k.imei is not None}
        addresses = {k.address: row for row, _, k in pending if k.address is not None}
        conflicts: dict[int, list[RowError]] = {}
        for row, field, reason in self.known(serials, imeis, addresses):
            conflicts.setdefault(row, []).append(RowError(row, field, reason))
        results: list[RowResult] = []
        for row, result, _ in pending:
            extra = conflicts.get(row)
            if extra:
                result = (result if isinstance(result, list) else []) + extra
            results.append(result)
        return results

    def _count(self, results: Iterable[RowResult]) -> Iterator[RowResult]:
        for result in results:
            self.rows += 1
            if isinstance(result, list):
                self.invalid += 1
                self.errors += len(result)
            else:
                self.valid += 1
            yield result


def _read_chunks(
    rows: Iterator[tuple[int, Mapping[str, Any]]], size: int, failure: list[Exception]
) -> Iterator[_Chunk]:
    """``rows`` in lists of ``size``. A read error ends the stream and is appended to
    ``failure`` instead of raised, so that the rows read before it are still validated
    and yielded before it is reported."""
    chunk: _Chunk = []
    while True:
        try:
            item = next(rows, None)
        except Exception as exc:
            failure.append(exc)
            break
        if item is None:
            break
        chunk.append(item)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def _validate_issued(
    row_no: int,
    raw: Mapping[str, Any],
    domain: ProofDomain,
    device_licence_id: int,
    today: date,
    issue: Issue | None,
) -> _Validated:
    result, keys = _validate(row_no, raw, domain, device_licence_id, today)
    if issue is not None and isinstance(result, FactoryRow):
        result = replace(result, certificate=issue(result))
    return row_no, result, keys


def _validate_chunk(
    chunk: _Chunk, domain: ProofDomain, device_licence_id: int, today: date, issue: Issue | None
) -> list[_Validated]:
    """The per-row checks of a chunk, and the issue step for its valid rows; no state is kept."""
    return [_validate_issued(row_no, raw, domain, device_licence_id, today, issue) for row_no, raw in chunk]


def _validate_chunk_in_worker(
    chunk: _Chunk, domain: ProofDomain, device_licence_id: int, today: date
) -> list[_Validated]:
    """What a worker process runs: `_validate_chunk` with the issue step it inherited."""
    return _validate_chunk(chunk, domain, device_licence_id, today, _WORKER_ISSUE)


def _init_worker(issue: Issue | None) -> None:
    global _WORKER_ISSUE
    _WORKER_ISSUE = issue
    # Ctrl-C reaches the workers too (same process group). The parent alone handles it,
    # and shuts the workers down; otherwise each worker would print its own traceback.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    # What the worker inherited is left to the parent: the worker's garbage collector must
    # not finalize a copy of, say, a database connection that was garbage in the parent
    # (closing it would write to the parent's socket). It also keeps those pages shared.
    gc.freeze()
    # A parent killed outright (SIGKILL, the OOM killer) cannot shut its workers down, and
    # they would wait for work forever holding copies of its open files and sockets: a
    # database connection, and the transaction open on it, would outlive the parent. So a
    # worker ends when its parent's sentinel pipe closes. (A sibling forked later holds a
    # copy of that pipe too; it sees its own close first and exits, releasing the copy.)
    parent = multiprocessing.parent_process()
    if parent is not None:
        threading.Thread(target=_exit_with, args=(parent.sentinel,), daemon=True).start()


def _exit_with(sentinel: int) -> None:
    multiprocessing.connection.wait([sentinel])
    os._exit(1)


# --------------------------------------------------------------------------- #
# Certificate documents
# --------------------------------------------------------------------------- #


def _design_hash_text(design_hash: bytes | str) -> str:
    if isinstance(design_hash, bytes | bytearray):
        if len(design_hash) != 32:
            raise DocumentError(f"design hash must be 32 bytes, got {len(design_hash)}")
        return "0x" + bytes(design_hash).hex()
    body = design_hash[2:] if design_hash[:2] in ("0x", "0X") else design_hash
    if len(body) != 64 or not _HEX.issuperset(body):
        raise DocumentError(f"design hash must be 0x followed by 64 hex digits, got {design_hash!r}")
    return "0x" + body.lower()


def build_document(
    row: FactoryRow,
    *,
    manufacturer_name: str,
    manufacturer_licence_id: int,
    device_licence_id: int,
    hardware_model: str,
    hardware_revision: str,
    design_hash: bytes | str,
) -> CertificateDocument:
    """The certificate document of a validated row under its manufacturer and device licence."""
    for name, value in (
        ("manufacturer name", manufacturer_name),
        ("hardware model", hardware_model),
        ("hardware revision", hardware_revision),
    ):
        if not isinstance(value, str) or not is_free_text(value):
            raise DocumentError(f"{name} must be non-empty printable text, got {value!r}")
    for name, number in (
        ("manufacturer licence id", manufacturer_licence_id),
        ("device licence id", device_licence_id),
    ):
        if isinstance(number, bool) or not isinstance(number, int) or not 1 <= number <= MAX_SAFE_INTEGER:
            raise DocumentError(f"{name} must be an integer 1..2**53-1, got {number!r}")
    return CertificateDocument(
        serial_number=row.serial_number,
        imei=row.imei,
        address=row.device_address,
        manufacturer_name=manufacturer_name,
        manufacturer_licence_id=manufacturer_licence_id,
        manufacturing_date=row.manufacturing_date.isoformat(),
        device_licence_id=device_licence_id,
        hardware_model=hardware_model,
        hardware_revision=hardware_revision,
        design_hash=_design_hash_text(design_hash),
        ict_result=row.ict_result,
        ict_report_sha256=row.ict_report_sha256.hex(),
        mechanical_result=row.mechanical_result,
        mechanical_report_sha256=row.mechanical_report_sha256.hex(),
        qa_passed=row.qa_passed,
        qa_inspection_date=row.qa_inspection_date.isoformat(),
        qa_inspector=row.qa_inspector,
        firmware_version=row.firmware_version,
        firmware_sha256=row.firmware_sha256.hex(),
        provisioning_date=row.provisioning_date.isoformat(),
        device_signature="0x" + row.device_signature.hex(),
    )
