// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {EscrowHelpers} from "../base/EscrowHelpers.sol";
import {AuthCaptureEscrow} from "../../contracts/AuthCaptureEscrow.sol";

/// @notice Helpers shared by the fuzz suites: explicit PaymentInfo construction, an ERC-3009
///         authorize for any payment, and executable models of the spec's check order, so a fuzz
///         test can compute the one error (or success) a given input must produce.
abstract contract EscrowFuzzBase is EscrowHelpers {
    uint16 internal constant MAX_BPS = 10_000;
    uint256 internal constant UINT120_MAX = type(uint120).max;

    /// @dev The fee receiver an operator picks when the payment leaves it open.
    address internal otherFeeReceiver = makeAddr("otherFeeReceiver");

    /// @dev A payment with every field given explicitly (operator, payer and token from the fixture).
    function _info(
        uint120 maxAmount,
        uint48 preApprovalExpiry,
        uint48 authorizationExpiry,
        uint48 refundExpiry,
        uint16 minFeeBps,
        uint16 maxFeeBps,
        address feeReceiver_,
        uint256 salt
    ) internal view returns (AuthCaptureEscrow.PaymentInfo memory) {
        return AuthCaptureEscrow.PaymentInfo({
            operator: operator,
            payer: payer,
            receiver: receiver,
            token: address(usdc),
            maxAmount: maxAmount,
            preApprovalExpiry: preApprovalExpiry,
            authorizationExpiry: authorizationExpiry,
            refundExpiry: refundExpiry,
            minFeeBps: minFeeBps,
            maxFeeBps: maxFeeBps,
            feeReceiver: feeReceiver_,
            salt: salt
        });
    }

    /// @dev A valid payment: fee range [minFeeBps, maxFeeBps] (bounded to be valid), expiries
    ///      1h / 1d / 30d from now, fee receiver fixed to the fixture's.
    function _validInfo(uint120 maxAmount, uint16 minFeeBps, uint16 maxFeeBps)
        internal
        view
        returns (AuthCaptureEscrow.PaymentInfo memory info)
    {
        maxFeeBps = uint16(bound(maxFeeBps, 0, MAX_BPS));
        minFeeBps = uint16(bound(minFeeBps, 0, maxFeeBps));
        info = _paymentInfo(payer, maxAmount);
        info.minFeeBps = minFeeBps;
        info.maxFeeBps = maxFeeBps;
    }

    /// @dev The fuzzed inputs of a fee-split case (see `_feeSplitCase`): a fee range, a seed for the
    ///      fee inside it, and whether the payment fixes its fee receiver.
    struct FeeSplitSeeds {
        uint16 minFeeBps;
        uint16 maxFeeBps;
        uint256 feeSeed;
        bool fixedFeeReceiver;
    }

    /// @dev A valid payment (see `_validInfo`) of up to `maxAmount` (bounded to [1, uint120 max])
    ///      for the fee-split tests, with a fee in its range and the receiver of that fee: the
    ///      fixture's when the payment fixes it, else the open payment's `otherFeeReceiver`, chosen
    ///      by the operator.
    function _feeSplitCase(uint120 maxAmount, FeeSplitSeeds memory seeds)
        internal
        view
        returns (AuthCaptureEscrow.PaymentInfo memory info, uint16 feeBps, address chosenFeeReceiver)
    {
        info = _validInfo(uint120(bound(maxAmount, 1, UINT120_MAX)), seeds.minFeeBps, seeds.maxFeeBps);
        if (!seeds.fixedFeeReceiver) info.feeReceiver = address(0);
        feeBps = uint16(bound(seeds.feeSeed, info.minFeeBps, info.maxFeeBps));
        chosenFeeReceiver = seeds.fixedFeeReceiver ? feeReceiver : otherFeeReceiver;
    }

    /// @dev Mints `info.maxAmount` to the fixture payer, signs ERC-3009 and calls authorize as the
    ///      operator, expecting the call to succeed.
    function _authorizeSigned(AuthCaptureEscrow.PaymentInfo memory info, uint256 amount)
        internal
        returns (bytes32 paymentInfoHash)
    {
        usdc.mint(info.payer, info.maxAmount);
        bytes memory signature = _signERC3009(info, PAYER_PK);
        vm.prank(info.operator);
        escrow.authorize(info, amount, address(erc3009Collector), signature);
        return escrow.getHash(info);
    }

    /// @dev The fee of a capture or charge as the spec defines it.
    function _fee(uint256 amount, uint16 feeBps) internal pure returns (uint256) {
        return amount * feeBps / MAX_BPS;
    }

    /// @dev Expects the next call to revert with exactly `reason` (selector and arguments).
    function _expectRevertWith(bytes memory reason) internal {
        vm.expectRevert(reason);
    }

    /*//////////////////////////////////////////////////////////////
                     MODELS OF THE SPEC'S CHECK ORDER
    //////////////////////////////////////////////////////////////*/

    /// @dev Amount checks: `ZeroAmount`, then `AmountOverflow`. Empty when fine.
    function _amountError(uint256 amount) internal pure returns (bytes memory) {
        if (amount == 0) return abi.encodeWithSelector(AuthCaptureEscrow.ZeroAmount.selector);
        if (amount > UINT120_MAX) {
            return abi.encodeWithSelector(AuthCaptureEscrow.AmountOverflow.selector, amount, UINT120_MAX);
        }
        return "";
    }

    /// @dev Payment validation of authorize / charge, in spec order. Empty when fine.
    function _paymentError(AuthCaptureEscrow.PaymentInfo memory info, uint256 amount)
        internal
        view
        returns (bytes memory)
    {
        if (amount > info.maxAmount) {
            return abi.encodeWithSelector(AuthCaptureEscrow.ExceedsMaxAmount.selector, amount, uint256(info.maxAmount));
        }
        if (block.timestamp >= info.preApprovalExpiry) {
            return abi.encodeWithSelector(
                AuthCaptureEscrow.AfterPreApprovalExpiry.selector, uint48(block.timestamp), info.preApprovalExpiry
            );
        }
        if (info.preApprovalExpiry > info.authorizationExpiry || info.authorizationExpiry > info.refundExpiry) {
            return abi.encodeWithSelector(
                AuthCaptureEscrow.InvalidExpiries.selector,
                info.preApprovalExpiry,
                info.authorizationExpiry,
                info.refundExpiry
            );
        }
        if (info.maxFeeBps > MAX_BPS) {
            return abi.encodeWithSelector(AuthCaptureEscrow.FeeBpsOverflow.selector, info.maxFeeBps);
        }
        if (info.minFeeBps > info.maxFeeBps) {
            return abi.encodeWithSelector(AuthCaptureEscrow.InvalidFeeBpsRange.selector, info.minFeeBps, info.maxFeeBps);
        }
        return "";
    }

    /// @dev Fee validation of capture / charge, in spec order. Empty when fine.
    function _feeError(AuthCaptureEscrow.PaymentInfo memory info, uint16 feeBps, address feeReceiver_)
        internal
        pure
        returns (bytes memory)
    {
        if (feeBps < info.minFeeBps || feeBps > info.maxFeeBps) {
            return
                abi.encodeWithSelector(
                    AuthCaptureEscrow.FeeBpsOutOfRange.selector, feeBps, info.minFeeBps, info.maxFeeBps
                );
        }
        if (feeReceiver_ == address(0) && feeBps != 0) {
            return abi.encodeWithSelector(AuthCaptureEscrow.ZeroFeeReceiver.selector);
        }
        if (info.feeReceiver != address(0) && info.feeReceiver != feeReceiver_) {
            return abi.encodeWithSelector(AuthCaptureEscrow.InvalidFeeReceiver.selector, feeReceiver_, info.feeReceiver);
        }
        return "";
    }

    /// @dev `a` if non-empty, else `b`: chains the models in check order.
    function _first(bytes memory a, bytes memory b) internal pure returns (bytes memory) {
        return a.length != 0 ? a : b;
    }
}
