"""DeviceLicense: committee governance, issue and revoke by vote, firmware, non-transferability."""

from __future__ import annotations

from contracts_support import DESIGN, DEVICE_EVIDENCE, VOTING_PERIOD, Chain
from web3 import Web3

LIC_NONE, LIC_ACTIVE, LIC_REVOKED = range(3)
KIND_ISSUE, KIND_REVOKE = 1, 2
PENDING, EXECUTED, REJECTED = 1, 2, 3
DESIGN2 = Web3.keccak(text="design: Acme Tracker T2 rev A")
REASON = Web3.keccak(text="field failures")
IMAGE = Web3.keccak(text="firmware 1.0.0 image")
ZERO32 = b"\x00" * 32
ZERO_ADDRESS = "0x" + "00" * 20


def propose_issue(chain: Chain, design: bytes = DESIGN2, model: str = "T2", revision: str = "A") -> int:
    a = chain.accounts
    chain.send(
        chain.dl.functions.proposeIssue(a.manufacturer.address, design, model, revision, DEVICE_EVIDENCE),
        a.member2,
    )
    return int(chain.dl.functions.proposalCount().call())


def test_constructor_state(chain: Chain) -> None:
    a = chain.accounts
    dl = chain.dl.functions
    assert dl.owner().call() == a.foundation.address
    assert dl.manufacturerLicense().call() == chain.ml.address
    assert dl.committeeSize().call() == 3
    assert dl.quorum().call() == 2
    assert dl.votingPeriod().call() == VOTING_PERIOD
    for member in (a.member1, a.member2, a.member3):
        assert dl.isCommitteeMember(member.address).call() is True
    assert dl.isCommitteeMember(a.foundation.address).call() is False
    assert (dl.name().call(), dl.symbol().call()) == ("Devicemint Device Licence", "DMDL")


def test_sample_licence_issued_by_vote(chain: Chain) -> None:
    """The session setup issued licence 1 through proposal 1; check every recorded field."""
    a = chain.accounts
    dl = chain.dl.functions
    licence = dl.licence(1).call()
    assert licence[:6] == (a.manufacturer.address, DESIGN, "T1", "B", DEVICE_EVIDENCE, LIC_ACTIVE)
    assert licence[6] > 0 and licence[7] == ZERO32
    assert dl.isActive(1).call() is True
    assert dl.licenceOfDesign(DESIGN).call() == 1
    assert tuple(dl.licenceSummary(1).call()) == (a.manufacturer.address, DESIGN, LIC_ACTIVE)
    assert dl.ownerOf(1).call() == a.manufacturer.address
    assert dl.licenceCount().call() == 1
    proposal = dl.proposal(1).call()
    assert proposal[0:2] == (KIND_ISSUE, EXECUTED)
    assert proposal[2] == a.member1.address
    assert proposal[4:8] == (2, 2, 0, 1)  # quorum, yes, no, licenceId


