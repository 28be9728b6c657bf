"""The chain of trust over the API: roots and CRLs for anyone, revocation for the foundation only,
and a grant that resumes after a crash between the chain and the database."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from fastapi.testclient import TestClient

from devicemint.chain.node import LocalNode
from devicemint.licensing import actions
from devicemint.licensing.registry import read_manufacturer_licence
from devicemint.pki.profiles import fingerprint
from tests.integration.api.pipeline import Pipeline, started

pytestmark = pytest.mark.xdist_group("chain")


@pytest.fixture
def pipeline(anvil_node: LocalNode, tmp_path: Path, chain_snapshot: None) -> Iterator[Pipeline]:
    with started(anvil_node, tmp_path) as pipeline:
        yield pipeline


def _crl(pipeline: Pipeline, path: str) -> x509.CertificateRevocationList:
    response = pipeline.client.get(path)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/pkix-crl"
    return x509.load_der_x509_crl(response.content)


def test_roots_crls_and_device_chains_are_public(pipeline: Pipeline, tmp_path: Path) -> None:
    licence_id = pipeline.license_manufacturer()
    anyone = pipeline.client

    foundation_pem = anyone.get("/pki/foundation-root.pem")
    assert foundation_pem.headers["content-type"] == "application/x-pem-file"
    foundation_root = x509.load_pem_x509_certificate(foundation_pem.content)
    root = x509.load_pem_x509_certificate(
        anyone.get(f"/manufacturer-licences/{licence_id}/root-certificate.pem").content
    )
    on_chain = read_manufacturer_licence(pipeline.runtime.contracts, licence_id).root_cert_fingerprint
    assert root.fingerprint(hashes.SHA256()) == on_chain
    root.verify_directly_issued_by(foundation_root)

    foundation_crl = _crl(pipeline, "/pki/foundation-root.crl")
    assert foundation_crl.is_signature_valid(foundation_root.public_key())
    assert foundation_crl.get_revoked_certificate_by_serial_number(root.serial_number) is None
    # The manufacturer's CRL is written the first time its key signs (at the first mint).
    assert anyone.get(f"/manufacturer-licences/{licence_id}/crl").status_code == 404

    case = pipeline.to_vote()
    device_licence = pipeline.licensed(case)
    pipeline.publish(device_licence, pipeline.foundation.get(f"/device-applications/{case}")["dossier"])
    batch = pipeline.batch_file(tmp_path, device_licence, 2)
    pipeline.manufacturer.post(
        f"/device-licences/{device_licence}/batches", 201, files={"file": ("batch.csv", batch.read_bytes())}
    )
    manufacturer_crl = _crl(pipeline, f"/manufacturer-licences/{licence_id}/crl")
    assert manufacturer_crl.is_signature_valid(root.public_key())

    rows = batch.read_text().splitlines()
    serial = rows[1].split(",")[0]
    chain = x509.load_pem_x509_certificates(anyone.get(f"/devices/{serial}/x509-chain.pem").content)
    assert [fingerprint(c) for c in chain[1:]] == [on_chain, fingerprint(foundation_root)]
    assert chain[0].issuer == root.subject
    assert anyone.get("/devices/000000000000000/x509-chain.pem").status_code == 404


def test_only_the_foundation_revokes_a_manufacturer_licence(pipeline: Pipeline) -> None:
    licence_id = pipeline.license_manufacturer()
    root_serial = x509.load_pem_x509_certificate(
        pipeline.client.get(f"/manufacturer-licences/{licence_id}/root-certificate.pem").content
    ).serial_number
    path = f"/manufacturer-licences/{licence_id}/revoke"
    for party in (pipeline.manufacturer, pipeline.member1, pipeline.stranger):
        party.post(path, 403, json={"reason": "not mine to revoke"})
    anonymous = TestClient(pipeline.client.app)  # no session cookie from the parties' sign-ins
    assert anonymous.post(path, json={"reason": "no session"}).status_code == 401
    pipeline.foundation.post(path, 422, json={"reason": ""})
    assert (
        _crl(pipeline, "/pki/foundation-root.crl").get_revoked_certificate_by_serial_number(root_serial)
        is None
    )

    revoked = pipeline.foundation.post(path, json={"reason": "counterfeit devices found"})
    assert revoked == {"licence_id": licence_id, "status": "revoked"}
    entry = _crl(pipeline, "/pki/foundation-root.crl").get_revoked_certificate_by_serial_number(root_serial)
    assert entry is not None
    assert (
        entry.extensions.get_extension_for_class(x509.CRLReason).value.reason
        is x509.ReasonFlags.privilege_withdrawn
    )


class Killed(RuntimeError):
    """Stands for the process dying between the mined grant and the database commit."""


def test_a_grant_that_reached_the_chain_but_not_the_database_is_adopted(
    pipeline: Pipeline, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A crash after the grant transaction, before the case was saved: the re-run finds the
    licence on chain, checks it records this case's root certificate, and finishes."""
    real_grant = actions.grant_manufacturer_licence
    calls: list[int] = []

    def grant_then_crash(*args: object, **kwargs: object) -> int:
        calls.append(real_grant(*args, **kwargs))  # type: ignore[arg-type]
        raise Killed("killed after the transaction was mined")

    monkeypatch.setattr(actions, "grant_manufacturer_licence", grant_then_crash)
    with pytest.raises(Killed):
        pipeline.license_manufacturer()
    monkeypatch.undo()
    assert calls == [1]
    case = 1
    assert pipeline.foundation.get(f"/manufacturer-applications/{case}")["stage"] == "auditor_approved"

    resumed = pipeline.foundation.post(f"/manufacturer-applications/{case}/grant", json={})
    assert resumed["stage"] == "licensed" and resumed["licence_id"] == 1
    licence = read_manufacturer_licence(pipeline.runtime.contracts, 1)
    assert resumed["root_cert_fingerprint"] == licence.root_cert_fingerprint.hex()
