// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.30;

import {ERC721} from "solady/tokens/ERC721.sol";
import {EIP712} from "solady/utils/EIP712.sol";
import {SignatureCheckerLib} from "solady/utils/SignatureCheckerLib.sol";

/// @title The life of a certified device after it leaves the factory
/// @notice Authorised users, factory resets, OTA updates and end of life, recorded on the
///         certificate itself. Every record names who attested it: the owner, the device's own
///         key, the manufacturer, or an authorised organisation.
///
///         Each action can be sent by the attesting party itself, or signed off chain (EIP-712,
///         with the signer's sequential nonce and a deadline) and relayed by anyone, so a device
///         or an owner without gas can still put its record on chain.
///
///         Rules:
///         - Authorisations: only the owner grants or revokes them. A grant holds a permission
///           set and an expiry; an expired grant counts as absent, and a transfer of the
///           certificate clears every grant (the grant epoch moves on).
///         - Factory reset: attested by the device's key, or by the manufacturer while it holds
///           the factory-reset permission from the owner. Counted per device.
///         - OTA update: attested by the device's key; only to firmware published for the
///           device's licence, and only from the version the certificate holds now.
///         - End of life: `Decommissioned`, then `Recycled` or `Disposed`, with an evidence hash,
///           attested by the owner or an organisation holding the manage permission. From
///           decommissioning on, no transfer, grant, reset or OTA update is accepted.
/// @dev Lifecycle state lives in the 96 spare bits of each token's ownership slot (see the
///      layout in DeviceCertificate), except the current firmware and the grants, which only
///      devices that use them pay for.
abstract contract DeviceLifecycle is ERC721, EIP712 {
    /// @notice Permission bits of an authorisation.
    uint8 public constant READ_DATA = 1;
    uint8 public constant MANAGE = 2;
    uint8 public constant OTA = 4;
    uint8 public constant FACTORY_RESET = 8;
    uint8 private constant _ALL_PERMISSIONS = 15;

    enum Stage {
        Active,
        Decommissioned,
        Recycled,
        Disposed
    }

    /// @notice The role in which a record's attester acted.
    enum Role {
        Owner,
        Device,
        Manufacturer,
        Grantee
    }

    /// @notice A signature standing in for `signer` sending the call itself. An empty
    ///         `signature` means the caller attests in person (`signer` and `deadline` ignored).
    struct Attestation {
        address signer;
        uint256 deadline;
        bytes signature;
    }

    struct Grant {
        uint8 permissions;
        uint64 expiresAt;
        uint32 epoch;
    }

    bytes32 private constant _AUTHORIZE_TYPEHASH = keccak256(
        "Authorize(uint256 tokenId,address grantee,uint8 permissions,uint64 expiresAt,uint256 nonce,uint256 deadline)"
    );
    bytes32 private constant _REVOKE_TYPEHASH =
        keccak256("RevokeAuthorization(uint256 tokenId,address grantee,uint256 nonce,uint256 deadline)");
    bytes32 private constant _RESET_TYPEHASH =
        keccak256("FactoryReset(uint256 tokenId,uint256 nonce,uint256 deadline)");
    bytes32 private constant _OTA_TYPEHASH = keccak256(
        "FirmwareUpdate(uint256 tokenId,string fromVersion,string toVersion,bytes32 imageHash,uint256 nonce,uint256 deadline)"
    );
    bytes32 private constant _END_OF_LIFE_TYPEHASH =
        keccak256("EndOfLife(uint256 tokenId,uint8 stage,bytes32 evidenceHash,uint256 nonce,uint256 deadline)");

    // Extra-data bit offsets (see DeviceCertificate's layout).
    uint8 private constant _STAGE_SHIFT = 32;
    uint8 private constant _RESETS_SHIFT = 40;
    uint8 private constant _EPOCH_SHIFT = 64;

    mapping(uint256 tokenId => mapping(address grantee => Grant)) private _grants;
    /// Current firmware as keccak256 of its version string; zero = the initial firmware named
    /// by the certificate document.
    mapping(uint256 tokenId => bytes32) private _firmware;
    mapping(address signer => uint256) private _nonces;

    // ------------------------------------------------------------------ errors

    /// @notice `account` may not do this to certificate `tokenId`; `needed` names who may.
    error NotAttester(uint256 tokenId, address account, Role needed);
    /// @notice Certificate `tokenId` has reached end of life (`stage`); nothing more may happen
    ///         to it but the next end-of-life stage.
    error DeviceRetired(uint256 tokenId, Stage stage);
    /// @notice The signature's deadline `deadline` has passed.
    error SignatureExpired(uint256 deadline);
    /// @notice The signature does not recover to `signer` for nonce `nonce`.
    error InvalidSignature(address signer, uint256 nonce);
    /// @notice Permissions must be a non-empty subset of READ_DATA | MANAGE | OTA | FACTORY_RESET.
    error InvalidPermissions(uint8 permissions);
    /// @notice The grant's expiry `expiresAt` is not in the future.
    error ExpiryInPast(uint64 expiresAt);
    /// @notice Grantees must not be the zero address or the owner.
    error InvalidGrantee(address grantee);
    /// @notice `grantee` holds no live authorisation on certificate `tokenId`.
    error NoAuthorization(uint256 tokenId, address grantee);
    /// @notice Firmware `version` is not published for device licence `licenceId`.
    error FirmwareNotPublished(uint256 licenceId, string version, bytes32 imageHash);
    /// @notice Certificate `tokenId` holds firmware `current` (keccak256 of the version), not
    ///         `fromVersion`.
    error FirmwareVersionMismatch(uint256 tokenId, bytes32 current, string fromVersion);
    /// @notice `toVersion` equals `fromVersion`.
    error SameFirmware(string version);
    /// @notice End of life goes Active -> Decommissioned -> Recycled | Disposed.
    error InvalidStageChange(uint256 tokenId, Stage from, Stage to);
    /// @notice End-of-life records need evidence.
    error ZeroEvidenceHash();

    // ------------------------------------------------------------------ events

    event AuthorizationGranted(
        uint256 indexed tokenId, address indexed grantee, uint8 permissions, uint64 expiresAt, address attestedBy
    );
    event AuthorizationRevoked(uint256 indexed tokenId, address indexed grantee, address attestedBy);
    /// @notice A transfer cleared every grant of `tokenId`; `epoch` is the new grant epoch.
    event AuthorizationsCleared(uint256 indexed tokenId, uint32 epoch);
    event FactoryReset(uint256 indexed tokenId, uint24 count, address indexed attestedBy, Role role);
    event FirmwareUpdated(
        uint256 indexed tokenId, string fromVersion, string toVersion, bytes32 imageHash, address relayedBy
    );
    event EndOfLife(uint256 indexed tokenId, Stage stage, bytes32 evidenceHash, address indexed attestedBy, Role role);

    // ------------------------------------------------------------------ authorisations

    /// @notice The owner of `tokenId` lets `grantee` act with `permissions` until `expiresAt`,
    ///         replacing any earlier grant to `grantee`.
    function authorize(
        uint256 tokenId,
        address grantee,
        uint8 permissions,
        uint64 expiresAt,
        Attestation calldata attestation
    ) external {
        address owner = _ownerOfExisting(tokenId);
        address attester = _attester(
            attestation, abi.encode(_AUTHORIZE_TYPEHASH, tokenId, grantee, permissions, expiresAt)
        );
        if (attester != owner) revert NotAttester(tokenId, attester, Role.Owner);
        _requireActive(tokenId);
        if (permissions == 0 || permissions > _ALL_PERMISSIONS) revert InvalidPermissions(permissions);
        if (expiresAt <= block.timestamp) revert ExpiryInPast(expiresAt);
        if (grantee == address(0) || grantee == owner) revert InvalidGrantee(grantee);
        _grants[tokenId][grantee] = Grant(permissions, expiresAt, _epoch(tokenId));
        emit AuthorizationGranted(tokenId, grantee, permissions, expiresAt, attester);
    }

    /// @notice The owner of `tokenId` withdraws `grantee`'s authorisation. Allowed at any
    ///         stage: taking access away is always safe.
    function revokeAuthorization(uint256 tokenId, address grantee, Attestation calldata attestation) external {
        address owner = _ownerOfExisting(tokenId);
        address attester = _attester(attestation, abi.encode(_REVOKE_TYPEHASH, tokenId, grantee));
        if (attester != owner) revert NotAttester(tokenId, attester, Role.Owner);
        if (authorization(tokenId, grantee).permissions == 0) revert NoAuthorization(tokenId, grantee);
        delete _grants[tokenId][grantee];
        emit AuthorizationRevoked(tokenId, grantee, attester);
    }

    // ------------------------------------------------------------------ factory reset

    /// @notice Records a factory reset of `tokenId`, attested by the device's key or by the
    ///         manufacturer holding the factory-reset permission.
    function recordFactoryReset(uint256 tokenId, Attestation calldata attestation) external {
        _ownerOfExisting(tokenId);
        address attester = _attester(attestation, abi.encode(_RESET_TYPEHASH, tokenId));
        Role role;
        if (attester == address(uint160(tokenId))) {
            role = Role.Device;
        } else if (attester == _manufacturerOf(tokenId) && hasPermission(tokenId, attester, FACTORY_RESET)) {
            role = Role.Manufacturer;
        } else {
            revert NotAttester(tokenId, attester, Role.Device);
        }
        _requireActive(tokenId);
        uint24 count = uint24(_getExtraData(tokenId) >> _RESETS_SHIFT) + 1; // reverts at 2**24 resets.
        _setExtraBits(tokenId, _RESETS_SHIFT, type(uint24).max, count);
        emit FactoryReset(tokenId, count, attester, role);
    }

    // ------------------------------------------------------------------ OTA updates

    /// @notice Records that device `tokenId` now runs `toVersion` (image `imageHash`), published
    ///         for its device licence, updated from `fromVersion`. Attested by the device's key.
    /// @dev While no update is recorded the chain cannot see the initial version (it is in the
    ///      certificate document, committed by the batch root), so the first `fromVersion` is
    ///      taken on the device's word; clients check it against the document.
    function recordFirmwareUpdate(
        uint256 tokenId,
        string calldata fromVersion,
        string calldata toVersion,
        bytes32 imageHash,
        Attestation calldata attestation
    ) external {
        _ownerOfExisting(tokenId);
        bytes32 fromHash = keccak256(bytes(fromVersion));
        bytes32 toHash = keccak256(bytes(toVersion));
        address attester = _attester(
            attestation, abi.encode(_OTA_TYPEHASH, tokenId, fromHash, toHash, imageHash)
        );
        if (attester != address(uint160(tokenId))) revert NotAttester(tokenId, attester, Role.Device);
        _requireActive(tokenId);
        bytes32 current = _firmware[tokenId];
        if (current != bytes32(0) && current != fromHash) revert FirmwareVersionMismatch(tokenId, current, fromVersion);
        if (fromHash == toHash) revert SameFirmware(toVersion);
        (uint256 licenceId, bytes32 published) = _publishedFirmware(tokenId, toHash);
        if (published == bytes32(0) || published != imageHash) {
            revert FirmwareNotPublished(licenceId, toVersion, imageHash);
        }
        _firmware[tokenId] = toHash;
        emit FirmwareUpdated(tokenId, fromVersion, toVersion, imageHash, msg.sender);
    }

    // ------------------------------------------------------------------ end of life

    /// @notice Moves `tokenId` to end-of-life `stage` with `evidenceHash` (a recycler's
    ///         certificate, a disposal record). Attested by the owner or a MANAGE grantee.
    function recordEndOfLife(uint256 tokenId, Stage stage, bytes32 evidenceHash, Attestation calldata attestation)
        external
    {
        address owner = _ownerOfExisting(tokenId);
        address attester = _attester(
            attestation, abi.encode(_END_OF_LIFE_TYPEHASH, tokenId, stage, evidenceHash)
        );
        Role role;
        if (attester == owner) role = Role.Owner;
        else if (hasPermission(tokenId, attester, MANAGE)) role = Role.Grantee;
        else revert NotAttester(tokenId, attester, Role.Owner);
        if (evidenceHash == bytes32(0)) revert ZeroEvidenceHash();
        Stage current = stageOf(tokenId);
        bool allowed = current == Stage.Active
            ? stage == Stage.Decommissioned
            : current == Stage.Decommissioned && (stage == Stage.Recycled || stage == Stage.Disposed);
        if (!allowed) revert InvalidStageChange(tokenId, current, stage);
        _setExtraBits(tokenId, _STAGE_SHIFT, type(uint8).max, uint8(stage));
        emit EndOfLife(tokenId, stage, evidenceHash, attester, role);
    }

    // ------------------------------------------------------------------ views

    /// @notice The live authorisation of `grantee` on `tokenId`: zero if none, expired, or
    ///         cleared by a transfer.
    function authorization(uint256 tokenId, address grantee) public view returns (Grant memory grant) {
        grant = _grants[tokenId][grantee];
        if (grant.expiresAt <= block.timestamp || grant.epoch != _epoch(tokenId)) return Grant(0, 0, 0);
    }

    /// @notice Whether `account` holds every bit of `permission` on `tokenId` right now.
    function hasPermission(uint256 tokenId, address account, uint8 permission) public view returns (bool) {
        return authorization(tokenId, account).permissions & permission == permission && permission != 0;
    }

    /// @notice Lifecycle state of `tokenId`: stage, factory resets, current firmware
    ///         (keccak256 of the version; zero = initial) and grant epoch (transfers so far).
    function lifecycle(uint256 tokenId)
        external
        view
        returns (Stage stage, uint24 factoryResets, bytes32 firmwareVersionHash, uint32 grantEpoch)
    {
        _ownerOfExisting(tokenId);
        uint96 extra = _getExtraData(tokenId);
        return (stageOf(tokenId), uint24(extra >> _RESETS_SHIFT), _firmware[tokenId], uint32(extra >> _EPOCH_SHIFT));
    }

    /// @notice End-of-life stage of `tokenId` (`Active` for a token that does not exist).
    function stageOf(uint256 tokenId) public view returns (Stage) {
        return Stage(uint8(_getExtraData(tokenId) >> _STAGE_SHIFT));
    }

    /// @notice The nonce the next signature of `signer` must carry.
    function nonces(address signer) external view returns (uint256) {
        return _nonces[signer];
    }

    // ------------------------------------------------------------------ hooks for the certificate

    /// @dev The holder of the device licence `tokenId` was minted under.
    function _manufacturerOf(uint256 tokenId) internal view virtual returns (address);

    /// @dev The device licence of `tokenId` and the image hash published for `versionHash` there.
    function _publishedFirmware(uint256 tokenId, bytes32 versionHash)
        internal
        view
        virtual
        returns (uint256 licenceId, bytes32 imageHash);

    /// @dev A retired device cannot change hands; a transfer clears every grant. Minting writes
    ///      its slots directly and never reaches this hook.
    function _beforeTokenTransfer(address from, address, uint256 id) internal virtual override {
        if (from == address(0)) return;
        _requireActive(id);
        uint32 epoch = _epoch(id) + 1;
        _setExtraBits(id, _EPOCH_SHIFT, type(uint32).max, epoch);
        emit AuthorizationsCleared(id, epoch);
    }

    function _domainNameAndVersion() internal pure override returns (string memory, string memory) {
        return ("DeviceCertificate", "1");
    }

    // ------------------------------------------------------------------ internals

    /// @dev Who attests: the caller in person, or the signer of the EIP-712 struct
    ///      `fields` (abi.encode of the typehash and the static fields before `nonce`) followed
    ///      by the signer's nonce and the deadline. Every field is a 32-byte word, so appending
    ///      two more words gives exactly abi.encode(typehash, fields..., nonce, deadline).
    function _attester(Attestation calldata attestation, bytes memory fields) private returns (address) {
        if (attestation.signature.length == 0) return msg.sender;
        if (block.timestamp > attestation.deadline) revert SignatureExpired(attestation.deadline);
        address signer = attestation.signer;
        uint256 nonce = _nonces[signer]++;
        bytes32 digest = _hashTypedData(keccak256(abi.encodePacked(fields, nonce, attestation.deadline)));
        if (!SignatureCheckerLib.isValidSignatureNowCalldata(signer, digest, attestation.signature)) {
            revert InvalidSignature(signer, nonce);
        }
        return signer;
    }

    /// @dev Replaces the `mask`-wide field at bit `shift` of `tokenId`'s extra data with `value`.
    function _setExtraBits(uint256 tokenId, uint8 shift, uint96 mask, uint96 value) private {
        _setExtraData(tokenId, (_getExtraData(tokenId) & ~(mask << shift)) | (value << shift));
    }

    function _epoch(uint256 tokenId) private view returns (uint32) {
        return uint32(_getExtraData(tokenId) >> _EPOCH_SHIFT);
    }

    function _requireActive(uint256 tokenId) private view {
        Stage stage = stageOf(tokenId);
        if (stage != Stage.Active) revert DeviceRetired(tokenId, stage);
    }

    function _ownerOfExisting(uint256 tokenId) private view returns (address owner) {
        owner = _ownerOf(tokenId);
        if (owner == address(0)) revert TokenDoesNotExist();
    }
}