def test_quorum_vote_issues_licence_with_all_fields(chain: Chain) -> None:
    a = chain.accounts
    dl = chain.dl.functions
    receipt = chain.send(
        dl.proposeIssue(a.manufacturer.address, DESIGN2, "T2", "A", DEVICE_EVIDENCE), a.foundation
    )  # the owner may table proposals without being a member
    (created,) = chain.events(receipt, chain.dl, "ProposalCreated")
    created_at = chain.w3.eth.get_block(receipt["blockNumber"])["timestamp"]
    assert dict(created["args"]) == {
        "proposalId": 2,
        "kind": KIND_ISSUE,
        "proposer": a.foundation.address,
        "deadline": created_at + VOTING_PERIOD,
        "quorum": 2,
        "licenceId": 0,
        "manufacturer": a.manufacturer.address,
        "designHash": DESIGN2,
        "model": "T2",
        "revision": "A",
        "evidenceHash": DEVICE_EVIDENCE,
        "reasonHash": ZERO32,
    }
    assert dl.proposal(2).call() == (
        KIND_ISSUE,
        PENDING,
        a.foundation.address,
        created_at + VOTING_PERIOD,
        2,
        0,
        0,
        0,
        a.manufacturer.address,
        DESIGN2,
        "T2",
        "A",
        DEVICE_EVIDENCE,
        ZERO32,
    )
    receipt = chain.send(dl.vote(2, True), a.member1)
    assert dict(chain.events(receipt, chain.dl, "VoteCast")[0]["args"]) == {
        "proposalId": 2,
        "voter": a.member1.address,
        "support": True,
        "yesVotes": 1,
        "noVotes": 0,
    }
    assert chain.events(receipt, chain.dl, "LicenceIssued") == []
    assert dl.hasVoted(2, a.member1.address).call() is True
    assert dl.hasVoted(2, a.member2.address).call() is False
    assert dl.licenceOfDesign(DESIGN2).call() == 0

    receipt = chain.send(dl.vote(2, True), a.member3)
    issued_at = chain.w3.eth.get_block(receipt["blockNumber"])["timestamp"]
    assert dict(chain.events(receipt, chain.dl, "LicenceIssued")[0]["args"]) == {
        "licenceId": 2,
        "holder": a.manufacturer.address,
        "designHash": DESIGN2,
        "model": "T2",
        "revision": "A",
        "evidenceHash": DEVICE_EVIDENCE,
    }
    assert dict(chain.events(receipt, chain.dl, "ProposalExecuted")[0]["args"]) == {
        "proposalId": 2,
        "licenceId": 2,
    }
    assert chain.events(receipt, chain.dl, "Locked")[0]["args"]["tokenId"] == 2
    assert dl.licence(2).call() == (
        a.manufacturer.address,
        DESIGN2,
        "T2",
        "A",
        DEVICE_EVIDENCE,
        LIC_ACTIVE,
        issued_at,
        ZERO32,
    )
    assert dl.proposal(2).call()[1] == EXECUTED
    assert dl.proposal(2).call()[7] == 2
    assert dl.licenceOfDesign(DESIGN2).call() == 2
    assert dl.ownerOf(2).call() == a.manufacturer.address
    assert dl.balanceOf(a.manufacturer.address).call() == 2
    # Decided: further votes are refused.
    chain.reverts(dl.vote(2, True), a.member2, "ProposalNotPending", 2, EXECUTED)


def test_no_votes_reject_once_quorum_unreachable(chain: Chain) -> None:
    a = chain.accounts
    dl = chain.dl.functions
    pid = propose_issue(chain)
    receipt = chain.send(dl.vote(pid, False), a.member1)  # 1 no: 2 yes still possible
    assert chain.events(receipt, chain.dl, "ProposalRejected") == []
    assert dl.proposal(pid).call()[1] == PENDING
    receipt = chain.send(dl.vote(pid, False), a.member2)  # 2 no > 3 - 2
    assert chain.events(receipt, chain.dl, "ProposalRejected")[0]["args"]["proposalId"] == pid
    proposal = dl.proposal(pid).call()
    assert proposal[1] == REJECTED and proposal[5:7] == (0, 2)
    assert dl.licenceOfDesign(DESIGN2).call() == 0
    assert dl.licenceCount().call() == 1
    chain.reverts(dl.vote(pid, True), a.member3, "ProposalNotPending", pid, REJECTED)


