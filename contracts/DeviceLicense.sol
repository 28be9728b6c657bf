// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.30;

import {ERC721} from "@openzeppelin/contracts/token/ERC721/ERC721.sol";
import {Ownable} from "@openzeppelin/contracts/access/Ownable.sol";
import {Ownable2Step} from "@openzeppelin/contracts/access/Ownable2Step.sol";
import {Soulbound721} from "./base/Soulbound721.sol";
import {ManufacturerLicense} from "./ManufacturerLicense.sol";

/// @title Device licence
/// @notice Non-transferable (ERC-5192) licence for exactly one hardware design, identified by its
///         `designHash`. Issued and revoked only by a vote of the committee (the Hardware
///         Integration Team), never by a single key, so that no one party can licence a design.
///         Any change to a licensed design changes its hash and therefore needs a new licence.
/// @dev Licence and proposal ids start at 1. The foundation (owner) manages the committee, the
///      quorum and the voting period, and may table proposals, but only committee members vote.
///      Each proposal snapshots its deadline and quorum at creation, so later governance changes
///      cannot move the goalposts of a running vote. A proposal executes inside the vote that
///      reaches its quorum; it is rejected as soon as enough members voted no that the quorum
///      can no longer be reached by the current committee.
contract DeviceLicense is Soulbound721, Ownable2Step {
    /// @notice A device licence is either in force or revoked (terminal).
    enum LicenceStatus {
        None,
        Active,
        Revoked
    }

    enum ProposalKind {
        None,
        Issue,
        Revoke
    }

    enum ProposalStatus {
        None,
        Pending,
        Executed,
        Rejected
    }

    /// @notice One device licence.
    /// @param holder Licensed manufacturer the design belongs to (the token's owner).
    /// @param designHash Hash identifying the design dossier (model, revision, schematics, BOM,
    ///        firmware, docs); at most one non-revoked licence per hash.
    /// @param model Hardware model name.
    /// @param revision Hardware revision.
    /// @param evidenceHash SHA-256 anchoring the device application decision (audits, CX, votes).
    /// @param status Current status.
    /// @param issuedAt Block timestamp of issue.
    /// @param reasonHash SHA-256 of the document explaining the revocation (zero while active).
    struct Licence {
        address holder;
        bytes32 designHash;
        string model;
        string revision;
        bytes32 evidenceHash;
        LicenceStatus status;
        uint64 issuedAt;
        bytes32 reasonHash;
    }

    /// @notice One committee decision. Issue proposals use manufacturer/designHash/model/
    ///         revision/evidenceHash and record the issued `licenceId` on execution; revoke
    ///         proposals use licenceId/reasonHash.
    struct Proposal {
        ProposalKind kind;
        ProposalStatus status;
        address proposer;
        uint64 deadline;
        uint16 quorum;
        uint16 yesVotes;
        uint16 noVotes;
        uint256 licenceId;
        address manufacturer;
        bytes32 designHash;
        string model;
        string revision;
        bytes32 evidenceHash;
        bytes32 reasonHash;
    }

    // ------------------------------------------------------------------ errors

    /// @notice Only committee members may vote.
    error NotCommitteeMember(address account);
    /// @notice Only committee members or the owner may table proposals.
    error NotProposer(address account);
    /// @notice `manufacturer` does not hold an active manufacturer licence.
    error ManufacturerNotActive(address manufacturer);
    /// @notice The design hash must not be zero.
    error ZeroDesignHash();
    /// @notice The model name must not be empty.
    error EmptyModel();
    /// @notice `designHash` already has the non-revoked licence `licenceId`.
    error DesignAlreadyLicensed(bytes32 designHash, uint256 licenceId);
    /// @notice Licence `licenceId` does not exist.
    error UnknownLicence(uint256 licenceId);
    /// @notice Licence `licenceId` is not active.
    error LicenceNotActive(uint256 licenceId);
    /// @notice Proposal `proposalId` does not exist.
    error UnknownProposal(uint256 proposalId);
    /// @notice Proposal `proposalId` was already decided (`status`).
    error ProposalNotPending(uint256 proposalId, ProposalStatus status);
    /// @notice `voter` already voted on `proposalId`.
    error AlreadyVoted(uint256 proposalId, address voter);
    /// @notice Voting on `proposalId` closed at `deadline`.
    error VotingClosed(uint256 proposalId, uint64 deadline);
    /// @notice `quorum` must be between 1 and the committee size `committeeSize`.
    error InvalidQuorum(uint256 quorum, uint256 committeeSize);
    /// @notice The voting period must be positive.
    error ZeroVotingPeriod();
    /// @notice Addresses given here must not be the zero address.
    error ZeroAddress();
    /// @notice The programme must always have an operator; ownership can only be handed over.
    error OwnershipCannotBeRenounced();
    /// @notice `account` appears twice in the initial committee.
    error DuplicateCommitteeMember(address account);
    /// @notice Only the holder of licence `licenceId` may do this; `account` is not it.
    error NotLicenceHolder(uint256 licenceId, address account);
    /// @notice Firmware image hashes must not be zero.
    error ZeroImageHash();
    /// @notice Firmware versions must not be empty.
    error EmptyVersion();
    /// @notice `version` was already published for `licenceId`; versions are immutable.
    error FirmwareAlreadyPublished(uint256 licenceId, string version);

    // ------------------------------------------------------------------ events

    event CommitteeMemberSet(address indexed account, bool isMember);
    event QuorumChanged(uint16 quorum);
    event VotingPeriodChanged(uint64 votingPeriod);
    /// @notice Carries every field of the proposal so the indexer needs no extra calls.
    event ProposalCreated(
        uint256 indexed proposalId,
        ProposalKind kind,
        address indexed proposer,
        uint64 deadline,
        uint16 quorum,
        uint256 licenceId,
        address indexed manufacturer,
        bytes32 designHash,
        string model,
        string revision,
        bytes32 evidenceHash,
        bytes32 reasonHash
    );
    event VoteCast(uint256 indexed proposalId, address indexed voter, bool support, uint16 yesVotes, uint16 noVotes);
    /// @notice `licenceId` is the licence issued (Issue) or revoked (Revoke).
    event ProposalExecuted(uint256 indexed proposalId, uint256 indexed licenceId);
    event ProposalRejected(uint256 indexed proposalId);
    event LicenceIssued(
        uint256 indexed licenceId,
        address indexed holder,
        bytes32 indexed designHash,
        string model,
        string revision,
        bytes32 evidenceHash
    );
    event LicenceRevoked(uint256 indexed licenceId, bytes32 reasonHash);
    event FirmwarePublished(uint256 indexed licenceId, string version, bytes32 imageHash);

    // ------------------------------------------------------------------ storage

    /// @notice Registry of manufacturer licences consulted on every issue and firmware release.
    ManufacturerLicense public immutable manufacturerLicense;
    /// @notice Yes votes a new proposal needs.
    uint16 public quorum;
    /// @notice Number of committee members.
    uint16 public committeeSize;
    /// @notice Seconds a new proposal stays open for votes.
    uint64 public votingPeriod;

    uint256 private _lastLicenceId;
    uint256 private _lastProposalId;
    mapping(address account => bool) private _isMember;
    mapping(uint256 licenceId => Licence) private _licences;
    mapping(bytes32 designHash => uint256) private _licenceOfDesign;
    mapping(uint256 proposalId => Proposal) private _proposals;
    mapping(uint256 proposalId => mapping(address voter => bool)) private _hasVoted;
    mapping(uint256 licenceId => mapping(bytes32 versionHash => bytes32)) private _firmwareImage;

    /// @param manufacturerLicense_ Registry of manufacturer licences.
    /// @param foundation Owner: manages the committee and may table proposals.
    /// @param committee Initial committee members (distinct, non-zero).
    /// @param quorum_ Yes votes needed, 1..committee.length.
    /// @param votingPeriod_ Seconds a proposal stays open.
    constructor(
        ManufacturerLicense manufacturerLicense_,
        address foundation,
        address[] memory committee,
        uint16 quorum_,
        uint64 votingPeriod_
    ) ERC721("Devicemint Device Licence", "DMDL") Ownable(foundation) {
        if (address(manufacturerLicense_) == address(0)) revert ZeroAddress();
        manufacturerLicense = manufacturerLicense_;
        for (uint256 i; i < committee.length; ++i) {
            address member = committee[i];
            if (member == address(0)) revert ZeroAddress();
            if (_isMember[member]) revert DuplicateCommitteeMember(member);
            _isMember[member] = true;
            emit CommitteeMemberSet(member, true);
        }
        committeeSize = uint16(committee.length);
        _setQuorum(quorum_);
        _setVotingPeriod(votingPeriod_);
    }

    // ------------------------------------------------------------------ governance

    /// @notice Adds or removes a committee member. Removing is refused if it would leave fewer
    ///         members than the quorum. Setting the current value is a no-op (idempotent setup).
    function setCommitteeMember(address account, bool isMember) external onlyOwner {
        if (account == address(0)) revert ZeroAddress();
        if (_isMember[account] == isMember) return;
        _isMember[account] = isMember;
        if (isMember) {
            ++committeeSize;
        } else {
            uint16 size = committeeSize - 1;
            if (size < quorum) revert InvalidQuorum(quorum, size);
            committeeSize = size;
        }
        emit CommitteeMemberSet(account, isMember);
    }

    /// @notice Sets the quorum for proposals created from now on.
    function setQuorum(uint16 quorum_) external onlyOwner {
        _setQuorum(quorum_);
    }

    /// @notice Sets the voting period for proposals created from now on.
    function setVotingPeriod(uint64 votingPeriod_) external onlyOwner {
        _setVotingPeriod(votingPeriod_);
    }

    /// @notice Disabled: without an owner no licence could ever be suspended, revoked or
    ///         issued again. Hand over with transferOwnership + acceptOwnership instead.
    function renounceOwnership() public pure override {
        revert OwnershipCannotBeRenounced();
    }

    // ------------------------------------------------------------------ proposals and votes

    /// @notice Tables the issue of a device licence for `designHash` to `manufacturer`.
    /// @return proposalId The new proposal id (sequential from 1).
    function proposeIssue(
        address manufacturer,
        bytes32 designHash,
        string calldata model,
        string calldata revision,
        bytes32 evidenceHash
    ) external returns (uint256 proposalId) {
        _checkProposer();
        if (designHash == bytes32(0)) revert ZeroDesignHash();
        if (bytes(model).length == 0) revert EmptyModel();
        _checkIssuable(manufacturer, designHash);
        proposalId = ++_lastProposalId;
        Proposal storage p = _proposals[proposalId];
        p.kind = ProposalKind.Issue;
        p.manufacturer = manufacturer;
        p.designHash = designHash;
        p.model = model;
        p.revision = revision;
        p.evidenceHash = evidenceHash;
        _open(proposalId, p);
    }

    /// @notice Tables the revocation (for cause) of active device licence `licenceId`.
    /// @return proposalId The new proposal id (sequential from 1).
    function proposeRevoke(uint256 licenceId, bytes32 reasonHash) external returns (uint256 proposalId) {
        _checkProposer();
        _activeLicence(licenceId);
        proposalId = ++_lastProposalId;
        Proposal storage p = _proposals[proposalId];
        p.kind = ProposalKind.Revoke;
        p.licenceId = licenceId;
        p.reasonHash = reasonHash;
        _open(proposalId, p);
    }

    /// @notice Casts the caller's vote. The vote that reaches the proposal's quorum executes it
    ///         (re-checking that it is still valid, reverting if not, so the vote can be cast
    ///         again once the obstacle is gone); the no vote that makes the quorum unreachable
    ///         rejects it.
    function vote(uint256 proposalId, bool support) external {
        if (!_isMember[msg.sender]) revert NotCommitteeMember(msg.sender);
        Proposal storage p = _proposals[proposalId];
        if (p.status == ProposalStatus.None) revert UnknownProposal(proposalId);
        if (p.status != ProposalStatus.Pending) revert ProposalNotPending(proposalId, p.status);
        if (block.timestamp > p.deadline) revert VotingClosed(proposalId, p.deadline);
        if (_hasVoted[proposalId][msg.sender]) revert AlreadyVoted(proposalId, msg.sender);
        _hasVoted[proposalId][msg.sender] = true;

        if (support) {
            p.yesVotes += 1;
        } else {
            p.noVotes += 1;
        }
        emit VoteCast(proposalId, msg.sender, support, p.yesVotes, p.noVotes);

        if (p.yesVotes >= p.quorum) {
            _execute(proposalId, p);
        } else if (uint256(p.noVotes) + p.quorum > committeeSize) {
            p.status = ProposalStatus.Rejected;
            emit ProposalRejected(proposalId);
        }
    }

    // ------------------------------------------------------------------ firmware

    /// @notice Publishes firmware `version` with image hash `imageHash` for licence `licenceId`.
    ///         Only published firmware may later be recorded as an OTA update of a device, so
    ///         only the holder of an active device licence, itself an active manufacturer, may
    ///         publish; a version is immutable once published.
    function publishFirmware(uint256 licenceId, string calldata version, bytes32 imageHash) external {
        Licence storage l = _activeLicence(licenceId);
        if (msg.sender != l.holder) revert NotLicenceHolder(licenceId, msg.sender);
        if (!manufacturerLicense.isActive(msg.sender)) revert ManufacturerNotActive(msg.sender);
        if (bytes(version).length == 0) revert EmptyVersion();
        if (imageHash == bytes32(0)) revert ZeroImageHash();
        bytes32 versionHash = keccak256(bytes(version));
        if (_firmwareImage[licenceId][versionHash] != bytes32(0)) {
            revert FirmwareAlreadyPublished(licenceId, version);
        }
        _firmwareImage[licenceId][versionHash] = imageHash;
        emit FirmwarePublished(licenceId, version, imageHash);
    }

    // ------------------------------------------------------------------ views

    /// @notice Image hash of firmware published for `licenceId` under `keccak256(bytes(version))`
    ///         (zero if never published).
    function firmwareImage(uint256 licenceId, bytes32 versionHash) external view returns (bytes32) {
        return _firmwareImage[licenceId][versionHash];
    }

    /// @notice The full record of licence `licenceId`; reverts for an unknown id.
    function licence(uint256 licenceId) external view returns (Licence memory) {
        Licence storage l = _licences[licenceId];
        if (l.status == LicenceStatus.None) revert UnknownLicence(licenceId);
        return l;
    }

    /// @notice The three fields minting needs, without copying strings (cheap for other
    ///         contracts). Returns zeros for an unknown id instead of reverting.
    function licenceSummary(uint256 licenceId)
        external
        view
        returns (address holder, bytes32 designHash, LicenceStatus status)
    {
        Licence storage l = _licences[licenceId];
        return (l.holder, l.designHash, l.status);
    }

    /// @notice Whether device licence `licenceId` is in force. This says nothing about the
    ///         holder's manufacturer licence; minting checks both.
    function isActive(uint256 licenceId) external view returns (bool) {
        return _licences[licenceId].status == LicenceStatus.Active;
    }

    /// @notice The non-revoked licence of `designHash` (0 if none).
    function licenceOfDesign(bytes32 designHash) external view returns (uint256) {
        return _licenceOfDesign[designHash];
    }

    /// @notice Proposal `proposalId`; reverts for an unknown id. A Pending proposal whose
    ///         deadline has passed can no longer be decided (it expired).
    function proposal(uint256 proposalId) external view returns (Proposal memory) {
        Proposal storage p = _proposals[proposalId];
        if (p.status == ProposalStatus.None) revert UnknownProposal(proposalId);
        return p;
    }

    /// @notice Whether `voter` voted on `proposalId`.
    function hasVoted(uint256 proposalId, address voter) external view returns (bool) {
        return _hasVoted[proposalId][voter];
    }

    /// @notice Whether `account` is a committee member.
    function isCommitteeMember(address account) external view returns (bool) {
        return _isMember[account];
    }

    /// @notice Number of licences issued so far (the highest id).
    function licenceCount() external view returns (uint256) {
        return _lastLicenceId;
    }

    /// @notice Number of proposals tabled so far (the highest id).
    function proposalCount() external view returns (uint256) {
        return _lastProposalId;
    }

    // ------------------------------------------------------------------ internals

    function _checkProposer() private view {
        if (!_isMember[msg.sender] && msg.sender != owner()) revert NotProposer(msg.sender);
    }

    function _checkIssuable(address manufacturer, bytes32 designHash) private view {
        if (!manufacturerLicense.isActive(manufacturer)) revert ManufacturerNotActive(manufacturer);
        uint256 existing = _licenceOfDesign[designHash];
        if (existing != 0) revert DesignAlreadyLicensed(designHash, existing);
    }

    function _activeLicence(uint256 licenceId) private view returns (Licence storage l) {
        l = _licences[licenceId];
        if (l.status == LicenceStatus.None) revert UnknownLicence(licenceId);
        if (l.status != LicenceStatus.Active) revert LicenceNotActive(licenceId);
    }

    function _open(uint256 proposalId, Proposal storage p) private {
        p.status = ProposalStatus.Pending;
        p.proposer = msg.sender;
        p.deadline = uint64(block.timestamp) + votingPeriod;
        p.quorum = quorum;
        emit ProposalCreated(
            proposalId,
            p.kind,
            msg.sender,
            p.deadline,
            p.quorum,
            p.licenceId,
            p.manufacturer,
            p.designHash,
            p.model,
            p.revision,
            p.evidenceHash,
            p.reasonHash
        );
    }

    function _execute(uint256 proposalId, Proposal storage p) private {
        uint256 licenceId;
        if (p.kind == ProposalKind.Issue) {
            _checkIssuable(p.manufacturer, p.designHash);
            licenceId = ++_lastLicenceId;
            _licences[licenceId] = Licence({
                holder: p.manufacturer,
                designHash: p.designHash,
                model: p.model,
                revision: p.revision,
                evidenceHash: p.evidenceHash,
                status: LicenceStatus.Active,
                issuedAt: uint64(block.timestamp),
                reasonHash: bytes32(0)
            });
            _licenceOfDesign[p.designHash] = licenceId;
            p.licenceId = licenceId;
            _mint(p.manufacturer, licenceId);
            emit LicenceIssued(licenceId, p.manufacturer, p.designHash, p.model, p.revision, p.evidenceHash);
        } else {
            licenceId = p.licenceId;
            Licence storage l = _activeLicence(licenceId);
            l.status = LicenceStatus.Revoked;
            l.reasonHash = p.reasonHash;
            delete _licenceOfDesign[l.designHash];
            emit LicenceRevoked(licenceId, p.reasonHash);
        }
        p.status = ProposalStatus.Executed;
        emit ProposalExecuted(proposalId, licenceId);
    }

    function _setQuorum(uint16 quorum_) private {
        if (quorum_ == 0 || quorum_ > committeeSize) revert InvalidQuorum(quorum_, committeeSize);
        quorum = quorum_;
        emit QuorumChanged(quorum_);
    }

    function _setVotingPeriod(uint64 votingPeriod_) private {
        if (votingPeriod_ == 0) revert ZeroVotingPeriod();
        votingPeriod = votingPeriod_;
        emit VotingPeriodChanged(votingPeriod_);
    }
}
