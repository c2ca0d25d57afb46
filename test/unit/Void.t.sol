// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {Vm} from "forge-std/Vm.sol";

import {UnitTestBase} from "./helpers/UnitTestBase.sol";
import {AuthCaptureEscrow} from "../../contracts/AuthCaptureEscrow.sol";

contract VoidTest is UnitTestBase {
    AuthCaptureEscrow.PaymentInfo internal info;
    bytes32 internal h;

    function setUp() public override {
        super.setUp();
        info = _defaultInfo();
        h = _authorize(info, 80e6);
    }

    function test_void_returnsHoldToPayer() public {
        vm.prank(operator);
        escrow.void(info);
        _assertState(h, true, 0, 0);
        assertEq(usdc.balanceOf(payer), MAX_AMOUNT, "20 never taken + 80 returned");
        assertEq(usdc.balanceOf(_store()), 0);
    }

    function test_void_emitsPaymentVoidedAndCreatesTokenStore() public {
        address store = _store();
        vm.expectEmit(true, true, true, true, address(escrow));
        emit AuthCaptureEscrow.PaymentVoided(h, 80e6);
        vm.expectEmit(true, true, true, true, address(escrow));
        emit AuthCaptureEscrow.TokenStoreCreated(operator, store);
        vm.prank(operator);
        escrow.void(info);
        assertGt(store.code.length, 0);
    }

    function test_void_afterPartialCapture_returnsOnlyRemainder() public {
        vm.prank(operator);
        escrow.capture(info, 30e6, 0, feeReceiver);

        vm.recordLogs();
        vm.expectEmit(true, true, true, true, address(escrow));
        emit AuthCaptureEscrow.PaymentVoided(h, 50e6);
        vm.prank(operator);
        escrow.void(info);
        Vm.Log[] memory logs = vm.getRecordedLogs();
        assertEq(_countLogs(logs, address(escrow), AuthCaptureEscrow.TokenStoreCreated.selector), 0);

        _assertState(h, true, 0, 30e6);
        assertEq(usdc.balanceOf(payer), 20e6 + 50e6);
        assertEq(usdc.balanceOf(receiver), 30e6);
    }

    function test_void_succeeds_when_afterAuthorizationExpiry() public {
        vm.warp(info.authorizationExpiry);
        vm.prank(operator);
        escrow.void(info);
        _assertState(h, true, 0, 0);
    }

    function test_void_succeeds_when_afterRefundExpiry() public {
        vm.warp(info.refundExpiry + 1);
        vm.prank(operator);
        escrow.void(info);
        _assertState(h, true, 0, 0);
        assertEq(usdc.balanceOf(payer), MAX_AMOUNT);
    }

    function test_void_leavesOtherPaymentsHeld() public {
        AuthCaptureEscrow.PaymentInfo memory other = _defaultInfo();
        other.salt = 1;
        bytes32 oh = _authorize(other, 10e6);
        vm.prank(operator);
        escrow.void(info);
        _assertState(oh, true, 10e6, 0);
        assertEq(usdc.balanceOf(_store()), 10e6);
    }

    function test_void_reverts_InvalidSender_when_callerIsPayer() public {
        vm.prank(payer);
        vm.expectRevert(abi.encodeWithSelector(AuthCaptureEscrow.InvalidSender.selector, payer, operator));
        escrow.void(info);
    }

    function test_void_reverts_InvalidSender_when_callerIsStranger() public {
        vm.prank(stranger);
        vm.expectRevert(abi.encodeWithSelector(AuthCaptureEscrow.InvalidSender.selector, stranger, operator));
        escrow.void(info);
    }

    function test_void_reverts_ZeroAuthorization_when_voidedTwice() public {
        vm.prank(operator);
        escrow.void(info);
        vm.prank(operator);
        vm.expectRevert(abi.encodeWithSelector(AuthCaptureEscrow.ZeroAuthorization.selector, h));
        escrow.void(info);
    }

    function test_void_reverts_ZeroAuthorization_when_fullyCaptured() public {
        vm.prank(operator);
        escrow.capture(info, 80e6, 0, feeReceiver);
        vm.prank(operator);
        vm.expectRevert(abi.encodeWithSelector(AuthCaptureEscrow.ZeroAuthorization.selector, h));
        escrow.void(info);
    }

    function test_void_reverts_ZeroAuthorization_when_paymentUnknown() public {
        AuthCaptureEscrow.PaymentInfo memory unknown = _defaultInfo();
        unknown.salt = 42;
        bytes32 uh = escrow.getHash(unknown);
        vm.prank(operator);
        vm.expectRevert(abi.encodeWithSelector(AuthCaptureEscrow.ZeroAuthorization.selector, uh));
        escrow.void(unknown);
    }

    function test_void_reverts_ZeroAuthorization_when_charged() public {
        AuthCaptureEscrow.PaymentInfo memory c = _defaultInfo();
        c.salt = 3;
        bytes32 ch = _charge(c, 10e6, 0, feeReceiver);
        vm.prank(operator);
        vm.expectRevert(abi.encodeWithSelector(AuthCaptureEscrow.ZeroAuthorization.selector, ch));
        escrow.void(c);
    }

    function test_void_reverts_ZeroAuthorization_when_reclaimed() public {
        vm.warp(info.authorizationExpiry);
        vm.prank(payer);
        escrow.reclaim(info);
        vm.prank(operator);
        vm.expectRevert(abi.encodeWithSelector(AuthCaptureEscrow.ZeroAuthorization.selector, h));
        escrow.void(info);
    }

    function test_void_reverts_InvalidSender_beforeZeroAuthorization() public {
        AuthCaptureEscrow.PaymentInfo memory unknown = _defaultInfo();
        unknown.salt = 42;
        vm.prank(payer);
        vm.expectRevert(abi.encodeWithSelector(AuthCaptureEscrow.InvalidSender.selector, payer, operator));
        escrow.void(unknown);
    }
}
