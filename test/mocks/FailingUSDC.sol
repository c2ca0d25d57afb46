// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {TestUSDC} from "../../contracts/dev/TestUSDC.sol";

/// @title FailingUSDC
/// @notice TestUSDC (so ERC-3009 works) whose plain `transfer` can be made to fail, either by
///         returning false or by reverting with its own error: the ERC-3009 collector's onward
///         transfers (to the store, and the excess back to the payer) fail while the signed
///         `receiveWithAuthorization` itself still goes through.
contract FailingUSDC is TestUSDC {
    /// @notice How `transfer` behaves.
    enum Mode {
        Normal,
        ReturnFalse,
        Revert
    }

    /// @notice The current behaviour of `transfer`.
    Mode public mode;

    /// @notice The token refuses to move funds (a blocklist or pause).
    error TransferBlocked(address from, address to, uint256 amount);

    constructor(address owner_) TestUSDC("USD Coin", "USDC", "2", owner_) {}

    /// @notice Sets how `transfer` behaves.
    /// @param mode_ The new behaviour.
    function setMode(Mode mode_) external {
        mode = mode_;
    }

    /// @notice `transfer`, failing as `mode` says.
    function transfer(address to, uint256 amount) public override returns (bool) {
        if (mode == Mode.ReturnFalse) return false;
        if (mode == Mode.Revert) revert TransferBlocked(msg.sender, to, amount);
        return super.transfer(to, amount);
    }
}
