"""Factory intake: a batch file becomes validated certificate documents and one Merkle root.

One streaming pass inside one database transaction: each row is validated (every rule, the
device's proof of possession, uniqueness in the file, in the database and on chain), its
certificate document is built and stored content-addressed, its X.509 certificate issued by the
manufacturer root for the key the proof recovers to, and its Merkle leaf kept. If any
row is wrong the transaction is rolled back and every row error is reported: a batch is taken
whole or not at all, and nothing half-written is left behind by a crash either.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from sqlalchemy import insert, select, update
from sqlalchemy.orm import Session, sessionmaker

from devicemint.chain.calldata import call_view
from devicemint.chain.deployments import Contracts
from devicemint.db.models import Batch, Certificate, Document
from devicemint.devices.batchfile import BatchValidator, FactoryRow, Known, RowError, build_document
from devicemint.devices.merkle import MerkleTree, leaf_hash
from devicemint.devices.proof import ProofDomain
from devicemint.errors import DevicemintError, UsageError
from devicemint.licensing.registry import MintingLicence, firmware_image
from devicemint.pki.profiles import DeviceIssuer

FLUSH_ROWS = 1000


class IntakeRejected(DevicemintError):
    """The batch file has row errors; nothing was stored."""

    exit_code = 1

    def __init__(self, source: Path, errors: list[RowError], rows_read: int) -> None:
        self.source = source
        self.errors = errors
        self.rows_read = rows_read
        shown = "\n".join(f"  {e}" for e in errors[:20])
        more = f"\n  ... and {len(errors) - 20} more" if len(errors) > 20 else ""
        super().__init__(
            f"{source}: {len(errors)} error(s) in {rows_read} row(s); nothing was minted or stored.\n{shown}{more}"
        )


@dataclass(frozen=True)
class IntakeResult:
    batch_id: int | None
    device_count: int
    merkle_root: str
    file_sha256: str
    already_ingested: bool = False


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def chain_conflicts(contracts: Contracts) -> Callable[[list[str]], set[str]]:
    """Which of these addresses already hold a certificate on chain (one call per chunk)."""
    certificate = contracts.device_certificate

    def check(addresses: list[str]) -> set[str]:
        if not addresses:
            return set()
        (answers,) = call_view(certificate, "certifiedAmong", addresses)
        return {a for a, taken in zip(addresses, answers, strict=True) if taken}

    return check


class Intake:
    """Validates a batch file and stores its documents, certificates-to-be and Merkle tree."""

    def __init__(
        self,
        *,
        sessions: sessionmaker[Session],
        contracts: Contracts,
        licence: MintingLicence,
        domain: ProofDomain,
        issuer: DeviceIssuer,
        uri: str,
        today: date,
        workers: int = 0,
    ) -> None:
        self.sessions = sessions
        self.issuer = issuer
        self.workers = workers
        self.licence = licence
        self.domain = domain
        self.uri = uri
        self.today = today
        self.contracts = contracts
        self._on_chain = chain_conflicts(contracts)

    def _known(self, session: Session, batch_id: int) -> Known:
        """The validator's hook: devices of a chunk already registered in this database
        (minted or waiting in another batch) or already certified on chain. Repeats within
        this file are the validator's own finding, so this batch's rows are left out."""

        def known(
            serials: dict[str, int], imeis: dict[str, int], addresses: dict[str, int]
        ) -> Iterator[tuple[int, str, str]]:
            for field, column, row_of in (
                ("serial_number", Certificate.serial_number, serials),
                ("imei", Certificate.imei, imeis),
                ("device_address", Certificate.address, addresses),
            ):
                found = session.execute(
                    select(column, Certificate.minted, Batch.source_name)
                    .join(Batch, Batch.id == Certificate.batch_id)
                    .where(column.in_(row_of), Certificate.batch_id != batch_id)
                )
                for value, minted, source in found:
                    where = (
                        f"is already certified (from file {source})"
                        if minted
                        else f"is already in file {source}, validated but not yet minted: run "
                        f"`devicemint mint {source}` again to finish that batch"
                    )
                    yield row_of[value], field, f"{value} {where}"
            for address in self._on_chain(list(addresses)):
                yield addresses[address], "device_address", f"{address} already holds a certificate on chain"

        return known

    def run(
        self, path: Path, *, dry_run: bool = False, on_progress: Callable[[int], None] | None = None
    ) -> IntakeResult:
        if not path.is_file():
            raise UsageError(f"{path}: no such file")
        sha = file_sha256(path)
        device_licence_id = self.licence.device.licence_id
        with self.sessions() as session:
            existing = session.scalar(
                select(Batch).where(Batch.file_sha256 == sha, Batch.device_licence_id == device_licence_id)
            )
        if existing is not None:
            return IntakeResult(
                existing.id, existing.device_count, str(existing.merkle_root), sha, already_ingested=True
            )

        with self.sessions() as session, session.begin():
            batch = Batch(
                file_sha256=sha,
                source_name=path.name,
                device_licence_id=device_licence_id,
                device_count=0,
                merkle_root=None,
                tree=b"",
                uri=self.uri,
            )
            session.add(batch)
            session.flush()
            leaves, errors, rows_read = self._ingest_rows(session, path, batch.id, on_progress)
            if errors:
                session.rollback()
                raise IntakeRejected(path, errors, rows_read)
            if not leaves:
                session.rollback()
                raise IntakeRejected(path, [RowError(1, "file", "the file holds no device rows")], 0)
            tree = MerkleTree.build(leaves)
            root = "0x" + tree.root.hex()
            if dry_run:
                session.rollback()
                return IntakeResult(None, len(leaves), root, sha)
            session.execute(
                update(Batch)
                .where(Batch.id == batch.id)
                .values(merkle_root=root, tree=tree.to_bytes(), device_count=len(leaves))
            )
            return IntakeResult(batch.id, len(leaves), root, sha)

    def _ingest_rows(
        self, session: Session, path: Path, batch_id: int, on_progress: Callable[[int], None] | None
    ) -> tuple[list[bytes], list[RowError], int]:
        validator = BatchValidator(
            path,
            domain=self.domain,
            device_licence_id=self.licence.device.licence_id,
            today=self.today,
            workers=self.workers,
            known=self._known(session, batch_id),
            chunk_size=FLUSH_ROWS,
            issue=self._certificate,
        )
        leaves: list[bytes] = []
        errors: list[RowError] = []
        pending: list[tuple[FactoryRow, bytes, bytes]] = []

        def flush() -> None:
            if pending and not errors:  # after the first error nothing is kept anyway
                self._store(session, pending, batch_id, len(leaves) - len(pending))
            pending.clear()

        rows_read = 0
        firmware: dict[str, bytes | None] = {}  # version -> published image, asked once each
        for result in validator:
            rows_read += 1
            if isinstance(result, list):
                errors.extend(result)
            elif problem := self._firmware_problem(result, firmware):
                errors.append(problem)
            else:
                digest, body = self._document(result)
                leaves.append(leaf_hash(result.device_address, digest))
                pending.append((result, digest, body))
                if len(pending) >= FLUSH_ROWS:
                    flush()
            if on_progress and rows_read % 500 == 0:
                on_progress(rows_read)
        flush()
        errors.sort(key=lambda e: e.row)
        return leaves, errors, rows_read

    def _certificate(self, row: FactoryRow) -> bytes:
        """The device's X.509 certificate, issued where the row was validated (a worker)."""
        return self.issuer.issue(
            serial_number=row.serial_number,
            imei=row.imei,
            address=row.device_address,
            public_key=row.device_public_key,
            provisioning_date=row.provisioning_date,
        ).public_bytes(Encoding.DER)

    def _firmware_problem(self, row: FactoryRow, published: dict[str, bytes | None]) -> RowError | None:
        """A device ships with a firmware release published for its licence, byte for byte."""
        licence_id = self.licence.device.licence_id
        version = row.firmware_version
        if version not in published:
            published[version] = firmware_image(self.contracts, licence_id, version)
        image = published[version]
        if image is None:
            return RowError(
                row.row,
                "firmware_version",
                f"firmware {version!r} is not published for device licence {licence_id}; "
                "the licence holder publishes a release (version and image hash) before devices ship with it",
            )
        if image != row.firmware_sha256:
            return RowError(
                row.row,
                "firmware_sha256",
                f"{row.firmware_sha256.hex()} is not the image published for firmware {version} ({image.hex()})",
            )
        return None

    def _document(self, row: FactoryRow) -> tuple[bytes, bytes]:
        licence = self.licence
        document = build_document(
            row,
            manufacturer_name=licence.manufacturer.name,
            manufacturer_licence_id=licence.manufacturer.licence_id,
            device_licence_id=licence.device.licence_id,
            hardware_model=licence.device.hardware_model,
            hardware_revision=licence.device.hardware_revision,
            design_hash=licence.device.design_hash,
        )
        body = document.to_canonical_json()
        return hashlib.sha256(body).digest(), body

    def _store(
        self,
        session: Session,
        rows: list[tuple[FactoryRow, bytes, bytes]],
        batch_id: int,
        first_position: int,
    ) -> None:
        documents, certificates = [], []
        for offset, (row, digest, body) in enumerate(rows):
            documents.append({"sha256": digest.hex(), "body": body})
            certificates.append(
                {
                    "address": row.device_address,
                    "serial_number": row.serial_number,
                    "imei": row.imei,
                    "batch_id": batch_id,
                    "position": first_position + offset,
                    "document_sha256": digest.hex(),
                    "minted": False,
                    "x509_der": row.certificate,
                    "x509_serial": f"{x509.load_der_x509_certificate(row.certificate).serial_number:x}",
                }
            )
        session.execute(insert(Document), documents)
        session.execute(insert(Certificate), certificates)
