// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {SafeTransferLib} from "solady/utils/SafeTransferLib.sol";

import {UnitTestBase} from "./helpers/UnitTestBase.sol";
import {UnitMisdeliveringCollector} from "./helpers/UnitCollectors.sol";
import {AuthCaptureEscrow} from "../../contracts/AuthCaptureEscrow.sol";
import {TokenCollector} from "../../contracts/collectors/TokenCollector.sol";

contract RefundTest is UnitTestBase {
    AuthCaptureEscrow.PaymentInfo internal info;
    bytes32 internal h;

    function setUp() public override {
        super.setUp();
        info = _defaultInfo();
        // 80 held, 50 captured (1% fee): capturable 30, refundable 50.
        h = _authorizeAndCapture(info, 80e6, 50e6, 100);
        _fundRefunds(100e6);
    }

    function test_refund_returnsTokensFromOperatorToPayer() public {
        uint256 payerBefore = usdc.balanceOf(payer);
        uint256 storeBefore = usdc.balanceOf(_store());
        vm.prank(operator);
        escrow.refund(info, 20e6, address(refundCollector), "");

        _assertState(h, true, 30e6, 30e6);
        assertEq(usdc.balanceOf(payer), payerBefore + 20e6);
        assertEq(usdc.balanceOf(operator), 80e6);
        assertEq(usdc.balanceOf(_store()), storeBefore, "held funds untouched");
        assertEq(usdc.balanceOf(address(refundCollector)), 0);
        assertEq(usdc.balanceOf(receiver), 49.5e6, "receiver untouched");
    }

    function test_refund_emitsPaymentRefunded() public {
        vm.expectEmit(true, true, true, true, address(escrow));
        emit AuthCaptureEscrow.PaymentRefunded(h, 20e6, address(refundCollector));
        vm.prank(operator);
        escrow.refund(info, 20e6, address(refundCollector), "");
    }

    function test_refund_repeatedPartialRefunds_upToCaptured() public {
        vm.startPrank(operator);
        escrow.refund(info, 10e6, address(refundCollector), "");
        escrow.refund(info, 15e6, address(refundCollector), "");
        escrow.refund(info, 25e6, address(refundCollector), "");
        vm.stopPrank();
        _assertState(h, true, 30e6, 0);

        vm.prank(operator);
        vm.expectRevert(abi.encodeWithSelector(AuthCaptureEscrow.RefundExceedsCapture.selector, 1, 0));
        escrow.refund(info, 1, address(refundCollector), "");
    }

    function test_refund_afterCharge() public {
        AuthCaptureEscrow.PaymentInfo memory c = _defaultInfo();
        c.salt = 1;
        bytes32 ch = _charge(c, 40e6, 100, feeReceiver);
        vm.prank(operator);
        escrow.refund(c, 40e6, address(refundCollector), "");
        _assertState(ch, true, 0, 0);
    }

    function test_refund_afterAuthorizationExpiry() public {
        vm.warp(info.authorizationExpiry);
        vm.prank(operator);
        escrow.refund(info, 50e6, address(refundCollector), "");
        _assertState(h, true, 30e6, 0);
    }

    function test_refund_succeeds_when_oneSecondBeforeRefundExpiry() public {
        vm.warp(info.refundExpiry - 1);
        vm.prank(operator);
        escrow.refund(info, 50e6, address(refundCollector), "");
        _assertState(h, true, 30e6, 0);
    }

    function test_refund_capturedAgainAfterRefund_isRefundableAgain() public {
        vm.startPrank(operator);
        escrow.refund(info, 50e6, address(refundCollector), "");
        escrow.capture(info, 30e6, 0, feeReceiver);
        escrow.refund(info, 30e6, address(refundCollector), "");
        vm.stopPrank();
        _assertState(h, true, 0, 0);
    }

    function test_refund_withCustomRefundCollector() public {
        UnitMisdeliveringCollector c = new UnitMisdeliveringCollector(address(escrow), TokenCollector.CollectorType.Refund);
        usdc.mint(address(c), 10e6);
        vm.prank(operator);
        escrow.refund(info, 10e6, address(c), "");
        _assertState(h, true, 30e6, 40e6);
    }

    function test_refund_reverts_InvalidSender_when_callerIsPayer() public {
        vm.prank(payer);
        vm.expectRevert(abi.encodeWithSelector(AuthCaptureEscrow.InvalidSender.selector, payer, operator));
        escrow.refund(info, 1e6, address(refundCollector), "");
    }

    function test_refund_reverts_InvalidSender_when_callerIsReceiver() public {
        vm.prank(receiver);
        vm.expectRevert(abi.encodeWithSelector(AuthCaptureEscrow.InvalidSender.selector, receiver, operator));
        escrow.refund(info, 1e6, address(refundCollector), "");
    }

    function test_refund_reverts_ZeroAmount_when_amountIsZero() public {
        vm.prank(operator);
        vm.expectRevert(AuthCaptureEscrow.ZeroAmount.selector);
        escrow.refund(info, 0, address(refundCollector), "");
    }

    function test_refund_reverts_AmountOverflow_when_amountAboveUint120() public {
        uint256 amount = uint256(type(uint120).max) + 1;
        vm.prank(operator);
        vm.expectRevert(
            abi.encodeWithSelector(AuthCaptureEscrow.AmountOverflow.selector, amount, uint256(type(uint120).max))
        );
        escrow.refund(info, amount, address(refundCollector), "");
    }

    function test_refund_reverts_AfterRefundExpiry_when_atRefundExpiry() public {
        vm.warp(info.refundExpiry);
        vm.prank(operator);
        vm.expectRevert(
            abi.encodeWithSelector(AuthCaptureEscrow.AfterRefundExpiry.selector, info.refundExpiry, info.refundExpiry)
        );
        escrow.refund(info, 1e6, address(refundCollector), "");
    }

    function test_refund_reverts_AfterRefundExpiry_when_afterRefundExpiry() public {
        vm.warp(info.refundExpiry + 1);
        vm.prank(operator);
        vm.expectRevert(
            abi.encodeWithSelector(AuthCaptureEscrow.AfterRefundExpiry.selector, info.refundExpiry + 1, info.refundExpiry)
        );
        escrow.refund(info, 1e6, address(refundCollector), "");
    }

    function test_refund_reverts_RefundExceedsCapture_when_amountAboveRefundable() public {
        vm.prank(operator);
        vm.expectRevert(abi.encodeWithSelector(AuthCaptureEscrow.RefundExceedsCapture.selector, 50e6 + 1, 50e6));
        escrow.refund(info, 50e6 + 1, address(refundCollector), "");
    }

    function test_refund_reverts_RefundExceedsCapture_when_onlyAuthorized() public {
        AuthCaptureEscrow.PaymentInfo memory a = _defaultInfo();
        a.salt = 1;
        _authorize(a, 10e6);
        vm.prank(operator);
        vm.expectRevert(abi.encodeWithSelector(AuthCaptureEscrow.RefundExceedsCapture.selector, 1e6, 0));
        escrow.refund(a, 1e6, address(refundCollector), "");
    }

    function test_refund_reverts_RefundExceedsCapture_when_paymentUnknown() public {
        AuthCaptureEscrow.PaymentInfo memory u = _defaultInfo();
        u.salt = 77;
        vm.prank(operator);
        vm.expectRevert(abi.encodeWithSelector(AuthCaptureEscrow.RefundExceedsCapture.selector, 1, 0));
        escrow.refund(u, 1, address(refundCollector), "");
    }

    function test_refund_reverts_InvalidCollectorForOperation_when_erc3009Collector() public {
        vm.prank(operator);
        vm.expectRevert(AuthCaptureEscrow.InvalidCollectorForOperation.selector);
        escrow.refund(info, 1e6, address(erc3009Collector), "");
    }

    function test_refund_reverts_InvalidCollectorForOperation_when_preApprovalCollector() public {
        vm.prank(operator);
        vm.expectRevert(AuthCaptureEscrow.InvalidCollectorForOperation.selector);
        escrow.refund(info, 1e6, address(preApprovalCollector), "");
    }

    function test_refund_reverts_TokenCollectionFailed_when_collectorUnderDelivers() public {
        UnitMisdeliveringCollector c = new UnitMisdeliveringCollector(address(escrow), TokenCollector.CollectorType.Refund);
        c.setDelta(-1);
        usdc.mint(address(c), 10e6);
        vm.prank(operator);
        vm.expectRevert(AuthCaptureEscrow.TokenCollectionFailed.selector);
        escrow.refund(info, 5e6, address(c), "");
    }

    function test_refund_reverts_TokenCollectionFailed_when_collectorOverDelivers() public {
        UnitMisdeliveringCollector c = new UnitMisdeliveringCollector(address(escrow), TokenCollector.CollectorType.Refund);
        c.setDelta(1);
        usdc.mint(address(c), 10e6);
        vm.prank(operator);
        vm.expectRevert(AuthCaptureEscrow.TokenCollectionFailed.selector);
        escrow.refund(info, 5e6, address(c), "");
    }

    function test_refund_reverts_TransferFromFailed_when_operatorHasNoAllowance() public {
        vm.prank(operator);
        usdc.approve(address(refundCollector), 0);
        vm.prank(operator);
        vm.expectRevert(SafeTransferLib.TransferFromFailed.selector);
        escrow.refund(info, 1e6, address(refundCollector), "");
    }

    function test_refund_reverts_InvalidSender_beforeZeroAmount() public {
        vm.prank(stranger);
        vm.expectRevert(abi.encodeWithSelector(AuthCaptureEscrow.InvalidSender.selector, stranger, operator));
        escrow.refund(info, 0, address(refundCollector), "");
    }

    function test_refund_checkOrder_cascade() public {
        vm.warp(info.refundExpiry);
        uint48 t = uint48(block.timestamp);
        address wrong = address(erc3009Collector);

        vm.prank(payer);
        vm.expectRevert(abi.encodeWithSelector(AuthCaptureEscrow.InvalidSender.selector, payer, operator));
        escrow.refund(info, 0, wrong, "");

        vm.prank(operator);
        vm.expectRevert(AuthCaptureEscrow.ZeroAmount.selector);
        escrow.refund(info, 0, wrong, "");

        vm.prank(operator);
        vm.expectRevert(
            abi.encodeWithSelector(
                AuthCaptureEscrow.AmountOverflow.selector, type(uint256).max, uint256(type(uint120).max)
            )
        );
        escrow.refund(info, type(uint256).max, wrong, "");

        vm.prank(operator);
        vm.expectRevert(abi.encodeWithSelector(AuthCaptureEscrow.AfterRefundExpiry.selector, t, info.refundExpiry));
        escrow.refund(info, 60e6, wrong, "");

        vm.warp(info.refundExpiry - 1);
        vm.prank(operator);
        vm.expectRevert(abi.encodeWithSelector(AuthCaptureEscrow.RefundExceedsCapture.selector, 60e6, 50e6));
        escrow.refund(info, 60e6, wrong, "");

        vm.prank(operator);
        vm.expectRevert(AuthCaptureEscrow.InvalidCollectorForOperation.selector);
        escrow.refund(info, 50e6, wrong, "");
    }
}
