// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

/// @title ISignatureTransfer
/// @notice The part of Uniswap Permit2's SignatureTransfer the Permit2 payment collector uses: a
///         one-time transfer on the owner's EIP-712 `PermitTransferFrom` signature, without witness.
///         Permit2 lives at 0x000000000022D473030F116dDEE9F6B43aC78BA3 on every chain that has it.
/// @dev What the owner signs, under the domain `{name: "Permit2", chainId, verifyingContract: Permit2}`:
///      `PermitTransferFrom(TokenPermissions permitted,address spender,uint256 nonce,uint256 deadline)`
///      `TokenPermissions(address token,uint256 amount)`, where `spender` is the caller of
///      `permitTransferFrom`. The nonce is an unordered nonce of the owner: usable once.
interface ISignatureTransfer {
    /// @notice A token and the most of it the signature lets the spender move.
    struct TokenPermissions {
        /// @dev The ERC-20 token.
        address token;
        /// @dev The most that may be transferred.
        uint256 amount;
    }

    /// @notice The signed terms of a one-time transfer.
    struct PermitTransferFrom {
        /// @dev The token and the maximum amount.
        TokenPermissions permitted;
        /// @dev The owner's unordered nonce; Permit2 marks it used.
        uint256 nonce;
        /// @dev The signature is refused after this time (it is still valid at `deadline` itself).
        uint256 deadline;
    }

    /// @notice Where the spender sends the tokens and how many, at most `permitted.amount`.
    struct SignatureTransferDetails {
        /// @dev The recipient.
        address to;
        /// @dev The amount to move.
        uint256 requestedAmount;
    }

    /// @notice Moves `transferDetails.requestedAmount` of `permit.permitted.token` from `owner` to
    ///         `transferDetails.to`, on `owner`'s signature of `permit` with the caller as spender.
    /// @param permit The signed terms.
    /// @param transferDetails The recipient and amount.
    /// @param owner The token owner who signed (an EOA, or an ERC-1271 contract).
    /// @param signature The owner's signature (65 or 64 bytes ECDSA, or ERC-1271 data).
    function permitTransferFrom(
        PermitTransferFrom calldata permit,
        SignatureTransferDetails calldata transferDetails,
        address owner,
        bytes calldata signature
    ) external;
}
