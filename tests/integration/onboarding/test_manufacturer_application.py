"""The manufacturer application, stage by stage, on a real chain and both databases."""

from __future__ import annotations

import hashlib
import io
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography import x509
from eth_account import Account
from eth_account.messages import encode_typed_data
from eth_account.signers.local import LocalAccount
from sqlalchemy import select
from web3 import Web3

from devicemint.chain import keys
from devicemint.chain.node import LocalNode
from devicemint.chain.tx import TxSender
from devicemint.cli.chain_commands import deploy
from devicemint.config import Settings
from devicemint.db.models import Meta
from devicemint.licensing import actions
from devicemint.licensing.registry import ManufacturerStatus, read_manufacturer_licence
from devicemint.onboarding.auditors import AuditorRegistry
from devicemint.onboarding.cases import FOUNDATION, Actor, NotPermitted, TransitionRefused
from devicemint.onboarding.evidence import EvidenceKind, LocalEvidenceStore
from devicemint.onboarding.manufacturer import (
    ManufacturerOnboarding,
    MouSignature,
    Stage,
)
from devicemint.onboarding.questionnaire import QuestionnaireInvalid
from devicemint.onboarding.samples import sample_pdf
from devicemint.pki.authority import Authority
from devicemint.runtime import Runtime
from tests.integration.api.pipeline import ANSWERS, STAKE, csr_pem

MOU = sample_pdf("Memorandum of Understanding (test)")
MOU_SHA = hashlib.sha256(MOU).hexdigest()
REPORT = sample_pdf("factory audit report (test)")
REPORT_SHA = hashlib.sha256(REPORT).hexdigest()
FOUNDATION_ACTOR = Actor(keys.dev_account(keys.DevRole.FOUNDATION).address, frozenset({FOUNDATION}))
AUDITOR = Actor(keys.dev_account(keys.DevRole.AUDITOR).address)
CX_AUDITOR = Actor(keys.dev_account(keys.DevRole.COMMITTEE_3).address)


@pytest.fixture
def onboarding(
    anvil_node: LocalNode, database_url: str, tmp_path: Path, chain_snapshot: None
) -> Iterator[tuple[ManufacturerOnboarding, Runtime]]:
    settings = Settings(home=tmp_path / "home", node_port=anvil_node.port, database_url=database_url)
    deploy(settings)
    runtime = Runtime.open(settings)
    auditors = AuditorRegistry(sessions=runtime.sessions)
    evidence = LocalEvidenceStore(tmp_path / "evidence")
    evidence.put(io.BytesIO(MOU), kind=EvidenceKind.MOU, filename="mou.pdf")
    evidence.put(io.BytesIO(REPORT), kind=EvidenceKind.AUDIT_REPORT, filename="report.pdf")
    auditors.approve(FOUNDATION_ACTOR, AUDITOR.address, name="Prüfwerk AG", scopes=["hardware_security"])
    auditors.approve(FOUNDATION_ACTOR, CX_AUDITOR.address, name="UX Lab", scopes=["cx"])
    authority = Authority.of(settings, runtime.sessions)
    authority.create_foundation_root("Test Network Foundation")
    yield (
        ManufacturerOnboarding(
            sessions=runtime.sessions,
            contracts=runtime.contracts,
            chain_id=31337,
            auditors=auditors,
            evidence=evidence,
            authority=authority,
        ),
        runtime,
    )
    runtime.sessions.kw["bind"].dispose()


def _sign(
    flow: ManufacturerOnboarding,
    account: LocalAccount,
    application_id: int,
    role: str,
    *,
    nonce: int = 1,
    deadline: int | None = None,
    mou: str = MOU_SHA,
) -> MouSignature:
    deadline = deadline or int(time.time()) + 3600
    data = flow.mou_typed_data(
        application_id, mou_sha256=mou, signer=account.address, role=role, nonce=nonce, deadline=deadline
    )
    signature = Account.sign_message(encode_typed_data(full_message=data), account.key).signature.to_0x_hex()
    return MouSignature(mou_sha256=mou, nonce=nonce, deadline=deadline, signature=signature)


