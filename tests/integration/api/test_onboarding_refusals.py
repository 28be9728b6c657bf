"""Each refusal of the onboarding pipeline, over the API: the wrong party, the wrong order,
missing evidence, an auditor without the scope, double and late votes, a quorum not met, a
rejection with reasons, and a changed design minted under the old licence."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from devicemint.chain.node import LocalNode
from devicemint.licensing.registry import DeviceLicenceStatus, read_device_licence
from devicemint.onboarding.samples import sample_firmware
from tests.integration.api.pipeline import Pipeline, started

pytestmark = pytest.mark.xdist_group("chain")

WEEK = 7 * 24 * 3600


@pytest.fixture
def pipeline(anvil_node: LocalNode, tmp_path: Path, chain_snapshot: None) -> Iterator[Pipeline]:
    """SQLite here: the PostgreSQL path of every stage is covered by the pipeline test."""
    with started(anvil_node, tmp_path) as pipeline:
        pipeline.license_manufacturer()
        yield pipeline


def detail(response: dict) -> str:
    return str(response["detail"])


def test_wrong_party_is_refused_at_every_kind_of_step(pipeline: Pipeline) -> None:
    p = pipeline
    case = p.submit_design()["application"]
    # The stranger holds no manufacturer licence, cannot see or touch another's case.
    assert "holds no active manufacturer licence" in detail(
        p.stranger.post(
            "/device-applications", 403, json={"model": "X", "revision": "1", "files": p.dossier("x")}
        )
    )
    assert "not a party to device application" in detail(p.stranger.get(f"/device-applications/{case}", 403))
    assert [c["application"] for c in p.stranger.get("/device-applications")] == []
    assert "only the applicant" in detail(p.stranger.post(f"/device-applications/{case}/submission", 403))
    # Only the foundation assigns auditors and tables proposals; a manufacturer is refused.
    body = {"scope": "hardware_security", "auditor": p.hw_auditor.address}
    assert "only the foundation" in detail(
        p.manufacturer.post(f"/device-applications/{case}/auditors", 403, json=body)
    )
    assert "only the foundation" in detail(p.member1.post(f"/device-applications/{case}/proposal", 403))
    # An auditor sees only the cases it is assigned to.
    assert "not a party" in detail(p.hw_auditor.get(f"/device-applications/{case}", 403))
    p.certify_and_submit(case)
    p.assign(case)
    assert p.hw_auditor.get(f"/device-applications/{case}")["application"] == case
    # The CX auditor may not record the hardware audit, nor the hardware auditor the CX one.
    p.parties["hw_auditor"], p.parties["cx_auditor"] = p.cx_auditor, p.hw_auditor
    assert "hardware_security auditor is" in detail(p.hardware_audit(case, expect=403))


def test_wrong_order_says_the_stage_and_what_is_missing(pipeline: Pipeline) -> None:
    p = pipeline
    case = p.submit_design()["application"]
    refused = p.manufacturer.post(f"/device-applications/{case}/submission", 409)
    assert "has no current certification; add one" in detail(refused)
    refused = p.foundation.post(f"/device-applications/{case}/proposal", 409)
    assert "is in stage dossier_submitted; 'propose' needs stage integration_review" in detail(refused)
    assert "Waiting for: the manufacturer to add a current certification" in detail(refused)
    p.certify_and_submit(case)
    refused = p.hardware_audit(case, expect=403)  # nobody assigned yet
    assert "auditor is not yet assigned" in detail(refused)


def test_missing_or_mislabelled_evidence_is_refused(pipeline: Pipeline) -> None:
    p = pipeline
    files = p.dossier("rev-A")
    never_uploaded = [{**files[0], "sha256": "ab" * 32}, *files[1:]]
    refused = p.manufacturer.post(
        "/device-applications", 409, json={"model": "NL-1", "revision": "rev-A", "files": never_uploaded}
    )
    assert f"no evidence {'ab' * 32} in the store; upload it first" in detail(refused)
    refused = p.manufacturer.post(
        "/device-applications", 422, json={"model": "NL-1", "revision": "rev-A", "files": files[1:]}
    )
    assert "the dossier lacks a schematic file" in detail(refused)
    # A BOM passed off as the schematic.
    mislabelled = [{**files[1], "name": "wiring.pdf", "role": "schematic"}, *files[1:]]
    refused = p.manufacturer.post(
        "/device-applications", 409, json={"model": "NL-1", "revision": "rev-A", "files": mislabelled}
    )
    assert "dossier file 'wiring.pdf'" in detail(refused)
    assert "was uploaded as bom, not schematic" in detail(refused)


def test_an_auditor_without_the_scope_cannot_be_assigned_or_audit(pipeline: Pipeline) -> None:
    p = pipeline
    case = p.submit_design()["application"]
    refused = p.foundation.post(
        f"/device-applications/{case}/auditors",
        403,
        json={"scope": "hardware_security", "auditor": p.cx_auditor.address},
    )
    assert "not an approved auditor with the hardware_security scope" in detail(refused)
    p.certify_and_submit(case)
    p.assign(case)
    # The foundation withdraws the scope after assignment: the audit is refused.
    p.foundation.call(
        "PUT", f"/auditors/{p.hw_auditor.address}", json={"name": "Prüfwerk AG", "scopes": ["cx"]}
    )
    assert "not an approved auditor with the hardware_security scope" in detail(
        p.hardware_audit(case, expect=403)
    )


def test_double_vote_non_member_and_quorum(pipeline: Pipeline) -> None:
    p = pipeline
    case = p.to_vote()
    p.vote(p.member1, case, True)
    refused = p.vote(p.member1, case, True, expect=409)
    assert "AlreadyVoted" in detail(refused)
    exported = p.foundation.post(f"/device-applications/{case}/sync")
    assert exported["stage"] == "committee_vote" and exported["licence_id"] is None  # quorum 2 not met


def test_a_non_member_vote_is_refused(pipeline: Pipeline) -> None:
    p = pipeline
    case = p.to_vote()
    refused = p.vote(p.manufacturer, case, True, expect=403)
    assert "only committee may do this" in detail(refused)


def test_a_late_vote_is_refused_and_a_closed_vote_goes_back_to_review(pipeline: Pipeline) -> None:
    p = pipeline
    case = p.to_vote()
    p.vote(p.member1, case, True)
    p.runtime.w3.provider.make_request("evm_increaseTime", [WEEK + 1])  # type: ignore[arg-type]
    p.runtime.w3.provider.make_request("evm_mine", [])  # type: ignore[arg-type]
    refused = p.vote(p.member2, case, True, expect=409)
    assert "VotingClosed" in detail(refused)
    closed = p.member3.post(f"/device-applications/{case}/sync")
    assert closed["stage"] == "integration_review" and closed["proposal_id"] is None
    assert "closed without quorum (1 yes, 0 no, quorum 2)" in closed["timeline"][-1]["note"]
    # Tabled again, it can still be licensed.
    p.foundation.post(f"/device-applications/{case}/proposal")
    assert p.licensed(case) == 1


def test_votes_against_reject_with_reasons(pipeline: Pipeline) -> None:
    p = pipeline
    case = p.to_vote()
    p.vote(p.member1, case, False, reason="pairing video shows a failed first attempt")
    rejected = p.vote(p.member2, case, False, reason="BOM lists an end-of-life modem")
    assert rejected["stage"] == "rejected" and rejected["licence_id"] is None
    note = rejected["timeline"][-1]["note"]
    assert "0 yes, 2 no" in note
    assert "pairing video shows a failed first attempt" in note and "end-of-life modem" in note


def test_a_design_change_needs_its_own_licence_and_minting_a_changed_design_is_refused(
    pipeline: Pipeline, tmp_path: Path
) -> None:
    p = pipeline
    first = p.to_vote("rev-A")
    old_licence = p.licensed(first)
    old_dossier = p.foundation.get(f"/device-applications/{first}")["dossier"]
    p.publish(old_licence, old_dossier)

    # Same files, new firmware: a design change naming the licence it changes.
    firmware = p.manufacturer.upload("firmware", "firmware.bin", sample_firmware("NL-1", "1.1.0"))
    files = [f if f["role"] != "firmware" else {**f, "sha256": firmware} for f in old_dossier]
    same = p.manufacturer.post(
        "/device-applications",
        409,
        json={
            "model": "NL-1",
            "revision": "rev-A",
            "files": old_dossier,
            "supersedes_licence_id": old_licence,
        },
    )
    assert "already licensed" in detail(same)
    change = p.submit_design("rev-A", files=files, supersedes_licence_id=old_licence)
    diff = p.manufacturer.get(f"/device-applications/{change['application']}/diff")
    assert [c["name"] for c in diff["changed"]] == ["firmware.bin"]
    assert diff["unchanged"] == ["bom.csv", "schematics.pdf"] and diff["added"] == diff["removed"] == []

    # Until the change is licensed, its devices cannot be minted under the old licence.
    batch = p.batch_file(tmp_path, old_licence, count=2)
    key = p.manufacturer.post("/auth/api-keys", 201, json={"name": "line 1", "scopes": ["mint"]})["key"]
    with batch.open("rb") as f:
        refused = p.client.post(
            f"/device-licences/{old_licence}/batches",
            headers={"X-API-Key": key},
            files={"file": (batch.name, f)},
            data={"design_hash": "0x" + change["design_hash"]},
        )
    assert refused.status_code == 400, refused.text
    assert "is not the design of device licence 1" in refused.json()["detail"]

    # Licensed in its turn, the change gets licence 2; licence 1 stays in force for the old design.
    p.certify_and_submit(change["application"])
    p.assign(change["application"])
    p.hardware_audit(change["application"])
    p.cx_assessment(change["application"])
    p.foundation.post(f"/device-applications/{change['application']}/proposal")
    new_licence = p.licensed(change["application"])
    assert new_licence == 2
    old = read_device_licence(p.runtime.contracts, old_licence)
    assert (
        old.status is DeviceLicenceStatus.ACTIVE
        and old.design_hash.hex() == p.foundation.get(f"/device-applications/{first}")["design_hash"]
    )
    assert read_device_licence(p.runtime.contracts, new_licence).design_hash.hex() == change["design_hash"]


def test_a_key_without_the_mint_scope_or_another_party_cannot_mint(
    pipeline: Pipeline, tmp_path: Path
) -> None:
    p = pipeline
    case = p.to_vote()
    licence = p.licensed(case)
    p.publish(licence, p.foundation.get(f"/device-applications/{case}")["dossier"])
    batch = p.batch_file(tmp_path, licence, count=1)
    read_key = p.manufacturer.post("/auth/api-keys", 201, json={"name": "reader", "scopes": ["read"]})["key"]
    with batch.open("rb") as f:
        refused = p.client.post(
            f"/device-licences/{licence}/batches",
            headers={"X-API-Key": read_key},
            files={"file": (batch.name, f)},
        )
    assert refused.status_code == 403 and "lacks the scope 'mint'" in refused.json()["detail"]
    with batch.open("rb") as f:
        refused = p.client.post(
            f"/device-licences/{licence}/batches", headers=p.stranger.headers, files={"file": (batch.name, f)}
        )
    assert refused.status_code == 403 and "only the holder of device licence" in refused.json()["detail"]


def test_the_foundation_manages_auditors_and_the_committee_on_chain(pipeline: Pipeline) -> None:
    p = pipeline
    newcomer = p.stranger.address
    assert "only the foundation" in detail(p.member1.call("PUT", f"/committee/members/{newcomer}", 403))
    assert "only the foundation" in detail(
        p.manufacturer.call("PUT", "/committee/quorum", 403, json={"quorum": 1})
    )
    seated = p.foundation.call("PUT", f"/committee/members/{newcomer}")
    assert newcomer in seated["members"] and len(seated["members"]) == 4
    assert p.runtime.contracts.device_license.functions.isCommitteeMember(newcomer).call()
    assert p.foundation.call("PUT", "/committee/quorum", json={"quorum": 3})["quorum"] == 3
    refused = p.foundation.call("PUT", "/committee/quorum", 409, json={"quorum": 9})
    assert "InvalidQuorum" in detail(refused)
    unseated = p.foundation.call("DELETE", f"/committee/members/{newcomer}")
    assert newcomer not in unseated["members"]
    assert p.client.get("/committee").json()["members"] == unseated["members"]  # public

    assert "only the foundation" in detail(
        p.hw_auditor.call("PUT", f"/auditors/{newcomer}", 403, json={"name": "Self", "scopes": ["cx"]})
    )
    refused = p.foundation.call("PUT", f"/auditors/{newcomer}", 422, json={"name": "X", "scopes": ["radio"]})
    assert "scopes" in detail(refused)
    p.foundation.call("DELETE", f"/auditors/{p.cx_auditor.address}", 204)
    listed = p.client.get("/auditors").json()
    assert [a["address"] for a in listed] == [p.hw_auditor.address]
