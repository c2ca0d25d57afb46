// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {AuthCaptureEscrow} from "../AuthCaptureEscrow.sol";
import {ISignatureTransfer} from "../interfaces/ISignatureTransfer.sol";
import {PaymentInfoHash} from "../libraries/PaymentInfoHash.sol";
import {ERC6492SignatureHandler} from "./ERC6492SignatureHandler.sol";
import {TokenCollector} from "./TokenCollector.sol";

/// @title Permit2PaymentCollector
/// @notice Collects a payment with the payer's Uniswap Permit2 `PermitTransferFrom` signature: what
///         x402 buyers sign (`assetTransferMethod: "permit2"`) for tokens without ERC-3009. The
///         payer approves Permit2 once per token; each payment is then one signature with this
///         collector as `spender`, `paymentInfo.token` and `maxAmount` as the permitted token and
///         amount, the payer-agnostic PaymentInfo hash as nonce and `preApprovalExpiry` as deadline.
///         The nonce makes the signature good for exactly one payment; Permit2 moves exactly the
///         amount collected, straight from the payer to the operator's TokenStore.
/// @dev Same external interface as the Commerce Payments reference collector. ERC-1271 signatures
///      are checked by Permit2 itself; ERC-6492-wrapped ones are unwrapped (and their wallet
///      prepared) first. Token failures surface as Permit2 reports them.
contract Permit2PaymentCollector is TokenCollector, ERC6492SignatureHandler {
    /// @notice The Permit2 singleton the payer's signature is spent on.
    ISignatureTransfer public immutable permit2;

    /// @param authCaptureEscrow_ The escrow this collector serves.
    /// @param permit2_ Permit2 (0x000000000022D473030F116dDEE9F6B43aC78BA3 on public chains).
    /// @param multicall3_ The Multicall3 used for ERC-6492 prepare calls.
    constructor(address authCaptureEscrow_, address permit2_, address multicall3_)
        TokenCollector(authCaptureEscrow_)
        ERC6492SignatureHandler(multicall3_)
    {
        permit2 = ISignatureTransfer(permit2_);
    }

    /// @inheritdoc TokenCollector
    function collectorType() external pure override returns (CollectorType) {
        return CollectorType.Payment;
    }

    /// @dev collectorData is the payer's Permit2 signature (plain, ERC-1271 or ERC-6492-wrapped).
    ///      No state of its own: Permit2 spends the nonce, the escrow records the payment.
    function _collectTokens(
        AuthCaptureEscrow.PaymentInfo calldata paymentInfo,
        address tokenStore,
        uint256 amount,
        bytes calldata collectorData
    ) internal override {
        permit2.permitTransferFrom({
            permit: ISignatureTransfer.PermitTransferFrom({
                permitted: ISignatureTransfer.TokenPermissions({
                    token: paymentInfo.token, amount: paymentInfo.maxAmount
                }),
                nonce: uint256(PaymentInfoHash.hashPayerAgnostic(paymentInfo, address(authCaptureEscrow))),
                deadline: paymentInfo.preApprovalExpiry
            }),
            transferDetails: ISignatureTransfer.SignatureTransferDetails({to: tokenStore, requestedAmount: amount}),
            owner: paymentInfo.payer,
            signature: _handleERC6492Signature(collectorData)
        });
    }
}
