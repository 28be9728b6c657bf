"""Is this device genuine, licensed and in good standing? Checked, not trusted.

Every answer is recomputed from the chain and the certificate document: the document's hash is
its content address, its Merkle proof must lead to the root stored on chain for the token's
batch, the device's EIP-712 proof of possession must recover to the token's address, the
document must name the licences the chain says, both licences must be in standing, and the
device's X.509 certificate must chain to the foundation root through the manufacturer root whose
fingerprint the chain records, unrevoked.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from enum import StrEnum

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker
from web3 import Web3

from devicemint.chain.deployments import Contracts
from devicemint.db.models import Batch, Certificate, Document
from devicemint.devices.document import CertificateDocument
from devicemint.devices.merkle import MerkleTree, leaf_hash, verify_proof
from devicemint.devices.proof import ProofDomain, SignatureError, recover_signer
from devicemint.errors import ChainError, NotFound, UsageError
from devicemint.licensing.registry import (
    DeviceLicence,
    DeviceLicenceStatus,
    ManufacturerLicence,
    ManufacturerStatus,
    read_device_licence,
    read_manufacturer_licence,
)
from devicemint.pki.authority import Authority
from devicemint.pki.errors import NoFoundationRoot
from devicemint.pki.profiles import fingerprint
from devicemint.pki.trust import TrustPath, binding_problems, describe, path_problems
from devicemint.runtime import Runtime

ADDRESS = re.compile(r"^0x[0-9a-fA-F]{40}$")
_MAX_TOKEN_ID = 2**160 - 1


class Standing(StrEnum):
    GENUINE = "genuine"
    NOT_IN_GOOD_STANDING = "not_in_good_standing"
    NOT_GENUINE = "not_genuine"
    NOT_MINTED = "not_minted"


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str


@dataclass
class Verification:
    query: str
    address: str
    token_id: int
    standing: Standing
    checks: list[Check] = field(default_factory=list)
    owner: str | None = None
    chain_batch_id: int | None = None
    merkle_root: str | None = None
    proof: list[str] = field(default_factory=list)
    document: dict | None = None
    x509_serial: str | None = None

    @property
    def exit_code(self) -> int:
        return 0 if self.standing is Standing.GENUINE else 3

    def to_dict(self) -> dict:
        data = asdict(self)
        data["standing"] = self.standing.value
        data["token_id"] = str(self.token_id)
        data["exit_code"] = self.exit_code
        return data


def _looks_like_imei(text: str) -> bool:
    return len(text) == 15 and text.isdigit()


def resolve(session: Session, query: str) -> str:
    """The device address a query names: an address, a token id, a serial number or an IMEI."""
    query = query.strip()
    if not query.isprintable():  # control characters (NUL above all) are nobody's serial number
        raise UsageError(
            f"the query {query!r} contains control characters; give an address, token id, serial or IMEI"
        )
    if ADDRESS.match(query):
        return "0x" + query[2:].lower()
    column = Certificate.imei if _looks_like_imei(query) else Certificate.serial_number
    address = session.scalar(select(Certificate.address).where(column == query))
    if address is None and column is Certificate.imei:
        address = session.scalar(select(Certificate.address).where(Certificate.serial_number == query))
    if address is not None:
        return address
    if query.isdigit() and 0 < int(query) <= _MAX_TOKEN_ID:
        return f"0x{int(query):040x}"
    raise NotFound(f"no device matches {query!r} (tried address, token id, serial number and IMEI)")


class CertificateChecks:
    """The checks that need only a certificate document, the proof domain and the chain; shared
    by the verifier of this installation and the verifier of exported bundles."""

    def __init__(
        self,
        *,
        contracts: Contracts | None,
        domain: ProofDomain,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.contracts = contracts
        self.domain = domain
        self.clock = clock

    def _chain(self) -> Contracts:
        if self.contracts is None:
            raise ChainError("the licence checks need the chain: give an RPC endpoint")
        return self.contracts

    def _fail(self, result: Verification, check: Check, standing: Standing = Standing.NOT_GENUINE) -> None:
        result.checks.append(check)
        if not check.ok and (result.standing is Standing.GENUINE or standing is Standing.NOT_GENUINE):
            result.standing = standing

    def _check_document(self, result: Verification, body: bytes) -> CertificateDocument | None:
        try:
            parsed = CertificateDocument.from_json(body)
        except ValueError as exc:
            self._fail(result, Check("document", False, f"certificate document is malformed: {exc}"))
            return None
        result.document = parsed.to_dict()
        same_device = parsed.address.lower() == result.address.lower()
        self._fail(
            result,
            Check(
                "document",
                same_device,
                "document names this device"
                if same_device
                else f"document names {parsed.address}, not {result.address}",
            ),
        )
        return parsed

    def _check_root(self, result: Verification, root: bytes, body: bytes, proof: list[bytes]) -> None:
        result.proof = ["0x" + p.hex() for p in proof]
        leaf = leaf_hash(result.address, hashlib.sha256(body).digest())
        ok = verify_proof(root, leaf, proof)
        self._fail(
            result,
            Check(
                "merkle_proof",
                ok,
                "document hash is committed by the on-chain batch root"
                if ok
                else "document is not committed by the on-chain batch root",
            ),
        )

    def _check_signature(self, result: Verification, document: CertificateDocument) -> None:
        try:
            signer = recover_signer(self.domain, document.proof_fields(), document.signature_bytes)
        except SignatureError as exc:
            self._fail(result, Check("device_signature", False, str(exc)))
            return
        ok = signer.lower() == result.address.lower()
        self._fail(
            result,
            Check(
                "device_signature",
                ok,
                "proof of possession recovers to the device address"
                if ok
                else f"proof of possession recovers to {signer}, not the device",
            ),
        )

    def _licences(self, device_licence_id: int) -> tuple[DeviceLicence, ManufacturerLicence]:
        """The device licence and its holder's manufacturer licence, as the chain has them now."""
        contracts = self._chain()
        device = read_device_licence(contracts, device_licence_id)
        manufacturer_id = contracts.manufacturer_license.functions.licenceIdOf(device.holder).call()
        return device, read_manufacturer_licence(contracts, manufacturer_id)

    def _check_licences(
        self, result: Verification, document: CertificateDocument, device_licence_id: int
    ) -> ManufacturerLicence:
        device, manufacturer = self._licences(device_licence_id)
        manufacturer_id = manufacturer.licence_id
        differences = _differences(
            ("device licence", document.device_licence_id, device_licence_id),
            ("design hash", document.design_hash, "0x" + device.design_hash.hex()),
            ("hardware model", document.hardware_model, device.hardware_model),
            ("hardware revision", document.hardware_revision, device.hardware_revision),
        )
        self._fail(
            result,
            Check(
                "device_licence_binding",
                not differences,
                differences or f"document names device licence {device_licence_id}, its design and model",
            ),
        )
        revoked = device.status is DeviceLicenceStatus.REVOKED
        self._fail(
            result,
            Check(
                "device_licence",
                not revoked,
                f"device licence {device_licence_id} is {device.status.name.lower()}",
            ),
        )
        differences = _differences(
            ("manufacturer licence", document.manufacturer_licence_id, manufacturer_id),
            ("manufacturer name", document.manufacturer_name, manufacturer.name),
        )
        self._fail(
            result,
            Check(
                "manufacturer_licence_binding",
                not differences,
                differences or f"document names manufacturer licence {manufacturer_id} ({manufacturer.name})",
            ),
        )
        detail = f"manufacturer licence {manufacturer_id} ({manufacturer.name}) is {manufacturer.status.name.lower()}"
        if manufacturer.status is ManufacturerStatus.REVOKED:
            self._fail(result, Check("manufacturer_licence", False, detail + " for cause"))
        elif manufacturer.status is ManufacturerStatus.SUSPENDED:
            self._fail(result, Check("manufacturer_licence", False, detail), Standing.NOT_IN_GOOD_STANDING)
        else:
            # Renounced licences keep their devices genuine: renouncing is not a finding against them.
            self._fail(result, Check("manufacturer_licence", True, detail))
        return manufacturer

    def _check_trust_path(
        self,
        result: Verification,
        document: CertificateDocument,
        path: TrustPath,
        revoked: list[str],
        fine: str,
    ) -> None:
        """The X.509 path verifies now, certifies this very device, and `revoked` (what the CRLs
        or the authority's records say) is empty."""
        result.x509_serial = f"{path.device.serial_number:x}"
        problems = (
            path_problems(path, at=self.clock())
            + binding_problems(
                path.device,
                serial_number=document.serial_number,
                imei=document.imei,
                address=result.address,
                chain_id=self.domain.chain_id,
            )
            + revoked
        )
        self._fail(
            result,
            Check(
                "x509_chain",
                not problems,
                "; ".join(problems)
                or f"device certificate {result.x509_serial} chains to {describe(path.foundation_root)} (SHA-256 "
                f"{fingerprint(path.foundation_root).hex()}) through {describe(path.manufacturer_root)}; {fine}",
            ),
        )


