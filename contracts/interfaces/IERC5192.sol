// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.30;

/// @title ERC-5192: Minimal Soulbound NFTs
/// @notice Interface id 0xb45a3c0e. Wallets and marketplaces use it to learn that a token can
///         never move, so they do not offer transfers that would only revert.
interface IERC5192 {
    /// @notice Emitted when the locking status is changed to locked.
    event Locked(uint256 tokenId);

    /// @notice Emitted when the locking status is changed to unlocked.
    event Unlocked(uint256 tokenId);

    /// @notice Returns the locking status of a token; reverts for a token that does not exist.
    function locked(uint256 tokenId) external view returns (bool);
}
