"""The chain of trust over HTTP: root certificates, CRLs and device certificates (public), and
the revocation of a manufacturer licence (the foundation)."""

from __future__ import annotations

from typing import Annotated, Any

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from fastapi import APIRouter, Depends, Path, Response
from pydantic import BaseModel, ConfigDict, Field

from devicemint.api.deps import Context
from devicemint.api.licence_routes import Chain, LicenceId
from devicemint.api.onboarding_routes import Foundation, server_key
from devicemint.devices.verify import resolve
from devicemint.errors import NotFound
from devicemint.licensing.registry import read_manufacturer_licence
from devicemint.licensing.revocation import revoke_manufacturer
from devicemint.pki.authority import Authority
from devicemint.pki.profiles import fingerprint

router = APIRouter(tags=["chain of trust"])

PEM = "application/x-pem-file"
CRL = "application/pkix-crl"  # RFC 5280 section 4.2.1.13: DER-encoded CRLs over HTTP
DeviceQuery = Annotated[
    str, Path(min_length=1, max_length=80, description="0x address, token id, serial or IMEI")
]


def authority(chain: Chain) -> Authority:
    return Authority.of(chain.settings, chain.sessions)


Trust = Annotated[Authority, Depends(authority)]


def _pem(*certificates: x509.Certificate) -> Response:
    return Response(b"".join(c.public_bytes(Encoding.PEM) for c in certificates), media_type=PEM)


def _crl(trust: Authority, certificate: x509.Certificate) -> Response:
    crl = trust.latest_crl(fingerprint(certificate))
    if crl is None:
        raise NotFound(f"no CRL has been written for {certificate.subject.rfc4514_string()} yet")
    return Response(crl.public_bytes(Encoding.DER), media_type=CRL)


def _manufacturer_root(chain: Chain, trust: Authority, licence_id: int) -> x509.Certificate:
    licence = read_manufacturer_licence(chain.contracts, licence_id)
    return trust.ca_certificate(licence.root_cert_fingerprint)


@router.get("/pki/foundation-root.pem", summary="The foundation root CA certificate (the trust anchor)")
def foundation_root(trust: Trust) -> Response:
    return _pem(trust.foundation_root())


@router.get("/pki/foundation-root.crl", summary="The foundation root's newest CRL (DER)")
def foundation_crl(trust: Trust) -> Response:
    return _crl(trust, trust.foundation_root())


@router.get(
    "/manufacturer-licences/{licence_id}/root-certificate.pem",
    summary="The manufacturer root certificate whose SHA-256 the licence records",
)
def manufacturer_root(chain: Chain, trust: Trust, licence_id: LicenceId) -> Response:
    return _pem(_manufacturer_root(chain, trust, licence_id))


@router.get("/manufacturer-licences/{licence_id}/crl", summary="The manufacturer root's newest CRL (DER)")
def manufacturer_crl(chain: Chain, trust: Trust, licence_id: LicenceId) -> Response:
    return _crl(trust, _manufacturer_root(chain, trust, licence_id))


@router.get(
    "/devices/{query}/x509-chain.pem",
    summary="A device's X.509 certificate followed by its manufacturer root and the foundation root",
)
def device_chain(chain: Chain, trust: Trust, query: DeviceQuery) -> Response:
    with chain.sessions() as session:
        address = resolve(session, query)
    device = trust.device_certificate(address)
    return _pem(device, trust.issuer_of(device), trust.foundation_root())


class RevocationIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reason: str = Field(min_length=1, max_length=2000, description="Why; its SHA-256 is recorded on chain")


@router.post(
    "/manufacturer-licences/{licence_id}/revoke",
    summary="Revoke a manufacturer licence for cause, and its root certificate (foundation)",
)
def revoke(
    ctx: Context, chain: Chain, trust: Trust, principal: Foundation, licence_id: LicenceId, body: RevocationIn
) -> dict[str, Any]:
    key = server_key(ctx, principal, "revoke manufacturer licences")
    licence = revoke_manufacturer(chain.contracts, trust, key, licence_id, reason=body.reason)
    return {"licence_id": licence_id, "status": licence.status.name.lower()}
