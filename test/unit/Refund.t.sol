// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {ERC20} from "solady/tokens/ERC20.sol";

import {HeldPaymentTestBase} from "./helpers/UnitTestBase.sol";
import {AuthCaptureEscrow} from "../../contracts/AuthCaptureEscrow.sol";
import {TokenCollector} from "../../contracts/collectors/TokenCollector.sol";

contract RefundTest is HeldPaymentTestBase {
    function setUp() public override {
        super.setUp();
        // 80 held, 50 captured (1% fee): capturable 30, refundable 50.
        vm.prank(operator);
        escrow.capture(info, 50e6, 100, feeReceiver);
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
        address c = _misdeliveringCollector(TokenCollector.CollectorType.Refund, 0, 10e6);
        vm.prank(operator);
        escrow.refund(info, 10e6, c, "");
        _assertState(h, true, 30e6, 40e6);
    }

    function test_refund_reverts_InvalidSender_when_callerIsPayer() public {
        _expectRevertFrom(payer, _invalidSender(payer, operator));
        escrow.refund(info, 1e6, address(refundCollector), "");
    }

    function test_refund_reverts_InvalidSender_when_callerIsReceiver() public {
        _expectRevertFrom(receiver, _invalidSender(receiver, operator));
        escrow.refund(info, 1e6, address(refundCollector), "");
    }

    function test_refund_reverts_ZeroAmount_when_amountIsZero() public {
        _refundReverts(info, 0, abi.encodeWithSelector(AuthCaptureEscrow.ZeroAmount.selector));
    }

    function test_refund_reverts_AmountOverflow_when_amountAboveUint120() public {
        uint256 amount = uint256(type(uint120).max) + 1;
        _refundReverts(info, amount, _amountOverflow(amount));
    }

    function test_refund_reverts_AfterRefundExpiry_when_atRefundExpiry() public {
        _assertTooLateToRefund(info.refundExpiry);
    }

    function test_refund_reverts_AfterRefundExpiry_when_afterRefundExpiry() public {
        _assertTooLateToRefund(info.refundExpiry + 1);
    }

    function test_refund_reverts_RefundExceedsCapture_when_amountAboveRefundable() public {
        _assertRefundExceedsCapture(info, 50e6 + 1, 50e6);
    }

    function test_refund_reverts_RefundExceedsCapture_when_onlyAuthorized() public {
        AuthCaptureEscrow.PaymentInfo memory a = _defaultInfo();
        a.salt = 1;
        _authorize(a, 10e6);
        _assertRefundExceedsCapture(a, 1e6, 0);
    }

    function test_refund_reverts_RefundExceedsCapture_when_paymentUnknown() public {
        (AuthCaptureEscrow.PaymentInfo memory u,) = _unknownPayment(77);
        _assertRefundExceedsCapture(u, 1, 0);
    }

    function test_refund_reverts_InvalidCollectorForOperation_when_erc3009Collector() public {
        _assertNotARefundCollector(address(erc3009Collector));
    }

    function test_refund_reverts_InvalidCollectorForOperation_when_preApprovalCollector() public {
        _assertNotARefundCollector(address(preApprovalCollector));
    }

    function test_refund_reverts_TokenCollectionFailed_when_collectorUnderDelivers() public {
        _assertRefundMisdeliveryReverts(-1);
    }

    function test_refund_reverts_TokenCollectionFailed_when_collectorOverDelivers() public {
        _assertRefundMisdeliveryReverts(1);
    }

    /// @dev The token's own error comes through unchanged (SafeERC20 semantics).
    function test_refund_reverts_withTokensInsufficientAllowance_when_operatorHasNoAllowance() public {
        vm.prank(operator);
        usdc.approve(address(refundCollector), 0);
        _refundReverts(info, 1e6, abi.encodeWithSelector(ERC20.InsufficientAllowance.selector));
    }

    function test_refund_reverts_InvalidSender_beforeZeroAmount() public {
        _expectRevertFrom(stranger, _invalidSender(stranger, operator));
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

    /*//////////////////////////////////////////////////////////////
                                HELPERS
    //////////////////////////////////////////////////////////////*/

    /// @dev As the operator, refunds `amount` of `p` from the operator's funds, expecting exactly `err`.
    function _refundReverts(AuthCaptureEscrow.PaymentInfo memory p, uint256 amount, bytes memory err) internal {
        _expectRevertFrom(operator, err);
        escrow.refund(p, amount, address(refundCollector), "");
    }

    /// @dev At `timestamp` (at or past the refund expiry) refunding fails.
    function _assertTooLateToRefund(uint48 timestamp) internal {
        vm.warp(timestamp);
        _refundReverts(
            info, 1e6, abi.encodeWithSelector(AuthCaptureEscrow.AfterRefundExpiry.selector, timestamp, info.refundExpiry)
        );
    }

    /// @dev Refunding `amount` of `p` with only `refundable` captured fails.
    function _assertRefundExceedsCapture(AuthCaptureEscrow.PaymentInfo memory p, uint256 amount, uint256 refundable)
        internal
    {
        bytes memory err = abi.encodeWithSelector(AuthCaptureEscrow.RefundExceedsCapture.selector, amount, refundable);
        _refundReverts(p, amount, err);
    }

    /// @dev A Payment collector cannot fund a refund.
    function _assertNotARefundCollector(address collector) internal {
        _expectRevertFrom(operator, abi.encodeWithSelector(AuthCaptureEscrow.InvalidCollectorForOperation.selector));
        escrow.refund(info, 1e6, collector, "");
    }

    /// @dev A refund collector delivering `delta` off the 5 USDC refunded must make the refund revert.
    function _assertRefundMisdeliveryReverts(int256 delta) internal {
        address c = _misdeliveringCollector(TokenCollector.CollectorType.Refund, delta, 10e6);
        _expectRevertFrom(operator, abi.encodeWithSelector(AuthCaptureEscrow.TokenCollectionFailed.selector));
        escrow.refund(info, 5e6, c, "");
    }
}