def test_vote_refusals(chain: Chain) -> None:
    a = chain.accounts
    dl = chain.dl.functions
    pid = propose_issue(chain)
    chain.reverts(dl.vote(pid, True), a.outsider, "NotCommitteeMember", a.outsider.address)
    chain.reverts(dl.vote(pid, True), a.foundation, "NotCommitteeMember", a.foundation.address)
    chain.reverts(dl.vote(99, True), a.member1, "UnknownProposal", 99)
    chain.send(dl.vote(pid, True), a.member1)
    chain.reverts(dl.vote(pid, True), a.member1, "AlreadyVoted", pid, a.member1.address)
    chain.reverts(dl.vote(pid, False), a.member1, "AlreadyVoted", pid, a.member1.address)
    deadline = dl.proposal(pid).call()[3]
    chain.travel(VOTING_PERIOD + 1)
    chain.reverts(dl.vote(pid, True), a.member2, "VotingClosed", pid, deadline)
    assert dl.proposal(pid).call()[1] == PENDING  # expired undecided
    chain.reverts(dl.proposal(99), a.outsider, "UnknownProposal", 99)


def test_vote_at_deadline_still_counts(chain: Chain) -> None:
    a = chain.accounts
    dl = chain.dl.functions
    pid = propose_issue(chain)
    chain.send(dl.vote(pid, True), a.member1)
    deadline = dl.proposal(pid).call()[3]
    chain.w3.provider.make_request("evm_setNextBlockTimestamp", [deadline])
    chain.send(dl.vote(pid, True), a.member2)
    assert dl.proposal(pid).call()[1] == EXECUTED


def test_propose_issue_refusals(chain: Chain) -> None:
    a = chain.accounts
    dl = chain.dl.functions
    m = a.manufacturer.address
    chain.reverts(
        dl.proposeIssue(m, DESIGN2, "T2", "A", DEVICE_EVIDENCE), a.outsider, "NotProposer", a.outsider.address
    )
    chain.reverts(dl.proposeIssue(m, DESIGN2, "T2", "A", DEVICE_EVIDENCE), a.manufacturer, "NotProposer", m)
    chain.reverts(dl.proposeIssue(m, ZERO32, "T2", "A", DEVICE_EVIDENCE), a.member1, "ZeroDesignHash")
    chain.reverts(dl.proposeIssue(m, DESIGN2, "", "A", DEVICE_EVIDENCE), a.member1, "EmptyModel")
    chain.reverts(
        dl.proposeIssue(m, DESIGN, "T1", "B", DEVICE_EVIDENCE), a.member1, "DesignAlreadyLicensed", DESIGN, 1
    )
    unlicensed = a.manufacturer2.address
    chain.reverts(
        dl.proposeIssue(unlicensed, DESIGN2, "T2", "A", DEVICE_EVIDENCE),
        a.member1,
        "ManufacturerNotActive",
        unlicensed,
    )


def test_propose_issue_refused_for_suspended_and_revoked_manufacturer(chain: Chain) -> None:
    a = chain.accounts
    propose = chain.dl.functions.proposeIssue(a.manufacturer.address, DESIGN2, "T2", "A", DEVICE_EVIDENCE)
    chain.send(chain.ml.functions.suspend(1, REASON), a.foundation)
    chain.reverts(propose, a.member1, "ManufacturerNotActive", a.manufacturer.address)
    chain.send(chain.ml.functions.revoke(1, REASON), a.foundation)
    chain.reverts(propose, a.member1, "ManufacturerNotActive", a.manufacturer.address)


def test_execution_rechecks_manufacturer_and_can_complete_later(chain: Chain) -> None:
    a = chain.accounts
    dl = chain.dl.functions
    pid = propose_issue(chain)
    chain.send(dl.vote(pid, True), a.member1)
    chain.send(chain.ml.functions.suspend(1, REASON), a.foundation)
    chain.reverts(dl.vote(pid, True), a.member2, "ManufacturerNotActive", a.manufacturer.address)
    assert dl.hasVoted(pid, a.member2.address).call() is False
    chain.send(chain.ml.functions.reinstate(1), a.foundation)
    chain.send(dl.vote(pid, True), a.member2)
    assert dl.licenceOfDesign(DESIGN2).call() == 2


