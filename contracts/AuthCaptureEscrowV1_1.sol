// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {AuthCaptureEscrow} from "./AuthCaptureEscrow.sol";
import {TokenStore} from "./TokenStore.sol";
import {TokenCollector} from "./collectors/TokenCollector.sol";
import {PaymentInfoHash} from "./libraries/PaymentInfoHash.sol";

/// @title AuthCaptureEscrowV1_1
/// @notice Our escrow with the Commerce Payments v1.1 fee interface added (base/commerce-payments
///         PR #90): `capture` and `charge` overloads that take the fee as an absolute `feeAmount`
///         in token units instead of `uint16 feeBps`, checked against the bounds the payment's
///         `[minFeeBps, maxFeeBps]` imply for the amount (`amount * bps / 10_000`, rounded down),
///         with the v1.1 error `FeeAmountOutOfRange` and the v1.1 `PaymentCaptured` /
///         `PaymentCharged` events (fee as `uint256 feeAmount`).
///
///         Every v1.0 entry point of `AuthCaptureEscrow` stays (the v1.0 `capture` / `charge`
///         emit the v1.0 events), so one deployment serves clients and operators of both
///         interfaces. The v1.1 entry points share the payment state: a hold authorized once may be
///         captured through either `capture`.
///
/// @dev Check order of the v1.1 calls, as the reference:
///      capture: sender, amount (`ZeroAmount`, `AmountOverflow`), fee (`FeeAmountOutOfRange`,
///      `ZeroFeeReceiver`, `InvalidFeeReceiver`), `AfterAuthorizationExpiry`,
///      `InsufficientAuthorization`.
///      charge: sender, amount, payment validation, fee, `PaymentAlreadyCollected`.
contract AuthCaptureEscrowV1_1 is AuthCaptureEscrow {
    /// @notice A payment was charged (v1.1 form: the fee as an amount).
    /// @param paymentInfoHash The payment's hash.
    /// @param paymentInfo The payment.
    /// @param amount The amount charged.
    /// @param tokenCollector The collector that pulled the tokens.
    /// @param feeAmount The fee taken, in token units.
    /// @param feeReceiver Where the fee went.
    event PaymentCharged(
        bytes32 indexed paymentInfoHash,
        PaymentInfo paymentInfo,
        uint256 amount,
        address tokenCollector,
        uint256 feeAmount,
        address feeReceiver
    );

    /// @notice Part or all of a held payment was captured (v1.1 form: the fee as an amount).
    /// @param paymentInfoHash The payment's hash.
    /// @param amount The amount captured (fee included).
    /// @param feeAmount The fee taken, in token units.
    /// @param feeReceiver Where the fee went.
    event PaymentCaptured(bytes32 indexed paymentInfoHash, uint256 amount, uint256 feeAmount, address feeReceiver);

    /// @notice The fee is outside `[amount * minFeeBps / 10_000, amount * maxFeeBps / 10_000]`.
    error FeeAmountOutOfRange(uint256 feeAmount, uint256 minFee, uint256 maxFee);

    /// @notice Collects `amount` from the payer and captures it at once, taking `feeAmount`.
    /// @param paymentInfo The payment.
    /// @param amount The amount to charge, at most `maxAmount`.
    /// @param tokenCollector A Payment-type collector that pulls the tokens.
    /// @param collectorData Data for the collector (e.g. the payer's signature).
    /// @param feeAmount The fee in token units, within the bounds the payment's fee range implies.
    /// @param feeReceiver Where the fee goes; must equal `paymentInfo.feeReceiver` when that is set.
    function charge(
        PaymentInfo calldata paymentInfo,
        uint256 amount,
        address tokenCollector,
        bytes calldata collectorData,
        uint256 feeAmount,
        address feeReceiver
    ) external nonReentrant onlySender(paymentInfo.operator) validAmount(amount) {
        _validatePayment(paymentInfo, amount);
        _validateFeeAmount(paymentInfo, amount, feeAmount, feeReceiver);
        bytes32 paymentInfoHash = PaymentInfoHash.hash(paymentInfo, address(this));
        if (paymentState[paymentInfoHash].hasCollectedPayment) revert PaymentAlreadyCollected(paymentInfoHash);

        paymentState[paymentInfoHash] =
            PaymentState({hasCollectedPayment: true, capturableAmount: 0, refundableAmount: uint120(amount)});
        emit PaymentCharged(paymentInfoHash, paymentInfo, amount, tokenCollector, feeAmount, feeReceiver);

        _collectTokens(paymentInfo, amount, tokenCollector, collectorData, TokenCollector.CollectorType.Payment);
        _distributeFeeAmount(paymentInfo, amount, feeAmount, feeReceiver);
    }

    /// @notice Sends `amount` of the hold to the receiver, `feeAmount` of it to the fee receiver.
    ///         May be called repeatedly until the hold is used up (partial captures).
    /// @param paymentInfo The payment.
    /// @param amount The amount to capture, fee included.
    /// @param feeAmount The fee in token units, within the bounds the payment's fee range implies.
    /// @param feeReceiver Where the fee goes; must equal `paymentInfo.feeReceiver` when that is set.
    function capture(PaymentInfo calldata paymentInfo, uint256 amount, uint256 feeAmount, address feeReceiver)
        external
        nonReentrant
        onlySender(paymentInfo.operator)
        validAmount(amount)
    {
        _validateFeeAmount(paymentInfo, amount, feeAmount, feeReceiver);
        uint48 expiry = paymentInfo.authorizationExpiry;
        if (block.timestamp >= expiry) revert AfterAuthorizationExpiry(uint48(block.timestamp), expiry);

        bytes32 paymentInfoHash = PaymentInfoHash.hash(paymentInfo, address(this));
        PaymentState memory state = paymentState[paymentInfoHash];
        if (state.capturableAmount < amount) {
            revert InsufficientAuthorization(paymentInfoHash, state.capturableAmount, amount);
        }

        // Both fit: amount <= capturable, and capturable + refundable never exceeds maxAmount.
        unchecked {
            state.capturableAmount -= uint120(amount);
            state.refundableAmount += uint120(amount);
        }
        paymentState[paymentInfoHash] = state;
        emit PaymentCaptured(paymentInfoHash, amount, feeAmount, feeReceiver);

        _distributeFeeAmount(paymentInfo, amount, feeAmount, feeReceiver);
    }

    /// @dev The v1.1 fee checks, in the reference order: the amount within the bounds the fee
    ///      range implies for `amount` (both rounded down), a receiver for a non-zero fee, the
    ///      payment's fixed receiver.
    function _validateFeeAmount(
        PaymentInfo calldata paymentInfo,
        uint256 amount,
        uint256 feeAmount,
        address feeReceiver
    ) internal pure {
        uint256 minFee;
        uint256 maxFee;
        unchecked {
            // amount <= type(uint120).max (checked first) and bps < 2**16: no overflow.
            minFee = amount * paymentInfo.minFeeBps / _MAX_FEE_BPS;
            maxFee = amount * paymentInfo.maxFeeBps / _MAX_FEE_BPS;
        }
        if (feeAmount < minFee || feeAmount > maxFee) revert FeeAmountOutOfRange(feeAmount, minFee, maxFee);
        if (feeReceiver == address(0) && feeAmount != 0) revert ZeroFeeReceiver();
        address fixedFeeReceiver = paymentInfo.feeReceiver;
        if (fixedFeeReceiver != address(0) && fixedFeeReceiver != feeReceiver) {
            revert InvalidFeeReceiver(feeReceiver, fixedFeeReceiver);
        }
    }

    /// @dev Pays a v1.1 capture or charge out of the operator's TokenStore: `feeAmount` (checked
    ///      to be at most `amount`, since maxFeeBps <= 10_000) first, then the rest.
    function _distributeFeeAmount(
        PaymentInfo calldata paymentInfo,
        uint256 amount,
        uint256 feeAmount,
        address feeReceiver
    ) internal {
        address tokenStore = _deployedTokenStore(msg.sender);
        uint256 remainder;
        unchecked {
            remainder = amount - feeAmount;
        }
        TokenStore(tokenStore)
            .sendTokensWithFee(paymentInfo.token, feeReceiver, feeAmount, paymentInfo.receiver, remainder);
    }
}
