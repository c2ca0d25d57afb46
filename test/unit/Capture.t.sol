// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {Vm} from "forge-std/Vm.sol";

import {UnitTestBase} from "./helpers/UnitTestBase.sol";
import {AuthCaptureEscrow} from "../../contracts/AuthCaptureEscrow.sol";

contract CaptureTest is UnitTestBase {
    AuthCaptureEscrow.PaymentInfo internal info;
    bytes32 internal h;

    function setUp() public override {
        super.setUp();
        info = _defaultInfo();
        h = _authorize(info, 80e6);
    }

    /*//////////////////////////////////////////////////////////////
                                SUCCESS
    //////////////////////////////////////////////////////////////*/

    function test_capture_fullAmount() public {
        vm.prank(operator);
        escrow.capture(info, 80e6, 100, feeReceiver);

        _assertState(h, true, 0, 80e6);
        assertEq(usdc.balanceOf(receiver), 79.2e6);
        assertEq(usdc.balanceOf(feeReceiver), 0.8e6);
        assertEq(usdc.balanceOf(_store()), 0);
        assertEq(usdc.balanceOf(payer), 20e6, "payer untouched by capture");
    }

    function test_capture_partial_leavesRemainderCapturable() public {
        vm.prank(operator);
        escrow.capture(info, 30e6, 100, feeReceiver);

        _assertState(h, true, 50e6, 30e6);
        assertEq(usdc.balanceOf(receiver), 29.7e6);
        assertEq(usdc.balanceOf(feeReceiver), 0.3e6);
        assertEq(usdc.balanceOf(_store()), 50e6);
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
        vm.expectEmit(true, true, true, true, address(escrow));
        emit AuthCaptureEscrow.PaymentCaptured(h, 30e6, 100, feeReceiver);
        vm.expectEmit(true, true, true, true, address(escrow));
        emit AuthCaptureEscrow.TokenStoreCreated(operator, store);
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

        vm.expectEmit(true, true, true, true, address(escrow));
        emit AuthCaptureEscrow.PaymentCaptured(oh, 10e6, 100, stranger);
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
        vm.prank(payer);
        vm.expectRevert(abi.encodeWithSelector(AuthCaptureEscrow.InvalidSender.selector, payer, operator));
        escrow.capture(info, 1e6, 0, feeReceiver);
    }

    function test_capture_reverts_InvalidSender_when_callerIsReceiver() public {
        vm.prank(receiver);
        vm.expectRevert(abi.encodeWithSelector(AuthCaptureEscrow.InvalidSender.selector, receiver, operator));
        escrow.capture(info, 1e6, 0, feeReceiver);
    }

    function test_capture_reverts_ZeroAmount_when_amountIsZero() public {
        vm.prank(operator);
        vm.expectRevert(AuthCaptureEscrow.ZeroAmount.selector);
        escrow.capture(info, 0, 0, feeReceiver);
    }

    function test_capture_reverts_AmountOverflow_when_amountAboveUint120() public {
        uint256 amount = uint256(type(uint120).max) + 1;
        vm.prank(operator);
        vm.expectRevert(
            abi.encodeWithSelector(AuthCaptureEscrow.AmountOverflow.selector, amount, uint256(type(uint120).max))
        );
        escrow.capture(info, amount, 0, feeReceiver);
    }

    function test_capture_reverts_FeeBpsOutOfRange_when_feeAboveMax() public {
        vm.prank(operator);
        vm.expectRevert(
            abi.encodeWithSelector(AuthCaptureEscrow.FeeBpsOutOfRange.selector, uint16(101), uint16(0), uint16(100))
        );
        escrow.capture(info, 1e6, 101, feeReceiver);
    }

    function test_capture_reverts_FeeBpsOutOfRange_when_feeBelowMin() public {
        AuthCaptureEscrow.PaymentInfo memory p = _defaultInfo();
        p.minFeeBps = 10;
        p.salt = 1;
        _authorize(p, 10e6);
        vm.prank(operator);
        vm.expectRevert(
            abi.encodeWithSelector(AuthCaptureEscrow.FeeBpsOutOfRange.selector, uint16(9), uint16(10), uint16(100))
        );
        escrow.capture(p, 1e6, 9, feeReceiver);
    }

    function test_capture_reverts_ZeroFeeReceiver_when_feePositiveAndReceiverZero() public {
        vm.prank(operator);
        vm.expectRevert(AuthCaptureEscrow.ZeroFeeReceiver.selector);
        escrow.capture(info, 1e6, 1, address(0));
    }

    function test_capture_reverts_InvalidFeeReceiver_when_differsFromFixed() public {
        vm.prank(operator);
        vm.expectRevert(abi.encodeWithSelector(AuthCaptureEscrow.InvalidFeeReceiver.selector, stranger, feeReceiver));
        escrow.capture(info, 1e6, 1, stranger);
    }

    function test_capture_reverts_InvalidFeeReceiver_when_zeroFeeButReceiverDiffers() public {
        vm.prank(operator);
        vm.expectRevert(abi.encodeWithSelector(AuthCaptureEscrow.InvalidFeeReceiver.selector, address(0), feeReceiver));
        escrow.capture(info, 1e6, 0, address(0));
    }

    function test_capture_reverts_AfterAuthorizationExpiry_when_atAuthorizationExpiry() public {
        vm.warp(info.authorizationExpiry);
        vm.prank(operator);
        vm.expectRevert(
            abi.encodeWithSelector(
                AuthCaptureEscrow.AfterAuthorizationExpiry.selector, info.authorizationExpiry, info.authorizationExpiry
            )
        );
        escrow.capture(info, 1e6, 0, feeReceiver);
    }

    function test_capture_reverts_AfterAuthorizationExpiry_when_afterAuthorizationExpiry() public {
        vm.warp(info.authorizationExpiry + 100);
        vm.prank(operator);
        vm.expectRevert(
            abi.encodeWithSelector(
                AuthCaptureEscrow.AfterAuthorizationExpiry.selector,
                info.authorizationExpiry + 100,
                info.authorizationExpiry
            )
        );
        escrow.capture(info, 1e6, 0, feeReceiver);
    }

    function test_capture_reverts_InsufficientAuthorization_when_amountAboveCapturable() public {
        vm.prank(operator);
        vm.expectRevert(
            abi.encodeWithSelector(AuthCaptureEscrow.InsufficientAuthorization.selector, h, 80e6, 80e6 + 1)
        );
        escrow.capture(info, 80e6 + 1, 0, feeReceiver);
    }

    function test_capture_reverts_InsufficientAuthorization_when_paymentUnknown() public {
        AuthCaptureEscrow.PaymentInfo memory unknown = _defaultInfo();
        unknown.salt = 99;
        bytes32 uh = escrow.getHash(unknown);
        vm.prank(operator);
        vm.expectRevert(abi.encodeWithSelector(AuthCaptureEscrow.InsufficientAuthorization.selector, uh, 0, 1));
        escrow.capture(unknown, 1, 0, feeReceiver);
    }

    function test_capture_reverts_InsufficientAuthorization_when_voided() public {
        vm.prank(operator);
        escrow.void(info);
        vm.prank(operator);
        vm.expectRevert(abi.encodeWithSelector(AuthCaptureEscrow.InsufficientAuthorization.selector, h, 0, 1e6));
        escrow.capture(info, 1e6, 0, feeReceiver);
    }

    function test_capture_reverts_InsufficientAuthorization_when_charged() public {
        AuthCaptureEscrow.PaymentInfo memory c = _defaultInfo();
        c.salt = 5;
        bytes32 ch = _charge(c, 10e6, 0, feeReceiver);
        vm.prank(operator);
        vm.expectRevert(abi.encodeWithSelector(AuthCaptureEscrow.InsufficientAuthorization.selector, ch, 0, 1e6));
        escrow.capture(c, 1e6, 0, feeReceiver);
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
}
