"""The simulated factory: its output validates cleanly end to end, realistic and reproducible."""

from __future__ import annotations

import re
import time
from datetime import date, timedelta
from pathlib import Path

import pytest

from devicemint.devices.batchfile import BatchValidator, FactoryRow, build_document, iter_rows
from devicemint.devices.document import CertificateDocument
from devicemint.devices.keystore import KeystoreError, read_keystore
from devicemint.devices.merkle import MerkleTree, leaf_hash, verify_proof
from devicemint.devices.proof import address_of_private_key, recover_signer
from devicemint.devices.simulate import INSPECTORS, simulate_batch

from .rows import DOMAIN, LICENCE, TODAY

SERIAL_RE = re.compile(r"DM-GW1-(\d{8})-[0-9A-F]{4}\d{6}")


def simulate(tmp_path: Path, name: str = "batch.csv", count: int = 150, **kw):
    return simulate_batch(
        count=count,
        out=tmp_path / name,
        keystore=tmp_path / (name + ".keys.json"),
        passphrase="factory secret",
        domain=DOMAIN,
        device_licence_id=LICENCE,
        today=TODAY,
        **kw,
    )


@pytest.mark.parametrize("name", ["batch.csv", "batch.jsonl"])
def test_output_validates_cleanly_end_to_end(tmp_path: Path, name: str) -> None:
    progress: list[int] = []
    summary = simulate(tmp_path, name, count=250, seed=11, on_progress=progress.append)
    assert summary.count == 250
    assert summary.path == tmp_path / name
    assert summary.format == ("jsonl" if name.endswith("jsonl") else "csv")
    assert progress == [100, 200, 250]

    validator = BatchValidator(summary.path, domain=DOMAIN, device_licence_id=LICENCE, today=TODAY)
    rows = list(validator)
    assert (validator.rows, validator.valid, validator.invalid) == (250, 250, 0), [
        str(e) for r in rows if isinstance(r, list) for e in r
    ]
    assert all(isinstance(r, FactoryRow) for r in rows)

    keys = read_keystore(summary.keystore_path, "factory secret")
    assert set(keys) == {r.device_address for r in rows}
    for address, key in list(keys.items())[:20]:
        assert address_of_private_key(key) == address

    leaves = []
    for row in rows:
        document = build_document(
            row,
            manufacturer_name="Acme Devices Ltd",
            manufacturer_licence_id=1,
            device_licence_id=LICENCE,
            hardware_model="GW1",
            hardware_revision="B",
            design_hash=bytes(range(32)),
        )
        body = document.to_canonical_json()
        assert CertificateDocument.from_json(body) == document  # schema-valid, round trips
        assert (
            recover_signer(DOMAIN, document.proof_fields(), document.device_signature) == row.device_address
        )
        leaves.append(leaf_hash(row.device_address, document.document_hash()))
    tree = MerkleTree.build(leaves)
    assert all(verify_proof(tree.root, leaf, tree.proof_for(leaf)) for leaf in leaves)


def test_rows_are_realistic(tmp_path: Path) -> None:
    summary = simulate(tmp_path, count=300, seed=5)
    rows = [r for r in BatchValidator(summary.path, domain=DOMAIN, device_licence_id=LICENCE, today=TODAY)]
    assert all(isinstance(r, FactoryRow) for r in rows)
    tacs = {r.imei[:8] for r in rows}
    assert len(tacs) == 1 and next(iter(tacs))[:2] in ("35", "86", "01")
    assert len({r.imei for r in rows}) == len({r.serial_number for r in rows}) == 300
    for r in rows:
        match = SERIAL_RE.fullmatch(r.serial_number)
        assert match, r.serial_number
        assert match.group(1) == f"{r.manufacturing_date:%Y%m%d}"
        assert r.manufacturing_date < r.qa_inspection_date <= r.provisioning_date <= TODAY
        assert r.provisioning_date >= TODAY - timedelta(days=2)
        assert (r.qa_inspection_date - r.manufacturing_date).days <= 4
        assert r.qa_inspector in INSPECTORS
        assert r.ict_result == r.mechanical_result == "pass" and r.qa_passed
    assert len({r.firmware_version for r in rows}) == 1
    assert len({r.ict_report_sha256 for r in rows}) == 300
    assert len({r.device_signature for r in rows}) == 300


def test_seed_makes_the_batch_reproducible(tmp_path: Path) -> None:
    a = simulate(tmp_path, "a.csv", count=20, seed=42)
    b = simulate(tmp_path, "b.csv", count=20, seed=42)
    c = simulate(tmp_path, "c.csv", count=20, seed=43)
    assert a.path.read_bytes() == b.path.read_bytes()
    assert a.path.read_bytes() != c.path.read_bytes()
    assert read_keystore(a.keystore_path, "factory secret") == read_keystore(
        b.keystore_path, "factory secret"
    )


def test_without_seed_batches_differ(tmp_path: Path) -> None:
    a = [r for _, r in iter_rows(simulate(tmp_path, "a.csv", count=5).path)]
    b = [r for _, r in iter_rows(simulate(tmp_path, "b.csv", count=5).path)]
    assert {r["device_address"] for r in a}.isdisjoint(r["device_address"] for r in b)
    assert {r["imei"] for r in a}.isdisjoint(r["imei"] for r in b)


def test_existing_keystore_is_not_overwritten_unless_asked(tmp_path: Path) -> None:
    first = simulate(tmp_path, count=3, seed=1)
    before = first.keystore_path.read_bytes()
    with pytest.raises(KeystoreError, match="already exists"):
        simulate(tmp_path, count=3, seed=2)
    assert first.keystore_path.read_bytes() == before
    second = simulate(tmp_path, count=3, seed=2, overwrite_keystore=True)
    assert set(read_keystore(second.keystore_path, "factory secret")) == {
        r["device_address"] for _, r in iter_rows(second.path)
    }


@pytest.mark.parametrize(
    ("kw", "fragment"),
    [
        ({"count": 0}, "count must be between 1 and 1,000,000"),
        ({"count": 1_000_001}, "count must be between"),
        ({"model": "GW 1"}, "model must be 1 to 16 letters or digits"),
    ],
)
def test_bad_arguments(tmp_path: Path, kw, fragment: str) -> None:
    args = {"count": 3, **kw}
    with pytest.raises(ValueError, match=fragment):
        simulate(tmp_path, **args)
    assert list(tmp_path.iterdir()) == []


def test_fast_enough_for_a_factory(tmp_path: Path) -> None:
    start = time.perf_counter()
    simulate(tmp_path, count=2000, seed=3)
    elapsed = time.perf_counter() - start
    # ~0.5 s on our machines (10,000 rows in ~2 s); generous for a busy CI box.
    assert elapsed < 6, f"simulating 2000 devices took {elapsed:.1f}s"


def test_today_bounds_every_date(tmp_path: Path) -> None:
    today = date(2024, 1, 1)
    summary = simulate_batch(
        count=50,
        out=tmp_path / "b.csv",
        keystore=tmp_path / "k.json",
        passphrase="pw",
        domain=DOMAIN,
        device_licence_id=LICENCE,
        today=today,
        seed=9,
    )
    rows = list(BatchValidator(summary.path, domain=DOMAIN, device_licence_id=LICENCE, today=today))
    assert all(isinstance(r, FactoryRow) and r.provisioning_date <= today for r in rows)