def test_execution_rechecks_design_not_licensed_meanwhile(chain: Chain) -> None:
    a = chain.accounts
    dl = chain.dl.functions
    first = propose_issue(chain)
    second = propose_issue(chain)
    chain.send(dl.vote(first, True), a.member1)
    chain.send(dl.vote(first, True), a.member2)
    chain.send(dl.vote(second, True), a.member1)
    chain.reverts(dl.vote(second, True), a.member2, "DesignAlreadyLicensed", DESIGN2, 2)


def test_quorum_is_snapshotted_per_proposal(chain: Chain) -> None:
    a = chain.accounts
    dl = chain.dl.functions
    pid = propose_issue(chain)
    chain.send(dl.setQuorum(3), a.foundation)
    chain.send(dl.vote(pid, True), a.member1)
    chain.send(dl.vote(pid, True), a.member2)
    assert dl.proposal(pid).call()[1] == EXECUTED  # 2 of the proposal's quorum 2
    later = propose_issue(chain, Web3.keccak(text="design 3"))
    assert dl.proposal(later).call()[4] == 3
    chain.send(dl.vote(later, True), a.member1)
    chain.send(dl.vote(later, True), a.member2)
    assert dl.proposal(later).call()[1] == PENDING
    chain.send(dl.vote(later, True), a.member3)
    assert dl.proposal(later).call()[1] == EXECUTED


def test_voting_period_is_snapshotted_per_proposal(chain: Chain) -> None:
    a = chain.accounts
    dl = chain.dl.functions
    receipt = chain.send(dl.setVotingPeriod(60), a.foundation)
    assert chain.events(receipt, chain.dl, "VotingPeriodChanged")[0]["args"]["votingPeriod"] == 60
    pid = propose_issue(chain)
    chain.send(dl.setVotingPeriod(VOTING_PERIOD), a.foundation)
    chain.travel(61)
    chain.reverts(dl.vote(pid, True), a.member1, "VotingClosed")


def test_revoke_by_vote(chain: Chain) -> None:
    a = chain.accounts
    dl = chain.dl.functions
    receipt = chain.send(dl.proposeRevoke(1, REASON), a.member3)
    created = chain.events(receipt, chain.dl, "ProposalCreated")[0]["args"]
    assert (created["kind"], created["licenceId"], created["reasonHash"]) == (KIND_REVOKE, 1, REASON)
    pid = created["proposalId"]
    chain.send(dl.vote(pid, True), a.member1)
    assert dl.isActive(1).call() is True
    receipt = chain.send(dl.vote(pid, True), a.member3)
    assert dict(chain.events(receipt, chain.dl, "LicenceRevoked")[0]["args"]) == {
        "licenceId": 1,
        "reasonHash": REASON,
    }
    assert dict(chain.events(receipt, chain.dl, "ProposalExecuted")[0]["args"]) == {
        "proposalId": pid,
        "licenceId": 1,
    }
    licence = dl.licence(1).call()
    assert (licence[5], licence[7]) == (LIC_REVOKED, REASON)
    assert dl.isActive(1).call() is False
    assert dl.licenceOfDesign(DESIGN).call() == 0
    assert dl.ownerOf(1).call() == a.manufacturer.address  # the record stays
    chain.reverts(dl.proposeRevoke(1, REASON), a.member1, "LicenceNotActive", 1)
    # The design may be licensed afresh after revocation (new review).
    assert chain.issue_device_licence(a.manufacturer, DESIGN) == 2
    assert dl.licenceOfDesign(DESIGN).call() == 2


def test_propose_revoke_refusals(chain: Chain) -> None:
    a = chain.accounts
    dl = chain.dl.functions
    chain.reverts(dl.proposeRevoke(1, REASON), a.outsider, "NotProposer", a.outsider.address)
    chain.reverts(dl.proposeRevoke(1, REASON), a.manufacturer, "NotProposer", a.manufacturer.address)
    chain.reverts(dl.proposeRevoke(5, REASON), a.member1, "UnknownLicence", 5)
    chain.reverts(dl.licence(5), a.outsider, "UnknownLicence", 5)
    assert tuple(dl.licenceSummary(5).call()) == (ZERO_ADDRESS, ZERO32, LIC_NONE)
    assert dl.isActive(5).call() is False


