// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {Vm} from "forge-std/Vm.sol";

import {UnitTestBase} from "./helpers/UnitTestBase.sol";
import {AuthCaptureEscrow} from "../../contracts/AuthCaptureEscrow.sol";
import {TokenCollector} from "../../contracts/collectors/TokenCollector.sol";
import {TestUSDC} from "../../contracts/dev/TestUSDC.sol";

contract AuthorizeTest is UnitTestBase {
    /*//////////////////////////////////////////////////////////////
                                SUCCESS
    //////////////////////////////////////////////////////////////*/

    function test_authorize_holdsAmountInOperatorTokenStore() public {
        AuthCaptureEscrow.PaymentInfo memory info = _defaultInfo();
        bytes32 h = _authorize(info, 60e6);

        _assertState(h, true, 60e6, 0);
        assertEq(usdc.balanceOf(_store()), 60e6, "store");
        assertEq(usdc.balanceOf(payer), 40e6, "payer keeps maxAmount - amount");
        assertEq(usdc.balanceOf(address(erc3009Collector)), 0, "collector keeps nothing");
        assertEq(usdc.balanceOf(address(escrow)), 0, "escrow keeps nothing");
        assertEq(usdc.balanceOf(receiver), 0, "receiver");
    }

    function test_authorize_fullMaxAmount() public {
        AuthCaptureEscrow.PaymentInfo memory info = _defaultInfo();
        bytes32 h = _authorize(info, MAX_AMOUNT);
        _assertState(h, true, MAX_AMOUNT, 0);
        assertEq(usdc.balanceOf(_store()), MAX_AMOUNT);
        assertEq(usdc.balanceOf(payer), 0);
    }

    function test_authorize_emitsPaymentAuthorized() public {
        AuthCaptureEscrow.PaymentInfo memory info = _defaultInfo();
        bytes memory sig = _mintAndSign(info, PAYER_PK);
        bytes32 h = _specHash(info);

        vm.expectEmit(true, true, true, true, address(escrow));
        emit AuthCaptureEscrow.PaymentAuthorized(h, info, 60e6, address(erc3009Collector));
        vm.prank(operator);
        escrow.authorize(info, 60e6, address(erc3009Collector), sig);
    }

    function test_authorize_doesNotDeployTokenStore() public {
        AuthCaptureEscrow.PaymentInfo memory info = _defaultInfo();
        vm.recordLogs();
        _authorize(info, 60e6);
        Vm.Log[] memory logs = vm.getRecordedLogs();
        assertEq(_countLogs(logs, address(escrow), AuthCaptureEscrow.TokenStoreCreated.selector), 0);
        assertEq(_store().code.length, 0, "no funds left the store, so no clone yet");
        assertEq(usdc.balanceOf(_store()), 60e6, "funds sit at the counterfactual address");
    }

    function test_authorize_withPreApprovalCollector() public {
        AuthCaptureEscrow.PaymentInfo memory info = _defaultInfo();
        _preApprove(info, MAX_AMOUNT);
        vm.prank(operator);
        escrow.authorize(info, 30e6, address(preApprovalCollector), "");

        _assertState(escrow.getHash(info), true, 30e6, 0);
        assertEq(usdc.balanceOf(_store()), 30e6);
        assertEq(usdc.balanceOf(payer), 70e6, "pre-approval pulls exactly amount");
    }

    function test_authorize_succeeds_when_oneSecondBeforePreApprovalExpiry() public {
        AuthCaptureEscrow.PaymentInfo memory info = _defaultInfo();
        bytes memory sig = _mintAndSign(info, PAYER_PK);
        vm.warp(info.preApprovalExpiry - 1);
        vm.prank(operator);
        escrow.authorize(info, 1e6, address(erc3009Collector), sig);
        _assertState(escrow.getHash(info), true, 1e6, 0);
    }

    function test_authorize_succeeds_when_allExpiriesEqual() public {
        AuthCaptureEscrow.PaymentInfo memory info = _defaultInfo();
        info.authorizationExpiry = info.preApprovalExpiry;
        info.refundExpiry = info.preApprovalExpiry;
        bytes32 h = _authorize(info, 1e6);
        _assertState(h, true, 1e6, 0);
    }

    function test_authorize_succeeds_when_maxFeeBpsIs10000AndMinEqualsMax() public {
        AuthCaptureEscrow.PaymentInfo memory info = _defaultInfo();
        info.minFeeBps = 10_000;
        info.maxFeeBps = 10_000;
        bytes32 h = _authorize(info, 1e6);
        _assertState(h, true, 1e6, 0);
    }

    function test_authorize_succeeds_when_amountIsUint120Max() public {
        AuthCaptureEscrow.PaymentInfo memory info = _paymentInfo(payer, type(uint120).max);
        _preApprove(info, type(uint120).max);
        vm.prank(operator);
        escrow.authorize(info, type(uint120).max, address(preApprovalCollector), "");
        _assertState(escrow.getHash(info), true, type(uint120).max, 0);
    }

    function test_authorize_separatePaymentsShareTheOperatorStore() public {
        AuthCaptureEscrow.PaymentInfo memory a = _defaultInfo();
        AuthCaptureEscrow.PaymentInfo memory b = _defaultInfo();
        b.salt = 1;
        bytes32 ha = _authorize(a, 10e6);
        bytes32 hb = _authorize(b, 20e6);
        assertTrue(ha != hb);
        _assertState(ha, true, 10e6, 0);
        _assertState(hb, true, 20e6, 0);
        assertEq(usdc.balanceOf(_store()), 30e6);
    }

    /*//////////////////////////////////////////////////////////////
                                REVERTS
    //////////////////////////////////////////////////////////////*/

    function test_authorize_reverts_InvalidSender_when_callerIsPayer() public {
        _expectRevertFrom(payer, _invalidSender(payer, operator));
        escrow.authorize(_defaultInfo(), 1e6, address(erc3009Collector), "");
    }

    function test_authorize_reverts_InvalidSender_when_callerIsStranger() public {
        _expectRevertFrom(stranger, _invalidSender(stranger, operator));
        escrow.authorize(_defaultInfo(), 1e6, address(erc3009Collector), "");
    }

    function test_authorize_reverts_ZeroAmount_when_amountIsZero() public {
        _authorizeReverts(_defaultInfo(), 0, abi.encodeWithSelector(AuthCaptureEscrow.ZeroAmount.selector));
    }

    function test_authorize_reverts_AmountOverflow_when_amountAboveUint120() public {
        uint256 amount = uint256(type(uint120).max) + 1;
        _authorizeReverts(_defaultInfo(), amount, _amountOverflow(amount));
    }

    function test_authorize_reverts_ExceedsMaxAmount_when_amountAboveMaxAmount() public {
        _assertExceedsMaxAmount(_defaultInfo());
    }

    function test_authorize_reverts_AfterPreApprovalExpiry_when_atPreApprovalExpiry() public {
        AuthCaptureEscrow.PaymentInfo memory info = _defaultInfo();
        bytes memory sig = _mintAndSign(info, PAYER_PK);
        vm.warp(info.preApprovalExpiry);
        _expectRevertFrom(operator, _afterPreApprovalExpiry(info.preApprovalExpiry, info));
        escrow.authorize(info, 1e6, address(erc3009Collector), sig);
    }

    function test_authorize_reverts_AfterPreApprovalExpiry_when_afterPreApprovalExpiry() public {
        AuthCaptureEscrow.PaymentInfo memory info = _defaultInfo();
        vm.warp(info.preApprovalExpiry + 5);
        _authorizeReverts(info, 1e6, _afterPreApprovalExpiry(info.preApprovalExpiry + 5, info));
    }

    function test_authorize_reverts_InvalidExpiries_when_preApprovalAfterAuthorization() public {
        AuthCaptureEscrow.PaymentInfo memory info = _defaultInfo();
        info.authorizationExpiry = info.preApprovalExpiry - 1;
        _authorizeReverts(info, 1e6, _invalidExpiries(info));
    }

    function test_authorize_reverts_InvalidExpiries_when_authorizationAfterRefund() public {
        AuthCaptureEscrow.PaymentInfo memory info = _defaultInfo();
        info.refundExpiry = info.authorizationExpiry - 1;
        _authorizeReverts(info, 1e6, _invalidExpiries(info));
    }

    function test_authorize_reverts_FeeBpsOverflow_when_maxFeeBpsAbove10000() public {
        AuthCaptureEscrow.PaymentInfo memory info = _defaultInfo();
        info.maxFeeBps = 10_001;
        _authorizeReverts(info, 1e6, abi.encodeWithSelector(AuthCaptureEscrow.FeeBpsOverflow.selector, uint16(10_001)));
    }

    function test_authorize_reverts_InvalidFeeBpsRange_when_minAboveMax() public {
        AuthCaptureEscrow.PaymentInfo memory info = _defaultInfo();
        info.minFeeBps = 101;
        info.maxFeeBps = 100;
        bytes memory err = abi.encodeWithSelector(AuthCaptureEscrow.InvalidFeeBpsRange.selector, uint16(101), uint16(100));
        _authorizeReverts(info, 1e6, err);
    }

    function test_authorize_reverts_PaymentAlreadyCollected_when_authorizedTwice() public {
        AuthCaptureEscrow.PaymentInfo memory info = _defaultInfo();
        bytes32 h = _authorize(info, 10e6);
        bytes memory sig = _signERC3009(info, PAYER_PK);
        _expectRevertFrom(operator, _paymentAlreadyCollected(h));
        escrow.authorize(info, 10e6, address(erc3009Collector), sig);
    }

    function test_authorize_reverts_PaymentAlreadyCollected_when_alreadyCharged() public {
        AuthCaptureEscrow.PaymentInfo memory info = _defaultInfo();
        _authorizeReverts(info, 10e6, _paymentAlreadyCollected(_charge(info, 10e6, 0, feeReceiver)));
    }

    function test_authorize_reverts_PaymentAlreadyCollected_when_voidedBefore() public {
        AuthCaptureEscrow.PaymentInfo memory info = _defaultInfo();
        bytes32 h = _authorize(info, 10e6);
        vm.prank(operator);
        escrow.void(info);
        _assertState(h, true, 0, 0);

        vm.prank(operator);
        vm.expectRevert(abi.encodeWithSelector(AuthCaptureEscrow.PaymentAlreadyCollected.selector, h));
        escrow.authorize(info, 10e6, address(erc3009Collector), "");
    }

    function test_authorize_reverts_InvalidCollectorForOperation_when_refundCollector() public {
        AuthCaptureEscrow.PaymentInfo memory info = _defaultInfo();
        _fundRefunds(10e6);
        vm.prank(operator);
        vm.expectRevert(AuthCaptureEscrow.InvalidCollectorForOperation.selector);
        escrow.authorize(info, 10e6, address(refundCollector), "");
    }

    function test_authorize_reverts_TokenCollectionFailed_when_collectorUnderDelivers() public {
        _assertMisdeliveryReverts(-1);
    }

    function test_authorize_reverts_TokenCollectionFailed_when_collectorOverDelivers() public {
        _assertMisdeliveryReverts(1);
    }

    function test_authorize_reverts_TokenCollectionFailed_when_collectorDeliversNothing() public {
        _assertMisdeliveryReverts(-10e6);
    }

    function test_authorize_succeeds_when_customCollectorDeliversExactly() public {
        address c = _misdeliveringCollector(TokenCollector.CollectorType.Payment, 0, 10e6);
        AuthCaptureEscrow.PaymentInfo memory info = _defaultInfo();
        vm.prank(operator);
        escrow.authorize(info, 10e6, c, "");
        _assertState(escrow.getHash(info), true, 10e6, 0);
    }

    function test_authorize_reverts_InvalidAuthorizationSignature_when_signedByAnotherKey() public {
        AuthCaptureEscrow.PaymentInfo memory info = _defaultInfo();
        bytes memory sig = _mintAndSign(info, OPERATOR_PK);
        _expectRevertFrom(operator, abi.encodeWithSelector(TestUSDC.InvalidAuthorizationSignature.selector, payer));
        escrow.authorize(info, 10e6, address(erc3009Collector), sig);
    }

    function test_authorize_revertLeavesNoState() public {
        AuthCaptureEscrow.PaymentInfo memory info = _defaultInfo();
        bytes memory badSig = _mintAndSign(info, OPERATOR_PK);
        vm.prank(operator);
        vm.expectRevert();
        escrow.authorize(info, 10e6, address(erc3009Collector), badSig);
        _assertState(escrow.getHash(info), false, 0, 0);

        // The payment is still usable with a good signature.
        bytes memory sig = _signERC3009(info, PAYER_PK);
        vm.prank(operator);
        escrow.authorize(info, 10e6, address(erc3009Collector), sig);
        _assertState(escrow.getHash(info), true, 10e6, 0);
    }

    /*//////////////////////////////////////////////////////////////
                             ORDER OF CHECKS
    //////////////////////////////////////////////////////////////*/

    /// @dev Every condition fails at first; each step fixes the condition that fired and expects
    ///      the next one in the spec's order.
    function test_authorize_checkOrder_cascade() public {
        uint48 t = uint48(block.timestamp);
        AuthCaptureEscrow.PaymentInfo memory info = _defaultInfo();
        info.maxAmount = 10;
        info.preApprovalExpiry = t; // expired
        info.authorizationExpiry = t - 1; // pre > auth
        info.maxFeeBps = 10_001; // overflow
        info.minFeeBps = 10_002; // min > max
        uint256 overflow = uint256(type(uint120).max) + 1;

        vm.prank(stranger);
        vm.expectRevert(abi.encodeWithSelector(AuthCaptureEscrow.InvalidSender.selector, stranger, operator));
        escrow.authorize(info, 0, address(refundCollector), "");

        vm.prank(operator);
        vm.expectRevert(AuthCaptureEscrow.ZeroAmount.selector);
        escrow.authorize(info, 0, address(refundCollector), "");

        vm.prank(operator);
        vm.expectRevert(
            abi.encodeWithSelector(AuthCaptureEscrow.AmountOverflow.selector, overflow, uint256(type(uint120).max))
        );
        escrow.authorize(info, overflow, address(refundCollector), "");

        vm.prank(operator);
        vm.expectRevert(abi.encodeWithSelector(AuthCaptureEscrow.ExceedsMaxAmount.selector, 11, 10));
        escrow.authorize(info, 11, address(refundCollector), "");

        vm.prank(operator);
        vm.expectRevert(abi.encodeWithSelector(AuthCaptureEscrow.AfterPreApprovalExpiry.selector, t, t));
        escrow.authorize(info, 10, address(refundCollector), "");

        info.preApprovalExpiry = t + 10;
        vm.prank(operator);
        vm.expectRevert(
            abi.encodeWithSelector(AuthCaptureEscrow.InvalidExpiries.selector, t + 10, t - 1, info.refundExpiry)
        );
        escrow.authorize(info, 10, address(refundCollector), "");

        info.authorizationExpiry = t + 20;
        info.refundExpiry = t + 15; // auth > refund still invalid
        vm.prank(operator);
        vm.expectRevert(abi.encodeWithSelector(AuthCaptureEscrow.InvalidExpiries.selector, t + 10, t + 20, t + 15));
        escrow.authorize(info, 10, address(refundCollector), "");

        info.refundExpiry = t + 30;
        vm.prank(operator);
        vm.expectRevert(abi.encodeWithSelector(AuthCaptureEscrow.FeeBpsOverflow.selector, uint16(10_001)));
        escrow.authorize(info, 10, address(refundCollector), "");

        info.maxFeeBps = 10_000;
        vm.prank(operator);
        vm.expectRevert(
            abi.encodeWithSelector(AuthCaptureEscrow.InvalidFeeBpsRange.selector, uint16(10_002), uint16(10_000))
        );
        escrow.authorize(info, 10, address(refundCollector), "");

        info.minFeeBps = 0;
        vm.prank(operator);
        vm.expectRevert(AuthCaptureEscrow.InvalidCollectorForOperation.selector);
        escrow.authorize(info, 10, address(refundCollector), "");
    }

    function test_authorize_reverts_AfterPreApprovalExpiry_beforePaymentAlreadyCollected() public {
        AuthCaptureEscrow.PaymentInfo memory info = _defaultInfo();
        _authorize(info, 10e6);
        vm.warp(info.preApprovalExpiry);
        _authorizeReverts(info, 10e6, _afterPreApprovalExpiry(info.preApprovalExpiry, info));
    }

    function test_authorize_reverts_ExceedsMaxAmount_beforePaymentAlreadyCollected() public {
        AuthCaptureEscrow.PaymentInfo memory info = _defaultInfo();
        _authorize(info, 10e6);
        _assertExceedsMaxAmount(info);
    }

    function test_authorize_reverts_PaymentAlreadyCollected_beforeInvalidCollectorForOperation() public {
        AuthCaptureEscrow.PaymentInfo memory info = _defaultInfo();
        bytes32 h = _authorize(info, 10e6);
        vm.prank(operator);
        vm.expectRevert(abi.encodeWithSelector(AuthCaptureEscrow.PaymentAlreadyCollected.selector, h));
        escrow.authorize(info, 10e6, address(refundCollector), "");
    }

    /*//////////////////////////////////////////////////////////////
                                HELPERS
    //////////////////////////////////////////////////////////////*/

    function _assertMisdeliveryReverts(int256 delta) internal {
        address c = _misdeliveringCollector(TokenCollector.CollectorType.Payment, delta, 20e6);
        AuthCaptureEscrow.PaymentInfo memory info = _defaultInfo();
        vm.prank(operator);
        vm.expectRevert(AuthCaptureEscrow.TokenCollectionFailed.selector);
        escrow.authorize(info, 10e6, c, "");
    }

    /// @dev Authorizing one unit above `info.maxAmount` fails with `ExceedsMaxAmount`.
    function _assertExceedsMaxAmount(AuthCaptureEscrow.PaymentInfo memory info) internal {
        uint256 amount = uint256(MAX_AMOUNT) + 1;
        bytes memory err = abi.encodeWithSelector(AuthCaptureEscrow.ExceedsMaxAmount.selector, amount, MAX_AMOUNT);
        _authorizeReverts(info, amount, err);
    }
}
