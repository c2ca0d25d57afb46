// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {ERC20} from "solady/tokens/ERC20.sol";

import {UnitTestBase} from "./helpers/UnitTestBase.sol";
import {AuthCaptureEscrow} from "../../contracts/AuthCaptureEscrow.sol";
import {TokenCollector} from "../../contracts/collectors/TokenCollector.sol";

contract OperatorRefundCollectorTest is UnitTestBase {
    AuthCaptureEscrow.PaymentInfo internal info;
    bytes32 internal h;

    function setUp() public override {
        super.setUp();
        info = _defaultInfo();
        h = _authorizeAndCapture(info, 80e6, 50e6, 0); // 30 still held in the store
    }

    function test_collectorType_isRefund() public view {
        assertEq(uint8(refundCollector.collectorType()), uint8(TokenCollector.CollectorType.Refund));
        assertEq(address(refundCollector.authCaptureEscrow()), address(escrow));
    }

    function test_collectTokens_reverts_OnlyAuthCaptureEscrow_when_calledByOperator() public {
        _fundRefunds(10e6);
        vm.prank(operator);
        vm.expectRevert(TokenCollector.OnlyAuthCaptureEscrow.selector);
        refundCollector.collectTokens(info, payer, 10e6, "");
    }

    function test_collectTokens_reverts_OnlyAuthCaptureEscrow_when_calledByStranger() public {
        _fundRefunds(10e6);
        vm.prank(stranger);
        vm.expectRevert(TokenCollector.OnlyAuthCaptureEscrow.selector);
        refundCollector.collectTokens(info, stranger, 10e6, "");
        assertEq(usdc.balanceOf(operator), 10e6);
    }

    function test_refund_pullsExactlyAmountFromOperator() public {
        _fundRefunds(25e6);
        vm.prank(operator);
        escrow.refund(info, 20e6, address(refundCollector), "");
        assertEq(usdc.balanceOf(operator), 5e6);
        assertEq(usdc.allowance(operator, address(refundCollector)), 5e6);
        assertEq(usdc.balanceOf(_store()), 30e6, "held funds untouched");
        assertEq(usdc.balanceOf(payer), 20e6 + 20e6);
    }

    function test_refund_doesNotPullFromReceiverEvenIfApproved() public {
        // The receiver holds the captured funds and approved the collector; the operator has nothing.
        vm.prank(receiver);
        usdc.approve(address(refundCollector), type(uint256).max);
        vm.prank(operator);
        vm.expectRevert(ERC20.InsufficientAllowance.selector);
        escrow.refund(info, 10e6, address(refundCollector), "");
        assertEq(usdc.balanceOf(receiver), 50e6);
    }

    function test_refund_doesNotUseHeldFundsOfTheStore() public {
        // 30 are held in the store for this very payment, but a refund must come from the operator.
        assertEq(usdc.balanceOf(_store()), 30e6);
        vm.prank(operator);
        vm.expectRevert(ERC20.InsufficientAllowance.selector);
        escrow.refund(info, 10e6, address(refundCollector), "");
    }

    function test_refund_pullsFromThePaymentsOperatorOnly() public {
        // operator approved and funded; operator2's payment refund must not touch operator's funds.
        _fundRefunds(50e6);
        AuthCaptureEscrow.PaymentInfo memory other = _defaultInfo();
        other.operator = operator2;
        other.salt = 1;
        _authorizeAndCapture(other, 10e6, 10e6, 0);
        vm.prank(operator2);
        vm.expectRevert(ERC20.InsufficientAllowance.selector);
        escrow.refund(other, 5e6, address(refundCollector), "");
        assertEq(usdc.balanceOf(operator), 50e6);

        usdc.mint(operator2, 5e6);
        vm.prank(operator2);
        usdc.approve(address(refundCollector), 5e6);
        vm.prank(operator2);
        escrow.refund(other, 5e6, address(refundCollector), "");
        assertEq(usdc.balanceOf(operator2), 0);
        assertEq(usdc.balanceOf(operator), 50e6);
    }
}
