"""Verification bundles: everything needed to check one device without trusting us.

`export` writes, into one directory:

    certificate.json            the certificate document, byte for byte as committed
    proof.json                  its Merkle proof and batch root (OpenZeppelin StandardMerkleTree,
                                leaf encoding [address, bytes32]), token id, chain and contracts
    device.pem                  the device's X.509 certificate
    manufacturer-root.pem       the manufacturer root CA that issued it
    foundation-root.pem         the foundation root CA (the trust anchor)
    crls.pem                    the current CRLs of both CAs
    VERIFY.txt                  the commands that check it with openssl and OpenZeppelin's library

`verify_bundle` checks such a directory offline (document hash, Merkle proof, the device's
proof of possession, the X.509 chain, its binding to the device, the CRLs) and, given the chain,
also that the root is the token's batch root on chain and that both licences are in standing.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from sqlalchemy.orm import Session
from web3 import Web3

from devicemint.chain.deploy import Deployment
from devicemint.chain.deployments import Contracts
from devicemint.db.models import Certificate, Document
from devicemint.devices.document import CertificateDocument
from devicemint.devices.proof import ProofDomain
from devicemint.devices.verify import CertificateChecks, Check, Standing, Verification, Verifier
from devicemint.errors import UsageError
from devicemint.files import write_atomically
from devicemint.licensing.registry import read_manufacturer_licence
from devicemint.pki.profiles import fingerprint
from devicemint.pki.trust import TrustPath, crl_problems

BUNDLE_FORMAT = "devicemint/verification-bundle/v1"
LEAF_ENCODING = ["address", "bytes32"]
DOCUMENT = "certificate.json"
PROOF = "proof.json"
DEVICE = "device.pem"
MANUFACTURER_ROOT = "manufacturer-root.pem"
FOUNDATION_ROOT = "foundation-root.pem"
CRLS = "crls.pem"
INSTRUCTIONS = "VERIFY.txt"


def export(verifier: Verifier, query: str, directory: Path) -> Verification:
    """Verify `query` here, then write its bundle to `directory` (each file atomically)."""
    result = verifier.verify(query)
    if result.document is None or result.merkle_root is None:
        raise UsageError(
            f"{query}: no certificate document is known for this device, so there is nothing to export"
        )
    licence = read_manufacturer_licence(
        verifier.contracts, result.document["manufacturing"]["manufacturer_licence_id"]
    )
    authority = verifier.authority
    path = authority.trust_path(result.address, root_fingerprint=licence.root_cert_fingerprint)
    crls = [authority.latest_crl(fingerprint(ca)) for ca in (path.foundation_root, path.manufacturer_root)]
    with verifier.sessions() as session:
        body = _document_body(session, result.address)
    deployment = verifier.contracts.deployment
    proof = {
        "format": BUNDLE_FORMAT,
        "chain_id": deployment.chain_id,
        "deployment": deployment.to_dict(),
        "token_id": str(result.token_id),
        "batch_id": result.chain_batch_id,
        "root": result.merkle_root,
        "leaf_encoding": LEAF_ENCODING,
        "value": [result.address, "0x" + hashlib.sha256(body).hexdigest()],
        "proof": result.proof,
    }
    directory.mkdir(parents=True, exist_ok=True)
    files: dict[str, bytes] = {
        DOCUMENT: body,
        PROOF: (json.dumps(proof, indent=2) + "\n").encode(),
        DEVICE: path.device.public_bytes(Encoding.PEM),
        MANUFACTURER_ROOT: path.manufacturer_root.public_bytes(Encoding.PEM),
        FOUNDATION_ROOT: path.foundation_root.public_bytes(Encoding.PEM),
        CRLS: b"".join(crl.public_bytes(Encoding.PEM) for crl in crls if crl is not None),
        INSTRUCTIONS: _instructions(proof).encode(),
    }
    for name, data in files.items():
        write_atomically(directory / name, data, mode=0o644)
    return result


def _document_body(session: Session, address: str) -> bytes:
    record = session.get_one(Certificate, Web3.to_checksum_address(address))
    return bytes(session.get_one(Document, record.document_sha256).body)


def _instructions(proof: dict[str, Any]) -> str:
    return f"""Verify this device yourself.

1. The X.509 chain, with revocation (OpenSSL):

   openssl verify -CAfile {FOUNDATION_ROOT} -untrusted {MANUFACTURER_ROOT} \\
       -crl_check_all -CRLfile {CRLS} {DEVICE}

   openssl x509 -in {DEVICE} -noout -subject -ext subjectAltName
   openssl x509 -in {MANUFACTURER_ROOT} -noout -fingerprint -sha256
   (this fingerprint is the rootCertFingerprint of the manufacturer licence on chain)

