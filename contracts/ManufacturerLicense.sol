// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.30;

import {ERC721} from "@openzeppelin/contracts/token/ERC721/ERC721.sol";
import {Ownable} from "@openzeppelin/contracts/access/Ownable.sol";
import {Ownable2Step} from "@openzeppelin/contracts/access/Ownable2Step.sol";
import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {Soulbound721} from "./base/Soulbound721.sol";

/// @title Manufacturer licence
/// @notice Stake-backed, non-transferable (ERC-5192) licence that makes a hardware company a
///         licensed manufacturer of the network. The foundation (owner) grants it after the
///         onboarding review; the stake is the manufacturer's skin in the game and can be slashed
///         to the treasury for cause.
/// @dev Licence ids start at 1 and are sequential. An address can hold at most one licence in
///      its whole life: a company that lost or gave up its licence must go through onboarding
///      again under a new address, so the history of an address is never ambiguous.
///      Status model: Active <-> Suspended; Active/Suspended -> Renounced (holder began stake
///      withdrawal, not for cause); Active/Suspended/Renounced -> Revoked (for cause, terminal).
///      Revocation from Renounced is allowed so that leaving the programme cannot be used to
///      escape a finding made afterwards: revocation for cause reaches every device minted under
///      the licence, renunciation does not.
contract ManufacturerLicense is Soulbound721, Ownable2Step {
    using SafeERC20 for IERC20;

    /// @notice Lifecycle of a licence. `None` marks ids that were never granted.
    enum Status {
        None,
        Active,
        Suspended,
        Revoked,
        Renounced
    }

    /// @notice Everything the chain knows about one licence.
    /// @param holder Manufacturer address (the licence token's owner).
    /// @param name Legal or trading name of the manufacturer, as reviewed.
    /// @param rootCertFingerprint SHA-256 of the manufacturer root certificate (DER), so device
    ///        X.509 chains can be tied to the licence.
    /// @param evidenceHash SHA-256 anchoring the onboarding case file decision (MOU, audits).
    /// @param status Current status.
    /// @param grantedAt Block timestamp of the grant.
    /// @param reasonHash SHA-256 of the document explaining the latest suspension/revocation
    ///        (zero while active).
    struct Licence {
        address holder;
        string name;
        bytes32 rootCertFingerprint;
        bytes32 evidenceHash;
        Status status;
        uint64 grantedAt;
        bytes32 reasonHash;
    }

    // ------------------------------------------------------------------ errors

    /// @notice The stake of `manufacturer` is `stake`, below the `required` minimum.
    error StakeBelowMinimum(address manufacturer, uint256 stake, uint256 required);
    /// @notice `manufacturer` already holds (or once held) licence `licenceId`; one per address.
    error LicenceAlreadyGranted(address manufacturer, uint256 licenceId);
    /// @notice The stake of `staker` is being withdrawn; it can neither grow nor back a licence.
    error WithdrawalPending(address staker);
    /// @notice `staker` has no withdrawal in progress.
    error NoWithdrawalPending(address staker);
    /// @notice The cooldown of `staker` ends at `availableAt`.
    error CooldownNotOver(address staker, uint64 availableAt);
    /// @notice `staker` has no stake.
    error NoStake(address staker);
    /// @notice Slash of `amount` exceeds the `stake` of `manufacturer`.
    error InsufficientStake(address manufacturer, uint256 stake, uint256 amount);
    /// @notice Amounts must be positive.
    error ZeroAmount();
    /// @notice Addresses given here must not be the zero address.
    error ZeroAddress();
    /// @notice The programme must always have an operator; ownership can only be handed over.
    error OwnershipCannotBeRenounced();
    /// @notice The manufacturer name must not be empty.
    error EmptyName();
    /// @notice The root certificate fingerprint must not be zero.
    error ZeroFingerprint();
    /// @notice Licence `licenceId` does not exist.
    error UnknownLicence(uint256 licenceId);
    /// @notice Licence `licenceId` is `status`, which does not allow this change.
    error InvalidStatus(uint256 licenceId, Status status);

    // ------------------------------------------------------------------ events

    event Granted(
        uint256 indexed licenceId,
        address indexed holder,
        string name,
        bytes32 rootCertFingerprint,
        bytes32 evidenceHash
    );
    event Suspended(uint256 indexed licenceId, bytes32 reasonHash);
    event Reinstated(uint256 indexed licenceId);
    event Revoked(uint256 indexed licenceId, bytes32 reasonHash);
    event Renounced(uint256 indexed licenceId);
    event Staked(address indexed staker, uint256 amount, uint256 totalStake);
    event Slashed(address indexed manufacturer, uint256 amount, address indexed treasury, bytes32 reasonHash);
    event WithdrawalBegun(address indexed staker, uint256 stake, uint64 availableAt);
    event Withdrawn(address indexed staker, uint256 amount);
    event TreasuryChanged(address treasury);
    event MinStakeChanged(uint256 minStake);
    event WithdrawalCooldownChanged(uint64 cooldown);

    // ------------------------------------------------------------------ storage

    /// @notice Token in which stake is held (the network's staking token).
    IERC20 public immutable stakeToken;
    /// @notice Receiver of slashed stake.
    address public treasury;
    /// @notice Stake required at grant time.
    uint256 public minStake;
    /// @notice Seconds between beginWithdrawal() and withdraw(): the window in which the
    ///         foundation can still slash for something found late.
    uint64 public withdrawalCooldown;

    uint256 private _lastLicenceId;
    mapping(uint256 licenceId => Licence) private _licences;
    mapping(address holder => uint256) private _licenceIdOf;
    mapping(address staker => uint256) private _stakeOf;
    mapping(address staker => uint64) private _withdrawableAt;

    /// @param stakeToken_ ERC-20 in which stake is paid.
    /// @param foundation Owner: grants, suspends, revokes and slashes.
    /// @param treasury_ Receiver of slashed stake.
    /// @param minStake_ Stake required to be granted a licence.
    /// @param withdrawalCooldown_ Seconds a stake stays slashable after withdrawal begins.
    constructor(
        IERC20 stakeToken_,
        address foundation,
        address treasury_,
        uint256 minStake_,
        uint64 withdrawalCooldown_
    ) ERC721("Devicemint Manufacturer Licence", "DMML") Ownable(foundation) {
        if (address(stakeToken_) == address(0) || treasury_ == address(0)) revert ZeroAddress();
        stakeToken = stakeToken_;
        treasury = treasury_;
        minStake = minStake_;
        withdrawalCooldown = withdrawalCooldown_;
    }

    // ------------------------------------------------------------------ stake

    /// @notice Adds `amount` of the staking token to the caller's stake (needs an allowance).
    ///         Anyone may stake, typically an applicant before its licence is granted.
    function stake(uint256 amount) external {
        if (amount == 0) revert ZeroAmount();
        if (_withdrawableAt[msg.sender] != 0) revert WithdrawalPending(msg.sender);
        uint256 total = _stakeOf[msg.sender] + amount;
        _stakeOf[msg.sender] = total;
        stakeToken.safeTransferFrom(msg.sender, address(this), amount);
        emit Staked(msg.sender, amount, total);
    }

    /// @notice Starts the withdrawal of the caller's whole stake. An Active licence becomes
    ///         Renounced at once: a manufacturer without stake is not licensed. A Suspended
    ///         licence cannot be renounced: leaving must not turn a finding under review into a
    ///         clean exit (renounced devices stay genuine), so the foundation decides first,
    ///         reinstating or revoking. The stake stays slashable until the cooldown ends.
    function beginWithdrawal() external {
        uint256 amount = _stakeOf[msg.sender];
        if (amount == 0) revert NoStake(msg.sender);
        if (_withdrawableAt[msg.sender] != 0) revert WithdrawalPending(msg.sender);
        uint256 id = _licenceIdOf[msg.sender];
        if (id != 0) {
            Licence storage l = _licences[id];
            if (l.status == Status.Suspended) revert InvalidStatus(id, l.status);
            if (l.status == Status.Active) {
                l.status = Status.Renounced;
                emit Renounced(id);
            }
        }
        uint64 availableAt = uint64(block.timestamp) + withdrawalCooldown;
        _withdrawableAt[msg.sender] = availableAt;
        emit WithdrawalBegun(msg.sender, amount, availableAt);
    }

    /// @notice Pays the caller's remaining stake (after any slashing) back once the cooldown is
    ///         over. The address may stake again afterwards, but can never get a second licence.
    function withdraw() external {
        uint64 availableAt = _withdrawableAt[msg.sender];
        if (availableAt == 0) revert NoWithdrawalPending(msg.sender);
        if (block.timestamp < availableAt) revert CooldownNotOver(msg.sender, availableAt);
        uint256 amount = _stakeOf[msg.sender];
        delete _stakeOf[msg.sender];
        delete _withdrawableAt[msg.sender];
        if (amount != 0) stakeToken.safeTransfer(msg.sender, amount);
        emit Withdrawn(msg.sender, amount);
    }

    // ------------------------------------------------------------------ foundation

    /// @notice Grants the manufacturer licence to `manufacturer` after a successful onboarding.
    /// @return licenceId The new licence id (sequential from 1).
    function grant(address manufacturer, string calldata name, bytes32 rootCertFingerprint, bytes32 evidenceHash)
        external
        onlyOwner
        returns (uint256 licenceId)
    {
        if (manufacturer == address(0)) revert ZeroAddress();
        if (bytes(name).length == 0) revert EmptyName();
        if (rootCertFingerprint == bytes32(0)) revert ZeroFingerprint();
        uint256 existing = _licenceIdOf[manufacturer];
        if (existing != 0) revert LicenceAlreadyGranted(manufacturer, existing);
        if (_withdrawableAt[manufacturer] != 0) revert WithdrawalPending(manufacturer);
        uint256 staked = _stakeOf[manufacturer];
        if (staked < minStake) revert StakeBelowMinimum(manufacturer, staked, minStake);

        licenceId = ++_lastLicenceId;
        _licenceIdOf[manufacturer] = licenceId;
        _licences[licenceId] = Licence({
            holder: manufacturer,
            name: name,
            rootCertFingerprint: rootCertFingerprint,
            evidenceHash: evidenceHash,
            status: Status.Active,
            grantedAt: uint64(block.timestamp),
            reasonHash: bytes32(0)
        });
        _mint(manufacturer, licenceId);
        emit Granted(licenceId, manufacturer, name, rootCertFingerprint, evidenceHash);
    }

    /// @notice Temporarily stops an Active licence (minting and new device licences stop).
    function suspend(uint256 licenceId, bytes32 reasonHash) external onlyOwner {
        Licence storage l = _existing(licenceId);
        if (l.status != Status.Active) revert InvalidStatus(licenceId, l.status);
        l.status = Status.Suspended;
        l.reasonHash = reasonHash;
        emit Suspended(licenceId, reasonHash);
    }

    /// @notice Lifts a suspension.
    function reinstate(uint256 licenceId) external onlyOwner {
        Licence storage l = _existing(licenceId);
        if (l.status != Status.Suspended) revert InvalidStatus(licenceId, l.status);
        uint256 staked = _stakeOf[l.holder];
        if (staked < minStake) revert StakeBelowMinimum(l.holder, staked, minStake);
        l.status = Status.Active;
        l.reasonHash = bytes32(0);
        emit Reinstated(licenceId);
    }

    /// @notice Revokes a licence for cause. Terminal; reaches every certificate minted under it.
    function revoke(uint256 licenceId, bytes32 reasonHash) external onlyOwner {
        Licence storage l = _existing(licenceId);
        if (l.status == Status.Revoked) revert InvalidStatus(licenceId, l.status);
        l.status = Status.Revoked;
        l.reasonHash = reasonHash;
        emit Revoked(licenceId, reasonHash);
    }

    /// @notice Moves `amount` of `manufacturer`'s stake to the treasury, for cause. Allowed while
    ///         any stake is held, including during the withdrawal cooldown (that is its purpose).
    function slash(address manufacturer, uint256 amount, bytes32 reasonHash) external onlyOwner {
        if (amount == 0) revert ZeroAmount();
        uint256 staked = _stakeOf[manufacturer];
        if (amount > staked) revert InsufficientStake(manufacturer, staked, amount);
        _stakeOf[manufacturer] = staked - amount;
        address to = treasury;
        stakeToken.safeTransfer(to, amount);
        emit Slashed(manufacturer, amount, to, reasonHash);
        // A licence is backed by at least the minimum stake: below it, minting stops until the
        // manufacturer tops up and the foundation reinstates.
        uint256 id = _licenceIdOf[manufacturer];
        if (id != 0 && staked - amount < minStake && _licences[id].status == Status.Active) {
            _licences[id].status = Status.Suspended;
            _licences[id].reasonHash = reasonHash;
            emit Suspended(id, reasonHash);
        }
    }

    /// @notice Changes the receiver of slashed stake.
    function setTreasury(address treasury_) external onlyOwner {
        if (treasury_ == address(0)) revert ZeroAddress();
        treasury = treasury_;
        emit TreasuryChanged(treasury_);
    }

    /// @notice Changes the stake required for future grants; existing licences are unaffected.
    function setMinStake(uint256 minStake_) external onlyOwner {
        minStake = minStake_;
        emit MinStakeChanged(minStake_);
    }

    /// @notice Changes the cooldown for withdrawals begun from now on.
    function setWithdrawalCooldown(uint64 cooldown) external onlyOwner {
        withdrawalCooldown = cooldown;
        emit WithdrawalCooldownChanged(cooldown);
    }

    /// @notice Disabled: without an owner no licence could ever be suspended, revoked or
    ///         issued again. Hand over with transferOwnership + acceptOwnership instead.
    function renounceOwnership() public pure override {
        revert OwnershipCannotBeRenounced();
    }

    // ------------------------------------------------------------------ views

    /// @notice Current stake of `staker` (including stake in cooldown, until withdrawn).
    function stakeOf(address staker) external view returns (uint256) {
        return _stakeOf[staker];
    }

    /// @notice When the pending withdrawal of `staker` can complete (0 if none pending).
    function withdrawalAvailableAt(address staker) external view returns (uint64) {
        return _withdrawableAt[staker];
    }

    /// @notice Licence id of `holder`, 0 if it never held one.
    function licenceIdOf(address holder) external view returns (uint256) {
        return _licenceIdOf[holder];
    }

    /// @notice Whether `manufacturer` currently holds an Active licence. This is the check that
    ///         gates device licences and minting.
    function isActive(address manufacturer) external view returns (bool) {
        uint256 id = _licenceIdOf[manufacturer];
        return id != 0 && _licences[id].status == Status.Active;
    }

    /// @notice The full record of licence `licenceId`; reverts for an unknown id.
    function licence(uint256 licenceId) external view returns (Licence memory) {
        return _existing(licenceId);
    }

    /// @notice Number of licences granted so far (the highest id).
    function licenceCount() external view returns (uint256) {
        return _lastLicenceId;
    }

    function _existing(uint256 licenceId) private view returns (Licence storage l) {
        l = _licences[licenceId];
        if (l.status == Status.None) revert UnknownLicence(licenceId);
    }
}
