// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {Vm} from "forge-std/Vm.sol";

import {UnitTestBase} from "./helpers/UnitTestBase.sol";
import {AuthCaptureEscrow} from "../../contracts/AuthCaptureEscrow.sol";
import {TokenCollector} from "../../contracts/collectors/TokenCollector.sol";

contract ChargeTest is UnitTestBase {
    /*//////////////////////////////////////////////////////////////
                                SUCCESS
    //////////////////////////////////////////////////////////////*/

    function test_charge_distributesFeeAndRemainder() public {
        AuthCaptureEscrow.PaymentInfo memory info = _defaultInfo();
        bytes32 h = _charge(info, 60e6, 100, feeReceiver);

        _assertState(h, true, 0, 60e6);
        assertEq(usdc.balanceOf(receiver), 59.4e6, "receiver gets amount - fee");
        assertEq(usdc.balanceOf(feeReceiver), 0.6e6, "1% fee");
        assertEq(usdc.balanceOf(payer), 40e6, "payer keeps maxAmount - amount");
        assertEq(usdc.balanceOf(_store()), 0, "nothing stays in the store");
        assertEq(usdc.balanceOf(address(erc3009Collector)), 0);
        assertEq(usdc.balanceOf(address(escrow)), 0);
    }

    function test_charge_emitsPaymentCharged() public {
        AuthCaptureEscrow.PaymentInfo memory info = _defaultInfo();
        bytes memory sig = _mintAndSign(info, PAYER_PK);
        bytes32 h = _specHash(info);

        vm.expectEmit(true, true, true, true, address(escrow));
        emit AuthCaptureEscrow.PaymentCharged(h, info, 60e6, address(erc3009Collector), 50, feeReceiver);
        vm.prank(operator);
        escrow.charge(info, 60e6, address(erc3009Collector), sig, 50, feeReceiver);
    }

    function test_charge_firstChargeCreatesTokenStore() public {
        AuthCaptureEscrow.PaymentInfo memory info = _defaultInfo();
        bytes memory sig = _mintAndSign(info, PAYER_PK);
        bytes32 h = _specHash(info);
        address store = _store();
        assertEq(store.code.length, 0);

        vm.expectEmit(true, true, true, true, address(escrow));
        emit AuthCaptureEscrow.PaymentCharged(h, info, 60e6, address(erc3009Collector), 100, feeReceiver);
        vm.expectEmit(true, true, true, true, address(escrow));
        emit AuthCaptureEscrow.TokenStoreCreated(operator, store);
        vm.prank(operator);
        escrow.charge(info, 60e6, address(erc3009Collector), sig, 100, feeReceiver);
        assertGt(store.code.length, 0);
    }

    function test_charge_withPreApprovalCollector() public {
        AuthCaptureEscrow.PaymentInfo memory info = _defaultInfo();
        _preApprove(info, MAX_AMOUNT);
        vm.prank(operator);
        escrow.charge(info, 50e6, address(preApprovalCollector), "", 100, feeReceiver);

        _assertState(escrow.getHash(info), true, 0, 50e6);
        assertEq(usdc.balanceOf(payer), 50e6);
        assertEq(usdc.balanceOf(receiver), 49.5e6);
        assertEq(usdc.balanceOf(feeReceiver), 0.5e6);
    }

    function test_charge_zeroFee_sendsEverythingToReceiver() public {
        _assertChargeSplit(_defaultInfo(), 60e6, 0, feeReceiver, 0);
    }

    function test_charge_zeroFeeAndZeroFeeReceiver_when_feeReceiverOpen() public {
        AuthCaptureEscrow.PaymentInfo memory info = _defaultInfo();
        info.feeReceiver = address(0);
        bytes32 h = _charge(info, 60e6, 0, address(0));
        _assertState(h, true, 0, 60e6);
        assertEq(usdc.balanceOf(receiver), 60e6);
    }

    function test_charge_operatorChoosesFeeReceiver_when_feeReceiverOpen() public {
        AuthCaptureEscrow.PaymentInfo memory info = _defaultInfo();
        info.feeReceiver = address(0);
        _assertChargeSplit(info, 60e6, 100, stranger, 0.6e6);
    }

    function test_charge_feeRoundsDown() public {
        _assertChargeSplit(_defaultInfo(), 199, 100, feeReceiver, 1); // 1.99 units of fee -> 1
    }

    function test_charge_feeBelowOneUnit_sendsNoFee() public {
        _assertChargeSplit(_defaultInfo(), 99, 100, feeReceiver, 0);
    }

    function test_charge_fullFee_sendsEverythingToFeeReceiver() public {
        AuthCaptureEscrow.PaymentInfo memory info = _defaultInfo();
        info.minFeeBps = 10_000;
        info.maxFeeBps = 10_000;
        _assertChargeSplit(info, 60e6, 10_000, feeReceiver, 60e6);
    }

    function test_charge_acceptsFeeAtMinAndMaxBounds() public {
        AuthCaptureEscrow.PaymentInfo memory a = _defaultInfo();
        a.minFeeBps = 20;
        a.maxFeeBps = 80;
        AuthCaptureEscrow.PaymentInfo memory b = _defaultInfo();
        b.minFeeBps = 20;
        b.maxFeeBps = 80;
        b.salt = 1;
        _charge(a, 10e6, 20, feeReceiver);
        _charge(b, 10e6, 80, feeReceiver);
        assertEq(usdc.balanceOf(feeReceiver), 0.02e6 + 0.08e6);
    }

    function test_charge_succeeds_when_oneSecondBeforePreApprovalExpiry() public {
        AuthCaptureEscrow.PaymentInfo memory info = _defaultInfo();
        bytes memory sig = _mintAndSign(info, PAYER_PK);
        vm.warp(info.preApprovalExpiry - 1);
        vm.prank(operator);
        escrow.charge(info, 1e6, address(erc3009Collector), sig, 0, feeReceiver);
        _assertState(escrow.getHash(info), true, 0, 1e6);
    }

    /*//////////////////////////////////////////////////////////////
                                REVERTS
    //////////////////////////////////////////////////////////////*/

    function test_charge_reverts_InvalidSender_when_callerIsNotOperator() public {
        _expectRevertFrom(payer, _invalidSender(payer, operator));
        escrow.charge(_defaultInfo(), 1e6, address(erc3009Collector), "", 0, feeReceiver);
    }

    function test_charge_reverts_ZeroAmount_when_amountIsZero() public {
        _chargeReverts(_defaultInfo(), 0, 0, feeReceiver, abi.encodeWithSelector(AuthCaptureEscrow.ZeroAmount.selector));
    }

    function test_charge_reverts_AmountOverflow_when_amountAboveUint120() public {
        _chargeReverts(_defaultInfo(), type(uint256).max, 0, feeReceiver, _amountOverflow(type(uint256).max));
    }

    function test_charge_reverts_ExceedsMaxAmount_when_amountAboveMaxAmount() public {
        bytes memory err =
            abi.encodeWithSelector(AuthCaptureEscrow.ExceedsMaxAmount.selector, uint256(MAX_AMOUNT) + 1, MAX_AMOUNT);
        _chargeReverts(_defaultInfo(), uint256(MAX_AMOUNT) + 1, 0, feeReceiver, err);
    }

    function test_charge_reverts_AfterPreApprovalExpiry_when_atPreApprovalExpiry() public {
        AuthCaptureEscrow.PaymentInfo memory info = _defaultInfo();
        vm.warp(info.preApprovalExpiry);
        _chargeReverts(info, 1e6, 0, feeReceiver, _afterPreApprovalExpiry(info.preApprovalExpiry, info));
    }

    function test_charge_reverts_InvalidExpiries_when_preApprovalAfterAuthorization() public {
        AuthCaptureEscrow.PaymentInfo memory info = _defaultInfo();
        info.authorizationExpiry = info.preApprovalExpiry - 1;
        _chargeReverts(info, 1e6, 0, feeReceiver, _invalidExpiries(info));
    }

    function test_charge_reverts_InvalidExpiries_when_authorizationAfterRefund() public {
        AuthCaptureEscrow.PaymentInfo memory info = _defaultInfo();
        info.refundExpiry = info.authorizationExpiry - 1;
        _chargeReverts(info, 1e6, 0, feeReceiver, _invalidExpiries(info));
    }

    function test_charge_reverts_FeeBpsOverflow_when_maxFeeBpsAbove10000() public {
        bytes memory err = abi.encodeWithSelector(AuthCaptureEscrow.FeeBpsOverflow.selector, type(uint16).max);
        _assertChargeFeeRejected(0, type(uint16).max, 0, feeReceiver, err);
    }

    function test_charge_reverts_InvalidFeeBpsRange_when_minAboveMax() public {
        bytes memory err = abi.encodeWithSelector(AuthCaptureEscrow.InvalidFeeBpsRange.selector, uint16(60), uint16(50));
        _assertChargeFeeRejected(60, 50, 55, feeReceiver, err);
    }

    function test_charge_reverts_FeeBpsOutOfRange_when_feeBelowMin() public {
        _assertChargeFeeRejected(20, 100, 19, feeReceiver, _feeBpsOutOfRange(19, 20, 100));
    }

    function test_charge_reverts_FeeBpsOutOfRange_when_feeAboveMax() public {
        _chargeReverts(_defaultInfo(), 1e6, 101, feeReceiver, _feeBpsOutOfRange(101, 0, 100));
    }

    function test_charge_reverts_ZeroFeeReceiver_when_feePositiveAndReceiverZero() public {
        AuthCaptureEscrow.PaymentInfo memory info = _defaultInfo();
        info.feeReceiver = address(0);
        _chargeReverts(info, 1e6, 1, address(0), abi.encodeWithSelector(AuthCaptureEscrow.ZeroFeeReceiver.selector));
    }

    function test_charge_reverts_InvalidFeeReceiver_when_differsFromFixedFeeReceiver() public {
        _chargeReverts(_defaultInfo(), 1e6, 50, stranger, _invalidFeeReceiver(stranger));
    }

    function test_charge_reverts_InvalidFeeReceiver_when_zeroFeeAndZeroReceiverButFixedReceiver() public {
        _chargeReverts(_defaultInfo(), 1e6, 0, address(0), _invalidFeeReceiver(address(0)));
    }

    function test_charge_reverts_PaymentAlreadyCollected_when_chargedTwice() public {
        AuthCaptureEscrow.PaymentInfo memory info = _defaultInfo();
        bytes32 h = _charge(info, 10e6, 0, feeReceiver);
        _chargeReverts(info, 10e6, 0, feeReceiver, _paymentAlreadyCollected(h));
    }

    function test_charge_reverts_PaymentAlreadyCollected_when_alreadyAuthorized() public {
        AuthCaptureEscrow.PaymentInfo memory info = _defaultInfo();
        _chargeReverts(info, 10e6, 0, feeReceiver, _paymentAlreadyCollected(_authorize(info, 10e6)));
    }

    function test_charge_reverts_InvalidCollectorForOperation_when_refundCollector() public {
        AuthCaptureEscrow.PaymentInfo memory info = _defaultInfo();
        _fundRefunds(10e6);
        vm.prank(operator);
        vm.expectRevert(AuthCaptureEscrow.InvalidCollectorForOperation.selector);
        escrow.charge(info, 10e6, address(refundCollector), "", 0, feeReceiver);
    }

    function test_charge_reverts_TokenCollectionFailed_when_collectorUnderDelivers() public {
        _assertChargeMisdeliveryReverts(-1);
    }

    function test_charge_reverts_TokenCollectionFailed_when_collectorOverDelivers() public {
        _assertChargeMisdeliveryReverts(1);
    }

    /*//////////////////////////////////////////////////////////////
                             ORDER OF CHECKS
    //////////////////////////////////////////////////////////////*/

    /// @dev sender -> amount -> payment validation -> fee validation, each step fixing the last cause.
    function test_charge_checkOrder_cascade() public {
        uint48 t = uint48(block.timestamp);
        AuthCaptureEscrow.PaymentInfo memory info = _defaultInfo();
        info.maxAmount = 10;
        info.preApprovalExpiry = t;
        info.refundExpiry = t - 1; // auth (t + 1 day) > refund
        info.maxFeeBps = 10_001;
        info.minFeeBps = 10_002;
        address c = address(refundCollector);

        vm.prank(stranger);
        vm.expectRevert(abi.encodeWithSelector(AuthCaptureEscrow.InvalidSender.selector, stranger, operator));
        escrow.charge(info, 0, c, "", 20_000, address(0));

        vm.prank(operator);
        vm.expectRevert(AuthCaptureEscrow.ZeroAmount.selector);
        escrow.charge(info, 0, c, "", 20_000, address(0));

        vm.prank(operator);
        vm.expectRevert(
            abi.encodeWithSelector(
                AuthCaptureEscrow.AmountOverflow.selector, uint256(1) << 120, uint256(type(uint120).max)
            )
        );
        escrow.charge(info, uint256(1) << 120, c, "", 20_000, address(0));

        vm.prank(operator);
        vm.expectRevert(abi.encodeWithSelector(AuthCaptureEscrow.ExceedsMaxAmount.selector, 11, 10));
        escrow.charge(info, 11, c, "", 20_000, address(0));

        vm.prank(operator);
        vm.expectRevert(abi.encodeWithSelector(AuthCaptureEscrow.AfterPreApprovalExpiry.selector, t, t));
        escrow.charge(info, 10, c, "", 20_000, address(0));

        info.preApprovalExpiry = t + 1;
        vm.prank(operator);
        vm.expectRevert(
            abi.encodeWithSelector(
                AuthCaptureEscrow.InvalidExpiries.selector, t + 1, info.authorizationExpiry, t - 1
            )
        );
        escrow.charge(info, 10, c, "", 20_000, address(0));

        info.refundExpiry = info.authorizationExpiry;
        vm.prank(operator);
        vm.expectRevert(abi.encodeWithSelector(AuthCaptureEscrow.FeeBpsOverflow.selector, uint16(10_001)));
        escrow.charge(info, 10, c, "", 20_000, address(0));

        info.maxFeeBps = 200;
        vm.prank(operator);
        vm.expectRevert(abi.encodeWithSelector(AuthCaptureEscrow.InvalidFeeBpsRange.selector, uint16(10_002), uint16(200)));
        escrow.charge(info, 10, c, "", 20_000, address(0));

        // Fee validation: out of range, then zero receiver, then the fixed receiver.
        info.minFeeBps = 100;
        vm.prank(operator);
        vm.expectRevert(
            abi.encodeWithSelector(AuthCaptureEscrow.FeeBpsOutOfRange.selector, uint16(20_000), uint16(100), uint16(200))
        );
        escrow.charge(info, 10, c, "", 20_000, address(0));

        vm.prank(operator);
        vm.expectRevert(AuthCaptureEscrow.ZeroFeeReceiver.selector);
        escrow.charge(info, 10, c, "", 150, address(0));

        vm.prank(operator);
        vm.expectRevert(abi.encodeWithSelector(AuthCaptureEscrow.InvalidFeeReceiver.selector, stranger, feeReceiver));
        escrow.charge(info, 10, c, "", 150, stranger);

        vm.prank(operator);
        vm.expectRevert(AuthCaptureEscrow.InvalidCollectorForOperation.selector);
        escrow.charge(info, 10, c, "", 150, feeReceiver);
    }

    function test_charge_reverts_paymentValidationBeforeFeeValidation() public {
        AuthCaptureEscrow.PaymentInfo memory info = _defaultInfo();
        info.minFeeBps = 60;
        info.maxFeeBps = 50;
        // feeBps 0 is out of [60, 50] and the receiver is wrong too, but the range check on the
        // payment itself fires first.
        vm.prank(operator);
        vm.expectRevert(abi.encodeWithSelector(AuthCaptureEscrow.InvalidFeeBpsRange.selector, uint16(60), uint16(50)));
        escrow.charge(info, 1e6, address(erc3009Collector), "", 0, stranger);
    }

    function test_charge_reverts_FeeBpsOutOfRange_beforePaymentAlreadyCollected() public {
        AuthCaptureEscrow.PaymentInfo memory info = _defaultInfo();
        _charge(info, 10e6, 0, feeReceiver);
        _chargeReverts(info, 10e6, 101, feeReceiver, _feeBpsOutOfRange(101, 0, 100));
    }

    function test_charge_reverts_ZeroFeeReceiver_beforePaymentAlreadyCollected() public {
        AuthCaptureEscrow.PaymentInfo memory info = _defaultInfo();
        _charge(info, 10e6, 0, feeReceiver);
        _chargeReverts(info, 10e6, 1, address(0), abi.encodeWithSelector(AuthCaptureEscrow.ZeroFeeReceiver.selector));
    }

    function test_charge_reverts_InvalidFeeReceiver_beforePaymentAlreadyCollected() public {
        AuthCaptureEscrow.PaymentInfo memory info = _defaultInfo();
        _charge(info, 10e6, 0, feeReceiver);
        _chargeReverts(info, 10e6, 1, stranger, _invalidFeeReceiver(stranger));
    }

    function test_charge_reverts_AfterPreApprovalExpiry_beforePaymentAlreadyCollected() public {
        AuthCaptureEscrow.PaymentInfo memory info = _defaultInfo();
        _charge(info, 10e6, 0, feeReceiver);
        vm.warp(info.preApprovalExpiry);
        _chargeReverts(info, 10e6, 0, feeReceiver, _afterPreApprovalExpiry(info.preApprovalExpiry, info));
    }

    function test_charge_reverts_PaymentAlreadyCollected_beforeInvalidCollectorForOperation() public {
        AuthCaptureEscrow.PaymentInfo memory info = _defaultInfo();
        bytes32 h = _charge(info, 10e6, 0, feeReceiver);
        vm.prank(operator);
        vm.expectRevert(abi.encodeWithSelector(AuthCaptureEscrow.PaymentAlreadyCollected.selector, h));
        escrow.charge(info, 10e6, address(refundCollector), "", 0, feeReceiver);
    }

    function test_charge_secondChargeDoesNotRecreateTokenStore() public {
        AuthCaptureEscrow.PaymentInfo memory a = _defaultInfo();
        AuthCaptureEscrow.PaymentInfo memory b = _defaultInfo();
        b.salt = 7;
        _charge(a, 10e6, 0, feeReceiver);
        vm.recordLogs();
        _charge(b, 10e6, 0, feeReceiver);
        Vm.Log[] memory logs = vm.getRecordedLogs();
        assertEq(_countLogs(logs, address(escrow), AuthCaptureEscrow.TokenStoreCreated.selector), 0);
        assertEq(_countLogs(logs, address(escrow), AuthCaptureEscrow.PaymentCharged.selector), 1);
    }

    /*//////////////////////////////////////////////////////////////
                                HELPERS
    //////////////////////////////////////////////////////////////*/

    /// @dev Charges `amount` of `info` with `feeBps` to `feeTo`, then checks that `feeTo` got exactly
    ///      `fee` and the receiver the rest.
    function _assertChargeSplit(
        AuthCaptureEscrow.PaymentInfo memory info,
        uint256 amount,
        uint16 feeBps,
        address feeTo,
        uint256 fee
    ) internal {
        _charge(info, amount, feeBps, feeTo);
        assertEq(usdc.balanceOf(feeTo), fee, "fee");
        assertEq(usdc.balanceOf(receiver), amount - fee, "receiver gets the rest");
    }

    /// @dev Charges the default payment with the fee range [`minFeeBps`, `maxFeeBps`], expecting `err`.
    function _assertChargeFeeRejected(
        uint16 minFeeBps,
        uint16 maxFeeBps,
        uint16 feeBps,
        address feeReceiver_,
        bytes memory err
    ) internal {
        AuthCaptureEscrow.PaymentInfo memory info = _defaultInfo();
        info.minFeeBps = minFeeBps;
        info.maxFeeBps = maxFeeBps;
        _chargeReverts(info, 1e6, feeBps, feeReceiver_, err);
    }

    /// @dev A collector delivering `delta` off the 10 USDC charged must make the charge revert.
    function _assertChargeMisdeliveryReverts(int256 delta) internal {
        address c = _misdeliveringCollector(TokenCollector.CollectorType.Payment, delta, 20e6);
        AuthCaptureEscrow.PaymentInfo memory info = _defaultInfo();
        vm.prank(operator);
        vm.expectRevert(AuthCaptureEscrow.TokenCollectionFailed.selector);
        escrow.charge(info, 10e6, c, "", 0, feeReceiver);
    }
}
