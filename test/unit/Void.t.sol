// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {Vm} from "forge-std/Vm.sol";

import {HeldPaymentTestBase} from "./helpers/UnitTestBase.sol";
import {AuthCaptureEscrow} from "../../contracts/AuthCaptureEscrow.sol";

contract VoidTest is HeldPaymentTestBase {
    function test_void_returnsHoldToPayer() public {
        vm.prank(operator);
        escrow.void(info);
        _assertState(h, true, 0, 0);
        assertEq(usdc.balanceOf(payer), MAX_AMOUNT, "20 never taken + 80 returned");
        assertEq(usdc.balanceOf(_store()), 0);
    }

    function test_void_emitsPaymentVoidedAndCreatesTokenStore() public {
        address store = _store();
        _expectPaymentVoided(h, 80e6);
        _expectTokenStoreCreated(store);
        vm.prank(operator);
        escrow.void(info);
        assertGt(store.code.length, 0);
    }

    function test_void_afterPartialCapture_returnsOnlyRemainder() public {
        vm.prank(operator);
        escrow.capture(info, 30e6, 0, feeReceiver);

        vm.recordLogs();
        _expectPaymentVoided(h, 50e6);
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
        _expectRevertFrom(payer, _invalidSender(payer, operator));
        escrow.void(info);
    }

    function test_void_reverts_InvalidSender_when_callerIsStranger() public {
        _expectRevertFrom(stranger, _invalidSender(stranger, operator));
        escrow.void(info);
    }

    function test_void_reverts_ZeroAuthorization_when_voidedTwice() public {
        vm.prank(operator);
        escrow.void(info);
        _assertNothingToVoid(info, h);
    }

    function test_void_reverts_ZeroAuthorization_when_fullyCaptured() public {
        vm.prank(operator);
        escrow.capture(info, 80e6, 0, feeReceiver);
        _assertNothingToVoid(info, h);
    }

    function test_void_reverts_ZeroAuthorization_when_paymentUnknown() public {
        (AuthCaptureEscrow.PaymentInfo memory unknown, bytes32 uh) = _unknownPayment(42);
        _assertNothingToVoid(unknown, uh);
    }

    function test_void_reverts_ZeroAuthorization_when_charged() public {
        AuthCaptureEscrow.PaymentInfo memory c = _defaultInfo();
        c.salt = 3;
        _assertNothingToVoid(c, _charge(c, 10e6, 0, feeReceiver));
    }

    function test_void_reverts_ZeroAuthorization_when_reclaimed() public {
        vm.warp(info.authorizationExpiry);
        vm.prank(payer);
        escrow.reclaim(info);
        _assertNothingToVoid(info, h);
    }

    function test_void_reverts_InvalidSender_beforeZeroAuthorization() public {
        (AuthCaptureEscrow.PaymentInfo memory unknown,) = _unknownPayment(42);
        _expectRevertFrom(payer, _invalidSender(payer, operator));
        escrow.void(unknown);
    }

    /// @dev The operator's void of `p` (hash `ph`) finds nothing held.
    function _assertNothingToVoid(AuthCaptureEscrow.PaymentInfo memory p, bytes32 ph) internal {
        _expectRevertFrom(operator, _zeroAuthorization(ph));
        escrow.void(p);
    }
}
