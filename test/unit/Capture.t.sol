// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {Vm} from "forge-std/Vm.sol";

import {HeldPaymentTestBase} from "./helpers/UnitTestBase.sol";
import {AuthCaptureEscrow} from "../../contracts/AuthCaptureEscrow.sol";

contract CaptureTest is HeldPaymentTestBase {
    /*//////////////////////////////////////////////////////////////
                                SUCCESS
    //////////////////////////////////////////////////////////////*/

    function test_capture_fullAmount() public {
        _captureAndCheckSplit(80e6, 100, 0.8e6);
        assertEq(usdc.balanceOf(payer), 20e6, "payer untouched by capture");
    }

    function test_capture_partial_leavesRemainderCapturable() public {
        _captureAndCheckSplit(30e6, 100, 0.3e6);
    }

    function test_capture_repeated_untilExhausted() public {
        vm.startPrank(operator);
        escrow.capture(info, 30e6, 100, feeReceiver);
        escrow.capture(info, 20e6, 50, feeReceiver);
        escrow.capture(info, 30e6, 0, feeReceiver);
        vm.stopPrank();

        _assertState(h, true, 0, 80e6);
        assertEq(usdc.balanceOf(feeReceiver), 0.3e6 + 0.1e6);
        assertEq(usdc.balanceOf(receiver), 80e6 - 0.4e6);
        assertEq(usdc.balanceOf(_store()), 0);

        vm.prank(operator);
        vm.expectRevert(abi.encodeWithSelector(AuthCaptureEscrow.InsufficientAuthorization.selector, h, 0, 1));
        escrow.capture(info, 1, 0, feeReceiver);
    }

    function test_capture_emitsPaymentCapturedAndTokenStoreCreatedOnFirstCapture() public {
        address store = _store();
        _expectPaymentCaptured(h, 30e6, 100, feeReceiver);
        _expectTokenStoreCreated(store);
        vm.prank(operator);
        escrow.capture(info, 30e6, 100, feeReceiver);
    }

    function test_capture_secondCaptureDoesNotCreateTokenStoreAgain() public {
        vm.prank(operator);
        escrow.capture(info, 30e6, 100, feeReceiver);

        vm.recordLogs();
        vm.prank(operator);
        escrow.capture(info, 10e6, 20, feeReceiver);
        Vm.Log[] memory logs = vm.getRecordedLogs();
        assertEq(_countLogs(logs, address(escrow), AuthCaptureEscrow.TokenStoreCreated.selector), 0);
        assertEq(_countLogs(logs, address(escrow), AuthCaptureEscrow.PaymentCaptured.selector), 1);
        assertEq(logs.length, 3, "PaymentCaptured + two transfers");
    }

    function test_capture_emitsPaymentCapturedWithOperatorChosenFeeReceiver() public {
        AuthCaptureEscrow.PaymentInfo memory open = _defaultInfo();
        open.feeReceiver = address(0);
        open.salt = 1;
        bytes32 oh = _authorize(open, 10e6);

        _expectPaymentCaptured(oh, 10e6, 100, stranger);
        vm.prank(operator);
        escrow.capture(open, 10e6, 100, stranger);
        assertEq(usdc.balanceOf(stranger), 0.1e6);
    }

    function test_capture_zeroFeeWithZeroReceiver_when_feeReceiverOpen() public {
        AuthCaptureEscrow.PaymentInfo memory open = _defaultInfo();
        open.feeReceiver = address(0);
        open.salt = 1;
        bytes32 oh = _authorize(open, 10e6);
        vm.prank(operator);
        escrow.capture(open, 10e6, 0, address(0));
        _assertState(oh, true, 0, 10e6);
        assertEq(usdc.balanceOf(receiver), 10e6);
    }

    function test_capture_fullFee_sendsEverythingToFeeReceiver() public {
        AuthCaptureEscrow.PaymentInfo memory f = _defaultInfo();
        f.minFeeBps = 10_000;
        f.maxFeeBps = 10_000;
        f.salt = 1;
        _authorize(f, 10e6);
        vm.prank(operator);
        escrow.capture(f, 10e6, 10_000, feeReceiver);
        assertEq(usdc.balanceOf(feeReceiver), 10e6);
        assertEq(usdc.balanceOf(receiver), 0);
    }

    function test_capture_feeRoundsDown() public {
        vm.prank(operator);
        escrow.capture(info, 12_345, 77, feeReceiver); // 12345 * 77 / 10000 = 95.0565
        assertEq(usdc.balanceOf(feeReceiver), 95);
        assertEq(usdc.balanceOf(receiver), 12_345 - 95);
    }

    function test_capture_succeeds_when_oneSecondBeforeAuthorizationExpiry() public {
        vm.warp(info.authorizationExpiry - 1);
        vm.prank(operator);
        escrow.capture(info, 80e6, 0, feeReceiver);
        _assertState(h, true, 0, 80e6);
    }

    function test_capture_onlyMovesItsOwnPayment() public {
        AuthCaptureEscrow.PaymentInfo memory other = _defaultInfo();
        other.salt = 1;
        bytes32 oh = _authorize(other, 50e6);
        vm.prank(operator);
        escrow.capture(info, 80e6, 0, feeReceiver);
        _assertState(oh, true, 50e6, 0);
        assertEq(usdc.balanceOf(_store()), 50e6);

        vm.prank(operator);
        vm.expectRevert(abi.encodeWithSelector(AuthCaptureEscrow.InsufficientAuthorization.selector, h, 0, 1e6));
        escrow.capture(info, 1e6, 0, feeReceiver);
    }

    /*//////////////////////////////////////////////////////////////
                                REVERTS
    //////////////////////////////////////////////////////////////*/

    function test_capture_reverts_InvalidSender_when_callerIsPayer() public {
        _expectRevertFrom(payer, _invalidSender(payer, operator));
        escrow.capture(info, 1e6, 0, feeReceiver);
    }

    function test_capture_reverts_InvalidSender_when_callerIsReceiver() public {
        _expectRevertFrom(receiver, _invalidSender(receiver, operator));
        escrow.capture(info, 1e6, 0, feeReceiver);
    }

    function test_capture_reverts_ZeroAmount_when_amountIsZero() public {
        _captureReverts(info, 0, 0, feeReceiver, abi.encodeWithSelector(AuthCaptureEscrow.ZeroAmount.selector));
    }

    function test_capture_reverts_AmountOverflow_when_amountAboveUint120() public {
        uint256 amount = uint256(type(uint120).max) + 1;
        _captureReverts(info, amount, 0, feeReceiver, _amountOverflow(amount));
    }

    function test_capture_reverts_FeeBpsOutOfRange_when_feeAboveMax() public {
        _captureReverts(info, 1e6, 101, feeReceiver, _feeBpsOutOfRange(101, 0, 100));
    }

    function test_capture_reverts_FeeBpsOutOfRange_when_feeBelowMin() public {
        AuthCaptureEscrow.PaymentInfo memory p = _defaultInfo();
        p.minFeeBps = 10;
        p.salt = 1;
        _authorize(p, 10e6);
        _captureReverts(p, 1e6, 9, feeReceiver, _feeBpsOutOfRange(9, 10, 100));
    }

    function test_capture_reverts_ZeroFeeReceiver_when_feePositiveAndReceiverZero() public {
        _captureReverts(info, 1e6, 1, address(0), abi.encodeWithSelector(AuthCaptureEscrow.ZeroFeeReceiver.selector));
    }

    function test_capture_reverts_InvalidFeeReceiver_when_differsFromFixed() public {
        _captureReverts(info, 1e6, 1, stranger, _invalidFeeReceiver(stranger));
    }

    function test_capture_reverts_InvalidFeeReceiver_when_zeroFeeButReceiverDiffers() public {
        _captureReverts(info, 1e6, 0, address(0), _invalidFeeReceiver(address(0)));
    }

    function test_capture_reverts_AfterAuthorizationExpiry_when_atAuthorizationExpiry() public {
        _assertTooLateToCapture(info.authorizationExpiry);
    }

    function test_capture_reverts_AfterAuthorizationExpiry_when_afterAuthorizationExpiry() public {
        _assertTooLateToCapture(info.authorizationExpiry + 100);
    }

    function test_capture_reverts_InsufficientAuthorization_when_amountAboveCapturable() public {
        _assertCaptureExceedsHold(info, h, 80e6, 80e6 + 1);
    }

    function test_capture_reverts_InsufficientAuthorization_when_paymentUnknown() public {
        (AuthCaptureEscrow.PaymentInfo memory unknown, bytes32 uh) = _unknownPayment(99);
        _assertCaptureExceedsHold(unknown, uh, 0, 1);
    }

    function test_capture_reverts_InsufficientAuthorization_when_voided() public {
        vm.prank(operator);
        escrow.void(info);
        _assertCaptureExceedsHold(info, h, 0, 1e6);
    }

    function test_capture_reverts_InsufficientAuthorization_when_charged() public {
        AuthCaptureEscrow.PaymentInfo memory c = _defaultInfo();
        c.salt = 5;
        _assertCaptureExceedsHold(c, _charge(c, 10e6, 0, feeReceiver), 0, 1e6);
    }

    /*//////////////////////////////////////////////////////////////
                             ORDER OF CHECKS
    //////////////////////////////////////////////////////////////*/

    /// @dev sender, ZeroAmount, AmountOverflow, FeeBpsOutOfRange, ZeroFeeReceiver, InvalidFeeReceiver,
    ///      AfterAuthorizationExpiry, InsufficientAuthorization.
    function test_capture_checkOrder_cascade() public {
        vm.warp(info.authorizationExpiry);
        uint48 t = uint48(block.timestamp);
        uint256 overflow = uint256(type(uint120).max) + 1;

        vm.prank(payer);
        vm.expectRevert(abi.encodeWithSelector(AuthCaptureEscrow.InvalidSender.selector, payer, operator));
        escrow.capture(info, 0, 500, address(0));

        vm.prank(operator);
        vm.expectRevert(AuthCaptureEscrow.ZeroAmount.selector);
        escrow.capture(info, 0, 500, address(0));

        vm.prank(operator);
        vm.expectRevert(
            abi.encodeWithSelector(AuthCaptureEscrow.AmountOverflow.selector, overflow, uint256(type(uint120).max))
        );
        escrow.capture(info, overflow, 500, address(0));

        vm.prank(operator);
        vm.expectRevert(
            abi.encodeWithSelector(AuthCaptureEscrow.FeeBpsOutOfRange.selector, uint16(500), uint16(0), uint16(100))
        );
        escrow.capture(info, 90e6, 500, address(0));

        vm.prank(operator);
        vm.expectRevert(AuthCaptureEscrow.ZeroFeeReceiver.selector);
        escrow.capture(info, 90e6, 50, address(0));

        vm.prank(operator);
        vm.expectRevert(abi.encodeWithSelector(AuthCaptureEscrow.InvalidFeeReceiver.selector, stranger, feeReceiver));
        escrow.capture(info, 90e6, 50, stranger);

        vm.prank(operator);
        vm.expectRevert(
            abi.encodeWithSelector(AuthCaptureEscrow.AfterAuthorizationExpiry.selector, t, info.authorizationExpiry)
        );
        escrow.capture(info, 90e6, 50, feeReceiver);

        vm.warp(info.authorizationExpiry - 1);
        vm.prank(operator);
        vm.expectRevert(abi.encodeWithSelector(AuthCaptureEscrow.InsufficientAuthorization.selector, h, 80e6, 90e6));
        escrow.capture(info, 90e6, 50, feeReceiver);
    }

    /*//////////////////////////////////////////////////////////////
                                HELPERS
    //////////////////////////////////////////////////////////////*/

    /// @dev Captures `amount` of the held payment with `feeBps`, then checks the split (`fee` to the
    ///      fee receiver, the rest to the receiver) and what stays held.
    function _captureAndCheckSplit(uint256 amount, uint16 feeBps, uint256 fee) internal {
        vm.prank(operator);
        escrow.capture(info, amount, feeBps, feeReceiver);

        _assertState(h, true, 80e6 - amount, amount);
        assertEq(usdc.balanceOf(receiver), amount - fee);
        assertEq(usdc.balanceOf(feeReceiver), fee);
        assertEq(usdc.balanceOf(_store()), 80e6 - amount);
    }

    /// @dev As the operator, captures `amount` of `p` expecting exactly `err`.
    function _captureReverts(
        AuthCaptureEscrow.PaymentInfo memory p,
        uint256 amount,
        uint16 feeBps,
        address feeTo,
        bytes memory err
    ) internal {
        _expectRevertFrom(operator, err);
        escrow.capture(p, amount, feeBps, feeTo);
    }

    /// @dev At `timestamp` (at or past the authorization expiry) capturing fails.
    function _assertTooLateToCapture(uint48 timestamp) internal {
        vm.warp(timestamp);
        bytes memory err =
            abi.encodeWithSelector(AuthCaptureEscrow.AfterAuthorizationExpiry.selector, timestamp, info.authorizationExpiry);
        _captureReverts(info, 1e6, 0, feeReceiver, err);
    }

    /// @dev Capturing `amount` of `p` (hash `ph`) with only `capturable` held fails.
    function _assertCaptureExceedsHold(AuthCaptureEscrow.PaymentInfo memory p, bytes32 ph, uint256 capturable, uint256 amount)
        internal
    {
        bytes memory err =
            abi.encodeWithSelector(AuthCaptureEscrow.InsufficientAuthorization.selector, ph, capturable, amount);
        _captureReverts(p, amount, 0, feeReceiver, err);
    }
}
