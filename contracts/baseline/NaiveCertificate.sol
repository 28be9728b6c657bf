// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.30;

import {ERC721} from "@openzeppelin/contracts/token/ERC721/ERC721.sol";
import {Ownable} from "@openzeppelin/contracts/access/Ownable.sol";

/// @title Naive device certificate (benchmark baseline only)
/// @notice What a typical first implementation looks like: OpenZeppelin ERC-721 plus the
///         certificate fields stored per device as a struct with strings, minted in a loop.
///         It exists only so the benchmark can show what DeviceCertificate's one-slot design
///         saves; it is never deployed by devicemint.
contract NaiveCertificate is ERC721, Ownable {
    struct Device {
        string serialNumber;
        string imei;
        uint32 batchId;
        uint256 deviceLicenceId;
        uint64 manufacturingDate;
        string firmwareVersion;
    }

    /// @notice One device as the factory submits it.
    struct DeviceInput {
        address device;
        string serialNumber;
        string imei;
        uint64 manufacturingDate;
        string firmwareVersion;
    }

    mapping(uint256 tokenId => Device) private _devices;

    constructor(address initialOwner) ERC721("Naive Device Certificate", "NDC") Ownable(initialOwner) {}

    /// @notice Mints one certificate per device to `to`, storing its fields on chain.
    function mintBatch(address to, DeviceInput[] calldata devices, uint256 deviceLicenceId, uint32 batchId)
        external
        onlyOwner
    {
        for (uint256 i; i < devices.length; ++i) {
            DeviceInput calldata input = devices[i];
            uint256 tokenId = uint256(uint160(input.device));
            _devices[tokenId] = Device({
                serialNumber: input.serialNumber,
                imei: input.imei,
                batchId: batchId,
                deviceLicenceId: deviceLicenceId,
                manufacturingDate: input.manufacturingDate,
                firmwareVersion: input.firmwareVersion
            });
            _mint(to, tokenId);
        }
    }

    /// @notice The stored fields of `tokenId`.
    function device(uint256 tokenId) external view returns (Device memory) {
        _requireOwned(tokenId);
        return _devices[tokenId];
    }
}
