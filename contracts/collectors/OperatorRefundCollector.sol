// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {AuthCaptureEscrow} from "../AuthCaptureEscrow.sol";
import {SafeTokenTransfer} from "../libraries/SafeTokenTransfer.sol";
import {TokenCollector} from "./TokenCollector.sol";

/// @title OperatorRefundCollector
/// @notice Funds refunds from the operator's own balance: the operator approves this collector
///         and the escrow pulls exactly the refund amount when the operator calls `refund`.
contract OperatorRefundCollector is TokenCollector {
    /// @param authCaptureEscrow_ The escrow this collector serves.
    constructor(address authCaptureEscrow_) TokenCollector(authCaptureEscrow_) {}

    /// @inheritdoc TokenCollector
    function collectorType() external pure override returns (CollectorType) {
        return CollectorType.Refund;
    }

    /// @dev Only the operator can call `refund`, so only its own allowance is ever used.
    function _collectTokens(
        AuthCaptureEscrow.PaymentInfo calldata paymentInfo,
        address tokenStore,
        uint256 amount,
        bytes calldata
    ) internal override {
        SafeTokenTransfer.safeTransferFrom(paymentInfo.token, paymentInfo.operator, tokenStore, amount);
    }
}
