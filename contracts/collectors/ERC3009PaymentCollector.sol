// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {AuthCaptureEscrow} from "../AuthCaptureEscrow.sol";
import {IERC3009} from "../interfaces/IERC3009.sol";
import {PaymentInfoHash} from "../libraries/PaymentInfoHash.sol";
import {SafeTokenTransfer} from "../libraries/SafeTokenTransfer.sol";
import {ERC6492SignatureHandler} from "./ERC6492SignatureHandler.sol";
import {TokenCollector} from "./TokenCollector.sol";

/// @title ERC3009PaymentCollector
/// @notice Collects a payment with the payer's ERC-3009 `ReceiveWithAuthorization` signature: what
///         x402 buyers sign. The signed authorization is for `maxAmount` with the payer-agnostic
///         PaymentInfo hash as its nonce and `preApprovalExpiry` as its deadline, so one signature
///         can serve exactly one payment. Whatever is not collected goes straight back to the payer.
contract ERC3009PaymentCollector is TokenCollector, ERC6492SignatureHandler {
    /// @param authCaptureEscrow_ The escrow this collector serves.
    /// @param multicall3_ The Multicall3 used for ERC-6492 prepare calls.
    constructor(address authCaptureEscrow_, address multicall3_)
        TokenCollector(authCaptureEscrow_)
        ERC6492SignatureHandler(multicall3_)
    {}

    /// @inheritdoc TokenCollector
    function collectorType() external pure override returns (CollectorType) {
        return CollectorType.Payment;
    }

    /// @dev collectorData is the payer's signature (plain, ERC-1271 or ERC-6492-wrapped).
    function _collectTokens(
        AuthCaptureEscrow.PaymentInfo calldata paymentInfo,
        address tokenStore,
        uint256 amount,
        bytes calldata collectorData
    ) internal override {
        address token = paymentInfo.token;
        address payer = paymentInfo.payer;
        uint256 maxAmount = paymentInfo.maxAmount;

        IERC3009(token).receiveWithAuthorization({
            from: payer,
            to: address(this),
            value: maxAmount,
            validAfter: 0,
            validBefore: paymentInfo.preApprovalExpiry,
            nonce: PaymentInfoHash.hashPayerAgnostic(paymentInfo, address(authCaptureEscrow)),
            signature: _handleERC6492Signature(collectorData)
        });

        // The escrow has checked amount <= maxAmount.
        unchecked {
            if (maxAmount > amount) SafeTokenTransfer.safeTransfer(token, payer, maxAmount - amount);
        }
        SafeTokenTransfer.safeTransfer(token, tokenStore, amount);
    }
}