def test_revoke_execution_rechecks_licence(chain: Chain) -> None:
    a = chain.accounts
    dl = chain.dl.functions
    chain.send(dl.proposeRevoke(1, REASON), a.member1)
    chain.send(dl.proposeRevoke(1, REASON), a.member1)
    for pid in (2, 3):
        chain.send(dl.vote(pid, True), a.member1)
    chain.send(dl.vote(2, True), a.member2)
    chain.reverts(dl.vote(3, True), a.member2, "LicenceNotActive", 1)


def test_committee_management(chain: Chain) -> None:
    a = chain.accounts
    dl = chain.dl.functions
    receipt = chain.send(dl.setCommitteeMember(a.buyer.address, True), a.foundation)
    assert dict(chain.events(receipt, chain.dl, "CommitteeMemberSet")[0]["args"]) == {
        "account": a.buyer.address,
        "isMember": True,
    }
    assert dl.isCommitteeMember(a.buyer.address).call() is True
    assert dl.committeeSize().call() == 4
    receipt = chain.send(dl.setCommitteeMember(a.buyer.address, True), a.foundation)  # idempotent
    assert chain.events(receipt, chain.dl, "CommitteeMemberSet") == []
    assert dl.committeeSize().call() == 4
    receipt = chain.send(dl.setQuorum(4), a.foundation)
    assert chain.events(receipt, chain.dl, "QuorumChanged")[0]["args"]["quorum"] == 4
    chain.reverts(dl.setCommitteeMember(a.member1.address, False), a.foundation, "InvalidQuorum", 4, 3)
    chain.send(dl.setQuorum(2), a.foundation)
    chain.send(dl.setCommitteeMember(a.member1.address, False), a.foundation)
    assert dl.isCommitteeMember(a.member1.address).call() is False
    assert dl.committeeSize().call() == 3
    chain.reverts(dl.proposeRevoke(1, REASON), a.member1, "NotProposer", a.member1.address)
    chain.reverts(dl.setQuorum(0), a.foundation, "InvalidQuorum", 0, 3)
    chain.reverts(dl.setQuorum(4), a.foundation, "InvalidQuorum", 4, 3)
    chain.reverts(dl.setVotingPeriod(0), a.foundation, "ZeroVotingPeriod")
    chain.reverts(dl.setCommitteeMember(ZERO_ADDRESS, True), a.foundation, "ZeroAddress")
    # A removed member can no longer vote.
    pid = propose_issue(chain)
    chain.reverts(dl.vote(pid, True), a.member1, "NotCommitteeMember", a.member1.address)
    chain.send(dl.vote(pid, True), a.buyer)
    chain.send(dl.vote(pid, True), a.member2)
    assert dl.proposal(pid).call()[1] == EXECUTED


def test_governance_functions_refuse_other_callers(chain: Chain) -> None:
    a = chain.accounts
    dl = chain.dl.functions
    for call in (dl.setCommitteeMember(a.outsider.address, True), dl.setQuorum(1), dl.setVotingPeriod(1)):
        for caller in (a.outsider, a.member1, a.manufacturer):
            chain.reverts(call, caller, "OwnableUnauthorizedAccount", caller.address)


def test_publish_firmware(chain: Chain) -> None:
    a = chain.accounts
    dl = chain.dl.functions
    receipt = chain.send(dl.publishFirmware(1, "1.0.0", IMAGE), a.manufacturer)
    assert dict(chain.events(receipt, chain.dl, "FirmwarePublished")[0]["args"]) == {
        "licenceId": 1,
        "version": "1.0.0",
        "imageHash": IMAGE,
    }
    assert dl.firmwareImage(1, Web3.keccak(text="1.0.0")).call() == IMAGE
    assert dl.firmwareImage(1, Web3.keccak(text="1.0.1")).call() == ZERO32
    chain.reverts(
        dl.publishFirmware(1, "1.0.0", Web3.keccak(text="other")),
        a.manufacturer,
        "FirmwareAlreadyPublished",
        1,
        "1.0.0",
    )
    chain.send(dl.publishFirmware(1, "1.0.1", Web3.keccak(text="other")), a.manufacturer)
    assert dl.firmwareImage(1, Web3.keccak(text="1.0.1")).call() == Web3.keccak(text="other")