def test_the_whole_pipeline_to_a_manufacturer_licence(onboarding) -> None:  # type: ignore[no-untyped-def]
    flow, runtime = onboarding
    applicant_key = keys.dev_account(keys.DevRole.OWNER)
    foundation_key = keys.dev_account(keys.DevRole.FOUNDATION)
    applicant = Actor(applicant_key.address)
    foundation = Actor(foundation_key.address, frozenset({FOUNDATION}))
    auditor = AUDITOR

    case = flow.submit_intake(applicant, ANSWERS)
    flow.issue_checklist(foundation, case)
    flow.sign_mou(applicant, case, _sign(flow, applicant_key, case, "manufacturer"))
    flow.countersign_mou(foundation, case, _sign(flow, foundation_key, case, FOUNDATION))

    with pytest.raises(TransitionRefused, match="has staked 0 of the 100,000 tokens required"):
        flow.confirm_stake(applicant, case)
    contracts = runtime.contracts
    funder = TxSender(w3=runtime.w3, account=foundation_key, chain_id=31337)
    funder.transact(contracts.staking_token.functions.mint(applicant_key.address, STAKE), what="fund")
    actions.stake(contracts, TxSender(w3=runtime.w3, account=applicant_key, chain_id=31337), STAKE)
    assert flow.confirm_stake(applicant, case) == STAKE

    with pytest.raises(NotPermitted, match="its auditor is not yet assigned"):
        flow.approve(auditor, case, report_sha256=REPORT_SHA)
    flow.assign_auditor(foundation, case, auditor=auditor.address)
    flow.approve(auditor, case, report_sha256=REPORT_SHA, note="all items pass")
    request = csr_pem(ANSWERS["company_name"])
    licence_id = flow.grant(foundation, case, foundation=funder, csr_pem=request.encode())

    licence = read_manufacturer_licence(contracts, licence_id)
    assert licence.holder == applicant_key.address and licence.status is ManufacturerStatus.ACTIVE
    assert licence.name == "Nordlicht Telematik GmbH"
    exported = flow.export(case)
    assert exported["stage"] == Stage.LICENSED and exported["licence_id"] == licence_id
    assert [e["action"] for e in exported["timeline"]] == [
        "submit_intake",
        "issue_checklist",
        "sign_mou",
        "countersign_mou",
        "confirm_stake",
        "assign_auditor",
        "approve",
        "grant",
    ]
    assert exported["timeline"][-1]["evidence"] == [
        licence.evidence_hash.hex()
    ]  # the file is anchored on chain
    assert exported["root_cert_fingerprint"] == licence.root_cert_fingerprint.hex()
    # The root certificate certifies the CSR's key, is the foundation's, and names the licence.
    root = flow.authority.ca_certificate(licence.root_cert_fingerprint)
    assert root.public_key() == x509.load_pem_x509_csr(request.encode()).public_key()
    root.verify_directly_issued_by(flow.authority.foundation_root())
    assert f"OU=Manufacturer Licence {licence_id}" in root.subject.rfc4514_string()
    assert {e["actor"] for e in exported["timeline"]} == {
        applicant.address,
        foundation.address,
        auditor.address,
    }


