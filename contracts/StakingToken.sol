// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.30;

import {ERC20} from "@openzeppelin/contracts/token/ERC20/ERC20.sol";
import {Ownable} from "@openzeppelin/contracts/access/Ownable.sol";

/// @title Devicemint Stake (local stand-in)
/// @notice Plain ERC-20 that stands in for the network's staking token on a local development
///         chain (chain id 31337), so the stake-backed manufacturer licence can be exercised end
///         to end without a bridge or a faucet. It is never deployed on a public chain: there the
///         deployment points ManufacturerLicense at the real staking token.
contract StakingToken is ERC20, Ownable {
    /// @param initialOwner Account allowed to mint test stake (the deployer on a local chain).
    constructor(address initialOwner) ERC20("Devicemint Stake", "DMS") Ownable(initialOwner) {}

    /// @notice Creates `amount` tokens for `to`. Owner only, because even test stake should only
    ///         come from the party running the local programme.
    function mint(address to, uint256 amount) external onlyOwner {
        _mint(to, amount);
    }
}
