"""The whole onboarding pipeline through the API, role by role, to a Device License and a first
mint; and each refusal along the way."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path

import pytest
from web3 import Web3

from devicemint.chain.node import LocalNode
from devicemint.licensing.registry import read_device_licence, read_manufacturer_licence
from tests.integration.api.pipeline import Pipeline, started

pytestmark = pytest.mark.xdist_group("chain")


@pytest.fixture
def pipeline(
    anvil_node: LocalNode, database_url: str, tmp_path: Path, chain_snapshot: None
) -> Iterator[Pipeline]:
    with started(anvil_node, tmp_path, database_url) as pipeline:
        yield pipeline


def test_from_intake_to_a_device_license_and_a_first_mint(pipeline: Pipeline, tmp_path: Path) -> None:
    p = pipeline
    contracts = p.runtime.contracts
    manufacturer_licence = p.license_manufacturer()
    assert read_manufacturer_licence(contracts, manufacturer_licence).holder == p.manufacturer.address
    anchored = p.manufacturer.content(f"/manufacturer-applications/{p.manufacturer_case}/anchored-case-file")
    assert (
        read_manufacturer_licence(contracts, manufacturer_licence).evidence_hash
        == hashlib.sha256(anchored).digest()
    )

    case = p.submit_design()
    number = case["application"]
    assert case["stage"] == "dossier_submitted" and len(case["design_hash"]) == 64
    p.certify_and_submit(number)
    p.assign(number)

    # Failure, remediation and re-audit, each round kept.
    failed = p.hardware_audit(number, failing=("boot.secure-boot",))
    assert failed["passed"] is False and failed["stage"] == "hardware_remediation"
    fix = p.manufacturer.upload(
        "document", "secure-boot-fix.pdf", b"%PDF-1.7\n% secure boot enabled\n%%EOF\n"
    )
    back = p.manufacturer.post(
        f"/device-applications/{number}/remediations",
        json={"note": "secure boot fused on", "evidence": [fix]},
    )
    assert back["stage"] == "hardware_audit"
    assert p.hardware_audit(number)["stage"] == "cx_assessment"
    assert p.cx_assessment(number)["stage"] == "integration_review"

    tabled = p.foundation.post(f"/device-applications/{number}/proposal")
    assert tabled["stage"] == "committee_vote"
    first = p.vote(p.member1, number, True)
    assert first["stage"] == "committee_vote"  # one yes of a quorum of two
    licensed = p.vote(p.member2, number, True, reason="meets the bar")
    assert licensed["stage"] == "licensed"
    licence_id = licensed["licence_id"]
    assert licence_id == 1

    # The licence is bound to the design and anchors the case file the proposal carried.
    licence = read_device_licence(contracts, licence_id)
    assert licence.design_hash.hex() == case["design_hash"] and licence.holder == p.manufacturer.address
    anchored = p.member3.content(f"/device-applications/{number}/anchored-case-file")
    assert licence.evidence_hash == hashlib.sha256(anchored).digest()
    public = p.client.get(f"/device-licences/{licence_id}").json()  # anyone reads licences
    assert public["status"] == "active" and public["design_hash"] == "0x" + case["design_hash"]

    exported = p.foundation.get(f"/device-applications/{number}")
    audits = [(a["scope"], a["round"], a["passed"]) for a in exported["audits"]]
    assert audits == [("hardware_security", 1, False), ("hardware_security", 2, True), ("cx", 1, True)]
    actions_seen = [e["action"] for e in exported["timeline"]]
    assert actions_seen[:2] == ["submit_design", "add_certification"]
    assert actions_seen[-4:] == ["propose", "vote", "vote", "licence_issued"]
    votes = [e for e in exported["timeline"] if e["action"] == "vote"]
    assert {v["actor"] for v in votes} == {p.member1.address, p.member2.address}
    assert all(v["tx_hash"] for v in votes) and votes[1]["note"] == "yes: meets the bar"

    # First mint: the factory's API key (scope mint) uploads a batch.
    p.publish(licence_id, case["dossier"])
    key = p.manufacturer.post("/auth/api-keys", 201, json={"name": "line 1", "scopes": ["mint"]})["key"]
    batch = p.batch_file(tmp_path, licence_id)
    with batch.open("rb") as f:
        minted = p.client.post(
            f"/device-licences/{licence_id}/batches",
            headers={"X-API-Key": key},
            files={"file": (batch.name, f)},
        )
    assert minted.status_code == 201, minted.text
    assert minted.json()["minted_now"] == 3
    certificate = contracts.device_certificate
    first_device = Web3.to_checksum_address(batch.read_text().splitlines()[1].split(",")[2])
    assert certificate.functions.ownerOf(int(first_device, 16)).call() == p.manufacturer.address