class Verifier(CertificateChecks):
    """Verifies devices this installation knows, against its database and the chain."""

    contracts: Contracts

    def __init__(
        self,
        *,
        sessions: sessionmaker[Session],
        contracts: Contracts,
        domain: ProofDomain,
        authority: Authority,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        super().__init__(contracts=contracts, domain=domain, clock=clock)
        self.sessions = sessions
        self.authority = authority

    @classmethod
    def of(cls, runtime: Runtime) -> Verifier:
        return cls(
            sessions=runtime.sessions,
            contracts=runtime.contracts,
            domain=runtime.domain,
            authority=Authority.of(runtime.settings, runtime.sessions),
        )

    def verify(self, query: str) -> Verification:
        with self.sessions() as session:
            address = resolve(session, query)
            record = session.get(Certificate, Web3.to_checksum_address(address))
            document = batch = None
            if record is not None:
                document = session.get(Document, record.document_sha256)
                batch = session.get(Batch, record.batch_id)
        token_id = int(address, 16)
        on_chain = self._on_chain(token_id)
        if on_chain is None:
            if record is None:
                raise NotFound(f"no certificate for {query!r} ({address}) on chain or in the database")
            return Verification(
                query,
                record.address,
                token_id,
                Standing.NOT_MINTED,
                [Check("on_chain", False, f"known from batch {record.batch_id} but not minted yet")],
            )
        owner, chain_batch_id, device_licence_id, root = on_chain
        result = Verification(
            query,
            address if record is None else record.address,
            token_id,
            Standing.GENUINE,
            owner=owner,
            chain_batch_id=int(chain_batch_id),
            merkle_root="0x" + bytes(root).hex(),
        )
        result.checks.append(
            Check("on_chain", True, f"token exists in batch {chain_batch_id}, owner {owner}")
        )
        if document is None or batch is None:
            result.checks.append(Check("document", False, "no certificate document is known for this token"))
            result.standing = Standing.NOT_GENUINE
            return result
        parsed = self._check_document(result, document.body)
        self._check_proof(result, batch, bytes(root), document.body)
        if parsed is not None:
            self._check_signature(result, parsed)
            manufacturer = self._check_licences(result, parsed, int(device_licence_id))
            self._check_x509(result, parsed, manufacturer)
        return result

    def _on_chain(self, token_id: int) -> tuple[str, int, int, bytes] | None:
        """Owner, batch id, device licence id and batch root of a token; None if never minted."""
        certificate = self.contracts.device_certificate.functions
        if not certificate.exists(token_id).call():
            return None
        owner, batch_id, licence_id, root = certificate.certificate(token_id).call()
        return owner, int(batch_id), int(licence_id), bytes(root)

    def _check_proof(self, result: Verification, batch: Batch, root: bytes, body: bytes) -> None:
        leaf = leaf_hash(result.address, hashlib.sha256(body).digest())
        # No need to recompute our stored tree: the proof is checked against the chain's root.
        tree = MerkleTree.from_bytes(batch.tree, check=False)
        self._check_root(result, root, body, tree.proof_for(leaf) if leaf in tree else [])

    def _check_x509(
        self, result: Verification, document: CertificateDocument, manufacturer: ManufacturerLicence
    ) -> None:
        """The device certificate chains to the foundation root through the manufacturer root the
        chain records, is this device's, and neither it nor that root is revoked."""
        try:
            path = self.authority.trust_path(
                result.address, root_fingerprint=manufacturer.root_cert_fingerprint
            )
        except (NotFound, NoFoundationRoot) as exc:
            self._fail(result, Check("x509_chain", False, str(exc)))
            return
        self._check_trust_path(
            result, document, path, self.authority.revocation_problems(path), "none is revoked"
        )


def _differences(*pairs: tuple[str, object, object]) -> str:
    """'document says X, chain says Y' for each field where the document and the chain differ."""
    return "; ".join(
        f"document's {name} is {ours!r}, the chain's is {theirs!r}"
        for name, ours, theirs in pairs
        if ours != theirs
    )
