// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {SafeTokenTransfer} from "./libraries/SafeTokenTransfer.sol";

/// @title TokenStore
/// @notice Holds the escrowed tokens of one operator's payments. Each operator gets its own
///         minimal-proxy clone of this contract, so one operator's funds can never pay out another's.
/// @dev Only the escrow that deployed the implementation may move tokens. The clone has no storage
///      of its own: `authCaptureEscrow` is an immutable baked into the implementation's code.
contract TokenStore {
    /// @notice The AuthCaptureEscrow that created this store and alone may move its tokens.
    address public immutable authCaptureEscrow;

    /// @notice The caller is not the AuthCaptureEscrow.
    error OnlyAuthCaptureEscrow();

    /// @param authCaptureEscrow_ The escrow allowed to move tokens out of clones of this store.
    constructor(address authCaptureEscrow_) {
        authCaptureEscrow = authCaptureEscrow_;
    }

    /// @notice Sends `amount` of `token` to `recipient`.
    /// @param token The ERC-20 token to send.
    /// @param recipient The address receiving the tokens.
    /// @param amount How many token units to send.
    /// @return Always true; a failed transfer reverts.
    function sendTokens(address token, address recipient, uint256 amount) external returns (bool) {
        if (msg.sender != authCaptureEscrow) revert OnlyAuthCaptureEscrow();
        SafeTokenTransfer.safeTransfer(token, recipient, amount);
        return true;
    }

    /// @notice Sends a fee and the remainder of a payment in one call: `feeAmount` to `feeRecipient`
    ///         first, then `amount` to `recipient`. A zero amount is skipped.
    /// @dev Saves the escrow a second call into the store (and its delegatecall) on every capture.
    /// @param token The ERC-20 token to send.
    /// @param feeRecipient The address receiving the fee.
    /// @param feeAmount The fee in token units.
    /// @param recipient The address receiving the remainder.
    /// @param amount The remainder in token units.
    /// @return Always true; a failed transfer reverts.
    function sendTokensWithFee(
        address token,
        address feeRecipient,
        uint256 feeAmount,
        address recipient,
        uint256 amount
    ) external returns (bool) {
        if (msg.sender != authCaptureEscrow) revert OnlyAuthCaptureEscrow();
        if (feeAmount != 0) SafeTokenTransfer.safeTransfer(token, feeRecipient, feeAmount);
        if (amount != 0) SafeTokenTransfer.safeTransfer(token, recipient, amount);
        return true;
    }
}
