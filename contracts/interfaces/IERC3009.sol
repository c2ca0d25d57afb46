// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

/// @title IERC3009
/// @notice The part of ERC-3009 (transfer with authorization) the collectors use, in the
///         `bytes signature` form USDC v2.2 added for smart-contract wallets.
interface IERC3009 {
    /// @notice Transfers `value` from `from` to the caller, who must be `to`, on `from`'s signature.
    /// @param from The payer.
    /// @param to The payee; must be msg.sender.
    /// @param value The amount.
    /// @param validAfter Valid strictly after this time.
    /// @param validBefore Valid strictly before this time.
    /// @param nonce A unique nonce chosen by the payer.
    /// @param signature The payer's EIP-712 signature (65-byte ECDSA or ERC-1271).
    function receiveWithAuthorization(
        address from,
        address to,
        uint256 value,
        uint256 validAfter,
        uint256 validBefore,
        bytes32 nonce,
        bytes memory signature
    ) external;
}
