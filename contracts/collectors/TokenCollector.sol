// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {AuthCaptureEscrow} from "../AuthCaptureEscrow.sol";

/// @title TokenCollector
/// @notice Base of the pluggable ways tokens reach an operator's TokenStore: a payer's ERC-3009
///         signature, a payer's pre-approval, an operator's own funds for refunds, ...
/// @dev The escrow checks that the store grew by exactly the requested amount, so a collector can
///      never make the escrow account for tokens it did not deliver.
abstract contract TokenCollector {
    /// @notice Which escrow operations a collector may serve.
    enum CollectorType {
        /// @dev authorize and charge: tokens come from the payer.
        Payment,
        /// @dev refund: tokens come from someone returning captured funds.
        Refund
    }

    /// @notice The escrow that alone may ask this collector to move tokens.
    AuthCaptureEscrow public immutable authCaptureEscrow;

    /// @notice The caller is not the AuthCaptureEscrow.
    error OnlyAuthCaptureEscrow();

    /// @param authCaptureEscrow_ The escrow this collector serves.
    constructor(address authCaptureEscrow_) {
        authCaptureEscrow = AuthCaptureEscrow(authCaptureEscrow_);
    }

    /// @notice Moves `amount` of `paymentInfo.token` into `tokenStore`. Escrow only.
    /// @param paymentInfo The payment being collected for.
    /// @param tokenStore The operator's TokenStore, the destination.
    /// @param amount The exact amount the store must receive.
    /// @param collectorData Collector-specific data (a signature, nothing, ...).
    function collectTokens(
        AuthCaptureEscrow.PaymentInfo calldata paymentInfo,
        address tokenStore,
        uint256 amount,
        bytes calldata collectorData
    ) external {
        if (msg.sender != address(authCaptureEscrow)) revert OnlyAuthCaptureEscrow();
        _collectTokens(paymentInfo, tokenStore, amount, collectorData);
    }

    /// @notice Whether this collector serves payments or refunds.
    /// @return The collector's type.
    function collectorType() external view virtual returns (CollectorType);

    /// @dev The collector-specific transfer, reached only through the escrow.
    function _collectTokens(
        AuthCaptureEscrow.PaymentInfo calldata paymentInfo,
        address tokenStore,
        uint256 amount,
        bytes calldata collectorData
    ) internal virtual;
}