def test_publish_firmware_refusals(chain: Chain) -> None:
    a = chain.accounts
    dl = chain.dl.functions
    chain.reverts(
        dl.publishFirmware(1, "1.0.0", IMAGE), a.outsider, "NotLicenceHolder", 1, a.outsider.address
    )
    chain.reverts(
        dl.publishFirmware(1, "1.0.0", IMAGE), a.foundation, "NotLicenceHolder", 1, a.foundation.address
    )
    chain.reverts(dl.publishFirmware(1, "1.0.0", ZERO32), a.manufacturer, "ZeroImageHash")
    chain.reverts(dl.publishFirmware(1, "", IMAGE), a.manufacturer, "EmptyVersion")
    chain.reverts(dl.publishFirmware(9, "1.0.0", IMAGE), a.manufacturer, "UnknownLicence", 9)


def test_publish_firmware_refused_for_suspended_or_revoked_manufacturer(chain: Chain) -> None:
    a = chain.accounts
    publish = chain.dl.functions.publishFirmware(1, "1.0.0", IMAGE)
    chain.send(chain.ml.functions.suspend(1, REASON), a.foundation)
    chain.reverts(publish, a.manufacturer, "ManufacturerNotActive", a.manufacturer.address)
    chain.send(chain.ml.functions.revoke(1, REASON), a.foundation)
    chain.reverts(publish, a.manufacturer, "ManufacturerNotActive", a.manufacturer.address)


def test_publish_firmware_refused_for_revoked_device_licence(chain: Chain) -> None:
    a = chain.accounts
    dl = chain.dl.functions
    chain.send(dl.proposeRevoke(1, REASON), a.member1)
    chain.send(dl.vote(2, True), a.member1)
    chain.send(dl.vote(2, True), a.member2)
    chain.reverts(dl.publishFirmware(1, "1.0.0", IMAGE), a.manufacturer, "LicenceNotActive", 1)


def test_device_licence_is_soulbound(chain: Chain) -> None:
    a = chain.accounts
    dl = chain.dl.functions
    m = a.manufacturer
    chain.reverts(dl.transferFrom(m.address, a.buyer.address, 1), m, "LicenceNonTransferable")
    chain.reverts(dl.safeTransferFrom(m.address, a.buyer.address, 1), m, "LicenceNonTransferable")
    chain.reverts(dl.safeTransferFrom(m.address, a.buyer.address, 1, b""), m, "LicenceNonTransferable")
    chain.reverts(dl.approve(a.buyer.address, 1), m, "LicenceNonTransferable")
    chain.reverts(dl.setApprovalForAll(a.buyer.address, True), m, "LicenceNonTransferable")
    assert dl.ownerOf(1).call() == m.address
    assert dl.locked(1).call() is True
    chain.reverts(dl.locked(2), a.outsider, "ERC721NonexistentToken", 2)
    assert dl.supportsInterface(bytes.fromhex("b45a3c0e")).call() is True
    assert dl.supportsInterface(bytes.fromhex("80ac58cd")).call() is True
    assert dl.supportsInterface(bytes.fromhex("ffffffff")).call() is False


def test_ownership_cannot_be_renounced(chain: Chain) -> None:
    a = chain.accounts
    chain.reverts(chain.dl.functions.renounceOwnership(), a.foundation, "OwnershipCannotBeRenounced")
    assert chain.dl.functions.owner().call() == a.foundation.address
