// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.30;

import {ERC721} from "solady/tokens/ERC721.sol";
import {LibString} from "solady/utils/LibString.sol";
import {DeviceLifecycle} from "./base/DeviceLifecycle.sol";
import {DeviceLicense} from "./DeviceLicense.sol";
import {ManufacturerLicense} from "./ManufacturerLicense.sol";

/// @title Device Minting Certificate
/// @notice One ERC-721 token per manufactured device, minted only by a licensed manufacturer (or
///         a minter it delegated) under an active device licence. The token id is the device's
///         own address, `uint256(uint160(device))`, so one device key can never hold two
///         certificates and the id is known before minting.
///
///         Minting goes in factory batches. `openBatch` commits to the batch's certificate
///         documents with one Merkle root (OpenZeppelin StandardMerkleTree format) and a
///         document base URI; `mintBatch` then mints the devices of that batch, possibly over
///         several transactions. Per device the chain stores a single slot: Solady's ownership
///         slot, whose 96 spare bits carry the batch id (and, later, lifecycle data). Every other
///         certificate field lives in the batch's Merkle root and in the documents it commits
///         to. That is how minting stays at ~24,500 gas per device instead of 150,000+.
///
///         Events are sufficient to rebuild every certificate from the chain alone:
///         `BatchOpened` gives the batch (licence, root, count, uri); each `mintBatch` call emits
///         `DevicesMinted(batchId, count)` immediately followed by exactly `count` ERC-721
///         `Transfer(0, to, tokenId)` events, one per device; later `Transfer`s move ownership.
///
///         Certificates are transferable: devices are sold, and the certificate follows the
///         device, until end of life. The device's life after the factory (authorised users,
///         factory resets, OTA updates, end of life) is recorded by DeviceLifecycle.
///
/// @dev Extra-data layout (the 96 bits Solady keeps above the owner address in each token's
///      ownership slot; read with `_getExtraData`):
///        bits  0..31  batch id (uint32), set at mint, never changes
///        bits 32..39  end-of-life stage (uint8, DeviceLifecycle.Stage), 0 = active
///        bits 40..63  factory reset count (uint24)
///        bits 64..95  grant epoch (uint32): transfers so far; grants of older epochs are void
contract DeviceCertificate is DeviceLifecycle {
    using LibString for address;

    /// @notice One factory batch.
    /// @param deviceLicenceId Device licence the batch is minted under.
    /// @param deviceCount Number of devices (leaves) the Merkle root commits to; the most that
    ///        may ever be minted in this batch.
    /// @param minted Devices minted so far.
    /// @param merkleRoot Root of the StandardMerkleTree over the batch's certificate documents.
    /// @param uri Base URI of the certificate documents, ending in "/"; the document of a device
    ///        is at `uri` + lowercase 0x-prefixed hex address (see tokenURI).
    /// @param openedBy Account that opened the batch (holder or delegated minter).
    struct Batch {
        uint256 deviceLicenceId;
        uint32 deviceCount;
        uint32 minted;
        bytes32 merkleRoot;
        string uri;
        address openedBy;
    }

    /// @dev Storage form of a batch: licence id, counts and opener share one slot, so minting
    ///      reads and updates a single slot per call and opening writes two fewer slots.
    struct BatchRecord {
        uint32 deviceLicenceId;
        uint32 deviceCount;
        uint32 minted;
        address openedBy;
        bytes32 merkleRoot;
        string uri;
    }

    // ------------------------------------------------------------------ errors

    /// @notice `account` is neither the holder of device licence `licenceId` nor a minter it
    ///         delegated.
    error NotMinter(uint256 licenceId, address account);
    /// @notice Only the holder of device licence `licenceId` may do this.
    error NotLicenceHolder(uint256 licenceId, address account);
    /// @notice Device licence `licenceId` does not exist or is revoked.
    error DeviceLicenceNotActive(uint256 licenceId);
    /// @notice The holder `manufacturer` has no active manufacturer licence.
    error ManufacturerNotActive(address manufacturer);
    /// @notice `designHash` is not the design `licensed` by device licence `licenceId`.
    error DesignMismatch(uint256 licenceId, bytes32 designHash, bytes32 licensed);
    /// @notice The Merkle root must not be zero.
    error ZeroMerkleRoot();
    /// @notice `merkleRoot` was already used by batch `batchId`; a resuming client should mint
    ///         into that batch (see batchIdOfRoot) instead of opening a new one.
    error MerkleRootAlreadyUsed(bytes32 merkleRoot, uint32 batchId);
    /// @notice A batch needs at least one device.
    error ZeroDeviceCount();
    /// @notice Batch `batchId` does not exist.
    error UnknownBatch(uint32 batchId);
    /// @notice `mintBatch` was called with no devices.
    error NoDevices();
    /// @notice Minting `count` more devices would exceed the `deviceCount` of batch `batchId`
    ///         (`minted` so far).
    error BatchOverflow(uint32 batchId, uint32 deviceCount, uint32 minted, uint256 count);
    /// @notice Entry `index` of the device list is the zero address (or not an address).
    error InvalidDeviceAddress(uint256 index);
    /// @notice Device `device` (entry `index`) already has a certificate; nothing was minted.
    error DeviceAlreadyMinted(uint256 index, address device);
    /// @notice Addresses given here must not be the zero address.
    error ZeroAddress();
    /// @notice Device licence ids above 2**32 - 1 are not supported by batch storage.
    error LicenceIdTooLarge(uint256 licenceId);

    // ------------------------------------------------------------------ events

    event BatchOpened(
        uint32 indexed batchId,
        uint256 indexed deviceLicenceId,
        bytes32 indexed merkleRoot,
        uint32 deviceCount,
        string uri
    );
    /// @notice Emitted once per mintBatch call, immediately before its `count` Transfer events.
    event DevicesMinted(uint32 indexed batchId, uint256 count);
    event MinterSet(uint256 indexed deviceLicenceId, address indexed minter, bool allowed);

    // ------------------------------------------------------------------ storage

    /// @dev Solady ERC721's storage seed (solady 0.1.26, `_ERC721_MASTER_SLOT_SEED`, private
    ///      there). mintBatch writes the ownership and balance slots directly, with exactly
    ///      Solady's slot derivation, to avoid per-device balance updates and double reads.
    uint256 private constant _SLOT_SEED = 0x7d8825530a5a2e7a << 192;
    /// @dev `keccak256("Transfer(address,address,uint256)")`.
    uint256 private constant _TRANSFER_EVENT_SIGNATURE =
        0xddf252ad1be2c89b69c2b068fc378daa952ba7f163c4a11628f55a4df523b3ef;
    /// @dev Largest valid address, as an integer.
    uint256 private constant _ADDRESS_MAX = (1 << 160) - 1;

    /// @notice Registry of device licences.
    DeviceLicense public immutable deviceLicense;
    /// @notice Registry of manufacturer licences.
    ManufacturerLicense public immutable manufacturerLicense;

    uint32 private _lastBatchId;
    mapping(uint32 batchId => BatchRecord) private _batches;
    /// Per licence, so no other licence's minter can take a root seen in the mempool first.
    mapping(uint256 licenceId => mapping(bytes32 merkleRoot => uint32)) private _batchIdOfRoot;
    mapping(uint256 licenceId => mapping(address minter => bool)) private _minters;

    constructor(DeviceLicense deviceLicense_, ManufacturerLicense manufacturerLicense_) {
        if (address(deviceLicense_) == address(0) || address(manufacturerLicense_) == address(0)) {
            revert ZeroAddress();
        }
        deviceLicense = deviceLicense_;
        manufacturerLicense = manufacturerLicense_;
    }

    // ------------------------------------------------------------------ minting

    /// @notice Opens factory batch for `deviceCount` devices of device licence `deviceLicenceId`,
    ///         committing to their certificate documents with `merkleRoot`. The caller restates
    ///         the design hash so a factory cannot mint a batch of one design under the licence
    ///         of another by mistake.
    /// @param uri Base URI of the documents, ending in "/" (tokenURI appends the address).
    /// @return batchId The new batch id (sequential from 1).
    function openBatch(
        uint256 deviceLicenceId,
        bytes32 designHash,
        bytes32 merkleRoot,
        uint32 deviceCount,
        string calldata uri
    ) external returns (uint32 batchId) {
        bytes32 licensed = _checkMinter(deviceLicenceId);
        if (designHash != licensed) revert DesignMismatch(deviceLicenceId, designHash, licensed);
        if (merkleRoot == bytes32(0)) revert ZeroMerkleRoot();
        uint32 existing = _batchIdOfRoot[deviceLicenceId][merkleRoot];
        if (existing != 0) revert MerkleRootAlreadyUsed(merkleRoot, existing);
        if (deviceCount == 0) revert ZeroDeviceCount();
        if (deviceLicenceId > type(uint32).max) revert LicenceIdTooLarge(deviceLicenceId);

        batchId = ++_lastBatchId;
        _batchIdOfRoot[deviceLicenceId][merkleRoot] = batchId;
        BatchRecord storage b = _batches[batchId];
        b.deviceLicenceId = uint32(deviceLicenceId);
        b.deviceCount = deviceCount;
        b.openedBy = msg.sender;
        b.merkleRoot = merkleRoot;
        b.uri = uri;
        emit BatchOpened(batchId, deviceLicenceId, merkleRoot, deviceCount, uri);
    }

    /// @notice Mints one certificate per address in `devices` to `to`, as part of batch
    ///         `batchId`. All or nothing: an invalid or already certified device reverts the
    ///         whole call (DeviceAlreadyMinted names it). The licences are checked once per call.
    /// @dev Hot loop in assembly, per device: one cold SLOAD (existence check) and one SSTORE of
    ///      owner | batchId << 160 into Solady's ownership slot, plus the Transfer log. The
    ///      balance of `to` is updated once per call.
    function mintBatch(uint32 batchId, address to, address[] calldata devices) external {
        BatchRecord storage b = _batches[batchId];
        uint256 licenceId = b.deviceLicenceId;
        if (licenceId == 0) revert UnknownBatch(batchId);
        _checkMinter(licenceId);
        if (to == address(0)) revert TransferToZeroAddress();
        uint256 n = devices.length;
        if (n == 0) revert NoDevices();
        uint32 minted = b.minted;
        uint32 deviceCount = b.deviceCount;
        if (n > deviceCount - minted) revert BatchOverflow(batchId, deviceCount, minted, n);
        b.minted = minted + uint32(n); // n <= deviceCount - minted, fits.
        emit DevicesMinted(batchId, n);

        /// @solidity memory-safe-assembly
        assembly {
            // Owner in bits 0..159, batch id in extra-data bits 0..31 (see layout above).
            let packed := or(shl(160, batchId), to)
            let start := devices.offset
            let end := add(start, shl(5, n))
            for { let p := start } lt(p, end) { p := add(p, 0x20) } {
                let id := calldataload(p)
                // 1 <= id <= 2**160 - 1, in one comparison.
                if iszero(lt(sub(id, 1), _ADDRESS_MAX)) {
                    mstore(0x00, 0x96c0033e) // `InvalidDeviceAddress(uint256)`.
                    mstore(0x20, shr(5, sub(p, start)))
                    revert(0x1c, 0x24)
                }
                // Solady's ownership slot of `id`.
                mstore(0x00, id)
                mstore(0x1c, _SLOT_SEED)
                let slot := add(id, add(id, keccak256(0x00, 0x20)))
                if shl(96, sload(slot)) {
                    mstore(0x00, 0x0f709aa0) // `DeviceAlreadyMinted(uint256,address)`.
                    mstore(0x20, shr(5, sub(p, start)))
                    mstore(0x40, id)
                    revert(0x1c, 0x44)
                }
                sstore(slot, packed)
                log4(codesize(), 0x00, _TRANSFER_EVENT_SIGNATURE, 0, to, id)
            }
            // Solady's balance slot of `to`: balance in bits 0..31 (max 2**32 - 1).
            mstore(0x1c, _SLOT_SEED)
            mstore(0x00, to)
            let balanceSlot := keccak256(0x0c, 0x1c)
            let balancePacked := sload(balanceSlot)
            if gt(add(and(balancePacked, 0xffffffff), n), 0xffffffff) {
                mstore(0x00, 0x01336cea) // `AccountBalanceOverflow()`.
                revert(0x1c, 0x04)
            }
            sstore(balanceSlot, add(balancePacked, n))
        }
    }

    /// @notice Allows or stops `minter` minting under device licence `deviceLicenceId` (for
    ///         example a contract manufacturer's line key). Holder only.
    function setMinter(uint256 deviceLicenceId, address minter, bool allowed) external {
        (address holder,,) = deviceLicense.licenceSummary(deviceLicenceId);
        if (msg.sender != holder || holder == address(0)) revert NotLicenceHolder(deviceLicenceId, msg.sender);
        if (minter == address(0)) revert ZeroAddress();
        _minters[deviceLicenceId][minter] = allowed;
        emit MinterSet(deviceLicenceId, minter, allowed);
    }

    // ------------------------------------------------------------------ views

    /// @inheritdoc ERC721
    function name() public pure override returns (string memory) {
        return "Device Minting Certificate";
    }

    /// @inheritdoc ERC721
    function symbol() public pure override returns (string memory) {
        return "DMC";
    }

    /// @notice Batch uri + lowercase 0x-prefixed hex address of the device, e.g.
    ///         "https://host/docs/" + "0xab..ef". Reverts for a token that does not exist.
    function tokenURI(uint256 tokenId) public view override returns (string memory) {
        if (!_exists(tokenId)) revert TokenDoesNotExist();
        uint32 batchId = uint32(_getExtraData(tokenId));
        return string.concat(_batches[batchId].uri, address(uint160(tokenId)).toHexString());
    }

    /// @notice Everything a verifier needs from the chain about one certificate, in one call.
    ///         All zero for a token that does not exist.
    function certificate(uint256 tokenId)
        external
        view
        returns (address owner, uint32 batchId, uint256 deviceLicenceId, bytes32 merkleRoot)
    {
        owner = _ownerOf(tokenId);
        if (owner == address(0)) return (address(0), 0, 0, bytes32(0));
        batchId = uint32(_getExtraData(tokenId));
        BatchRecord storage b = _batches[batchId];
        return (owner, batchId, b.deviceLicenceId, b.merkleRoot);
    }

    /// @notice Batch `batchId`; reverts for an unknown id.
    function batch(uint32 batchId) external view returns (Batch memory) {
        BatchRecord storage b = _batches[batchId];
        if (b.deviceLicenceId == 0) revert UnknownBatch(batchId);
        return Batch({
            deviceLicenceId: b.deviceLicenceId,
            deviceCount: b.deviceCount,
            minted: b.minted,
            merkleRoot: b.merkleRoot,
            uri: b.uri,
            openedBy: b.openedBy
        });
    }

    /// @notice Batch id of `merkleRoot` (0 if never opened); lets a client resume a batch.
    function batchIdOfRoot(uint256 deviceLicenceId, bytes32 merkleRoot) external view returns (uint32) {
        return _batchIdOfRoot[deviceLicenceId][merkleRoot];
    }

    /// @notice Number of batches opened so far (the highest id).
    function batchCount() external view returns (uint32) {
        return _lastBatchId;
    }

    /// @notice Batch id of certificate `tokenId` (0 if it does not exist).
    function batchOf(uint256 tokenId) external view returns (uint32) {
        return _exists(tokenId) ? uint32(_getExtraData(tokenId)) : 0;
    }

    /// @notice Whether certificate `tokenId` exists.
    function exists(uint256 tokenId) external view returns (bool) {
        return _exists(tokenId);
    }

    /// @notice Which of `devices` already hold a certificate, in order. Lets a factory check a
    ///         whole chunk of its batch file in one call before minting it.
    function certifiedAmong(address[] calldata devices) external view returns (bool[] memory certified) {
        certified = new bool[](devices.length);
        for (uint256 i; i < devices.length; ++i) {
            certified[i] = _exists(uint256(uint160(devices[i])));
        }
    }

    /// @notice Whether `account` may mint under device licence `deviceLicenceId` as a delegate
    ///         (the holder itself always may, and is not listed here).
    function isMinter(uint256 deviceLicenceId, address account) external view returns (bool) {
        return _minters[deviceLicenceId][account];
    }

    // ------------------------------------------------------------------ internals

    /// @inheritdoc DeviceLifecycle
    function _manufacturerOf(uint256 tokenId) internal view override returns (address holder) {
        (holder,,) = deviceLicense.licenceSummary(_batches[uint32(_getExtraData(tokenId))].deviceLicenceId);
    }

    /// @inheritdoc DeviceLifecycle
    function _publishedFirmware(uint256 tokenId, bytes32 versionHash)
        internal
        view
        override
        returns (uint256 licenceId, bytes32 imageHash)
    {
        licenceId = _batches[uint32(_getExtraData(tokenId))].deviceLicenceId;
        imageHash = deviceLicense.firmwareImage(licenceId, versionHash);
    }

    /// @dev Device licence active, caller holder or delegate, holder's manufacturer licence
    ///      active. Returns the licensed design hash.
    function _checkMinter(uint256 licenceId) private view returns (bytes32 designHash) {
        (address holder, bytes32 licensed, DeviceLicense.LicenceStatus status) =
            deviceLicense.licenceSummary(licenceId);
        if (status != DeviceLicense.LicenceStatus.Active) revert DeviceLicenceNotActive(licenceId);
        if (msg.sender != holder && !_minters[licenceId][msg.sender]) revert NotMinter(licenceId, msg.sender);
        if (!manufacturerLicense.isActive(holder)) revert ManufacturerNotActive(holder);
        return licensed;
    }
}