2. The certificate document and its Merkle proof (OpenZeppelin's @openzeppelin/merkle-tree):

   sha256sum {DOCUMENT}        (= value[1] of {PROOF})
   StandardMerkleTree.verify(root, {json.dumps(LEAF_ENCODING)}, value, proof)   (from {PROOF})

3. The root on chain: DeviceCertificate {proof["deployment"]["device_certificate"]} on chain {proof["chain_id"]},
   certificate({proof["token_id"]}) returns the batch root, which must equal "root" in {PROOF}.

Or all at once:  devicemint verify --bundle . [--rpc-url URL]
"""


@dataclass(frozen=True)
class Bundle:
    """A bundle as read from disk, each part parsed (with the file named when it is not)."""

    body: bytes
    proof: dict[str, Any]
    deployment: Deployment
    path: TrustPath
    crls: list[x509.CertificateRevocationList]

    @classmethod
    def read(cls, directory: Path, *, trust_root: Path | None = None) -> Bundle:
        if not directory.is_dir():
            raise UsageError(f"{directory}: no such bundle directory")
        proof = _json(directory / PROOF)
        if proof.get("format") != BUNDLE_FORMAT:
            raise UsageError(f"{directory / PROOF}: not a {BUNDLE_FORMAT} proof file")
        try:
            deployment = Deployment.from_json(proof["deployment"])
        except (KeyError, ValueError) as exc:
            raise UsageError(
                f"{directory / PROOF}: field 'deployment' is not a deployment record ({exc})"
            ) from exc
        anchor = trust_root or directory / FOUNDATION_ROOT
        return cls(
            body=_bytes(directory / DOCUMENT),
            proof=proof,
            deployment=deployment,
            path=TrustPath(
                device=_certificate(directory / DEVICE),
                manufacturer_root=_certificate(directory / MANUFACTURER_ROOT),
                foundation_root=_certificate(anchor),
            ),
            crls=_crls(directory / CRLS),
        )


def _bytes(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise UsageError(f"{path}: missing from the bundle") from None


def _json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(_bytes(path))
    except ValueError as exc:
        raise UsageError(f"{path}: not JSON ({exc})") from exc
    if not isinstance(data, dict):
        raise UsageError(f"{path}: expected a JSON object")
    return data


def _certificate(path: Path) -> x509.Certificate:
    try:
        return x509.load_pem_x509_certificate(_bytes(path))
    except ValueError as exc:
        raise UsageError(f"{path}: not a PEM certificate ({exc})") from exc


def _crls(path: Path) -> list[x509.CertificateRevocationList]:
    text = _bytes(path)
    marker = b"-----END X509 CRL-----"
    blocks = [block + marker for block in text.split(marker) if block.strip()]
    try:
        return [x509.load_pem_x509_crl(block.strip() + b"\n") for block in blocks]
    except ValueError as exc:
        raise UsageError(f"{path}: not a sequence of PEM CRLs ({exc})") from exc


class BundleVerifier(CertificateChecks):
    """Checks a bundle offline, and against the chain when `contracts` is given."""

    def __init__(
        self,
        *,
        bundle: Bundle,
        contracts: Contracts | None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        deployment = bundle.deployment
        super().__init__(
            contracts=contracts,
            domain=ProofDomain(deployment.chain_id, deployment.device_certificate),
            clock=clock,
        )
        self.bundle = bundle

    def verify(self) -> Verification:
        bundle, proof = self.bundle, self.bundle.proof
        try:
            address = Web3.to_checksum_address(proof["value"][0])
            document_hash = bytes.fromhex(str(proof["value"][1]).removeprefix("0x"))
            root = bytes.fromhex(str(proof["root"]).removeprefix("0x"))
            siblings = [bytes.fromhex(str(p).removeprefix("0x")) for p in proof["proof"]]
            token_id = int(proof["token_id"])
        except (KeyError, IndexError, TypeError, ValueError) as exc:
            raise UsageError(f"{PROOF}: value, root, proof and token_id are malformed ({exc})") from exc
        result = Verification(
            query=str(token_id),
            address=address,
            token_id=token_id,
            standing=Standing.GENUINE,
            merkle_root="0x" + root.hex(),
            chain_batch_id=proof.get("batch_id"),
        )
        same = hashlib.sha256(bundle.body).digest() == document_hash and int(address, 16) == token_id
        self._fail(
            result,
            Check(
                "bundle",
                same,
                "the proof names this document's SHA-256 and this device's token"
                if same
                else "the proof's value does not match the document's SHA-256 or the token id",
            ),
        )
        parsed = self._check_document(result, bundle.body)
        self._check_root(result, root, bundle.body, siblings)
        if parsed is not None:
            self._check_signature(result, parsed)
            self._check_x509(result, parsed)
            if self.contracts is not None:
                self._check_on_chain(result, parsed, root)
        return result

    def _check_x509(self, result: Verification, document: CertificateDocument) -> None:
        path = self.bundle.path
        revoked = crl_problems(path, self.bundle.crls, at=self.clock())
        self._check_trust_path(
            result, document, path, revoked, "the CRLs of both CAs are current and list neither"
        )

    def _check_on_chain(self, result: Verification, document: CertificateDocument, root: bytes) -> None:
        contracts = self._chain()
        certificate = contracts.device_certificate.functions
        if not certificate.exists(result.token_id).call():
            self._fail(result, Check("on_chain", False, f"token {result.token_id} does not exist on chain"))
            return
        owner, batch_id, device_licence_id, chain_root = certificate.certificate(result.token_id).call()
        result.owner, result.chain_batch_id = owner, int(batch_id)
        same_root = bytes(chain_root) == root
        self._fail(
            result,
            Check(
                "on_chain",
                same_root,
                f"the bundle's root is the on-chain root of batch {batch_id}, owner {owner}"
                if same_root
                else f"the on-chain root of batch {batch_id} is 0x{bytes(chain_root).hex()}, not the bundle's",
            ),
        )
        manufacturer = self._check_licences(result, document, int(device_licence_id))
        anchored = manufacturer.root_cert_fingerprint == fingerprint(self.bundle.path.manufacturer_root)
        self._fail(
            result,
            Check(
                "manufacturer_root",
                anchored,
                "the manufacturer root is the one its licence records on chain"
                if anchored
                else f"licence {manufacturer.licence_id} records root 0x{manufacturer.root_cert_fingerprint.hex()}, "
                "not the bundle's manufacturer root",
            ),
        )
