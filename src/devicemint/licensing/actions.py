"""Licence actions on chain, each sent by the party the contracts name for it."""

from __future__ import annotations

from web3.types import TxReceipt

from devicemint.chain.deployments import Contracts
from devicemint.chain.tx import TxSender


def stake(contracts: Contracts, manufacturer: TxSender, amount: int) -> None:
    """Approve and stake `amount` of the staking token (18 decimals) for a manufacturer licence."""
    spender = contracts.manufacturer_license.address
    manufacturer.transact(
        contracts.staking_token.functions.approve(spender, amount), what="approving the stake"
    )
    manufacturer.transact(contracts.manufacturer_license.functions.stake(amount), what="staking")


def grant_manufacturer_licence(
    contracts: Contracts,
    foundation: TxSender,
    *,
    manufacturer: str,
    name: str,
    root_cert_fingerprint: bytes,
    evidence_hash: bytes,
) -> int:
    """The foundation grants the licence to a staked manufacturer; returns the licence id."""
    functions = contracts.manufacturer_license.functions
    foundation.transact(
        functions.grant(manufacturer, name, root_cert_fingerprint, evidence_hash),
        what=f"granting a manufacturer licence to {manufacturer}",
    )
    return int(functions.licenceIdOf(manufacturer).call())


def issue_device_licence(
    contracts: Contracts,
    proposer: TxSender,
    voters: list[TxSender],
    *,
    manufacturer: str,
    design_hash: bytes,
    model: str,
    revision: str,
    evidence_hash: bytes,
) -> int:
    """Propose a device licence to the committee and cast the given members' yes votes."""
    functions = contracts.device_license.functions
    receipt: TxReceipt = proposer.transact(
        functions.proposeIssue(manufacturer, design_hash, model, revision, evidence_hash),
        what=f"proposing a device licence for design 0x{design_hash.hex()}",
    )
    (created,) = contracts.device_license.events.ProposalCreated().process_receipt(receipt)
    proposal_id = int(created["args"]["proposalId"])
    for voter in voters:
        voter.transact(functions.vote(proposal_id, True), what=f"voting on proposal {proposal_id}")
    return int(functions.licenceOfDesign(design_hash).call())


def publish_firmware(
    contracts: Contracts, holder: TxSender, *, licence_id: int, version: str, image_sha256: bytes
) -> None:
    holder.transact(
        contracts.device_license.functions.publishFirmware(licence_id, version, image_sha256),
        what=f"publishing firmware {version} for device licence {licence_id}",
    )
