// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {AuthCaptureEscrow} from "../../contracts/AuthCaptureEscrow.sol";
import {TestUSDC} from "../../contracts/dev/TestUSDC.sol";

/// @dev The suites' standard payment terms: up to `maxAmount` of `token` from `payer` to `receiver`,
///      a 0-1% fee range to `feeReceiver`, pre-approval 1 hour, authorization 1 day and refund
///      30 days from now. Works against our escrow and the canonical one alike.
function standardPaymentInfo(
    address operator,
    address payer,
    address receiver,
    address token,
    uint120 maxAmount,
    address feeReceiver,
    uint256 salt
) view returns (AuthCaptureEscrow.PaymentInfo memory) {
    return AuthCaptureEscrow.PaymentInfo({
        operator: operator,
        payer: payer,
        receiver: receiver,
        token: token,
        maxAmount: maxAmount,
        preApprovalExpiry: uint48(block.timestamp + 1 hours),
        authorizationExpiry: uint48(block.timestamp + 1 days),
        refundExpiry: uint48(block.timestamp + 30 days),
        minFeeBps: 0,
        maxFeeBps: 100,
        feeReceiver: feeReceiver,
        salt: salt
    });
}

/// @dev The payer-agnostic hash of `info` (the ERC-3009 nonce), computed by the escrow at `escrow`
///      (ours or the canonical one); `info` is left as it was.
function payerAgnosticHash(address escrow, AuthCaptureEscrow.PaymentInfo memory info) view returns (bytes32 h) {
    address realPayer = info.payer;
    info.payer = address(0);
    h = AuthCaptureEscrow(escrow).getHash(info);
    info.payer = realPayer;
}

/// @dev The EIP-712 digest, under `token`'s domain, of the ReceiveWithAuthorization that `info`'s
///      payer signs for `collector`: `info.maxAmount`, valid from 0 until `info.preApprovalExpiry`,
///      with the payer-agnostic hash of `info` at `escrow` as nonce.
function receiveAuthorizationDigest(
    TestUSDC token,
    address escrow,
    address collector,
    AuthCaptureEscrow.PaymentInfo memory info
) view returns (bytes32) {
    bytes32 structHash = keccak256(
        abi.encode(
            token.RECEIVE_WITH_AUTHORIZATION_TYPEHASH(),
            info.payer,
            collector,
            uint256(info.maxAmount),
            uint256(0),
            uint256(info.preApprovalExpiry),
            payerAgnosticHash(escrow, info)
        )
    );
    return keccak256(abi.encodePacked("\x19\x01", token.DOMAIN_SEPARATOR(), structHash));
}
