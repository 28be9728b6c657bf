// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.30;

import {ERC721} from "@openzeppelin/contracts/token/ERC721/ERC721.sol";
import {IERC5192} from "../interfaces/IERC5192.sol";

/// @title Soulbound ERC-721 base for licences
/// @notice A licence is granted to one legal entity after review of that entity; letting it move
///         to another address would hand the review's outcome to someone who was never reviewed.
///         So every token minted here is locked for ever (ERC-5192): transfers, approvals and
///         burns all revert with {LicenceNonTransferable}. Status changes (suspension,
///         revocation, renunciation) are recorded by the inheriting contract instead of burning,
///         so the licence and its history stay visible on chain.
abstract contract Soulbound721 is ERC721, IERC5192 {
    /// @notice Licences cannot be transferred, approved for transfer or burned.
    error LicenceNonTransferable();

    /// @inheritdoc IERC5192
    /// @dev Reverts with ERC721NonexistentToken for a token that was never minted, as ERC-5192
    ///      requires for tokens assigned to the zero address.
    function locked(uint256 tokenId) external view returns (bool) {
        _requireOwned(tokenId);
        return true;
    }

    /// @inheritdoc ERC721
    function supportsInterface(bytes4 interfaceId) public view virtual override returns (bool) {
        return interfaceId == type(IERC5192).interfaceId || super.supportsInterface(interfaceId);
    }

    /// @dev Refused: a licence never changes hands.
    function approve(address, uint256) public pure override {
        revert LicenceNonTransferable();
    }

    /// @dev Refused: a licence never changes hands.
    function setApprovalForAll(address, bool) public pure override {
        revert LicenceNonTransferable();
    }

    /// @dev Every ownership change (transferFrom, both safeTransferFrom, burns) passes here: only
    ///      mints (token without owner) are let through. Each mint announces the lock, as
    ///      ERC-5192 asks.
    function _update(address to, uint256 tokenId, address auth) internal virtual override returns (address) {
        if (_ownerOf(tokenId) != address(0)) revert LicenceNonTransferable();
        address from = super._update(to, tokenId, auth);
        emit Locked(tokenId);
        return from;
    }
}
