"""Helpers to build factory rows (valid and signed by default) for the device tests."""

from __future__ import annotations

import csv
import io
import json
from datetime import date
from pathlib import Path

from devicemint.devices.batchfile import FIELDS
from devicemint.devices.document import luhn_check_digit
from devicemint.devices.proof import DeviceProofFields, ProofDomain, address_of_private_key, sign_proof

CONTRACT = "0x5FbDB2315678afecb367f032d93F642f64180aa3"
DOMAIN = ProofDomain(31337, CONTRACT)
LICENCE = 7
TODAY = date(2024, 6, 1)


def device_key(n: int) -> bytes:
    return (0x1000 + n).to_bytes(32, "big")


def imei(n: int, tac: str = "35693803") -> str:
    body = tac + f"{n:06d}"
    return body + str(luhn_check_digit(body))


def make_row(
    n: int = 1,
    *,
    key: bytes | None = None,
    domain: ProofDomain = DOMAIN,
    licence: int = LICENCE,
    after_signing: dict[str, str] | None = None,
    **overrides: str,
) -> dict[str, str]:
    """A row for device ``n``; ``overrides`` are signed, ``after_signing`` tamper with the signed row."""
    key = key or device_key(n)
    row = {
        "serial_number": f"DM-GW1-20240520-{n:06d}",
        "imei": imei(n),
        "device_address": address_of_private_key(key),
        "manufacturing_date": "2024-05-20",
        "ict_result": "pass",
        "ict_report_sha256": f"{n:064x}",
        "mechanical_result": "pass",
        "mechanical_report_sha256": "ab" * 32,
        "qa_passed": "true",
        "qa_inspection_date": "2024-05-22",
        "qa_inspector": "Zoë Müller",
        "firmware_version": "1.4.2",
        "firmware_sha256": "cd" * 32,
        "provisioning_date": "2024-05-23",
        "device_signature": "",
    }
    row.update(overrides)
    if "device_signature" not in overrides:
        try:
            row["device_signature"] = "0x" + sign(row, key, domain=domain, licence=licence).hex()
        except ValueError:
            # Values that cannot even be signed (a malformed address or hash): the validator
            # reports those and does not get as far as the signature.
            row["device_signature"] = "0x" + "00" * 65
    row.update(after_signing or {})
    return row


def sign(row: dict[str, str], key: bytes, *, domain: ProofDomain = DOMAIN, licence: int = LICENCE) -> bytes:
    def h(name: str) -> bytes:
        value = row[name]
        return bytes.fromhex(value[2:] if value.startswith("0x") else value)

    fields = DeviceProofFields(
        device=row["device_address"],
        serial_number=row["serial_number"],
        imei=row["imei"],
        device_licence_id=licence,
        manufacturing_date=row["manufacturing_date"],
        ict_result=row["ict_result"],
        ict_report_sha256=h("ict_report_sha256"),
        mechanical_result=row["mechanical_result"],
        mechanical_report_sha256=h("mechanical_report_sha256"),
        qa_passed=row["qa_passed"].lower() in ("true", "1"),
        qa_inspection_date=row["qa_inspection_date"],
        qa_inspector=row["qa_inspector"],
        firmware_version=row["firmware_version"],
        firmware_sha256=h("firmware_sha256"),
        provisioning_date=row["provisioning_date"],
    )
    return sign_proof(domain, fields, key)


def csv_text(rows: list[dict[str, str]], header: list[str] | tuple[str, ...] = FIELDS) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(header)
    for row in rows:
        writer.writerow([row.get(name, "") for name in header])
    return out.getvalue()


def write_csv(path: Path, rows: list[dict[str, str]], header=FIELDS) -> Path:
    path.write_text(csv_text(rows, header), encoding="utf-8")
    return path


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows), encoding="utf-8")
    return path
