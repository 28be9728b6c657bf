"""A simulated factory: realistic batch files with real device keys and proofs.

Used by ``devicemint factory simulate`` and ``devicemint demo``. Each device
gets a fresh secp256k1 key (kept in an encrypted keystore beside the batch),
a serial ``DM-<model>-<yyyymmdd>-<lot><6 digits>`` (a random 4-hex lot code
per batch, so batches made on the same day do not collide), a valid IMEI (a TAC with a real
reporting-body prefix, a serial number, the Luhn check digit), plausible
dates (manufactured a few days before QA inspection, provisioned after it and
not after ``today``), passing ICT / mechanical / QA results with report
hashes, the batch's firmware, and the EIP-712 proof of possession signed by
its own key. The file is written row by row.

With ``seed`` the batch (keys included) is reproducible, for tests and
benchmarks; without it everything comes from the OS's random source.
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
import random
import re
import secrets
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

from devicemint.devices.batchfile import FIELDS
from devicemint.devices.document import luhn_check_digit
from devicemint.devices.keystore import KeystoreError, write_keystore
from devicemint.devices.proof import (
    SECP256K1_N,
    DeviceProofFields,
    ProofDomain,
    address_of_private_key,
    sign_proof,
)

__all__ = ["INSPECTORS", "SimulationSummary", "simulate_batch"]

# Reporting-body prefixes of real TACs (35: BABT, 86: TAF China, 01: PTCRB).
_TAC_PREFIXES = ("35", "86", "01")
INSPECTORS = (
    "Ana Souza",
    "Chen Wei",
    "Fatima Zahra El Idrissi",
    "Jonas Becker",
    "Kwame Mensah",
    "Lena Novak",
    "María José García",
    "Priya Raghavan",
    "Sanjay Patel",
    "Yuki Tanaka",
    "Zoë Müller",
)
_MODEL_RE = re.compile(r"[A-Za-z0-9]{1,16}", re.ASCII)
MAX_COUNT = 1_000_000  # the serial's and IMEI's 6-digit sequence
PROGRESS_EVERY = 100


@dataclass(frozen=True)
class SimulationSummary:
    count: int
    path: Path
    keystore_path: Path
    format: str  # "csv" | "jsonl"
    firmware_version: str


def simulate_batch(
    *,
    count: int,
    out: Path,
    keystore: Path,
    passphrase: str,
    domain: ProofDomain,
    device_licence_id: int,
    today: date,
    seed: int | None = None,
    model: str = "GW1",
    firmware: tuple[str, bytes] | None = None,
    overwrite_keystore: bool = False,
    on_progress: Callable[[int], None] | None = None,
) -> SimulationSummary:
    """Write ``count`` devices to ``out`` (CSV; JSON Lines for .jsonl/.ndjson), their keys to ``keystore``.

    An existing keystore is not overwritten unless ``overwrite_keystore``: it
    may hold the only copy of other devices' keys.
    """
    out, keystore = Path(out), Path(keystore)
    if not 1 <= count <= MAX_COUNT:
        raise ValueError(f"count must be between 1 and {MAX_COUNT:,}, got {count}")
    if not _MODEL_RE.fullmatch(model):
        raise ValueError(f"model must be 1 to 16 letters or digits (it is part of the serial), got {model!r}")
    if keystore.exists() and not overwrite_keystore:
        raise KeystoreError(
            f"{keystore} already exists; it may hold other devices' keys. Choose another path"
        )
    if out.resolve() == keystore.resolve():
        raise ValueError("the batch file and the keystore must be different files")
    fmt = "jsonl" if out.suffix.lower() in (".jsonl", ".ndjson") else "csv"

    rng = random.Random(seed) if seed is not None else random.Random(secrets.randbits(128))
    tac = rng.choice(_TAC_PREFIXES) + f"{rng.randrange(10**6):06d}"
    snr_start = rng.randrange(10**6)
    serial_start = rng.randrange(10**6)
    lot = f"{rng.randrange(16**4):04X}"
    if firmware is not None:  # a release published for the device licence: (version, image sha256)
        firmware_version, firmware_sha256 = firmware
    else:
        firmware_version = f"{rng.randint(1, 3)}.{rng.randint(0, 9)}.{rng.randint(0, 30)}"
        firmware_sha256 = hashlib.sha256(
            f"devicemint firmware image {model} {firmware_version}".encode()
        ).digest()

    keys: dict[str, bytes] = {}
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as handle:
            writer = csv.writer(handle, lineterminator="\n") if fmt == "csv" else None
            if writer is not None:
                writer.writerow(FIELDS)
            for i in range(count):
                secret = _device_secret(rng if seed is not None else None)
                address = address_of_private_key(secret)
                keys[address] = secret

                provisioning = today - timedelta(days=rng.randint(0, 2))
                inspection = provisioning - timedelta(days=rng.randint(0, 2))
                manufactured = inspection - timedelta(days=rng.randint(1, 4))
                imei_body = tac + f"{(snr_start + i) % 10**6:06d}"
                fields = DeviceProofFields(
                    device=address,
                    serial_number=f"DM-{model}-{manufactured:%Y%m%d}-{lot}{(serial_start + i) % 10**6:06d}",
                    imei=imei_body + str(luhn_check_digit(imei_body)),
                    device_licence_id=device_licence_id,
                    manufacturing_date=manufactured.isoformat(),
                    ict_result="pass",
                    ict_report_sha256=rng.randbytes(32),
                    mechanical_result="pass",
                    mechanical_report_sha256=rng.randbytes(32),
                    qa_passed=True,
                    qa_inspection_date=inspection.isoformat(),
                    qa_inspector=rng.choice(INSPECTORS),
                    firmware_version=firmware_version,
                    firmware_sha256=firmware_sha256,
                    provisioning_date=provisioning.isoformat(),
                )
                signature = "0x" + sign_proof(domain, fields, secret).hex()
                values = _row_values(fields, signature)
                if writer is not None:
                    writer.writerow(values)
                else:
                    handle.write(
                        json.dumps(dict(zip(FIELDS, values, strict=True)), ensure_ascii=False) + "\n"
                    )
                if on_progress is not None and (i + 1) % PROGRESS_EVERY == 0:
                    on_progress(i + 1)
            handle.flush()
            os.fsync(handle.fileno())
        write_keystore(keystore, keys, passphrase)
        os.replace(tmp_name, out)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise
    if on_progress is not None and count % PROGRESS_EVERY:
        on_progress(count)
    return SimulationSummary(
        count=count, path=out, keystore_path=keystore, format=fmt, firmware_version=firmware_version
    )


def _device_secret(rng: random.Random | None) -> bytes:
    while True:
        secret = rng.randbytes(32) if rng is not None else secrets.token_bytes(32)
        if 0 < int.from_bytes(secret, "big") < SECP256K1_N:
            return secret


def _row_values(fields: DeviceProofFields, signature: str) -> list[str]:
    """The row in :data:`FIELDS` order (hashes as plain hex, as ``sha256sum`` prints them)."""
    return [
        fields.serial_number,
        fields.imei,
        fields.device,
        fields.manufacturing_date,
        fields.ict_result,
        fields.ict_report_sha256.hex(),
        fields.mechanical_result,
        fields.mechanical_report_sha256.hex(),
        "true",
        fields.qa_inspection_date,
        fields.qa_inspector,
        fields.firmware_version,
        fields.firmware_sha256.hex(),
        fields.provisioning_date,
        signature,
    ]
