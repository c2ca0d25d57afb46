// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {Vm} from "forge-std/Vm.sol";

import {TwoHeldPaymentsTestBase} from "./helpers/UnitTestBase.sol";
import {AuthCaptureEscrow} from "../../contracts/AuthCaptureEscrow.sol";

contract VoidBatchTest is TwoHeldPaymentsTestBase {
    function _pair(AuthCaptureEscrow.PaymentInfo memory x, AuthCaptureEscrow.PaymentInfo memory y)
        internal
        pure
        returns (AuthCaptureEscrow.PaymentInfo[] memory infos)
    {
        infos = new AuthCaptureEscrow.PaymentInfo[](2);
        infos[0] = x;
        infos[1] = y;
    }

    function test_voidBatch_voidsEachPayment() public {
        uint256 payerBefore = usdc.balanceOf(payer);
        vm.prank(operator);
        escrow.voidBatch(_pair(a, b));
        _assertState(ha, true, 0, 0);
        _assertState(hb, true, 0, 0);
        assertEq(usdc.balanceOf(payer), payerBefore + 100e6);
        assertEq(usdc.balanceOf(_store()), 0);
    }

    function test_voidBatch_emitsPaymentVoidedPerPaymentInOrder() public {
        address store = _store();
        _expectPaymentVoided(ha, 40e6);
        _expectTokenStoreCreated(store);
        _expectPaymentVoided(hb, 60e6);
        vm.prank(operator);
        escrow.voidBatch(_pair(a, b));
    }

    function test_voidBatch_createsTokenStoreOnce() public {
        vm.recordLogs();
        vm.prank(operator);
        escrow.voidBatch(_pair(a, b));
        Vm.Log[] memory logs = vm.getRecordedLogs();
        assertEq(_countLogs(logs, address(escrow), AuthCaptureEscrow.TokenStoreCreated.selector), 1);
        assertEq(_countLogs(logs, address(escrow), AuthCaptureEscrow.PaymentVoided.selector), 2);
    }

    function test_voidBatch_afterPartialCapture_voidsRemainder() public {
        vm.prank(operator);
        escrow.capture(a, 10e6, 0, feeReceiver);
        vm.prank(operator);
        escrow.voidBatch(_pair(a, b));
        _assertState(ha, true, 0, 10e6);
        _assertState(hb, true, 0, 0);
    }

    function test_voidBatch_emptyBatchIsNoOp() public {
        vm.recordLogs();
        vm.prank(operator);
        escrow.voidBatch(new AuthCaptureEscrow.PaymentInfo[](0));
        assertEq(vm.getRecordedLogs().length, 0);
    }

    function test_voidBatch_isAllOrNothing() public {
        AuthCaptureEscrow.PaymentInfo memory unknown = _defaultInfo();
        unknown.salt = 9;
        bytes32 uh = escrow.getHash(unknown);
        uint256 payerBefore = usdc.balanceOf(payer);

        vm.prank(operator);
        vm.expectRevert(abi.encodeWithSelector(AuthCaptureEscrow.ZeroAuthorization.selector, uh));
        escrow.voidBatch(_pair(a, unknown));

        _assertState(ha, true, 40e6, 0);
        assertEq(usdc.balanceOf(payer), payerBefore);
        assertEq(_store().code.length, 0);
    }

    function test_voidBatch_reverts_ZeroAuthorization_when_samePaymentTwice() public {
        vm.prank(operator);
        vm.expectRevert(abi.encodeWithSelector(AuthCaptureEscrow.ZeroAuthorization.selector, ha));
        escrow.voidBatch(_pair(a, a));
    }

    function test_voidBatch_reverts_InvalidSender_when_callerIsNotOperator() public {
        vm.prank(payer);
        vm.expectRevert(abi.encodeWithSelector(AuthCaptureEscrow.InvalidSender.selector, payer, operator));
        escrow.voidBatch(_pair(a, b));
    }

    function test_voidBatch_reverts_InvalidSender_when_onePaymentHasAnotherOperator() public {
        AuthCaptureEscrow.PaymentInfo memory other = _defaultInfo();
        other.operator = operator2;
        vm.prank(operator);
        vm.expectRevert(abi.encodeWithSelector(AuthCaptureEscrow.InvalidSender.selector, operator, operator2));
        escrow.voidBatch(_pair(a, other));
    }

    function test_voidBatch_reverts_InvalidSender_beforeZeroAuthorization_withinItem() public {
        AuthCaptureEscrow.PaymentInfo memory other = _defaultInfo();
        other.operator = operator2; // unknown payment of another operator
        AuthCaptureEscrow.PaymentInfo[] memory infos = new AuthCaptureEscrow.PaymentInfo[](1);
        infos[0] = other;
        vm.prank(operator);
        vm.expectRevert(abi.encodeWithSelector(AuthCaptureEscrow.InvalidSender.selector, operator, operator2));
        escrow.voidBatch(infos);
    }

    function test_voidBatch_reverts_firstFailingItemsError() public {
        AuthCaptureEscrow.PaymentInfo memory unknown = _defaultInfo();
        unknown.salt = 9;
        bytes32 uh = escrow.getHash(unknown);
        AuthCaptureEscrow.PaymentInfo memory other = _defaultInfo();
        other.operator = operator2;
        vm.prank(operator);
        vm.expectRevert(abi.encodeWithSelector(AuthCaptureEscrow.ZeroAuthorization.selector, uh));
        escrow.voidBatch(_pair(unknown, other));
    }
}