def test_wrong_order_and_wrong_party_are_refused_saying_what_is_missing(onboarding) -> None:  # type: ignore[no-untyped-def]
    flow, _ = onboarding
    applicant_key = keys.dev_account(keys.DevRole.OWNER)
    applicant = Actor(applicant_key.address)
    foundation = Actor(keys.dev_account(0).address, frozenset({FOUNDATION}))
    case = flow.submit_intake(applicant, ANSWERS)

    with pytest.raises(
        TransitionRefused, match="in stage intake_submitted; 'sign_mou' needs stage checklist_issued"
    ):
        flow.sign_mou(applicant, case, _sign(flow, applicant_key, case, "manufacturer"))
    with pytest.raises(NotPermitted, match="needs the foundation role"):
        flow.issue_checklist(applicant, case)
    flow.issue_checklist(foundation, case)
    stranger_key = Account.create()
    with pytest.raises(NotPermitted, match="only the applicant"):
        flow.sign_mou(Actor(stranger_key.address), case, _sign(flow, stranger_key, case, "manufacturer"))
    with pytest.raises(NotPermitted, match="not an approved auditor with the hardware_security scope"):
        flow.assign_auditor(foundation, case, auditor=CX_AUDITOR.address)
    with pytest.raises(NotPermitted, match="needs the foundation role"):
        flow.assign_auditor(applicant, case, auditor=AUDITOR.address)
    flow.assign_auditor(foundation, case, auditor=AUDITOR.address)
    with pytest.raises(NotPermitted, match="its auditor is 0x"):
        flow.approve(CX_AUDITOR, case, report_sha256=REPORT_SHA)
    with pytest.raises(TransitionRefused, match="already has application"):
        flow.submit_intake(applicant, ANSWERS)


def test_mou_signatures_are_bound_single_use_and_expire(onboarding) -> None:  # type: ignore[no-untyped-def]
    flow, _ = onboarding
    applicant_key = keys.dev_account(keys.DevRole.OWNER)
    applicant = Actor(applicant_key.address)
    case = flow.submit_intake(applicant, ANSWERS)
    flow.issue_checklist(Actor(keys.dev_account(0).address, frozenset({FOUNDATION})), case)

    with pytest.raises(TransitionRefused, match="expired"):
        flow.sign_mou(
            applicant, case, _sign(flow, applicant_key, case, "manufacturer", deadline=int(time.time()) - 1)
        )
    other_key = Account.create()
    forged = _sign(flow, other_key, case, "manufacturer")
    with pytest.raises(NotPermitted, match=f"not by {applicant.address}"):
        flow.sign_mou(applicant, case, forged)
    wrong_case = _sign(flow, applicant_key, case + 1, "manufacturer")  # signed for another application
    with pytest.raises(NotPermitted):
        flow.sign_mou(applicant, case, wrong_case)

    with pytest.raises(
        TransitionRefused, match=f"the MOU: no evidence {'ef' * 32} in the store; upload it first"
    ):
        flow.sign_mou(applicant, case, _sign(flow, applicant_key, case, "manufacturer", mou="ef" * 32))
    with pytest.raises(TransitionRefused, match="was uploaded as audit_report, not mou"):
        flow.sign_mou(applicant, case, _sign(flow, applicant_key, case, "manufacturer", mou=REPORT_SHA))
    good = _sign(flow, applicant_key, case, "manufacturer", nonce=7)
    flow.sign_mou(applicant, case, good)
    flow.reject(Actor(keys.dev_account(0).address, frozenset({FOUNDATION})), case, reason="test")
    again = flow.submit_intake(applicant, ANSWERS)  # a rejected applicant may apply again
    flow.issue_checklist(Actor(keys.dev_account(0).address, frozenset({FOUNDATION})), again)
    with pytest.raises(TransitionRefused, match="nonce 7 .* already used"):
        flow.sign_mou(applicant, again, _sign(flow, applicant_key, again, "manufacturer", nonce=7))


def test_questionnaire_errors_name_every_field(onboarding) -> None:  # type: ignore[no-untyped-def]
    flow, runtime = onboarding
    answers = {**ANSWERS, "jurisdiction": "Germany", "website": "http://x", "extra": 1}
    answers["device"] = {**ANSWERS["device"], "expected_units_first_year": 0}
    with pytest.raises(QuestionnaireInvalid) as caught:
        flow.submit_intake(Actor(Web3.to_checksum_address("0x" + "12" * 20)), answers)
    problems = caught.value.problems
    assert (
        problems["jurisdiction"]
        == "'Germany' is not an ISO 3166-1 alpha-2 country code in capitals, such as DE"
    )
    assert problems["website"] == "'http://x' is not an https:// address"
    assert "extra" in problems and "device.expected_units_first_year" in problems
    with runtime.sessions() as session:
        assert session.scalar(select(Meta.value).where(Meta.key == "chain_id")) == "31337"
