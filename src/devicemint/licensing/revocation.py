"""Revoking a manufacturer licence for cause: on chain, and in the chain of trust.

The chain's licence status makes every device minted under it fail verification; the root
certificate on the foundation's CRL makes the same true for anyone checking only X.509 (an
`openssl verify -crl_check_all` on an exported bundle).
"""

from __future__ import annotations

import hashlib

from devicemint.chain.deployments import Contracts
from devicemint.chain.tx import TxSender
from devicemint.errors import UsageError
from devicemint.licensing.registry import ManufacturerLicence, ManufacturerStatus, read_manufacturer_licence
from devicemint.pki.authority import Authority
from devicemint.pki.profiles import RevocationReason


def revoke_manufacturer(
    contracts: Contracts, authority: Authority, foundation: TxSender, licence_id: int, *, reason: str
) -> ManufacturerLicence:
    """Revoke on chain (reason hash = SHA-256 of the reason's text), then put the licence's root
    certificate on the foundation CRL. Run again after a crash, it finishes what is left."""
    if not reason.strip():
        raise UsageError("a revocation needs its reason")
    licence = read_manufacturer_licence(contracts, licence_id)
    if licence.status is not ManufacturerStatus.REVOKED:
        foundation.transact(
            contracts.manufacturer_license.functions.revoke(
                licence_id, hashlib.sha256(reason.encode()).digest()
            ),
            what=f"revoking manufacturer licence {licence_id}",
        )
    authority.revoke_manufacturer_root(licence.root_cert_fingerprint, RevocationReason.PRIVILEGE_WITHDRAWN)
    return read_manufacturer_licence(contracts, licence_id)
