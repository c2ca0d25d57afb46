// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {AuthCaptureEscrow} from "../AuthCaptureEscrow.sol";
import {PaymentInfoHash} from "../libraries/PaymentInfoHash.sol";
import {SafeTokenTransfer} from "../libraries/SafeTokenTransfer.sol";
import {TokenCollector} from "./TokenCollector.sol";

/// @title PreApprovalPaymentCollector
/// @notice Collects a payment the payer approved on chain: the payer gives this collector an ERC-20
///         allowance and calls `preApprove(paymentInfo)` for the specific payment. For payers whose
///         token has no ERC-3009, or who prefer a transaction to a signature.
contract PreApprovalPaymentCollector is TokenCollector {
    /// @notice Whether a payment (by escrow hash) was pre-approved by its payer.
    mapping(bytes32 paymentInfoHash => bool approved) public isPreApproved;

    /// @notice The payer pre-approved a payment.
    /// @param paymentInfoHash The payment's escrow hash.
    event PaymentPreApproved(bytes32 indexed paymentInfoHash);

    /// @notice Collection was attempted for a payment its payer did not pre-approve.
    error PaymentNotPreApproved(bytes32 paymentInfoHash);

    /// @notice Pre-approval of a payment the escrow already collected.
    error PaymentAlreadyCollected(bytes32 paymentInfoHash);

    /// @notice The payment was already pre-approved.
    error PaymentAlreadyPreApproved(bytes32 paymentInfoHash);

    /// @param authCaptureEscrow_ The escrow this collector serves.
    constructor(address authCaptureEscrow_) TokenCollector(authCaptureEscrow_) {}

    /// @inheritdoc TokenCollector
    function collectorType() external pure override returns (CollectorType) {
        return CollectorType.Payment;
    }

    /// @notice Pre-approves one payment. Only its payer, before `preApprovalExpiry`, once, and not
    ///         after the escrow collected it.
    /// @param paymentInfo The payment to approve.
    function preApprove(AuthCaptureEscrow.PaymentInfo calldata paymentInfo) external {
        address payer = paymentInfo.payer;
        if (msg.sender != payer) revert AuthCaptureEscrow.InvalidSender(msg.sender, payer);

        uint48 expiry = paymentInfo.preApprovalExpiry;
        if (block.timestamp >= expiry) revert AuthCaptureEscrow.AfterPreApprovalExpiry(uint48(block.timestamp), expiry);

        bytes32 paymentInfoHash = PaymentInfoHash.hash(paymentInfo, address(authCaptureEscrow));
        if (isPreApproved[paymentInfoHash]) revert PaymentAlreadyPreApproved(paymentInfoHash);
        (bool hasCollectedPayment,,) = authCaptureEscrow.paymentState(paymentInfoHash);
        if (hasCollectedPayment) revert PaymentAlreadyCollected(paymentInfoHash);

        isPreApproved[paymentInfoHash] = true;
        emit PaymentPreApproved(paymentInfoHash);
    }

    /// @dev Pulls from the payer's allowance. The approval is not cleared: the escrow itself
    ///      guarantees a payment is collected at most once.
    function _collectTokens(
        AuthCaptureEscrow.PaymentInfo calldata paymentInfo,
        address tokenStore,
        uint256 amount,
        bytes calldata
    ) internal override {
        bytes32 paymentInfoHash = PaymentInfoHash.hash(paymentInfo, address(authCaptureEscrow));
        if (!isPreApproved[paymentInfoHash]) revert PaymentNotPreApproved(paymentInfoHash);
        SafeTokenTransfer.safeTransferFrom(paymentInfo.token, paymentInfo.payer, tokenStore, amount);
    }
}
